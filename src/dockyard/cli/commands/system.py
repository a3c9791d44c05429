"""System commands: info, version, events, system df, system prune.

Owns: Docker's `info` layout (Client/Server sections from `GET /info`), the `version` table
(client side plus the server's components from `GET /version`), the event stream's line format
(`<time> <type> <action> <id> (k=v, ...)`), disk usage summary and verbose tables, and the
combined prune.
"""

from __future__ import annotations

import os
import sys
import time

from dockyard.cli import table
from dockyard.cli.client import MAX_API_VERSION, APIError, DaemonUnreachable
from dockyard.cli.command import CLIError, Command, Ctx
from dockyard.cli.common import (
    FORMAT_HELP,
    INSPECT_FORMAT_HELP,
    confirm,
    filter_flag,
    filters_json,
    format_flag,
)
from dockyard.cli.flags import Flag, Options
from dockyard.cli.units import bytes_size, human_duration, human_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _render(fmt: str, data: Any) -> None:
    from dockyard.cli import template

    try:
        src = "{{json .}}" if fmt == "json" else fmt
        sys.stdout.write(template.parse(src).execute(data) + "\n")
    except template.TemplateError as e:
        raise CLIError(f"template parsing error: {e}") from None


# ---- version ------------------------------------------------------------------------------------

def _client_version(ctx: Ctx) -> dict[str, Any]:
    from dockyard import __version__

    negotiated = ctx.client.version or MAX_API_VERSION
    return {"Platform": {"Name": ""}, "Version": __version__, "ApiVersion": negotiated,
            "DefaultAPIVersion": MAX_API_VERSION, "PythonVersion": sys.version.split()[0],
            "GitCommit": "", "BuildTime": "", "Os": "linux", "Arch": os.uname().machine,
            "Context": "default"}


def version(ctx: Ctx, opts: Options, args: list[str]) -> int:
    server: Any = None
    error = None
    try:
        ctx.client.negotiate()
        server = ctx.client.get("/version")
    except (APIError, DaemonUnreachable) as e:
        error = e
    client = _client_version(ctx)
    if opts["format"]:
        _render(opts["format"], {"Client": client, "Server": server})
        if error:
            raise CLIError(str(error))
        return 0
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(client["Arch"], client["Arch"])
    api = client["ApiVersion"]
    lines = ["Client:",
             f" Version:\t{client['Version']}",
             f" API version:\t{api}" + (f" (downgraded from {MAX_API_VERSION})" if api != MAX_API_VERSION else ""),
             f" Python version:\t{client['PythonVersion']}",
             f" OS/Arch:\tlinux/{arch}",
             " Context:\tdefault"]
    text = table.tabwrite("\n".join(lines) + "\n", minwidth=20, padding=1)
    if server:
        platform = (server.get("Platform") or {}).get("Name") or ""
        slines = ["", "Server:" + (f" {platform}" if platform else "")]
        components = server.get("Components") or [{"Name": "Engine", "Version": server.get("Version", ""), "Details": {
            "ApiVersion": server.get("ApiVersion", ""), "MinAPIVersion": server.get("MinAPIVersion", ""),
            "GoVersion": server.get("GoVersion", ""), "GitCommit": server.get("GitCommit", ""),
            "BuildTime": server.get("BuildTime", ""), "Os": server.get("Os", ""), "Arch": server.get("Arch", ""),
            "Experimental": str(server.get("Experimental", "false")).lower(),
            "KernelVersion": server.get("KernelVersion", "")}}]
        for comp in components:
            d = comp.get("Details") or {}
            slines.append(f" {comp.get('Name', '')}:")
            if comp.get("Name") == "Engine":
                slines += [f"  Version:\t{comp.get('Version', '')}",
                           f"  API version:\t{d.get('ApiVersion', '')} (minimum version {d.get('MinAPIVersion', '')})"]
                if d.get("GoVersion"):
                    slines.append(f"  Go version:\t{d['GoVersion']}")
                if d.get("PythonVersion"):
                    slines.append(f"  Python version:\t{d['PythonVersion']}")
                slines += [f"  Git commit:\t{d.get('GitCommit', '')}",
                           f"  Built:\t{d.get('BuildTime', '')}",
                           f"  OS/Arch:\t{d.get('Os', '')}/{d.get('Arch', '')}",
                           f"  Experimental:\t{d.get('Experimental', 'false')}"]
            else:
                slines.append(f"  Version:\t{comp.get('Version', '')}")
                for k in sorted(d):
                    slines.append(f"  {k}:\t{d[k]}")
        text += table.tabwrite("\n".join(slines) + "\n", minwidth=20, padding=1)
    sys.stdout.write(text)
    if error:
        raise CLIError(str(error))
    return 0


