"""Netlink work on links, addresses and routes, through pyroute2 (never by spawning `ip`).

Owns: creating and deleting bridges (address, up, route_localnet), veth pairs whose container end
is created directly inside the container's namespace with its final name and MAC, configuring the
inside (address, up, default route, loopback), and the read-only queries reconcile and IPAM need
(ports of a bridge, addresses and routes in use on the host).

Every function blocks on netlink: call from a worker thread. Work inside a container's namespace
uses a netlink socket opened there (see `in_netns`), so no process is forked.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import os
import socket
from collections.abc import Iterator

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from dockyard.network import netns

NETLINK_ROUTE = 0

# pyroute2 logs every netlink message at DEBUG: far too much (and too slow) for a daemon log
logging.getLogger("pyroute2").setLevel(logging.WARNING)


def _ipr() -> IPRoute:
    return IPRoute()


@contextlib.contextmanager
def host() -> Iterator[IPRoute]:
    """An rtnetlink handle in the daemon's own namespace."""
    ipr = _ipr()
    try:
        yield ipr
    finally:
        ipr.close()


@contextlib.contextmanager
def in_netns(path: str) -> Iterator[IPRoute]:
    """An rtnetlink handle whose socket lives in the namespace at `path` (opened via setns)."""
    with netns.entered(path):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)
    try:
        ipr = IPRoute(fileno=sock.detach())
    except BaseException:
        sock.close()
        raise
    try:
        yield ipr
    finally:
        ipr.close()


