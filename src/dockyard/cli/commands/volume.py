"""`dockyard volume`: create, ls, inspect, rm, prune.

Owns: the volume commands' flags and API calls, the `DRIVER  VOLUME NAME` table (natural
sort by name, as Docker), and the prune report.
"""

from __future__ import annotations

import sys

from dockyard.cli import table
from dockyard.cli.command import Command, Ctx
from dockyard.cli.commands.inspect import VOLUME_INSPECT
from dockyard.cli.common import FORMAT_HELP, confirm, filters_json, for_each, format_flag
from dockyard.cli.flags import Flag, Options
from dockyard.cli.http import quote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
           "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "Group": "GROUP",
           "Availability": "AVAILABILITY", "Status": "STATUS", "CreatedAt": "CREATED AT"}


def natural_key(s: str) -> list[Any]:
    out: list[Any] = []
    num = ""
    text = ""
    for ch in s:
        if ch.isdigit():
            if text:
                out.append((1, text))
                text = ""
            num += ch
        else:
            if num:
                out.append((0, int(num)))
                num = ""
            text += ch
    if num:
        out.append((0, int(num)))
    if text:
        out.append((1, text))
    return out


class VolumeRow:
    def __init__(self, v: dict[str, Any]) -> None:
        self.v = v

    def Name(self) -> str:  # noqa: N802
        return self.v.get("Name", "")

    def Driver(self) -> str:  # noqa: N802
        return self.v.get("Driver", "")

    def Scope(self) -> str:  # noqa: N802
        return self.v.get("Scope", "")

    def Mountpoint(self) -> str:  # noqa: N802
        return self.v.get("Mountpoint", "")

    def CreatedAt(self) -> str:  # noqa: N802
        return self.v.get("CreatedAt", "")

    def Labels(self) -> str:  # noqa: N802
        labels = self.v.get("Labels") or {}
        return ",".join(sorted(f"{k}={v}" for k, v in labels.items()))

    def Label(self, name: str) -> str:  # noqa: N802
        return (self.v.get("Labels") or {}).get(name, "")

    def Links(self) -> str:  # noqa: N802
        usage = self.v.get("UsageData")
        return "N/A" if not usage else str(usage.get("RefCount", 0))

    def Size(self) -> str:  # noqa: N802
        usage = self.v.get("UsageData")
        if not usage or usage.get("Size", -1) == -1:
            return "N/A"
        from dockyard.cli.units import human_size

        return human_size(usage["Size"])

    def Group(self) -> str:  # noqa: N802
        return "N/A"

    def Availability(self) -> str:  # noqa: N802
        return "N/A"

    def Status(self) -> str:  # noqa: N802
        return "N/A"

    def to_json(self) -> dict[str, str]:
        return {k: getattr(self, k)() for k in ("Availability", "Driver", "Group", "Labels", "Links",
                                                 "Mountpoint", "Name", "Scope", "Size", "Status")}


def create(ctx: Ctx, opts: Options, args: list[str]) -> int:
    from dockyard.cli.command import CLIError
    from dockyard.cli.common import parse_key_values

    name = opts["name"]
    if args:
        if name and name != args[0]:
            raise CLIError("conflicting options: cannot specify a volume-name through both --name and as a positional arg")
        name = args[0]
    body = {"Name": name, "Driver": opts["driver"], "DriverOpts": opts["opt"],
            "Labels": parse_key_values(opts["label"])}
    vol = ctx.client.post("/volumes/create", None, body) or {}
    sys.stdout.write(vol.get("Name", name) + "\n")
    return 0


def ls(ctx: Ctx, opts: Options, args: list[str]) -> int:
    query = {"filters": filters_json(opts["filter"])}
    resp = ctx.client.get("/volumes", query) or {}
    vols = sorted(resp.get("Volumes") or [], key=lambda v: natural_key(v.get("Name", "")))
    for w in resp.get("Warnings") or []:
        sys.stderr.write(w + "\n")
    fmt = opts["format"] or ctx.config().get("volumesFormat", "")
    if opts["quiet"] and (not fmt or fmt.startswith("table")):
        sys.stdout.write("".join(v.get("Name", "") + "\n" for v in vols))
        return 0
    if not fmt or fmt == "table":
        fmt = "table {{.Driver}}\t{{.Name}}"
    table.write_list(fmt, [VolumeRow(v) for v in vols], HEADERS)
    return 0


def rm(ctx: Ctx, opts: Options, args: list[str]) -> int:
    query = {"force": "1"} if opts["force"] else None
    return for_each(args, lambda n: ctx.client.delete(f"/volumes/{quote(n)}", query) and None)


def prune(ctx: Ctx, opts: Options, args: list[str]) -> int:
    from dockyard.cli.units import human_size

    warning = ("WARNING! This will remove all local volumes not used by at least one container."
               if opts["all"] else "WARNING! This will remove anonymous local volumes not used by at least one container.")
    if not confirm(warning, opts["force"]):
        return 0
    filters = list(opts["filter"])
    if opts["all"]:
        filters.append("all=true")
    report = ctx.client.post("/volumes/prune", {"filters": filters_json(filters)}) or {}
    deleted = report.get("VolumesDeleted") or []
    if deleted:
        sys.stdout.write("Deleted Volumes:\n" + "".join(v + "\n" for v in deleted) + "\n")
    sys.stdout.write(f"Total reclaimed space: {human_size(report.get('SpaceReclaimed') or 0)}\n")
    return 0


CREATE = Command("[OPTIONS] [VOLUME]", create, max_args=1, flags=[
    Flag("driver", "d", default="local", help="Specify volume driver name"),
    Flag("label", kind="list", help="Set metadata for a volume"),
    Flag("name", help="Specify volume name", hidden=True),
    Flag("opt", "o", kind="map", help="Set driver specific options", show_default="map[]"),
])
LS = Command("[OPTIONS]", ls, max_args=0, flags=[
    Flag("filter", "f", kind="filter", help='Provide filter values (e.g. "dangling=true")'),
    format_flag(FORMAT_HELP),
    Flag("quiet", "q", kind="bool", help="Only display volume names"),
])
INSPECT = VOLUME_INSPECT
RM = Command("[OPTIONS] VOLUME [VOLUME...]", rm, min_args=1, flags=[
    Flag("force", "f", kind="bool", help="Force the removal of one or more volumes"),
])
PRUNE = Command("[OPTIONS]", prune, max_args=0, flags=[
    Flag("all", "a", kind="bool", help="Remove all unused volumes, not just anonymous ones"),
    Flag("filter", kind="filter", help='Provide filter values (e.g. "label=<label>")'),
    Flag("force", "f", kind="bool", help="Do not prompt for confirmation"),
])
