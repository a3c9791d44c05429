"""IP address management: choosing subnets from pools and leasing addresses inside a subnet.

`choose_subnet(pools, in_use)` walks Docker-style ``default-address-pools`` and returns the first
subnet that overlaps nothing in use (other networks, the host's own routes and addresses).

`Pool` is one network's address space: subnet, gateway, optional ``--ip-range`` and auxiliary
addresses. It leases the LOWEST free address, as Docker's default IPAM does; MAC addresses are
derived from IPs (`mac_for`), so a reused address comes back with the same MAC and neighbours'
ARP caches stay right. Every change is persisted before it is returned (``<data_root>/network/
ipam/<network-id>.json`` via atomic_write): after a crash no address is ever handed out twice,
and `reconcile(owners)` frees leases whose owner no longer exists.
"""

from __future__ import annotations

import ipaddress
import json
import os
import threading
from collections.abc import Iterable
from typing import Any

from dockyard.errors import Forbidden, InvalidParameter, SystemError_
from dockyard.util import atomic_write

IPv4Net = ipaddress.IPv4Network
IPv4Addr = ipaddress.IPv4Address


def parse_subnet(text: str) -> IPv4Net:
    """An IPv4 subnet; host bits are dropped (10.1.2.3/16 is 10.1.0.0/16), as Docker does."""
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError as e:
        raise InvalidParameter(f"invalid CIDR address: {text}") from e
    if net.version != 4:
        raise InvalidParameter(f"IPv6 is not supported: {text}")
    return net  # type: ignore[return-value]


def parse_address(text: str) -> IPv4Addr:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError as e:
        raise InvalidParameter(f"invalid IP address: {text}") from e
    if addr.version != 4:
        raise InvalidParameter(f"IPv6 is not supported: {text}")
    return addr  # type: ignore[return-value]


def mac_for(ip: str | IPv4Addr) -> str:
    """Docker's MAC for an IPv4 address: 02:42 followed by the four address bytes."""
    packed = ipaddress.IPv4Address(str(ip)).packed
    return "02:42:" + ":".join(f"{b:02x}" for b in packed)


def choose_subnet(pools: Iterable[dict[str, Any]], in_use: Iterable[IPv4Net]) -> IPv4Net:
    """First subnet from `pools` overlapping nothing in `in_use`."""
    used = [n for n in in_use if n.version == 4]
    for pool in pools:
        base = ipaddress.ip_network(pool["base"], strict=False)
        size = int(pool["size"])
        if base.version != 4:
            continue
        candidates = [base] if size == base.prefixlen else base.subnets(new_prefix=size)
        for cand in candidates:
            if not any(cand.overlaps(u) for u in used):
                return cand  # type: ignore[return-value]
    raise Forbidden(
        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"
    )


class Pool:
    """The leases of one network. Thread-safe; persisted on every change if `path` is set."""

    def __init__(
        self,
        subnet: IPv4Net,
        gateway: IPv4Addr | None = None,
        ip_range: IPv4Net | None = None,
        aux: dict[str, str] | None = None,
        path: str | None = None,
        network: str = "",
    ) -> None:
        if subnet.prefixlen > 30:
            raise InvalidParameter(f"subnet {subnet} is too small")
        self.subnet = subnet
        self.gateway = gateway if gateway is not None else subnet.network_address + 1
        if self.gateway not in subnet or self.gateway in (subnet.network_address, subnet.broadcast_address):
            raise InvalidParameter(f"no matching subnet for gateway {self.gateway}")
        if ip_range is not None and not ip_range.subnet_of(subnet):  # type: ignore[arg-type]
            raise InvalidParameter(f"no matching subnet for range {ip_range}")
        self.ip_range = ip_range
        self.aux = dict(aux or {})
        for name, addr in self.aux.items():
            if parse_address(addr) not in subnet:
                raise InvalidParameter(f"no matching subnet for aux-address {name}={addr}")
        self.path = path
        self.network = network
        self.leases: dict[str, str] = {}  # ip -> owner
        self.deleted = False
        self._lock = threading.Lock()

    # --- persistence --------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "Subnet": str(self.subnet),
            "Gateway": str(self.gateway),
            "IPRange": str(self.ip_range) if self.ip_range else "",
            "AuxiliaryAddresses": self.aux,
            "Leases": self.leases,
        }

    @classmethod
    def load(cls, path: str, network: str = "") -> Pool:
        with open(path) as f:
            d = json.load(f)
        pool = cls(
            parse_subnet(d["Subnet"]),
            parse_address(d["Gateway"]),
            parse_subnet(d["IPRange"]) if d.get("IPRange") else None,
            d.get("AuxiliaryAddresses") or {},
            path=path,
            network=network,
        )
        pool.leases = dict(d.get("Leases") or {})
        return pool

    def save(self) -> None:
        if self.path and not self.deleted:
            # no fsync: a daemon crash keeps the page cache; after a power loss no container
            # survives and reconcile frees every lease without a live owner anyway
            atomic_write(self.path, json.dumps(self.to_json(), sort_keys=True), fsync=False)

    def delete(self) -> None:
        self.deleted = True
        if self.path:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    # --- leasing --------------------------------------------------------------------------------
    def _reserved(self) -> set[IPv4Addr]:
        r = {self.subnet.network_address, self.subnet.broadcast_address, self.gateway}
        r.update(ipaddress.IPv4Address(a) for a in self.aux.values())
        return r

    def allocate(self, owner: str, wanted: str | None = None) -> IPv4Addr:
        """Lease `wanted` (must be free and inside the subnet) or the lowest free address."""
        with self._lock:
            if wanted:
                addr = parse_address(wanted)
                if addr not in self.subnet:
                    raise InvalidParameter(
                        f"no configured subnet or ip-range contain the IP address {addr}"
                    )
                if str(addr) in self.leases or addr in self._reserved():
                    if self.leases.get(str(addr)) == owner:
                        return addr
                    raise Forbidden("Address already in use")
                self.leases[str(addr)] = owner
                self.save()
                return addr
            space = self.ip_range or self.subnet
            reserved = self._reserved()
            for addr in space.hosts() if space.prefixlen < 31 else space:
                if addr in reserved or str(addr) in self.leases:
                    continue
                self.leases[str(addr)] = owner
                self.save()
                return addr
            raise SystemError_(
                f"no available IPv4 addresses on this network's address pools: {self.network}"
            )

    def release(self, addr: str | IPv4Addr) -> None:
        with self._lock:
            if self.leases.pop(str(addr), None) is not None:
                self.save()

    def release_owner(self, owner: str) -> list[str]:
        with self._lock:
            gone = [ip for ip, o in self.leases.items() if o == owner]
            for ip in gone:
                del self.leases[ip]
            if gone:
                self.save()
            return gone

    def reconcile(self, owners: set[str]) -> list[str]:
        """Free every lease whose owner is not in `owners`; returns the freed addresses."""
        with self._lock:
            gone = [ip for ip, o in self.leases.items() if o not in owners]
            for ip in gone:
                del self.leases[ip]
            if gone:
                self.save()
            return gone

    def owner_of(self, addr: str) -> str | None:
        return self.leases.get(addr)
