"""Docker-shaped JSON for networks (GET /networks, /networks/{id}) and a container's
NetworkSettings (GET /containers/{id}/json). Pure functions over the records in state.py.
"""

from __future__ import annotations

from typing import Any

from dockyard.network import ports as portlib
from dockyard.network.state import Attachment, ContainerRecord, EndpointState, NetworkRecord


def network_json(net: NetworkRecord, containers: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "Name": net.name,
        "Id": net.id,
        "Created": net.created,
        "Scope": "local",
        "Driver": net.driver,
        "EnableIPv6": net.enable_ipv6,
        "IPAM": {
            "Driver": net.ipam_driver,
            "Options": net.ipam_options,
            "Config": [dict(c) for c in net.ipam_config],
        },
        "Internal": net.internal,
        "Attachable": net.attachable,
        "Ingress": net.ingress,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": containers if containers is not None else {},
        "Options": dict(net.options),
        "Labels": dict(net.labels),
    }


def network_container_entry(rec: ContainerRecord, ep: EndpointState | None, endpoint_id: str = "") -> dict[str, str]:
    return {
        "Name": rec.name,
        "EndpointID": ep.endpoint_id if ep else endpoint_id,
        "MacAddress": ep.mac if ep else "",
        "IPv4Address": f"{ep.ip}/{ep.prefixlen}" if ep else "",
        "IPv6Address": "",
    }


def endpoint_settings(att: Attachment, ep: EndpointState | None, short_id: str, user_defined: bool) -> dict[str, Any]:
    aliases: list[str] | None = list(att.aliases)
    if user_defined and ep is not None and short_id not in (aliases or []):
        aliases = (aliases or []) + [short_id]
    return {
        "IPAMConfig": att.ipam_config or None,
        "Links": (list(att.links) or None) if user_defined else None,
        "Aliases": aliases or None,
        "NetworkID": att.network_id,
        "EndpointID": ep.endpoint_id if ep else "",
        "Gateway": ep.gateway if ep else "",
        "IPAddress": ep.ip if ep else "",
        "IPPrefixLen": ep.prefixlen if ep else 0,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "MacAddress": ep.mac if ep else "",
        "DriverOpts": att.driver_opts,
    }


def network_settings(rec: ContainerRecord, networks: dict[str, NetworkRecord]) -> dict[str, Any]:
    """NetworkSettings exactly as Docker (API 1.43) shows it, running or stopped."""
    sb = rec.sandbox
    short_id = rec.id[:12]
    nets: dict[str, Any] = {}
    for att in rec.attachments:
        net = networks.get(att.network_id)
        ep = sb.endpoints.get(att.network_id) if sb else None
        nets[net.name if net else att.name] = endpoint_settings(att, ep, short_id, bool(net and net.user_defined))
    mappings = sb.ports if sb else []
    view: dict[str, Any] = {
        "Bridge": "",
        "SandboxID": sb.id if sb else "",
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": portlib.ports_view(mappings, rec.exposed_ports, rec.port_bindings) if sb else {},
        "SandboxKey": sb.key if sb else "",
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
        "EndpointID": "",
        "Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "MacAddress": "",
        "Networks": nets,
    }
    # The top-level fields mirror the default bridge's endpoint (Docker's legacy fields).
    for att in rec.attachments:
        net = networks.get(att.network_id)
        if net is not None and net.default_bridge and sb is not None:
            ep = sb.endpoints.get(att.network_id)
            if ep is not None:
                view.update(
                    EndpointID=ep.endpoint_id,
                    Gateway=ep.gateway,
                    IPAddress=ep.ip,
                    IPPrefixLen=ep.prefixlen,
                    MacAddress=ep.mac,
                )
    return view
