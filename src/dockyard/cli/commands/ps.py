"""`dockyard ps` / `container ls`: list containers as Docker prints them.

Owns: the container row context (the fields `--format` templates can use: ID, Image, Command,
CreatedAt, RunningFor, Ports, State, Status, Size, Names, Labels, Label, Mounts, LocalVolumes,
Networks), Docker's port summary ("0.0.0.0:8080->80/tcp, 9000-9001/tcp") and the table layout.
"""

from __future__ import annotations

import time

from dockyard.cli import table
from dockyard.cli.command import Command, Ctx
from dockyard.cli.common import filter_flag, filters_json, format_flag, go_quote
from dockyard.cli.flags import Flag, Options
from dockyard.cli.units import ellipsis, format_local, human_duration, human_size, truncate_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_FORMAT = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

HEADERS = {
    "ID": "CONTAINER ID", "Names": "NAMES", "Image": "IMAGE", "Command": "COMMAND",
    "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE",
    "Status": "STATUS", "Size": "SIZE", "Labels": "LABELS", "Mounts": "MOUNTS",
    "LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS", "Platform": "PLATFORM",
}


def _join_host_port(ip: str, port: str) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def displayable_ports(ports: list[dict[str, Any]] | None) -> str:
    """Docker's DisplayablePorts: ranges grouped, published mappings last."""
    if not ports:
        return ""

    def key(p: dict[str, Any]) -> tuple[Any, ...]:
        return (p.get("PrivatePort", 0), p.get("IP", "") or "", p.get("PublicPort", 0) or 0, p.get("Type", ""))

    groups: dict[str, list[int]] = {}
    order: list[str] = []
    result: list[str] = []
    mappings: list[str] = []
    for p in sorted(ports, key=key):
        current = int(p.get("PrivatePort") or 0)
        ptype = p.get("Type") or "tcp"
        ip = p.get("IP") or ""
        public = int(p.get("PublicPort") or 0)
        port_key = ptype
        if ip:
            if public != current:
                mappings.append(f"{_join_host_port(ip, str(public))}->{current}/{ptype}")
                continue
            port_key = f"{ip}/{ptype}"
        group = groups.get(port_key)
        if group is None:
            groups[port_key] = [current, current]
            order.append(port_key)
            continue
        if current == group[1] + 1:
            group[1] = current
            continue
        result.append(_form_group(port_key, group[0], group[1]))
        groups[port_key] = [current, current]
    for port_key in order:
        g = groups[port_key]
        result.append(_form_group(port_key, g[0], g[1]))
    result.extend(mappings)
    return ", ".join(result)


def _form_group(key: str, first: int, last: int) -> str:
    ip, _, gtype = key.rpartition("/")
    group = str(first) if first == last else f"{first}-{last}"
    if ip:
        group = f"{_join_host_port(ip, group)}->{group}"
    return f"{group}/{gtype}"


def familiar_image(image: str, image_id: str, trunc: bool) -> str:
    if not image:
        return "<no image>"
    if not trunc:
        return image
    if truncate_id(image_id) == truncate_id(image):
        return truncate_id(image)
    ref = image
    if "@" in ref:
        name, _, _digest = ref.partition("@")
        ref = name
    from dockyard.cli.common import familiar_name

    return familiar_name(ref)