# ---- info ---------------------------------------------------------------------------------------

def _yesno(v: Any) -> str:
    return "true" if v else "false"


def info(ctx: Ctx, opts: Options, args: list[str]) -> int:
    from dockyard import __version__

    client_info = {"Debug": ctx.debug, "Version": __version__, "Context": "default", "Plugins": [], "Warnings": None}
    server: dict[str, Any] | None = None
    error = None
    try:
        server = ctx.client.get("/info")
    except (APIError, DaemonUnreachable) as e:
        error = e
    if opts["format"]:
        data = dict(server or {})
        data["ClientInfo"] = client_info
        _render(opts["format"], data)
        if error:
            raise CLIError(str(error))
        return 0
    out = ["Client:", f" Version:    {__version__}", " Context:    default", f" Debug Mode: {_yesno(ctx.debug)}", ""]
    if server is None:
        sys.stdout.write("\n".join(out) + "\n")
        raise CLIError(f"Server:\nERROR: {error}\nerrors pretty printing info")
    s = server
    out.append("Server:")
    out += [f" Containers: {s.get('Containers', 0)}",
            f"  Running: {s.get('ContainersRunning', 0)}",
            f"  Paused: {s.get('ContainersPaused', 0)}",
            f"  Stopped: {s.get('ContainersStopped', 0)}",
            f" Images: {s.get('Images', 0)}",
            f" Server Version: {s.get('ServerVersion', '')}",
            f" Storage Driver: {s.get('Driver', '')}"]
    for pair in s.get("DriverStatus") or []:
        if len(pair) == 2:
            out.append(f"  {pair[0]}: {pair[1]}")
    out.append(f" Logging Driver: {s.get('LoggingDriver', '')}")
    out.append(f" Cgroup Driver: {s.get('CgroupDriver', '')}")
    out.append(f" Cgroup Version: {s.get('CgroupVersion', '')}")
    plugins = s.get("Plugins") or {}
    if plugins:
        out.append(" Plugins:")
        for key in ("Volume", "Network", "Authorization", "Log"):
            if plugins.get(key):
                out.append(f"  {key}: {' '.join(plugins[key])}")
    swarm = (s.get("Swarm") or {}).get("LocalNodeState") or "inactive"
    out.append(f" Swarm: {swarm}")
    runtimes = s.get("Runtimes") or {}
    if runtimes:
        out.append(f" Runtimes: {' '.join(runtimes)}")
    out.append(f" Default Runtime: {s.get('DefaultRuntime', '')}")
    out.append(f" Init Binary: {s.get('InitBinary', '')}")
    for key, label in (("ContainerdCommit", "containerd version"), ("RuncCommit", "runc version"),
                       ("InitCommit", "init version")):
        commit = (s.get(key) or {}).get("ID")
        if commit is not None:
            out.append(f" {label}: {commit}")
    secopts = s.get("SecurityOptions") or []
    if secopts:
        out.append(" Security Options:")
        for opt in secopts:
            fields = dict(kv.partition("=")[::2] for kv in opt.split(","))
            out.append(f"  {fields.get('name', opt)}")
            for k, v in fields.items():
                if k != "name":
                    out.append(f"   {k[:1].upper() + k[1:]}: {v}")
    out += [f" Kernel Version: {s.get('KernelVersion', '')}",
            f" Operating System: {s.get('OperatingSystem', '')}",
            f" OSType: {s.get('OSType', '')}",
            f" Architecture: {s.get('Architecture', '')}",
            f" CPUs: {s.get('NCPU', 0)}",
            f" Total Memory: {bytes_size(s.get('MemTotal') or 0)}",
            f" Name: {s.get('Name', '')}",
            f" ID: {s.get('ID', '')}",
            f" Docker Root Dir: {s.get('DockerRootDir', '')}",
            f" Debug Mode: {_yesno(s.get('Debug'))}"]
    if s.get("Debug"):
        out += [f"  File Descriptors: {s.get('NFd', 0)}", f"  Goroutines: {s.get('NGoroutines', 0)}",
                f"  System Time: {s.get('SystemTime', '')}", f"  EventsListeners: {s.get('NEventsListener', 0)}"]
    if s.get("HttpProxy"):
        out.append(f" HTTP Proxy: {s['HttpProxy']}")
    if s.get("HttpsProxy"):
        out.append(f" HTTPS Proxy: {s['HttpsProxy']}")
    if s.get("NoProxy"):
        out.append(f" No Proxy: {s['NoProxy']}")
    labels = s.get("Labels") or []
    if labels:
        out.append(" Labels:")
        out += [f"  {lab}" for lab in labels]
    out.append(f" Experimental: {_yesno(s.get('ExperimentalBuild'))}")
    reg = s.get("RegistryConfig") or {}
    insecure = [name for name, idx in (reg.get("IndexConfigs") or {}).items() if not idx.get("Secure", True)]
    insecure += [c for c in reg.get("InsecureRegistryCIDRs") or [] if c not in insecure]  # names first, as docker
    if insecure:
        out.append(" Insecure Registries:")
        out += [f"  {r}" for r in insecure]
    mirrors = reg.get("Mirrors") or []
    if mirrors:
        out.append(" Registry Mirrors:")
        out += [f"  {m}" for m in mirrors]
    out.append(f" Live Restore Enabled: {_yesno(s.get('LiveRestoreEnabled'))}")
    sys.stdout.write("\n".join(out) + "\n\n")
    warnings = s.get("Warnings") or []
    if warnings:
        sys.stderr.write("\n" + "\n".join(warnings) + "\n")
    return 0


