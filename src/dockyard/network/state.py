"""The network layer's persistent records, and where they live under ``<data_root>/network/``.

- ``networks/<id>.json``: a `NetworkRecord` (name, driver, IPAM config, options, labels, bridge);
- ``ipam/<id>.json``: that network's leases (see ipam.Pool);
- ``containers/<id>.json``: a `ContainerRecord`: what the container asked for at create (mode,
  ports, DNS, extra hosts, the networks it is attached to with their endpoint config) and, while it
  runs, its `SandboxState` (namespace path, one `EndpointState` per network with the veth, IP and
  MAC, the published ports). Reconcile after a crash starts from these files.

Each record is written with atomic_write; readers see a whole old or new record.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from dockyard.network.ports import Mapping
from dockyard.util import atomic_write


@dataclass
class NetworkRecord:
    id: str
    name: str
    driver: str = "bridge"  # bridge | host | null
    created: str = ""
    internal: bool = False
    attachable: bool = False
    ingress: bool = False
    enable_ipv6: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    ipam_driver: str = "default"
    ipam_options: dict[str, str] | None = None
    ipam_config: list[dict[str, Any]] = field(default_factory=list)
    bridge: str = ""
    predefined: bool = False
    default_bridge: bool = False
    user_subnet: bool = False  # the subnet came from the user (--subnet), so --ip is allowed

    @property
    def icc(self) -> bool:
        return self.options.get("com.docker.network.bridge.enable_icc", "true").lower() != "false"

    @property
    def masquerade(self) -> bool:
        return self.options.get("com.docker.network.bridge.enable_ip_masquerade", "true").lower() != "false"

    @property
    def host_binding_ip(self) -> str:
        return self.options.get("com.docker.network.bridge.host_binding_ipv4", "")

    @property
    def user_defined(self) -> bool:
        return not self.predefined

    @property
    def mtu(self) -> int:
        try:
            return int(self.options.get("com.docker.network.driver.mtu", "0")) or 0
        except ValueError:
            return 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> NetworkRecord:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class EndpointState:
    network_id: str
    endpoint_id: str
    ip: str
    prefixlen: int
    gateway: str  # "" when the network gives no gateway (internal)
    mac: str
    veth: str  # host end
    ifname: str  # inside: eth0, eth1, ...
    aliases: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> EndpointState:
        return cls(**d)


@dataclass
class SandboxState:
    id: str
    key: str  # namespace path ("" for host mode)
    endpoints: dict[str, EndpointState] = field(default_factory=dict)  # network id -> endpoint
    ports: list[Mapping] = field(default_factory=list)
    gateway_network: str = ""  # network id providing the default route
    shared_with: str = ""  # container:<id> mode: the owner of the namespace
    dns: bool = False  # embedded DNS attached
    # legacy links: alias -> [names, ip] of the parent's /etc/hosts line for each child (kept when
    # the child stops, updated when it starts again with another address, as Docker does)
    link_hosts: dict[str, list[str]] = field(default_factory=dict)
    next_if: int = 0  # the next ethN: never reused while the sandbox lives (Docker's counter)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "endpoints": {k: asdict(v) for k, v in self.endpoints.items()},
            "ports": [m.to_json() for m in self.ports],
            "gateway_network": self.gateway_network,
            "shared_with": self.shared_with,
            "dns": self.dns,
            "link_hosts": self.link_hosts,
            "next_if": self.next_if,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SandboxState:
        return cls(
            id=d["id"],
            key=d.get("key", ""),
            endpoints={k: EndpointState.from_json(v) for k, v in (d.get("endpoints") or {}).items()},
            ports=[Mapping.from_json(m) for m in d.get("ports") or []],
            gateway_network=d.get("gateway_network", ""),
            shared_with=d.get("shared_with", ""),
            dns=bool(d.get("dns")),
            link_hosts={k: list(v) for k, v in (d.get("link_hosts") or {}).items()},
            next_if=int(d.get("next_if") or 0),
        )


@dataclass
class Attachment:
    """A container's membership of a network (kept while stopped, as Docker does)."""

    network_id: str
    name: str  # the network's name
    ipam_config: dict[str, Any] | None = None  # {"IPv4Address": ...}
    aliases: list[str] = field(default_factory=list)
    mac_address: str = ""
    driver_opts: dict[str, str] | None = None
    links: list[str] = field(default_factory=list)  # EndpointSettings.Links: "name:alias" DNS names


