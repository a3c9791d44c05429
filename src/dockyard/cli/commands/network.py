"""`dockyard network`: create, ls, inspect, rm, prune, connect, disconnect.

Owns: the network commands' flags (subnets, gateways, IP ranges, aux addresses, driver and
IPAM options, internal, IPv6, labels), their API bodies, the `NETWORK ID  NAME  DRIVER  SCOPE`
table, and the prune report.
"""

from __future__ import annotations

import sys

from dockyard.cli import table
from dockyard.cli.command import CLIError, Command, Ctx
from dockyard.cli.commands.inspect import NETWORK_INSPECT
from dockyard.cli.commands.volume import natural_key
from dockyard.cli.common import FORMAT_HELP, confirm, filters_json, format_flag, parse_key_values
from dockyard.cli.flags import Flag, Options
from dockyard.cli.http import quote
from dockyard.cli.units import truncate_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6",
           "IPv4": "IPV4", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"}


class NetworkRow:
    def __init__(self, n: dict[str, Any], trunc: bool) -> None:
        self.n, self.trunc = n, trunc

    def ID(self) -> str:  # noqa: N802
        ident = self.n.get("Id", "")
        return truncate_id(ident) if self.trunc else ident

    def Name(self) -> str:  # noqa: N802
        return self.n.get("Name", "")

    def Driver(self) -> str:  # noqa: N802
        return self.n.get("Driver", "")

    def Scope(self) -> str:  # noqa: N802
        return self.n.get("Scope", "")

    def IPv6(self) -> str:  # noqa: N802
        return "true" if self.n.get("EnableIPv6") else "false"

    def IPv4(self) -> str:  # noqa: N802
        return "false" if self.n.get("EnableIPv4") is False else "true"

    def Internal(self) -> str:  # noqa: N802
        return "true" if self.n.get("Internal") else "false"

    def Labels(self) -> str:  # noqa: N802
        labels = self.n.get("Labels") or {}
        return ",".join(sorted(f"{k}={v}" for k, v in labels.items()))

    def Label(self, name: str) -> str:  # noqa: N802
        return (self.n.get("Labels") or {}).get(name, "")

    def CreatedAt(self) -> str:  # noqa: N802
        from dockyard.cli.units import format_local, parse_rfc3339

        epoch = parse_rfc3339(self.n.get("Created", ""))
        return format_local(epoch) if epoch is not None else ""

    def to_json(self) -> dict[str, str]:
        return {k: getattr(self, k)() for k in ("CreatedAt", "Driver", "ID", "IPv4", "IPv6", "Internal",
                                                 "Labels", "Name", "Scope")}


def _split_list(values: list[str]) -> list[str]:
    out = []
    for v in values:
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return out


def create(ctx: Ctx, opts: Options, args: list[str]) -> int:
    subnets = _split_list(opts["subnet"])
    gateways = _split_list(opts["gateway"])
    ranges = _split_list(opts["ip-range"])
    aux = opts["aux-address"]
    if len(gateways) > len(subnets):
        raise CLIError("every ip-range or gateway must have a corresponding subnet")
    if len(ranges) > len(subnets):
        raise CLIError("every ip-range or gateway must have a corresponding subnet")
    configs = []
    for i, subnet in enumerate(subnets):
        cfg: dict[str, Any] = {"Subnet": subnet}
        if i < len(ranges):
            cfg["IPRange"] = ranges[i]
        if i < len(gateways):
            cfg["Gateway"] = gateways[i]
        if aux and i == 0:
            cfg["AuxiliaryAddresses"] = dict(aux)
        configs.append(cfg)
    body: dict[str, Any] = {
        "Name": args[0], "Driver": opts["driver"], "Options": opts["opt"],
        "IPAM": {"Driver": opts["ipam-driver"], "Config": configs, "Options": opts["ipam-opt"]},
        "Internal": bool(opts["internal"]), "Attachable": bool(opts["attachable"]),
        "Ingress": bool(opts["ingress"]), "Labels": parse_key_values(opts["label"]),
        "CheckDuplicate": True,
    }
    if "ipv6" in opts.changed:
        body["EnableIPv6"] = bool(opts["ipv6"])
    if "ipv4" in opts.changed:
        body["EnableIPv4"] = bool(opts["ipv4"])
    if opts["scope"]:
        body["Scope"] = opts["scope"]
    resp = ctx.client.post("/networks/create", None, body) or {}
    if resp.get("Warning"):
        sys.stderr.write(f"WARNING: {resp['Warning']}\n")
    sys.stdout.write(resp.get("Id", "") + "\n")
    return 0


def ls(ctx: Ctx, opts: Options, args: list[str]) -> int:
    query = {"filters": filters_json(opts["filter"])}
    nets = sorted(ctx.client.get("/networks", query) or [], key=lambda n: natural_key(n.get("Name", "")))
    fmt = opts["format"] or ctx.config().get("networksFormat", "")
    trunc = not opts["no-trunc"]
    rows = [NetworkRow(n, trunc) for n in nets]
    if opts["quiet"] and (not fmt or fmt.startswith("table")):
        sys.stdout.write("".join(r.ID() + "\n" for r in rows))
        return 0
    if not fmt or fmt == "table":
        fmt = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
    table.write_list(fmt, rows, HEADERS)
    return 0