class ContainerRow:
    """One container for templates; every public method is a field (`{{.Status}}`)."""

    def __init__(self, c: dict[str, Any], trunc: bool, now: float) -> None:
        self.c = c
        self.trunc = trunc
        self.now = now

    def ID(self) -> str:  # noqa: N802 - Docker's field names
        ident = self.c.get("Id", "")
        return truncate_id(ident) if self.trunc else ident

    def Names(self) -> str:  # noqa: N802
        names = [n[1:] if n.startswith("/") else n for n in self.c.get("Names") or []]
        if self.trunc:
            for n in names:
                if "/" not in n:
                    return n
            return ""
        return ",".join(names)

    def Image(self) -> str:  # noqa: N802
        return familiar_image(self.c.get("Image", ""), self.c.get("ImageID", ""), self.trunc)

    def Command(self) -> str:  # noqa: N802
        cmd = self.c.get("Command", "")
        if self.trunc:
            cmd = ellipsis(cmd, 20)
        return go_quote(cmd)

    def CreatedAt(self) -> str:  # noqa: N802
        return format_local(self.c.get("Created", 0))

    def RunningFor(self) -> str:  # noqa: N802
        return human_duration(self.now - self.c.get("Created", 0)) + " ago"

    def Ports(self) -> str:  # noqa: N802
        return displayable_ports(self.c.get("Ports"))

    def State(self) -> str:  # noqa: N802
        return self.c.get("State", "")

    def Status(self) -> str:  # noqa: N802
        return self.c.get("Status", "")

    def Size(self) -> str:  # noqa: N802
        srw = human_size(self.c.get("SizeRw") or 0, 3)
        rootfs = self.c.get("SizeRootFs") or 0
        return f"{srw} (virtual {human_size(rootfs, 3)})" if rootfs > 0 else srw

    def Labels(self) -> str:  # noqa: N802
        labels = self.c.get("Labels") or {}
        return ",".join(sorted(f"{k}={v}" for k, v in labels.items()))

    def Label(self, name: str) -> str:  # noqa: N802
        return (self.c.get("Labels") or {}).get(name, "")

    def Mounts(self) -> str:  # noqa: N802
        names = []
        for m in self.c.get("Mounts") or []:
            name = m.get("Name") or m.get("Source", "")
            names.append(ellipsis(name, 15) if self.trunc else name)
        return ",".join(names)

    def LocalVolumes(self) -> str:  # noqa: N802
        return str(sum(1 for m in self.c.get("Mounts") or [] if m.get("Driver") == "local"))

    def Networks(self) -> str:  # noqa: N802
        nets = ((self.c.get("NetworkSettings") or {}).get("Networks")) or {}
        return ",".join(nets)

    def Platform(self) -> str | None:  # noqa: N802
        desc = self.c.get("ImageManifestDescriptor") or {}
        p = desc.get("platform") or desc.get("Platform")
        if not p:
            return None
        return "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)

    def to_json(self) -> dict[str, str | None]:
        return {name: getattr(self, name)() for name in sorted(HEADERS)}


def ps(ctx: Ctx, opts: Options, args: list[str]) -> int:
    fmt = opts["format"] or ctx.config().get("psFormat", "")
    query: dict[str, Any] = {}
    limit = opts["last"]
    if opts["latest"]:
        limit = 1
    if opts["all"] or limit > 0:
        query["all"] = "1"
    if limit > 0:
        query["limit"] = str(limit)
    if opts["size"] or (fmt and ".Size" in fmt):
        query["size"] = "1"
    filters = filters_json(opts["filter"])
    if filters:
        query["filters"] = filters
    containers = ctx.client.get("/containers/json", query) or []
    trunc = not opts["no-trunc"]
    if opts["quiet"] and (not fmt or fmt.startswith("table")):
        ctx.out.write("".join((truncate_id(c["Id"]) if trunc else c["Id"]) + "\n" for c in containers))
        return 0
    if not fmt or fmt == "table":
        fmt = DEFAULT_FORMAT + ("\t{{.Size}}" if opts["size"] else "")
    now = time.time()
    table.write_list(fmt, [ContainerRow(c, trunc, now) for c in containers], HEADERS)
    return 0


PS = Command("[OPTIONS]", ps, max_args=0, flags=[
    Flag("all", "a", kind="bool", help="Show all containers (default shows just running)"),
    filter_flag(),
    format_flag(),
    Flag("last", "n", kind="int", default=-1, help="Show n last created containers (includes all states)"),
    Flag("latest", "l", kind="bool", help="Show the latest created container (includes all states)"),
    Flag("no-trunc", kind="bool", help="Don't truncate output"),
    Flag("quiet", "q", kind="bool", help="Only display container IDs"),
    Flag("size", "s", kind="bool", help="Display total file sizes"),
])