def index_of(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def set_sysctl(path: str, value: str) -> None:
    """Write a /proc/sys value for the daemon's namespace (e.g. net/ipv4/ip_forward)."""
    with open(os.path.join("/proc/sys", path), "w") as f:
        f.write(value)


def get_sysctl(path: str) -> str:
    with open(os.path.join("/proc/sys", path)) as f:
        return f.read().strip()


# --- bridges -----------------------------------------------------------------------------------
def ensure_bridge(name: str, gateway: str, prefixlen: int, mtu: int = 1500) -> bool:
    """Create bridge `name` with `gateway/prefixlen` and bring it up. Returns True if created.

    An existing bridge keeps its other addresses; ours is added if missing. route_localnet is
    turned on for it so DNAT of 127.0.0.1 traffic onto the bridge works (see docs/network.md).
    """
    created = False
    with host() as ipr:
        idx = index_of(ipr, name)
        if idx is None:
            try:
                ipr.link("add", ifname=name, kind="bridge", mtu=mtu)
                created = True
            except NetlinkError as e:
                if e.code != errno.EEXIST:
                    raise
            idx = index_of(ipr, name)
            if idx is None:
                raise OSError(errno.ENODEV, f"bridge {name} vanished while being created")
        have = {
            (a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=idx, family=socket.AF_INET)
        }
        if (gateway, prefixlen) not in have:
            try:
                ipr.addr("add", index=idx, address=gateway, prefixlen=prefixlen, **_broadcast(gateway, prefixlen))
            except NetlinkError as e:
                if e.code != errno.EEXIST:
                    raise
        ipr.link("set", index=idx, state="up")
    with contextlib.suppress(OSError):
        set_sysctl(f"net/ipv4/conf/{name}/route_localnet", "1")
    return created


def delete_link(name: str) -> bool:
    """Delete a link by name; True if it existed. Deleting one end of a veth removes both."""
    with host() as ipr:
        idx = index_of(ipr, name)
        if idx is None:
            return False
        try:
            ipr.link("del", index=idx)
        except NetlinkError as e:
            if e.code == errno.ENODEV:
                return False
            raise
        return True


def link_exists(name: str) -> bool:
    with host() as ipr:
        return index_of(ipr, name) is not None


def ports_of(bridge: str) -> list[str]:
    """Names of the interfaces enslaved to `bridge` (empty if it does not exist)."""
    with host() as ipr:
        idx = index_of(ipr, bridge)
        if idx is None:
            return []
        return [link.get_attr("IFLA_IFNAME") for link in ipr.get_links() if link.get_attr("IFLA_MASTER") == idx]


def bridges() -> list[str]:
    """Names of every bridge on the host."""
    out = []
    with host() as ipr:
        for link in ipr.get_links():
            info = link.get_attr("IFLA_LINKINFO")
            if info is not None and info.get_attr("IFLA_INFO_KIND") == "bridge":
                out.append(link.get_attr("IFLA_IFNAME"))
    return out


def host_networks(exclude_links: set[str] | frozenset[str] = frozenset()) -> list[ipaddress.IPv4Network]:
    """IPv4 networks in use on the host: interface subnets and main-table routes (no default).

    Used to pick a free subnet for a new bridge, as Docker avoids ranges the host already uses.
    """
    nets: list[ipaddress.IPv4Network] = []
    with host() as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        for a in ipr.get_addr(family=socket.AF_INET):
            if names.get(a["index"]) in exclude_links:
                continue
            addr = a.get_attr("IFA_ADDRESS")
            if addr and not addr.startswith("127."):
                nets.append(ipaddress.ip_network(f"{addr}/{a['prefixlen']}", strict=False))
        for r in ipr.get_routes(family=socket.AF_INET, table=254):
            if r["dst_len"] == 0:
                continue
            oif = r.get_attr("RTA_OIF")
            if names.get(oif) in exclude_links:
                continue
            dst = r.get_attr("RTA_DST")
            if dst:
                nets.append(ipaddress.ip_network(f"{dst}/{r['dst_len']}", strict=False))
    return nets


# --- container ends --------------------------------------------------------------------------
def create_veth(
    host_name: str,
    bridge: str,
    ns_path: str,
    ifname: str,
    mac: str,
    address: str,
    prefixlen: int,
    gateway: str | None,
    mtu: int = 1500,
    hairpin: bool = True,
) -> None:
    """Create a veth pair: `host_name` on `bridge`, `ifname` inside `ns_path` with `mac`/`address`.

    `gateway` set: the default route inside goes through it (the network that owns the default
    route). The host end is created enslaved and up in the same request, then put in hairpin
    mode so a container reaches itself through a published port; inside, the interface and `lo`
    come up. On failure nothing is left behind. Raises FileExistsError if `host_name` is taken.
    """
    ns_fd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with host() as ipr:
            br = index_of(ipr, bridge)
            if br is None:
                raise OSError(errno.ENODEV, f"bridge {bridge} does not exist")
            try:
                ipr.link(
                    "add",
                    ifname=host_name,
                    kind="veth",
                    mtu=mtu,
                    master=br,
                    state="up",
                    peer={"ifname": ifname, "net_ns_fd": ns_fd, "address": mac, "mtu": mtu},
                )
            except NetlinkError as e:
                if e.code == errno.EEXIST:
                    raise FileExistsError(errno.EEXIST, f"{host_name} exists") from e
                raise
            try:
                if hairpin:
                    _set_hairpin(ipr, host_name)
                _configure_inside(ns_path, ifname, address, prefixlen, gateway)
            except BaseException:
                with contextlib.suppress(Exception):
                    ipr.link("del", ifname=host_name)
                raise
    finally:
        os.close(ns_fd)


def _set_hairpin(ipr: IPRoute, name: str) -> None:
    # sysfs is one write; it only shows the namespace /sys was mounted from, else use netlink
    try:
        with open(f"/sys/class/net/{name}/brport/hairpin_mode", "w") as f:
            f.write("1")
        return
    except OSError:
        pass
    idx = index_of(ipr, name)
    if idx is None:
        raise OSError(errno.ENODEV, f"{name} vanished")
    ipr.brport("set", index=idx, mode=1)


def _broadcast(address: str, prefixlen: int) -> dict[str, str]:
    """The subnet's broadcast address, set on the bridge and on eth0 as Docker does (`ip addr`
    shows `brd 172.17.255.255`); none for /31 and /32."""
    if prefixlen >= 31:
        return {}
    return {"broadcast": str(ipaddress.IPv4Network(f"{address}/{prefixlen}", strict=False).broadcast_address)}


LOOPBACK_IFINDEX = 1  # the kernel registers lo first in every namespace


def _configure_inside(ns_path: str, ifname: str, address: str, prefixlen: int, gateway: str | None) -> None:
    with in_netns(ns_path) as ipr:
        idx = index_of(ipr, ifname)
        if idx is None:
            raise OSError(errno.ENODEV, f"{ifname} did not arrive in {ns_path}")
        ipr.addr("add", index=idx, address=address, prefixlen=prefixlen, **_broadcast(address, prefixlen))
        ipr.link("set", index=idx, state="up")
        ipr.link("set", index=LOOPBACK_IFINDEX, state="up")
        if gateway:
            ipr.route("add", dst="0.0.0.0/0", gateway=gateway, oif=idx)


def loopback_up(ns_path: str) -> None:
    """Bring `lo` up inside a namespace (the whole network of `--network none`)."""
    with in_netns(ns_path) as ipr:
        ipr.link("set", index=LOOPBACK_IFINDEX, state="up")


def set_default_route(ns_path: str, ifname: str, gateway: str | None) -> None:
    """Point the namespace's default route through `gateway` on `ifname` (None: remove it)."""
    with in_netns(ns_path) as ipr:
        with contextlib.suppress(NetlinkError):
            ipr.route("del", dst="0.0.0.0/0")
        if gateway:
            idx = index_of(ipr, ifname)
            if idx is not None:
                ipr.route("add", dst="0.0.0.0/0", gateway=gateway, oif=idx)


def delete_inside(ns_path: str, ifname: str) -> bool:
    """Delete interface `ifname` inside a namespace (disconnect from a network)."""
    with in_netns(ns_path) as ipr:
        idx = index_of(ipr, ifname)
        if idx is None:
            return False
        ipr.link("del", index=idx)
        return True


def names_inside(ns_path: str) -> list[str]:
    with in_netns(ns_path) as ipr:
        return [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()]