@dataclass
class Link:
    """A legacy link on the default bridge: this container (the parent) sees `child_id` as `alias`."""

    child_id: str
    alias: str
    child_name: str = ""  # kept when the child is removed: the parent then cannot start (Docker)


@dataclass
class ContainerRecord:
    id: str
    name: str
    hostname: str = ""
    domainname: str = ""
    network_mode: str = "default"
    port_bindings: dict[str, Any] = field(default_factory=dict)
    publish_all: bool = False
    exposed_ports: dict[str, Any] = field(default_factory=dict)
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    extra_hosts: list[str] = field(default_factory=list)
    mac_address: str = ""
    hosts_path: str = ""
    resolv_conf_path: str = ""
    attachments: list[Attachment] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    sandbox: SandboxState | None = None

    def attachment(self, network_id: str) -> Attachment | None:
        for a in self.attachments:
            if a.network_id == network_id:
                return a
        return None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["attachments"] = [asdict(a) for a in self.attachments]
        d["links"] = [asdict(lk) for lk in self.links]
        d["sandbox"] = self.sandbox.to_json() if self.sandbox else None
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ContainerRecord:
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in d.items() if k in known}
        kw["attachments"] = [Attachment(**a) for a in d.get("attachments") or []]
        kw["links"] = [Link(**lk) for lk in d.get("links") or []]
        kw["sandbox"] = SandboxState.from_json(d["sandbox"]) if d.get("sandbox") else None
        return cls(**kw)


class Store:
    """Reads and writes the records under ``<data_root>/network``."""

    def __init__(self, data_root: str) -> None:
        self.root = os.path.join(data_root, "network")
        self.networks_dir = os.path.join(self.root, "networks")
        self.ipam_dir = os.path.join(self.root, "ipam")
        self.containers_dir = os.path.join(self.root, "containers")
        for d in (self.networks_dir, self.ipam_dir, self.containers_dir):
            os.makedirs(d, mode=0o700, exist_ok=True)

    def ipam_path(self, network_id: str) -> str:
        return os.path.join(self.ipam_dir, f"{network_id}.json")

    @staticmethod
    def _load_dir(directory: str) -> list[dict[str, Any]]:
        out = []
        for name in sorted(os.listdir(directory)):
            if not name.endswith(".json") or name.startswith("."):
                continue
            try:
                with open(os.path.join(directory, name)) as f:
                    out.append(json.load(f))
            except (OSError, ValueError):
                continue
        return out

    def load_networks(self) -> list[NetworkRecord]:
        return [NetworkRecord.from_json(d) for d in self._load_dir(self.networks_dir)]

    def save_network(self, rec: NetworkRecord) -> None:
        atomic_write(os.path.join(self.networks_dir, f"{rec.id}.json"), json.dumps(rec.to_json(), sort_keys=True))

    def delete_network(self, network_id: str) -> None:
        for path in (os.path.join(self.networks_dir, f"{network_id}.json"), self.ipam_path(network_id)):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def load_containers(self) -> list[ContainerRecord]:
        return [ContainerRecord.from_json(d) for d in self._load_dir(self.containers_dir)]

    def save_container(self, rec: ContainerRecord) -> None:
        # written at every start and stop: atomic but not fsync'ed (see ipam.Pool.save)
        atomic_write(
            os.path.join(self.containers_dir, f"{rec.id}.json"), json.dumps(rec.to_json(), sort_keys=True), fsync=False
        )

    def delete_container(self, container_id: str) -> None:
        try:
            os.unlink(os.path.join(self.containers_dir, f"{container_id}.json"))
        except FileNotFoundError:
            pass
