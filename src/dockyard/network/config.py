"""What the daemon tells the network layer about a container, and what it gets back.

`ContainerNetConfig` is built by the daemon from the create request (`from_api(...)` takes the
Config, HostConfig and NetworkingConfig dicts of POST /containers/create); `Sandbox` is the answer
of `NetworkService.setup()`: the namespace path the runtime must join (None: the host's), the
hostname, the /etc/hosts and /etc/resolv.conf content, and NetworkSettings in Docker's shape.
Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ContainerNetConfig:
    id: str
    name: str  # without the leading "/"
    hostname: str = ""
    domainname: str = ""
    network_mode: str = "default"  # default | bridge | host | none | container:<id> | <network>
    port_bindings: dict[str, Any] = field(default_factory=dict)
    publish_all: bool = False
    exposed_ports: dict[str, Any] = field(default_factory=dict)
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    extra_hosts: list[str] = field(default_factory=list)
    mac_address: str = ""
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)  # NetworkingConfig.EndpointsConfig
    links: list[str] = field(default_factory=list)  # HostConfig.Links: legacy "name[:alias]" links
    hosts_path: str = ""  # if set, connect/disconnect rewrite this file in place
    resolv_conf_path: str = ""

    @classmethod
    def from_api(
        cls,
        container_id: str,
        name: str,
        config: dict[str, Any] | None,
        host_config: dict[str, Any] | None,
        networking_config: dict[str, Any] | None = None,
        hosts_path: str = "",
        resolv_conf_path: str = "",
    ) -> ContainerNetConfig:
        config = config or {}
        hc = host_config or {}
        exposed = dict(config.get("ExposedPorts") or {})
        bindings = dict(hc.get("PortBindings") or {})
        for key in bindings:
            exposed.setdefault(key if "/" in key else f"{key}/tcp", {})
        return cls(
            id=container_id,
            name=name.lstrip("/"),
            hostname=config.get("Hostname") or "",
            domainname=config.get("Domainname") or "",
            network_mode=hc.get("NetworkMode") or "default",
            port_bindings=bindings,
            publish_all=bool(hc.get("PublishAllPorts")),
            exposed_ports=exposed,
            dns=list(hc.get("Dns") or []),
            dns_search=list(hc.get("DnsSearch") or []),
            dns_options=list(hc.get("DnsOptions") or []),
            extra_hosts=list(hc.get("ExtraHosts") or []),
            mac_address=config.get("MacAddress") or "",
            endpoints=dict((networking_config or {}).get("EndpointsConfig") or {}),
            links=[str(x) for x in hc.get("Links") or []],
            hosts_path=hosts_path,
            resolv_conf_path=resolv_conf_path,
        )


def from_container(c: Any) -> ContainerNetConfig:
    """Build the config from a daemon container object (duck-typed: ``id``, ``name``, ``config``,
    ``host_config``, optional ``networking_config``, ``hostname``, ``hosts_path``,
    ``resolv_conf_path``)."""
    if isinstance(c, ContainerNetConfig):
        return c
    cfg = ContainerNetConfig.from_api(
        c.id,
        c.name,
        getattr(c, "config", None),
        getattr(c, "host_config", None),
        getattr(c, "networking_config", None),
        hosts_path=getattr(c, "hosts_path", "") or "",
        resolv_conf_path=getattr(c, "resolv_conf_path", "") or "",
    )
    hostname = getattr(c, "hostname", "")
    if isinstance(hostname, str) and hostname:
        cfg.hostname = hostname
    return cfg


@dataclass
class Sandbox:
    netns_path: str | None  # None: the host's network namespace (omit it from the OCI spec)
    hostname: str
    hosts: str
    resolv_conf: str
    settings: dict[str, Any]
    # legacy links on the default bridge: (child id, alias, child ip) of each running child, for
    # the daemon to turn into environment variables (legacy_links.link_env)
    links: list[tuple[str, str, str]] = field(default_factory=list)
    env: list[str] = field(default_factory=list)  # filled by the daemon seam from `links`

    @property
    def netns(self) -> str | None:
        """The namespace to join: a path, or "host" for the host's (the daemon seam's spelling)."""
        return self.netns_path if self.netns_path else "host"