# ---- events -------------------------------------------------------------------------------------

def format_event_time(ev: dict[str, Any]) -> str:
    nano = ev.get("timeNano") or 0
    if nano:
        sec, ns = divmod(int(nano), 1_000_000_000)
    elif ev.get("time"):
        sec, ns = int(ev["time"]), 0
    else:
        return ""
    t = time.localtime(sec)
    off = t.tm_gmtoff or 0
    zone = "Z" if off == 0 else f"{'+' if off > 0 else '-'}{abs(off) // 3600:02d}:{abs(off) % 3600 // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{ns:09d}" + zone


def pretty_event(ev: dict[str, Any]) -> str:
    stamp = format_event_time(ev)
    actor = ev.get("Actor") or {}
    line = (stamp + " " if stamp else "") + f"{ev.get('Type', '')} {ev.get('Action', '')} {actor.get('ID', '')}"
    attrs = actor.get("Attributes") or {}
    if attrs:
        line += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return line + "\n"


def events(ctx: Ctx, opts: Options, args: list[str]) -> int:
    from dockyard.cli import template
    from dockyard.cli.jsonfast import loads
    from dockyard.cli.units import timestamp_arg

    query: dict[str, Any] = {}
    try:
        if opts["since"]:
            query["since"] = timestamp_arg(opts["since"])
        if opts["until"]:
            query["until"] = timestamp_arg(opts["until"])
    except ValueError as e:
        raise CLIError(str(e)) from None
    fj = filters_json(opts["filter"])
    if fj:
        query["filters"] = fj
    fmt = opts["format"]
    tmpl = None
    if fmt:
        try:
            tmpl = template.parse("{{json .}}" if fmt == "json" else fmt)
        except template.TemplateError as e:
            raise CLIError(f"template parsing error: {e}") from None
    resp = ctx.client.stream("GET", "/events", query)
    try:
        for line in resp.iter_lines():
            try:
                ev = loads(line)
            except ValueError:
                continue
            if tmpl is not None:
                try:
                    sys.stdout.write(tmpl.execute(ev) + "\n")
                except template.TemplateError as e:
                    raise CLIError(f"template parsing error: {e}") from None
            else:
                sys.stdout.write(pretty_event(ev))
            sys.stdout.flush()
    except KeyboardInterrupt:
        return 0
    finally:
        resp.conn.close()
    return 0


# ---- system df ----------------------------------------------------------------------------------

DF_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}


