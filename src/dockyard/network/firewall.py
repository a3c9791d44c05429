"""nftables rules for bridge networks and published ports, in ONE table the daemon owns.

The desired state (bridges with their subnets and flags, published ports) is rendered into the full
content of ``table ip <name>`` and applied as one transaction that re-creates the table
(``add table; delete table; table {...}``): every change is atomic, a crash can leave only a
complete old or new rule set, and re-applying after a restart removes whatever is stale. No
other table is read, flushed or changed.

What the rules do (see docs/network.md):
- ``nat_pre``/``nat_out``: packets to a local address (``fib daddr type local``) jump to ``ports``,
  which DNATs published ports to the container: from other hosts (prerouting), from the host
  itself including 127.0.0.1 (output; route_localnet is on for our bridges), from containers
  through the host's address (prerouting on the bridge: hairpin).
- ``nat_post``: masquerade traffic leaving a network's subnet (not internal ones), traffic from
  127.0.0.0/8 that was DNAT-ed onto a bridge, and DNAT-ed traffic that comes back into the bridge
  it came from (so replies return through the host).
- ``forward``: DNAT-ed and established traffic passes; a bridge may not reach another bridge
  (networks are isolated), internal networks reach nothing outside, ``icc=false`` drops traffic
  between containers of one bridge except a legacy link's parent to its child's exposed ports.
- ``raw_pre``: nothing arriving on our bridges may claim a 127.0.0.0/8 source or destination
  (route_localnet would otherwise let a container reach host services bound to localhost).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from dockyard.sys.nftables import Nft


@dataclass(frozen=True)
class BridgeRule:
    bridge: str
    subnet: str
    internal: bool = False
    icc: bool = True
    masquerade: bool = True


@dataclass(frozen=True)
class PortRule:
    proto: str
    host_ip: str
    host_port: int
    container_ip: str
    container_port: int


@dataclass(frozen=True)
class LinkRule:
    """A legacy link across an icc=false bridge: parent may reach the child's port(s)."""

    bridge: str
    parent_ip: str
    child_ip: str
    proto: str
    port_lo: int
    port_hi: int


def _q(name: str) -> str:
    return '"' + name.replace('"', "") + '"'


def _set(names: list[str]) -> str:
    return "{ " + ", ".join(_q(n) for n in names) + " }"


def render(table: str, bridges: list[BridgeRule], ports: list[PortRule], link_rules: list[LinkRule] | None = None) -> str:
    """The transaction that replaces `table` with exactly these rules."""
    names = sorted({b.bridge for b in bridges})
    lines = [f"table ip {table} {{"]

    lines.append("  chain raw_pre {")
    lines.append("    type filter hook prerouting priority raw; policy accept;")
    if names:
        lines.append(f"    iifname {_set(names)} ip saddr 127.0.0.0/8 drop")
        lines.append(f"    iifname {_set(names)} ip daddr 127.0.0.0/8 drop")
    lines.append("  }")

    lines.append("  chain ports {")
    for p in sorted(ports, key=lambda p: (p.host_ip == "0.0.0.0", p.proto, p.host_port, p.host_ip)):
        match = "" if p.host_ip in ("0.0.0.0", "") else f"ip daddr {p.host_ip} "
        lines.append(
            f"    {match}meta l4proto {p.proto} {p.proto} dport {p.host_port} dnat to {p.container_ip}:{p.container_port}"
        )
    lines.append("  }")

    lines.append("  chain nat_pre {")
    lines.append("    type nat hook prerouting priority dstnat; policy accept;")
    lines.append("    fib daddr type local jump ports")
    lines.append("  }")
    lines.append("  chain nat_out {")
    lines.append("    type nat hook output priority -100; policy accept;")
    lines.append("    fib daddr type local jump ports")
    lines.append("  }")

    lines.append("  chain nat_post {")
    lines.append("    type nat hook postrouting priority srcnat; policy accept;")
    for b in sorted(bridges, key=lambda b: b.bridge):
        lines.append(f"    ct status dnat ip saddr {b.subnet} oifname {_q(b.bridge)} masquerade")
        lines.append(f"    ip saddr 127.0.0.0/8 oifname {_q(b.bridge)} masquerade")
        if b.masquerade and not b.internal:
            lines.append(f"    ip saddr {b.subnet} oifname != {_q(b.bridge)} masquerade")
    lines.append("  }")

    lines.append("  chain forward {")
    lines.append("    type filter hook forward priority filter; policy accept;")
    lines.append("    ct state established,related accept")
    lines.append("    ct status dnat accept")
    for b in sorted(bridges, key=lambda b: b.bridge):
        br = _q(b.bridge)
        if not b.icc:
            for lk in sorted((r for r in link_rules or [] if r.bridge == b.bridge), key=repr):
                ports = str(lk.port_lo) if lk.port_lo == lk.port_hi else f"{lk.port_lo}-{lk.port_hi}"
                lines.append(
                    f"    iifname {br} oifname {br} ip saddr {lk.parent_ip} ip daddr {lk.child_ip} {lk.proto} dport {ports} accept"
                )
                lines.append(
                    f"    iifname {br} oifname {br} ip saddr {lk.child_ip} ip daddr {lk.parent_ip} {lk.proto} sport {ports} accept"
                )
            lines.append(f"    iifname {br} oifname {br} drop")
        if b.internal:
            lines.append(f"    iifname {br} oifname != {br} drop")
            lines.append(f"    oifname {br} iifname != {br} drop")
        others = [n for n in names if n != b.bridge]
        if others:
            lines.append(f"    iifname {br} oifname {_set(others)} drop")
    lines.append("  }")
    lines.append("}")
    body = "\n".join(lines) + "\n"
    return f"table ip {table} {{}}\ndelete table ip {table}\n{body}"


class Firewall:
    """Applies the rendered rules for one table; remembers the last state it applied."""

    def __init__(self, table: str, enabled: bool = True) -> None:
        self.table = table
        self.enabled = enabled
        self._nft: Nft | None = None
        self._lock = threading.Lock()
        self.applied: str | None = None

    def _ctx(self) -> Nft:
        if self._nft is None:
            self._nft = Nft()
        return self._nft

    def apply(self, bridges: list[BridgeRule], ports: list[PortRule], link_rules: list[LinkRule] | None = None) -> None:
        """Make the table hold exactly these rules (one transaction). Blocks: call in a thread."""
        if not self.enabled:
            return
        text = render(self.table, bridges, ports, link_rules)
        with self._lock:
            if text == self.applied:
                return
            self._ctx().run(text)
            self.applied = text

    def remove(self) -> None:
        """Delete the table (tests, `network` teardown of a whole daemon); absent is fine."""
        if not self.enabled:
            return
        with self._lock:
            self._ctx().run(f"table ip {self.table} {{}}\ndelete table ip {self.table}\n")
            self.applied = None

    def exists(self) -> bool:
        with self._lock:
            out = self._ctx().run("list tables ip")
        return any(line.split()[-1] == self.table for line in out.splitlines() if line.startswith("table"))

    def close(self) -> None:
        if self._nft is not None:
            self._nft.close()
            self._nft = None
