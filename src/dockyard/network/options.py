"""The networking part of the daemon's configuration, with Docker's names and defaults.

`NetworkOptions.from_config(dict)` accepts daemon.json keys (``bip``, ``bridge``,
``default-address-pools``, ``icc``, ``ip-forward``, ``ip-masq``, ``iptables``, ``mtu``, ``dns``,
``dns-search``, ``dns-opts``, ``ip``, ``fixed-cidr``) and Dockyard's own (``bridge-name``: the
default bridge's interface, ``bridge-prefix``: prefix of user networks' bridges, ``nft-table``: the
nftables table the daemon owns, ``dns-upstreams``: ``ip[:port]`` resolvers the embedded DNS forwards
to instead of the host's, ``port-redirect``: false turns off the connect-time redirect of
127.0.0.1 to published TCP ports, see redirect.py). Pure data: no I/O here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import InvalidParameter

# Docker's built-in default-address-pools: 172.17-31.0.0/16, then 192.168.0.0/16 in /20s.
DEFAULT_ADDRESS_POOLS: tuple[dict[str, Any], ...] = (
    {"base": "172.17.0.0/16", "size": 16},
    {"base": "172.18.0.0/16", "size": 16},
    {"base": "172.19.0.0/16", "size": 16},
    {"base": "172.20.0.0/14", "size": 16},
    {"base": "172.24.0.0/14", "size": 16},
    {"base": "172.28.0.0/14", "size": 16},
    {"base": "192.168.0.0/16", "size": 20},
)

DEFAULT_BRIDGE_NAME = "dockyard0"
DEFAULT_NFT_TABLE = "dockyard"
MAX_IFNAME = 15


@dataclass
class NetworkOptions:
    bridge_name: str = DEFAULT_BRIDGE_NAME
    disable_bridge: bool = False
    bip: str | None = None
    fixed_cidr: str | None = None
    default_address_pools: list[dict[str, Any]] = field(default_factory=lambda: [dict(p) for p in DEFAULT_ADDRESS_POOLS])
    icc: bool = True
    ip_forward: bool = True
    ip_masq: bool = True
    iptables: bool = True
    mtu: int = 1500
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_opts: list[str] = field(default_factory=list)
    default_bind_ip: str = "0.0.0.0"
    bridge_prefix: str = "br-"
    nft_table: str = DEFAULT_NFT_TABLE
    resolv_conf: str = "/etc/resolv.conf"
    hosts_file: str = "/etc/hosts"
    dns_upstreams: list[str] | None = None
    port_redirect: bool = True  # 127.0.0.1 -> published TCP port: connect straight to the container (redirect.py)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if len(self.bridge_name) > MAX_IFNAME:
            raise InvalidParameter(f"bridge name {self.bridge_name!r} is longer than {MAX_IFNAME} characters")
        if len(self.bridge_prefix) > 11:
            raise InvalidParameter(f"bridge prefix {self.bridge_prefix!r} leaves too few characters for the id")
        if not self.nft_table.replace("_", "").replace("-", "").isalnum():
            raise InvalidParameter(f"invalid nftables table name {self.nft_table!r}")
        if self.bip:
            try:
                iface = ipaddress.ip_interface(self.bip)
            except ValueError as e:
                raise InvalidParameter(f"invalid bip {self.bip!r}: {e}") from e
            if iface.version != 4 or iface.network.prefixlen > 30:
                raise InvalidParameter(f"invalid bip {self.bip!r}")
        for pool in self.default_address_pools:
            try:
                base = ipaddress.ip_network(pool["base"])
                size = int(pool["size"])
            except (KeyError, TypeError, ValueError) as e:
                raise InvalidParameter(f"invalid default-address-pools entry {pool!r}") from e
            if size < base.prefixlen or size > 30:
                raise InvalidParameter(f"invalid pools size {size} for base {base}")
        ipaddress.ip_address(self.default_bind_ip)

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | None) -> NetworkOptions:
        """Build from daemon.json-style keys (dashes or underscores); unknown keys are ignored."""
        cfg = {k.replace("_", "-"): v for k, v in (cfg or {}).items()}
        kw: dict[str, Any] = {}
        bridge = cfg.get("bridge")
        if bridge == "none":
            kw["disable_bridge"] = True
        elif bridge:
            kw["bridge_name"] = bridge
        if cfg.get("bridge-name"):
            kw["bridge_name"] = cfg["bridge-name"]
        simple = {
            "bip": "bip",
            "fixed-cidr": "fixed_cidr",
            "icc": "icc",
            "ip-forward": "ip_forward",
            "ip-masq": "ip_masq",
            "iptables": "iptables",
            "mtu": "mtu",
            "dns": "dns",
            "dns-search": "dns_search",
            "dns-opts": "dns_opts",
            "ip": "default_bind_ip",
            "bridge-prefix": "bridge_prefix",
            "nft-table": "nft_table",
            "dns-upstreams": "dns_upstreams",
            "resolv-conf": "resolv_conf",
            "port-redirect": "port_redirect",
        }
        for key, attr in simple.items():
            if key in cfg and cfg[key] is not None and cfg[key] != "":
                kw[attr] = cfg[key]
        if cfg.get("default-address-pools"):
            kw["default_address_pools"] = [_pool(p) for p in cfg["default-address-pools"]]
        for attr in ("icc", "ip_forward", "ip_masq", "iptables", "port_redirect"):
            if attr in kw and isinstance(kw[attr], str):
                kw[attr] = kw[attr].lower() in ("1", "true", "yes")
        if "mtu" in kw:
            kw["mtu"] = int(kw["mtu"])
        for attr in ("dns", "dns_search", "dns_opts", "dns_upstreams"):
            if attr in kw and isinstance(kw[attr], str):
                kw[attr] = [x for x in kw[attr].split(",") if x]
        return cls(**kw)


def _pool(p: Any) -> dict[str, Any]:
    """A pool from daemon.json ({"base": .., "size": ..}) or dockerd's flag ("base=..,size=..")."""
    if isinstance(p, dict):
        return {"base": p.get("base") or p.get("Base"), "size": int(p.get("size") or p.get("Size") or 0)}
    out: dict[str, Any] = {}
    for part in str(p).split(","):
        k, _, v = part.partition("=")
        out[k.strip().lower()] = v.strip()
    try:
        return {"base": out["base"], "size": int(out["size"])}
    except (KeyError, ValueError):
        raise InvalidParameter(f"invalid default-address-pool {p!r}: want base=<cidr>,size=<prefix length>") from None