class DfRow:
    def __init__(self, kind: str, total: int, active: int, size: int, reclaimable: int, pct: bool) -> None:
        self.kind, self.total, self.active, self.size, self.rec, self.pct = kind, total, active, size, reclaimable, pct

    def Type(self) -> str:  # noqa: N802
        return self.kind

    def TotalCount(self) -> str:  # noqa: N802
        return str(self.total)

    def Active(self) -> str:  # noqa: N802
        return str(self.active)

    def Size(self) -> str:  # noqa: N802
        return human_size(self.size)

    def Reclaimable(self) -> str:  # noqa: N802
        if self.pct and self.size > 0:
            return f"{human_size(self.rec)} ({self.rec * 100 // self.size}%)"
        return human_size(self.rec)

    def to_json(self) -> dict[str, str]:
        return {k: getattr(self, k)() for k in ("Active", "Reclaimable", "Size", "TotalCount", "Type")}


def df_rows(d: dict[str, Any]) -> list[DfRow]:
    images = d.get("Images") or []
    layers = d.get("LayersSize") or 0
    used = 0
    for i in images:
        if i.get("Containers", 0) and i.get("Size", -1) != -1 and i.get("SharedSize", -1) != -1:
            used += i["Size"] - i["SharedSize"]
    active_images = sum(1 for i in images if i.get("Containers", 0) > 0)
    containers = d.get("Containers") or []
    c_active = [c for c in containers if c.get("State") in ("running", "paused")]
    c_size = sum(c.get("SizeRw") or 0 for c in containers)
    c_rec = sum(c.get("SizeRw") or 0 for c in containers if c.get("State") not in ("running", "paused"))
    volumes = d.get("Volumes") or []
    v_active = sum(1 for v in volumes if ((v.get("UsageData") or {}).get("RefCount") or 0) > 0)
    v_size = sum(max(0, (v.get("UsageData") or {}).get("Size", 0) or 0) for v in volumes)
    v_rec = sum(max(0, (v.get("UsageData") or {}).get("Size", 0) or 0) for v in volumes
                if ((v.get("UsageData") or {}).get("RefCount") or 0) == 0)
    cache = d.get("BuildCache") or []
    b_active = sum(1 for b in cache if b.get("InUse"))
    b_size = sum(b.get("Size") or 0 for b in cache if not b.get("Shared"))
    b_rec = sum(b.get("Size") or 0 for b in cache if not b.get("InUse") and not b.get("Shared"))
    return [DfRow("Images", len(images), active_images, layers, layers - used, True),
            DfRow("Containers", len(containers), len(c_active), c_size, c_rec, True),
            DfRow("Local Volumes", len(volumes), v_active, v_size, v_rec, True),
            DfRow("Build Cache", len(cache), b_active, b_size, b_rec, False)]


def df(ctx: Ctx, opts: Options, args: list[str]) -> int:
    d = ctx.client.get("/system/df") or {}
    fmt = opts["format"]
    if opts["verbose"] and not fmt:
        _df_verbose(d)
        return 0
    if not fmt or fmt == "table":
        fmt = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
    table.write_list(fmt, df_rows(d), DF_HEADERS)
    return 0