def rm(ctx: Ctx, opts: Options, args: list[str]) -> int:
    from dockyard.cli.client import APIError

    errors = []
    for name in args:
        try:
            ctx.client.delete(f"/networks/{quote(name)}")
        except APIError as e:
            if opts["force"] and e.status == 404:
                continue
            errors.append(str(e))
            continue
        sys.stdout.write(name + "\n")
    if errors:
        raise CLIError("\n".join(errors) + "\nexit status 1")  # the Docker CLI's StatusError, word for word
    return 0


def prune(ctx: Ctx, opts: Options, args: list[str]) -> int:
    if not confirm("WARNING! This will remove all custom networks not used by at least one container.", opts["force"]):
        return 0
    report = ctx.client.post("/networks/prune", {"filters": filters_json(opts["filter"])}) or {}
    deleted = report.get("NetworksDeleted") or []
    if deleted:
        sys.stdout.write("Deleted Networks:\n" + "".join(n + "\n" for n in deleted))
    return 0


def connect(ctx: Ctx, opts: Options, args: list[str]) -> int:
    network, container = args
    endpoint: dict[str, Any] = {}
    ipam: dict[str, Any] = {}
    if opts["ip"]:
        ipam["IPv4Address"] = opts["ip"]
    if opts["ip6"]:
        ipam["IPv6Address"] = opts["ip6"]
    if opts["link-local-ip"]:
        ipam["LinkLocalIPs"] = _split_list(opts["link-local-ip"])
    if ipam:
        endpoint["IPAMConfig"] = ipam
    if opts["alias"]:
        endpoint["Aliases"] = _split_list(opts["alias"])
    if opts["link"]:
        endpoint["Links"] = list(opts["link"])
    if opts["driver-opt"]:
        endpoint["DriverOpts"] = parse_key_values(_split_list(opts["driver-opt"]))
    ctx.client.post(f"/networks/{quote(network)}/connect", None, {"Container": container, "EndpointConfig": endpoint})
    return 0


def disconnect(ctx: Ctx, opts: Options, args: list[str]) -> int:
    network, container = args
    ctx.client.post(f"/networks/{quote(network)}/disconnect", None, {"Container": container, "Force": bool(opts["force"])})
    return 0


CREATE = Command("[OPTIONS] NETWORK", create, min_args=1, max_args=1, flags=[
    Flag("attachable", kind="bool", help="Enable manual container attachment"),
    Flag("aux-address", kind="map", help="Auxiliary IPv4 or IPv6 addresses used by Network driver", show_default="map[]"),
    Flag("config-from", help="The network from which to copy the configuration", hidden=True),
    Flag("config-only", kind="bool", help="Create a configuration only network", hidden=True),
    Flag("driver", "d", default="bridge", help="Driver to manage the Network"),
    Flag("gateway", kind="list", metavar="strings", help="IPv4 or IPv6 Gateway for the master subnet"),
    Flag("ingress", kind="bool", help="Create swarm routing-mesh network", hidden=True),
    Flag("internal", kind="bool", help="Restrict external access to the network"),
    Flag("ip-range", kind="list", metavar="strings", help="Allocate container ip from a sub-range"),
    Flag("ipam-driver", default="default", help="IP Address Management Driver"),
    Flag("ipam-opt", kind="map", help="Set IPAM driver specific options", show_default="map[]"),
    Flag("ipv4", kind="bool", default=True, help="Enable or disable IPv4 address assignment"),
    Flag("ipv6", kind="bool", help="Enable or disable IPv6 address assignment"),
    Flag("label", kind="list", help="Set metadata on a network"),
    Flag("opt", "o", kind="map", help="Set driver specific options", show_default="map[]"),
    Flag("scope", help="Control the network's scope"),
    Flag("subnet", kind="list", metavar="strings", help="Subnet in CIDR format that represents a network segment"),
])
LS = Command("[OPTIONS]", ls, max_args=0, flags=[
    Flag("filter", "f", kind="filter", help='Provide filter values (e.g. "driver=bridge")'),
    format_flag(FORMAT_HELP),
    Flag("no-trunc", kind="bool", help="Do not truncate the output"),
    Flag("quiet", "q", kind="bool", help="Only display network IDs"),
])
INSPECT = NETWORK_INSPECT
RM = Command("NETWORK [NETWORK...]", rm, min_args=1, flags=[
    Flag("force", "f", kind="bool", help="Do not error if the network does not exist"),
])
PRUNE = Command("[OPTIONS]", prune, max_args=0, flags=[
    Flag("filter", kind="filter", help='Provide filter values (e.g. "until=<timestamp>")'),
    Flag("force", "f", kind="bool", help="Do not prompt for confirmation"),
])
CONNECT = Command("[OPTIONS] NETWORK CONTAINER", connect, min_args=2, max_args=2, flags=[
    Flag("alias", kind="list", metavar="strings", help="Add network-scoped alias for the container"),
    Flag("driver-opt", kind="list", metavar="strings", help="driver options for the network"),
    Flag("ip", help='IPv4 address (e.g., "172.30.100.104")'),
    Flag("ip6", help='IPv6 address (e.g., "2001:db8::33")'),
    Flag("link", kind="list", help="Add link to another container"),
    Flag("link-local-ip", kind="list", metavar="strings", help="Add a link-local address for the container"),
])
DISCONNECT = Command("[OPTIONS] NETWORK CONTAINER", disconnect, min_args=2, max_args=2, flags=[
    Flag("force", "f", kind="bool", help="Force the container to disconnect from a network"),
])