def _df_verbose(d: dict[str, Any]) -> None:
    from dockyard.cli.commands.images import image_rows
    from dockyard.cli.commands.ps import ContainerRow
    from dockyard.cli.units import truncate_id

    out = sys.stdout
    out.write("Images space usage:\n\n")
    rows = image_rows(d.get("Images") or [], False, True)
    out.write(table.render_list(
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
        rows, {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "CreatedSince": "CREATED",
               "Size": "SIZE", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "Containers": "CONTAINERS"}))
    out.write("\nContainers space usage:\n\n")
    now = time.time()
    crows = [ContainerRow({**c, "SizeRootFs": 0}, True, now) for c in d.get("Containers") or []]
    out.write(table.render_list(
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
        crows, {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "LocalVolumes": "LOCAL VOLUMES",
                "Size": "SIZE", "RunningFor": "CREATED", "Status": "STATUS", "Names": "NAMES"}))
    out.write("\nLocal Volumes space usage:\n\n")
    vrows = [{"Name": v.get("Name", ""), "Links": str((v.get("UsageData") or {}).get("RefCount", 0)),
              "Size": human_size(max(0, (v.get("UsageData") or {}).get("Size", 0) or 0))}
             for v in d.get("Volumes") or []]
    out.write(table.render_list("table {{.Name}}\t{{.Links}}\t{{.Size}}", vrows,
                                {"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}))
    cache = d.get("BuildCache") or []
    total = sum(b.get("Size") or 0 for b in cache)
    out.write(f"\nBuild cache usage: {human_size(total)}\n\n")
    brows = [{"ID": truncate_id(b.get("ID", "")), "CacheType": b.get("Type", ""), "Size": human_size(b.get("Size") or 0),
              "CreatedSince": human_duration(now - 0) + " ago", "LastUsedSince": "", "UsageCount": str(b.get("UsageCount", 0)),
              "Shared": _yesno(b.get("Shared"))} for b in cache]
    out.write(table.render_list(
        "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}",
        brows, {"ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE", "CreatedSince": "CREATED",
                "LastUsedSince": "LAST USED", "UsageCount": "USAGE", "Shared": "SHARED"}))


# ---- system prune -------------------------------------------------------------------------------

def prune(ctx: Ctx, opts: Options, args: list[str]) -> int:
    from dockyard.cli.commands.images import image_prune_report

    lines = ["WARNING! This will remove:", "  - all stopped containers",
             "  - all networks not used by at least one container"]
    if opts["volumes"]:
        lines.append("  - all anonymous volumes not used by at least one container")
    if opts["all"]:
        lines += ["  - all images without at least one container associated to them", "  - all build cache"]
    else:
        lines += ["  - all dangling images", "  - unused build cache"]
    if not confirm("\n".join(lines) + "\n", opts["force"]):
        return 0
    client = ctx.client
    filters = list(opts["filter"])
    total = 0
    report = client.post("/containers/prune", {"filters": filters_json(filters)}) or {}
    deleted = report.get("ContainersDeleted") or []
    if deleted:
        sys.stdout.write("Deleted Containers:\n" + "".join(d + "\n" for d in deleted) + "\n")
    total += report.get("SpaceReclaimed") or 0
    try:
        report = client.post("/networks/prune", {"filters": filters_json(filters)}) or {}
        nets = report.get("NetworksDeleted") or []
        if nets:
            sys.stdout.write("Deleted Networks:\n" + "".join(n + "\n" for n in nets) + "\n")
    except APIError as e:
        if e.status != 404:
            raise
    if opts["volumes"]:
        report = client.post("/volumes/prune", {"filters": filters_json(filters)}) or {}
        vols = report.get("VolumesDeleted") or []
        if vols:
            sys.stdout.write("Deleted Volumes:\n" + "".join(v + "\n" for v in vols) + "\n")
        total += report.get("SpaceReclaimed") or 0
    report = client.post("/images/prune", {"filters": filters_json([*filters, "dangling=" + ("false" if opts["all"] else "true")])}) or {}
    img_lines, space = image_prune_report(report)
    if img_lines:
        sys.stdout.write("\n".join(img_lines) + "\n\n")
    total += space
    try:
        report = client.post("/build/prune", {"all": "1" if opts["all"] else None}) or {}
        total += report.get("SpaceReclaimed") or 0
    except APIError:
        pass
    sys.stdout.write(f"Total reclaimed space: {human_size(total)}\n")
    return 0


FORMAT = Flag("format", "f", help=INSPECT_FORMAT_HELP)

VERSION = Command("[OPTIONS]", version, max_args=0, flags=[FORMAT])
INFO = Command("[OPTIONS]", info, max_args=0, flags=[FORMAT])
EVENTS = Command("[OPTIONS]", events, max_args=0, flags=[
    filter_flag(),
    format_flag(INSPECT_FORMAT_HELP),
    Flag("since", help="Show all events created since timestamp"),
    Flag("until", help="Stream events until this timestamp"),
])
DF = Command("[OPTIONS]", df, max_args=0, flags=[
    format_flag(FORMAT_HELP),
    Flag("verbose", "v", kind="bool", help="Show detailed information on space usage"),
])
PRUNE = Command("[OPTIONS]", prune, max_args=0, flags=[
    Flag("all", "a", kind="bool", help="Remove all unused images not just dangling ones"),
    Flag("filter", kind="filter", help='Provide filter values (e.g. "label=<key>=<value>")'),
    Flag("force", "f", kind="bool", help="Do not prompt for confirmation"),
    Flag("volumes", kind="bool", help="Prune anonymous volumes"),
])
