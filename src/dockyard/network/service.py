"""NetworkService: the daemon's one entry point into networking.

Constructed once by the daemon: ``NetworkService(data_root, exec_root, options)`` (options: a
`NetworkOptions` or a daemon.json-style dict). Every method that touches the kernel or the disk
runs that work in a worker thread; mutations are serialised on one asyncio lock.

Lifecycle
- ``await start(alive=None)``: load state, create the predefined networks (``bridge`` on
  ``options.bridge_name``, ``host``, ``none``), and reconcile after a crash: sandboxes of containers
  that are not alive (``alive``: ids the daemon knows are running; default: a process is still in
  the namespace) are torn down, stray veths on our bridges and stray namespace mounts are removed,
  IPAM leases without an owner are freed, the nftables table is rewritten, ip_forward is turned on,
  the embedded DNS re-attaches to surviving containers.
- ``await close()``: daemon shutdown; kernel state stays for the containers that keep running.
- ``await destroy()``: remove everything this service ever created (tests, uninstall).

Networks (the /networks routes): ``create_network(body) -> {"Id", "Warning"}``,
``inspect_network(ref, verbose=False)``, ``list_networks(filters)``, ``remove_network(ref)``,
``prune_networks(filters) -> [names]``, ``connect(ref, container_id, endpoint_config)``,
``disconnect(ref, container_id, force=False)``.

Containers
- ``await register(cfg: ContainerNetConfig)`` at create: validates (Docker's messages) and records.
- ``await setup(container_id, cfg=None) -> Sandbox`` before the runtime starts: namespace, veths,
  IPs, routes, published ports, DNS; returns what the runtime and the hosts/resolv.conf files need.
- ``await teardown(container_id)`` after the container stopped: everything above released.
- ``await unregister(container_id)`` at rm; ``rename(container_id, name)``.
- ``settings(container_id)`` (NetworkSettings), ``port_summary(container_id)`` (the Ports list of
  GET /containers/json), ``sandbox_key(container_id)``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ipaddress
import logging
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from typing import Any

from dockyard.errors import Conflict, Forbidden, InvalidParameter, NotFound, SystemError_
from dockyard.network import dns as dnslib
from dockyard.network import files, ipam, legacy_links, links, netns
from dockyard.network import ports as portlib
from dockyard.network.config import ContainerNetConfig, Sandbox, from_container
from dockyard.network.firewall import BridgeRule, Firewall, LinkRule, PortRule
from dockyard.network.options import NetworkOptions
from dockyard.network.redirect import LocalRedirect
from dockyard.network.state import (
    Attachment,
    ContainerRecord,
    EndpointState,
    Link,
    NetworkRecord,
    SandboxState,
    Store,
)
from dockyard.network.views import network_container_entry, network_json, network_settings
from dockyard.util import new_id

log = logging.getLogger("dockyard.network")

PREDEFINED = ("bridge", "host", "none")


def _now() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}Z"


def _veth_name() -> str:
    return "veth" + secrets.token_hex(4)[:7]


def _valid_mac(mac: str) -> bool:
    parts = mac.split(":")
    return len(parts) == 6 and all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts)


HOST_LOCK = "/run/lock/dockyard-network.lock"


@contextlib.contextmanager
def _host_lock() -> Iterator[None]:
    """Serialise subnet choice + bridge creation between daemons on one host (tests run several
    side by side): the second one then sees the first one's bridge route. Blocks: threads only."""
    import fcntl

    os.makedirs(os.path.dirname(HOST_LOCK), exist_ok=True)
    fd = os.open(HOST_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _netns_inodes_in_use() -> set[int]:
    """Inodes of every network namespace some process is in."""
    out = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            link = os.readlink(f"/proc/{pid}/ns/net")
        except OSError:
            continue
        if link.startswith("net:["):
            out.add(int(link[5:-1]))
    return out


class NetworkService:
    def __init__(self, data_root: str, exec_root: str, options: NetworkOptions | dict[str, Any] | None = None) -> None:
        self.options = options if isinstance(options, NetworkOptions) else NetworkOptions.from_config(options)
        self.data_root = data_root
        self.exec_root = exec_root
        self.netns_dir = os.path.join(exec_root, "netns")
        os.makedirs(self.netns_dir, mode=0o711, exist_ok=True)
        self.store = Store(data_root)
        self.networks: dict[str, NetworkRecord] = {}
        self.pools: dict[str, ipam.Pool] = {}
        self.containers: dict[str, ContainerRecord] = {}
        self.allocator = portlib.PortAllocator()
        self.firewall = Firewall(self.options.nft_table, enabled=self.options.iptables)
        self.redirect = LocalRedirect()
        self.dns = dnslib.EmbeddedDNS(self._dns_lookup, self._dns_reverse, self._dns_upstreams)
        self._lock = asyncio.Lock()
        self._started = False
        # the host's resolv.conf and hosts, read in worker threads (never on the event loop)
        self._host_files: dict[str, tuple[int, str]] = {}
        # veth deletion waits for the kernel (an RCU grace period, ~15-30 ms): done off the
        # request path by one reaper thread, which frees the endpoint's IP lease afterwards
        self._reaper = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="dy-net-reaper")
        self._reaping: set[concurrent.futures.Future[None]] = set()

    # =========================================================================================
    # lifecycle
    # =========================================================================================
    async def start(self, alive: Iterable[str] | None = None) -> None:
        async with self._lock:
            survivors = await asyncio.to_thread(self._start_sync, set(alive) if alive is not None else None)
            for rec in survivors:
                if rec.sandbox is not None and rec.sandbox.dns and rec.sandbox.key:
                    try:
                        await self.dns.attach(rec.id, rec.sandbox.key)
                    except OSError as e:
                        log.warning("embedded DNS for %s: %s", rec.id[:12], e)
            self._started = True

    def _start_sync(self, alive: set[str] | None) -> list[ContainerRecord]:
        self._refresh_host_files()
        for net in self.store.load_networks():
            self.networks[net.id] = net
            if net.driver == "bridge":
                path = self.store.ipam_path(net.id)
                try:
                    self.pools[net.id] = ipam.Pool.load(path, network=net.name)
                except (OSError, ValueError, KeyError):
                    self.pools[net.id] = self._pool_from_config(net)
        for rec in self.store.load_containers():
            self.containers[rec.id] = rec
        self._ensure_predefined()

        in_use = _netns_inodes_in_use() if alive is None else set()
        survivors = []
        for rec in self.containers.values():
            sb = rec.sandbox
            if sb is None:
                continue
            if alive is not None:
                ok = rec.id in alive
            elif sb.shared_with or not sb.key:
                ok = True  # decided below with its owner / host mode has nothing to leak
            else:
                try:
                    ok = netns.is_mounted(sb.key) and netns.inode(sb.key) in in_use
                except OSError:
                    ok = False
            if ok and sb.key and not sb.shared_with and not netns.is_mounted(sb.key):
                ok = False
            if ok:
                survivors.append(rec)
            else:
                self._teardown_sync(rec)
        # a container:<id> sandbox cannot outlive its owner's
        for rec in list(survivors):
            sb = rec.sandbox
            assert sb is not None
            if sb.shared_with:
                owner = self.containers.get(sb.shared_with)
                if owner is None or owner.sandbox is None:
                    survivors.remove(rec)
                    self._teardown_sync(rec)

        live_veths = {ep.veth for rec in survivors for ep in rec.sandbox.endpoints.values()}  # type: ignore[union-attr]
        live_keys = {os.path.realpath(rec.sandbox.key) for rec in survivors if rec.sandbox and rec.sandbox.key}
        for net in self.networks.values():
            if net.driver != "bridge":
                continue
            self._ensure_bridge(net)
            for port in links.ports_of(net.bridge):
                if port.startswith("veth") and port not in live_veths:
                    log.info("reconcile: removing stray %s from %s", port, net.bridge)
                    links.delete_link(port)
            owners = {
                rec.sandbox.endpoints[net.id].endpoint_id
                for rec in survivors
                if rec.sandbox and net.id in rec.sandbox.endpoints
            }
            self.pools[net.id].reconcile(owners)
        for path in netns.mounted_under(self.netns_dir):
            if os.path.realpath(path) not in live_keys:
                log.info("reconcile: removing stray namespace %s", path)
                netns.remove(path)
        for name in os.listdir(self.netns_dir):
            path = os.path.join(self.netns_dir, name)
            if os.path.realpath(path) not in live_keys and not netns.is_mounted(path):
                with contextlib.suppress(OSError):
                    os.unlink(path)
        for rec in survivors:
            for m in rec.sandbox.ports if rec.sandbox else []:
                if not self.allocator.adopt(m, rec.id):
                    log.warning("port %s:%s/%s of %s is now held by another process", m.host_ip, m.host_port, m.proto, rec.id[:12])
        self._host_sysctls()
        wants_redirect = self.options.port_redirect and self.options.iptables and not self.redirect.active
        if wants_redirect and not self.redirect.start():
            log.info("published ports from 127.0.0.1 go through nftables only: %s", self.redirect.reason)
        self._apply_firewall()
        return survivors

    def _host_sysctls(self) -> None:
        if self.options.ip_forward:
            try:
                if links.get_sysctl("net/ipv4/ip_forward") != "1":
                    links.set_sysctl("net/ipv4/ip_forward", "1")
            except OSError as e:
                log.warning("cannot enable ip_forward: %s", e)
        if any(not n.icc for n in self.networks.values() if n.driver == "bridge"):
            with contextlib.suppress(OSError):
                if links.get_sysctl("net/bridge/bridge-nf-call-iptables") != "1":
                    links.set_sysctl("net/bridge/bridge-nf-call-iptables", "1")

    async def settle(self) -> None:
        """Wait until released veths are deleted and their addresses are free again."""
        while self._reaping:
            await asyncio.wrap_future(next(iter(self._reaping)))

    async def close(self) -> None:
        """Daemon shutdown: stop the DNS server and drop port reservations; kernel state stays."""
        await self.settle()
        await self.dns.close()
        self.allocator.close()
        self.firewall.close()
        self.redirect.close()  # new connections from 127.0.0.1 take the nftables path meanwhile
        self._reaper.shutdown(wait=True)

    async def destroy(self) -> None:
        """Remove every sandbox, bridge and the nftables table (tests, uninstall)."""
        await self.settle()
        async with self._lock:
            await self.dns.close()
            await asyncio.to_thread(self._destroy_sync)
            self.allocator.close()
        self._reaper.shutdown(wait=True)

    def _destroy_sync(self) -> None:
        for rec in list(self.containers.values()):
            self._teardown_sync(rec, apply=False)
        for net in self.networks.values():
            if net.driver == "bridge" and net.bridge:
                links.delete_link(net.bridge)
        with contextlib.suppress(Exception):
            self.firewall.remove()
        self.firewall.close()
        self.redirect.close()

    # =========================================================================================
    # predefined networks and bridges
    # =========================================================================================
    def _pool_from_config(self, net: NetworkRecord) -> ipam.Pool:
        cfg = net.ipam_config[0]
        return ipam.Pool(
            ipam.parse_subnet(cfg["Subnet"]),
            ipam.parse_address(cfg["Gateway"]) if cfg.get("Gateway") else None,
            ipam.parse_subnet(cfg["IPRange"]) if cfg.get("IPRange") else None,
            cfg.get("AuxiliaryAddresses") or {},
            path=self.store.ipam_path(net.id),
            network=net.name,
        )

    def _by_name(self, name: str) -> NetworkRecord | None:
        for n in self.networks.values():
            if n.name == name:
                return n
        return None

    def _our_bridges(self) -> set[str]:
        return {n.bridge for n in self.networks.values() if n.driver == "bridge" and n.bridge}

    def _subnets_in_use(self, exclude: str = "") -> list[ipaddress.IPv4Network]:
        used = [p.subnet for nid, p in self.pools.items() if nid != exclude]
        used += links.host_networks(exclude_links=frozenset(self._our_bridges()))
        return used

    def _ensure_predefined(self) -> None:
        with _host_lock():
            self._ensure_predefined_locked()

    def _ensure_predefined_locked(self) -> None:
        o = self.options
        for name, driver in (("host", "host"), ("none", "null")):
            if self._by_name(name) is None:
                rec = NetworkRecord(id=new_id(), name=name, driver=driver, created=_now(), predefined=True)
                self.networks[rec.id] = rec
                self.store.save_network(rec)
        current = self._by_name("bridge")
        if o.disable_bridge:
            if current is not None and not self._active_endpoints(current.id):
                self._drop_network(current)
            return
        want_subnet: ipaddress.IPv4Network | None = None
        want_gw: ipaddress.IPv4Address | None = None
        if o.bip:
            iface = ipaddress.ip_interface(o.bip)
            want_subnet, want_gw = iface.network, iface.ip  # type: ignore[assignment]
        options = {
            "com.docker.network.bridge.default_bridge": "true",
            "com.docker.network.bridge.enable_icc": "true" if o.icc else "false",
            "com.docker.network.bridge.enable_ip_masquerade": "true" if o.ip_masq else "false",
            "com.docker.network.bridge.host_binding_ipv4": o.default_bind_ip,
            "com.docker.network.bridge.name": o.bridge_name,
            "com.docker.network.driver.mtu": str(o.mtu),
        }
        keep_id = new_id()
        if current is not None:
            keep_id = current.id  # stopped containers stay attached to "bridge" across changes
            cfg = current.ipam_config[0] if current.ipam_config else {}
            same = current.bridge == o.bridge_name and (
                want_subnet is None or (cfg.get("Subnet") == str(want_subnet) and cfg.get("Gateway") == str(want_gw))
            ) and (cfg.get("IPRange") or "") == (o.fixed_cidr or "")
            if same or self._active_endpoints(current.id):
                if not same:
                    log.warning("default bridge address settings changed but containers use it; keeping the old ones")
                if current.options != options:  # icc, masquerade, mtu, binding address: rules only
                    current.options = options
                    self.store.save_network(current)
                return
            self._drop_network(current)
        if want_subnet is None:
            want_subnet = ipam.choose_subnet(o.default_address_pools, self._subnets_in_use())
            want_gw = want_subnet.network_address + 1
        cfg = {"Subnet": str(want_subnet), "Gateway": str(want_gw)}
        if o.fixed_cidr:
            cfg["IPRange"] = o.fixed_cidr
        rec = NetworkRecord(
            id=keep_id,
            name="bridge",
            driver="bridge",
            created=_now(),
            ipam_config=[cfg],
            bridge=o.bridge_name,
            predefined=True,
            default_bridge=True,
            options=options,
        )
        self.pools[rec.id] = self._pool_from_config(rec)
        self.pools[rec.id].save()
        self.networks[rec.id] = rec
        self.store.save_network(rec)
        self._ensure_bridge(rec)  # now, under the host lock, so other daemons see its route

    def _ensure_bridge(self, net: NetworkRecord) -> None:
        pool = self.pools[net.id]
        links.ensure_bridge(net.bridge, str(pool.gateway), pool.subnet.prefixlen, mtu=net.mtu or self.options.mtu)

    def _drop_network(self, net: NetworkRecord) -> None:
        if net.driver == "bridge" and net.bridge:
            links.delete_link(net.bridge)
        self.networks.pop(net.id, None)
        pool = self.pools.pop(net.id, None)
        if pool is not None:
            pool.delete()
        self.store.delete_network(net.id)

    def _active_endpoints(self, network_id: str) -> list[ContainerRecord]:
        return [r for r in self.containers.values() if r.sandbox and network_id in r.sandbox.endpoints]

    # =========================================================================================
    # firewall
    # =========================================================================================
    def _apply_firewall(self) -> None:
        bridges = []
        for net in self.networks.values():
            if net.driver != "bridge" or net.id not in self.pools:
                continue
            bridges.append(
                BridgeRule(net.bridge, str(self.pools[net.id].subnet), net.internal, net.icc, net.masquerade)
            )
        rules = []
        for rec in self.containers.values():
            sb = rec.sandbox
            if sb is None or not sb.ports or not sb.gateway_network:
                continue
            ep = sb.endpoints.get(sb.gateway_network)
            if ep is None:
                continue
            for m in sb.ports:
                rules.append(PortRule(m.proto, m.host_ip, m.host_port, ep.ip, m.container_port))
        self.firewall.apply(bridges, rules, self._link_rules())
        if self.redirect.active:
            local = {r.host_port: (r.container_ip, r.container_port) for r in rules
                     if r.proto == "tcp" and r.host_ip in ("", "0.0.0.0", "127.0.0.1")}  # fmt: skip
            try:
                self.redirect.sync(local)
            except OSError as e:  # the nftables path still carries these connections
                log.warning("port redirect map: %s", e)

    # =========================================================================================
    # networks API
    # =========================================================================================
    def find_network(self, ref: str) -> NetworkRecord:
        """By full id, then exact name, then unique id prefix (Docker's order)."""
        if ref in self.networks:
            return self.networks[ref]
        by_name = self._by_name(ref)
        if by_name is not None:
            return by_name
        if ref:
            matches = [n for nid, n in self.networks.items() if nid.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise NotFound(f"network {ref} is ambiguous ({len(matches)} matches found based on ID prefix)")
        raise NotFound(f"network {ref} not found")

    def _containers_of(self, net: NetworkRecord) -> dict[str, dict[str, str]]:
        out = {}
        for rec in self.containers.values():
            sb = rec.sandbox
            if sb is None or sb.shared_with:
                continue
            ep = sb.endpoints.get(net.id)
            if ep is not None:
                out[rec.id] = network_container_entry(rec, ep)
            elif net.driver in ("host", "null") and rec.attachment(net.id) is not None:
                out[rec.id] = network_container_entry(rec, None, endpoint_id=sb.id)
        return out

    def inspect_network(self, ref: str, verbose: bool = False) -> dict[str, Any]:
        net = self.find_network(ref)
        return network_json(net, self._containers_of(net))

    def list_networks(self, filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        filters = self._norm_filters(filters, {"driver", "id", "label", "name", "scope", "type", "dangling"})
        out = []
        for net in sorted(self.networks.values(), key=lambda n: n.created):
            if self._matches(net, filters):
                out.append(network_json(net, {}))
        return out

    @staticmethod
    def _norm_filters(filters: dict[str, Any] | None, allowed: set[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for k, v in (filters or {}).items():
            if k not in allowed:
                raise InvalidParameter(f"invalid filter '{k}'")
            if isinstance(v, dict):  # Docker's legacy {"name": {"x": true}} form
                out[k] = [x for x, on in v.items() if on]
            elif isinstance(v, str):
                out[k] = [v]
            else:
                out[k] = list(v)
        return out

    def _matches(self, net: NetworkRecord, f: dict[str, list[str]]) -> bool:
        if "driver" in f and net.driver not in f["driver"]:
            return False
        if "id" in f and not any(_filter_match(x, net.id) for x in f["id"]):
            return False
        if "name" in f and not any(_filter_match(x, net.name) for x in f["name"]):
            return False
        if "scope" in f and "local" not in f["scope"]:
            return False
        if "type" in f:
            for t in f["type"]:
                if t not in ("custom", "builtin"):
                    raise InvalidParameter(f"invalid filter: 'type'='{t}'")
            kinds = {"custom" if net.user_defined else "builtin"}
            if not kinds & set(f["type"]):
                return False
        for lab in f.get("label", []):
            k, eq, v = lab.partition("=")
            if k not in net.labels or (eq and net.labels[k] != v):
                return False
        if "dangling" in f:
            dangling = net.user_defined and not self._active_endpoints(net.id)
            if dangling != _dangling_value(f["dangling"]):
                return False
        return True

    async def create_network(self, body: dict[str, Any]) -> dict[str, str]:
        async with self._lock:
            return await asyncio.to_thread(self._create_network_sync, body)

    def _create_network_sync(self, body: dict[str, Any]) -> dict[str, str]:
        with _host_lock():
            return self._create_network_locked(body)

    def _create_network_locked(self, body: dict[str, Any]) -> dict[str, str]:
        name = body.get("Name") or ""
        if not name:
            raise InvalidParameter("network name must not be empty")
        if "/" in name or name.strip() != name or any(c in name for c in ":\\ \t\n"):
            raise InvalidParameter(f"invalid network name {name!r}")
        driver = body.get("Driver") or "bridge"
        if self._by_name(name) is not None:
            raise Conflict(f"network with name {name} already exists")
        if driver in ("host", "null"):
            raise Forbidden(f'only one instance of "{driver}" network is allowed')
        if driver != "bridge":
            raise NotFound(f'plugin "{driver}" not found')
        if body.get("EnableIPv6"):
            raise InvalidParameter("IPv6 networks are not supported by this daemon")
        ipam_in = body.get("IPAM") or {}
        ipam_driver = ipam_in.get("Driver") or "default"
        if ipam_driver != "default":
            raise NotFound(f'plugin "{ipam_driver}" not found')
        configs = [c for c in (ipam_in.get("Config") or []) if c]
        v4 = []
        for c in configs:
            sub = c.get("Subnet") or ""
            if sub and ":" in sub:
                raise InvalidParameter("IPv6 networks are not supported by this daemon")
            v4.append(c)
        if len(v4) > 1:
            raise InvalidParameter("only one IPv4 subnet per network is supported")
        options = {str(k): str(v) for k, v in (body.get("Options") or {}).items()}
        labels = {str(k): str(v) for k, v in (body.get("Labels") or {}).items()}
        nid = new_id()
        prefix = self.options.bridge_prefix
        bridge = options.get("com.docker.network.bridge.name") or prefix + nid[: 15 - len(prefix)]
        if len(bridge) > 15:
            raise InvalidParameter(f"bridge name {bridge!r} is longer than 15 characters")
        for other in self.networks.values():
            if other.bridge == bridge:
                raise Conflict(f"bridge name {bridge} is already used by network {other.name}")
        cfg: dict[str, Any] = {}
        if v4:
            c = v4[0]
            if not c.get("Subnet"):
                if c.get("Gateway") or c.get("IPRange"):
                    raise InvalidParameter("a subnet is required when a gateway or ip-range is given")
            else:
                subnet = ipam.parse_subnet(c["Subnet"])
                for p in self.pools.values():
                    if p.subnet.overlaps(subnet):
                        raise Forbidden("Pool overlaps with other one on this address space")
                cfg["Subnet"] = str(subnet)
                if c.get("IPRange"):
                    rng = ipam.parse_subnet(c["IPRange"])
                    if not rng.subnet_of(subnet):  # type: ignore[arg-type]
                        raise InvalidParameter(f"no matching subnet for range {c['IPRange']}")
                    cfg["IPRange"] = str(rng)
                if c.get("Gateway"):
                    gw = ipam.parse_address(c["Gateway"])
                    if gw not in subnet:
                        raise InvalidParameter(f"no matching subnet for gateway {c['Gateway']}")
                    cfg["Gateway"] = str(gw)
                # else: the first address, but IPAM.Config shows only what was asked (Docker)
                if c.get("AuxiliaryAddresses"):
                    cfg["AuxiliaryAddresses"] = dict(c["AuxiliaryAddresses"])
        user_subnet = bool(cfg)
        if not cfg:
            subnet = ipam.choose_subnet(self.options.default_address_pools, self._subnets_in_use())
            cfg = {"Subnet": str(subnet), "Gateway": str(subnet.network_address + 1)}
        rec = NetworkRecord(
            id=nid,
            name=name,
            driver="bridge",
            created=_now(),
            internal=bool(body.get("Internal")),
            attachable=bool(body.get("Attachable")),
            ingress=bool(body.get("Ingress")),
            labels=labels,
            options=options,
            ipam_driver=ipam_driver,
            ipam_options=dict(ipam_in["Options"]) if isinstance(ipam_in.get("Options"), dict) else None,
            ipam_config=[cfg],
            bridge=bridge,
            user_subnet=user_subnet,
        )
        pool = self._pool_from_config(rec)
        self.pools[nid] = pool
        self.networks[nid] = rec
        try:
            pool.save()
            self.store.save_network(rec)
            self._ensure_bridge(rec)
            self._host_sysctls()
            self._apply_firewall()
        except BaseException:
            self._drop_network(rec)
            with contextlib.suppress(Exception):
                self._apply_firewall()
            raise
        return {"Id": nid, "Warning": ""}

    async def remove_network(self, ref: str) -> None:
        await self.settle()
        async with self._lock:
            net = self.find_network(ref)
            if net.predefined:
                raise Forbidden(f"{net.name} is a pre-defined network and cannot be removed")
            if self._active_endpoints(net.id):
                raise Forbidden(f"error while removing network: network {net.name} id {net.id} has active endpoints")
            await asyncio.to_thread(self._remove_network_sync, net)

    def _remove_network_sync(self, net: NetworkRecord) -> None:
        self._drop_network(net)
        self._apply_firewall()

    async def prune_networks(self, filters: dict[str, Any] | None = None) -> list[str]:
        f = self._norm_filters(filters, {"until", "label", "label!"})
        until: float | None = None
        for u in f.get("until", []):
            until = _parse_until(u)
        await self.settle()
        async with self._lock:
            gone = []
            for net in sorted(self.networks.values(), key=lambda n: n.name):
                if net.predefined or self._active_endpoints(net.id):
                    continue
                if until is not None and _created_ts(net.created) >= until:
                    continue
                if not all(_label_match(net.labels, lab) for lab in f.get("label", [])):
                    continue
                if any(_label_match(net.labels, lab) for lab in f.get("label!", [])):
                    continue
                await asyncio.to_thread(self._drop_network, net)
                gone.append(net.name)
            if gone:
                await asyncio.to_thread(self._apply_firewall)
            return gone

    # =========================================================================================
    # containers: registration
    # =========================================================================================
    def _record(self, container_id: str) -> ContainerRecord:
        rec = self.containers.get(container_id)
        if rec is None:
            raise NotFound(f"No such container: {container_id}")
        return rec

    def _mode(self, mode: str) -> str:
        return "bridge" if mode in ("", "default") else mode

    def validate(self, cfg: ContainerNetConfig) -> list[Attachment]:
        """Check a create request; returns the attachments it asks for (in order)."""
        mode = self._mode(cfg.network_mode)
        portlib.validate_bindings(cfg.port_bindings)
        for key in cfg.exposed_ports or {}:
            portlib.parse_port_key(key)
        if cfg.mac_address and not _valid_mac(cfg.mac_address):
            raise InvalidParameter(f"invalid MAC address: {cfg.mac_address}")
        files.parse_extra_hosts(cfg.extra_hosts, "0.0.0.0")
        for d in cfg.dns:
            try:
                ipaddress.ip_address(d)
            except ValueError:
                raise InvalidParameter(f"invalid IP address: {d}") from None
        if cfg.links and mode.startswith("container:"):
            raise InvalidParameter(
                "conflicting options: container type network can't be used with links. This would result in undefined behavior"
            )
        if cfg.links and mode == "host":
            raise InvalidParameter(
                "conflicting options: host type networking can't be used with links. This would result in undefined behavior"
            )
        if mode.startswith("container:"):
            if cfg.port_bindings or cfg.publish_all:
                raise InvalidParameter("conflicting options: port publishing and the container type network mode")
            if cfg.dns:
                raise InvalidParameter("conflicting options: dns and the network mode")
            if cfg.extra_hosts:
                raise InvalidParameter("conflicting options: custom host-to-IP mapping and the network mode")
            if cfg.mac_address:
                raise InvalidParameter("conflicting options: mac-address and the network mode")
            if not mode[len("container:") :]:
                raise InvalidParameter("invalid container format container:<name|id>")
            return []
        if mode == "host" and cfg.mac_address:
            raise InvalidParameter("conflicting options: mac-address and the network mode")
        primary = self.find_network(mode)
        order = [primary]
        for ref in cfg.endpoints or {}:
            net = self.find_network(ref)
            if net.id not in {n.id for n in order}:
                order.append(net)
        if len(order) > 1 and any(n.driver in ("host", "null") for n in order):
            if primary.driver == "null" or any(n.driver == "null" for n in order):
                raise InvalidParameter(
                    "container cannot be connected to multiple networks with one of the networks in private (none) mode"
                )
            raise InvalidParameter("container cannot be disconnected from host network or connected to host network")
        atts = []
        for net in order:
            ec = self._endpoint_config_for(cfg.endpoints or {}, net)
            atts.append(self._attachment(net, ec, cfg.mac_address if net is primary else ""))
        return atts

    def _endpoint_config_for(self, endpoints: dict[str, Any], net: NetworkRecord) -> dict[str, Any]:
        for ref, ec in endpoints.items():
            if ref in (net.name, net.id) or (len(ref) >= 1 and net.id.startswith(ref)):
                return ec or {}
        return {}

    def _attachment(self, net: NetworkRecord, ec: dict[str, Any], mac: str = "") -> Attachment:
        ipam_cfg = dict(ec.get("IPAMConfig") or {})
        ip = ipam_cfg.get("IPv4Address") or ""
        aliases = [a for a in (ec.get("Aliases") or []) if a]
        mac = ec.get("MacAddress") or mac
        if mac and not _valid_mac(mac):
            raise InvalidParameter(f"invalid MAC address: {mac}")
        if ip:
            if not net.user_defined:
                raise InvalidParameter("user specified IP address is supported on user defined networks only")
            if not self._has_user_subnet(net):
                raise InvalidParameter(
                    "user specified IP address is supported only when connecting to networks with user configured subnets"
                )
            addr = ipam.parse_address(ip)
            pool = self.pools[net.id]
            if addr not in (pool.ip_range or pool.subnet) and addr not in pool.subnet:
                raise InvalidParameter(f"no configured subnet or ip-range contain the IP address {ip}")
        if aliases and not net.user_defined:
            raise InvalidParameter("network-scoped alias is supported only for containers in user defined networks")
        att_links = [str(x) for x in ec.get("Links") or []]
        for spec in att_links:
            legacy_links.parse_link(spec)
        return Attachment(
            network_id=net.id,
            name=net.name,
            ipam_config={k: v for k, v in ipam_cfg.items() if v} or None,
            aliases=aliases,
            mac_address=mac,
            driver_opts=ec.get("DriverOpts") or None,
            links=att_links,
        )

    @staticmethod
    def _has_user_subnet(net: NetworkRecord) -> bool:
        return net.user_defined and net.user_subnet

    async def register(self, cfg: ContainerNetConfig) -> None:
        """Record a new container's network configuration (at create). Validates first."""
        async with self._lock:
            atts = self.validate(cfg)
            rec = ContainerRecord(
                id=cfg.id,
                name=cfg.name,
                hostname=cfg.hostname,
                domainname=cfg.domainname,
                network_mode=cfg.network_mode or "default",
                port_bindings=dict(cfg.port_bindings or {}),
                publish_all=cfg.publish_all,
                exposed_ports=dict(cfg.exposed_ports or {}),
                dns=list(cfg.dns),
                dns_search=list(cfg.dns_search),
                dns_options=list(cfg.dns_options),
                extra_hosts=list(cfg.extra_hosts),
                mac_address=cfg.mac_address,
                hosts_path=cfg.hosts_path,
                resolv_conf_path=cfg.resolv_conf_path,
                attachments=atts,
            )
            rec.links = self._resolve_links(cfg)
            old = self.containers.get(cfg.id)
            if old is not None:
                rec.sandbox = old.sandbox
            self.containers[cfg.id] = rec
            await asyncio.to_thread(self.store.save_container, rec)

    def _find_container(self, ref: str) -> ContainerRecord | None:
        """A registered container by full id, name, or unique id prefix."""
        ref = ref.lstrip("/")
        if ref in self.containers:
            return self.containers[ref]
        for rec in self.containers.values():
            if rec.name == ref:
                return rec
        matches = [r for cid, r in self.containers.items() if ref and cid.startswith(ref)]
        return matches[0] if len(matches) == 1 else None

    def _resolve_links(self, cfg: ContainerNetConfig) -> list[Link]:
        """HostConfig.Links of a container outside user-defined networks (Docker ignores them
        there: links on user networks are EndpointSettings.Links, names for the embedded DNS)."""
        out: list[Link] = []
        net = self._by_name(self._mode(cfg.network_mode)) if not cfg.network_mode.startswith("container:") else None
        if net is not None and net.user_defined:
            for spec in cfg.links:
                legacy_links.parse_link(spec)
            return out
        for spec in cfg.links:
            name, alias = legacy_links.parse_link(spec)
            child = self._find_container(name)
            seen: set[str] = set()
            while child is not None and self._mode(child.network_mode).startswith("container:") and child.id not in seen:
                seen.add(child.id)
                child = self._find_container(self._mode(child.network_mode)[len("container:") :])
            if child is None:
                raise InvalidParameter(f"could not get container for {name}: No such container: {name}")
            if self._mode(child.network_mode) == "host":
                raise InvalidParameter(
                    "conflicting options: host type networking can't be used with links. This would result in undefined behavior"
                )
            out = [lk for lk in out if lk.alias != alias]
            out.append(Link(child.id, alias, child.name))
        return out

    def links_view(self, container_id: str) -> list[str] | None:
        """HostConfig.Links as inspect shows them: ``/<child name>:/<parent name>/<alias>``."""
        rec = self.containers.get(container_id)
        if rec is None or not rec.links:
            return None
        return [f"/{lk.child_name}:/{rec.name}/{lk.alias}" for lk in rec.links]

    async def unregister(self, container: Any) -> None:
        """Forget a removed container (tears its sandbox down if still there)."""
        container_id, _ = self._ref(container)
        async with self._lock:
            rec = self.containers.get(container_id)
            if rec is None:
                return
            if rec.sandbox is not None:
                await self._teardown_locked(rec)
            self.containers.pop(container_id, None)
            await asyncio.to_thread(self.store.delete_container, container_id)

    remove = unregister  # the daemon seam's name for it

    async def rename(self, container_id: str, name: str) -> None:
        async with self._lock:
            rec = self._record(container_id)
            rec.name = name.lstrip("/")
            await asyncio.to_thread(self.store.save_container, rec)
            for parent in list(self.containers.values()):  # links follow a renamed child
                if any(lk.child_id == container_id for lk in parent.links):
                    for lk in parent.links:
                        if lk.child_id == container_id:
                            lk.child_name = rec.name
                    await asyncio.to_thread(self.store.save_container, parent)

    # =========================================================================================
    # containers: setup / teardown
    # =========================================================================================
    @staticmethod
    def _ref(container: Any) -> tuple[str, ContainerNetConfig | None]:
        """An id string, a ContainerNetConfig, or a daemon container object."""
        if isinstance(container, str):
            return container, None
        cfg = from_container(container)
        return cfg.id, cfg

    async def setup(self, container: Any, cfg: ContainerNetConfig | None = None) -> Sandbox:
        """Build the container's network before the runtime starts it.

        `container`: an id (registered before), a ContainerNetConfig, or the daemon's container
        object (its Config/HostConfig are read)."""
        container_id, derived = self._ref(container)
        cfg = cfg or derived
        if cfg is not None and cfg.id not in self.containers:
            await self.register(cfg)
        async with self._lock:
            rec = self._record(container_id)
            if cfg is not None:
                rec.name = cfg.name or rec.name
                rec.hostname = cfg.hostname or rec.hostname
                rec.hosts_path = cfg.hosts_path or rec.hosts_path
                rec.resolv_conf_path = cfg.resolv_conf_path or rec.resolv_conf_path
            if rec.sandbox is not None:
                await self._teardown_locked(rec)
            mode = self._mode(rec.network_mode)
            if mode.startswith("container:"):
                target = self.containers.get(mode[len("container:") :])
                if target is None or target.sandbox is None:
                    raise Conflict(f"cannot join network of a non running container: {mode[len('container:'):]}")
                rec.sandbox = SandboxState(id=new_id(), key=target.sandbox.key, shared_with=target.id)
                await asyncio.to_thread(self.store.save_container, rec)
                await asyncio.to_thread(self._refresh_host_files)
                sandbox = self._sandbox_view(target)
                sandbox.settings = self.settings(rec.id)
                return sandbox
            await asyncio.to_thread(self._setup_sync, rec)
            with contextlib.suppress(OSError):
                await asyncio.to_thread(self._update_parents, rec)
            if rec.sandbox is not None and rec.sandbox.dns:
                try:
                    await self.dns.attach(rec.id, rec.sandbox.key)
                except BaseException:
                    await self._teardown_locked(rec)
                    raise
            return self._sandbox_view(rec)

    def _setup_sync(self, rec: ContainerRecord) -> None:
        self._refresh_host_files()
        mode = self._mode(rec.network_mode)
        sb = SandboxState(id=new_id(), key="")
        if mode == "host":
            rec.sandbox = sb
            self.store.save_container(rec)
            return
        sb.key = os.path.join(self.netns_dir, rec.id)
        if netns.is_mounted(sb.key) or os.path.exists(sb.key):
            netns.remove(sb.key)
        netns.create(sb.key)
        rec.sandbox = sb
        try:
            n = 0
            gw_net = self._gateway_choice(self.networks.get(a.network_id) for a in rec.attachments)
            for att in rec.attachments:
                net = self.networks.get(att.network_id)
                if net is None:
                    raise NotFound(f"network {att.name} not found")
                if net.driver != "bridge":
                    continue
                self._add_endpoint(rec, sb, net, att, f"eth{n}", net.id == gw_net)
                n += 1
                sb.next_if = n
            if not n:
                links.loopback_up(sb.key)  # --network none (or no bridge network): only lo
            self._link_children(rec, sb)
            self._publish(rec, sb)
            sb.dns = any(self.networks[nid].user_defined for nid in sb.endpoints)
            self._apply_firewall()
            self.store.save_container(rec)
        except BaseException:
            self._teardown_sync(rec)
            raise

    # --- legacy links ---------------------------------------------------------------------
    def _default_bridge(self) -> NetworkRecord | None:
        for n in self.networks.values():
            if n.default_bridge:
                return n
        return None

    def _link_children(self, rec: ContainerRecord, sb: SandboxState) -> None:
        """A parent on the default bridge starts: each child must run there; its hosts line is
        recorded (Docker's messages when not)."""
        bridge = self._default_bridge()
        if not rec.links or bridge is None or bridge.id not in sb.endpoints:
            return
        for lk in rec.links:
            child = self.containers.get(lk.child_id)
            if child is None:  # removed since: Docker keeps the link, and refuses to start
                raise SystemError_(f"Cannot link to a non running container: /{lk.child_name} AS /{rec.name}/{lk.alias}")
            if child.attachment(bridge.id) is None:
                raise SystemError_(f"Cannot link to /{child.name}, as it does not belong to the default network")
            ep = child.sandbox.endpoints.get(bridge.id) if child.sandbox else None
            if ep is None:
                raise SystemError_(f"Cannot link to a non running container: /{child.name} AS /{rec.name}/{lk.alias}")
            sb.link_hosts[lk.alias] = [legacy_links.hosts_names(lk.alias, child.hostname or child.id[:12], child.name), ep.ip]

    def _update_parents(self, child: ContainerRecord) -> list[ContainerRecord]:
        """A child started (maybe with a new address): its running parents' hosts lines follow."""
        bridge = self._default_bridge()
        ep = child.sandbox.endpoints.get(bridge.id) if bridge and child.sandbox else None
        if ep is None:
            return []
        changed = []
        for parent in self.containers.values():
            psb = parent.sandbox
            if psb is None or parent.id == child.id:
                continue
            for lk in parent.links:
                if lk.child_id == child.id and lk.alias in psb.link_hosts and psb.link_hosts[lk.alias][1] != ep.ip:
                    psb.link_hosts[lk.alias][1] = ep.ip
                    if parent not in changed:
                        changed.append(parent)
        for parent in changed:
            self.store.save_container(parent)
            self._write_hosts(parent)
        return changed

    def _link_rules(self) -> list[LinkRule]:
        """With icc=false on the default bridge, a parent may still reach its children's exposed
        ports (Docker's holes in the wall for links)."""
        bridge = self._default_bridge()
        if bridge is None or bridge.icc:
            return []
        out = []
        for parent in self.containers.values():
            pep = parent.sandbox.endpoints.get(bridge.id) if parent.sandbox else None
            if pep is None:
                continue
            for lk in parent.links:
                child = self.containers.get(lk.child_id)
                cep = child.sandbox.endpoints.get(bridge.id) if child and child.sandbox else None
                if child is None or cep is None:
                    continue
                for key in child.exposed_ports:
                    lo, hi, proto = portlib.parse_port_key(key)
                    out.append(LinkRule(bridge.bridge, pep.ip, cep.ip, proto, lo, hi))
        return out

    def _add_endpoint(
        self, rec: ContainerRecord, sb: SandboxState, net: NetworkRecord, att: Attachment, ifname: str, gateway: bool
    ) -> EndpointState:
        pool = self.pools[net.id]
        eid = new_id()
        wanted = (att.ipam_config or {}).get("IPv4Address") or None
        addr = pool.allocate(eid, wanted)
        ep = EndpointState(
            network_id=net.id,
            endpoint_id=eid,
            ip=str(addr),
            prefixlen=pool.subnet.prefixlen,
            gateway="" if net.internal else str(pool.gateway),
            mac=att.mac_address or ipam.mac_for(addr),
            veth=_veth_name(),
            ifname=ifname,
            aliases=list(att.aliases),
        )
        try:
            for _attempt in range(5):
                try:
                    links.create_veth(
                        ep.veth,
                        net.bridge,
                        sb.key,
                        ifname,
                        ep.mac,
                        ep.ip,
                        ep.prefixlen,
                        ep.gateway if gateway else None,
                        mtu=net.mtu or self.options.mtu,
                    )
                    break
                except FileExistsError:
                    ep.veth = _veth_name()
            else:
                raise Conflict("could not find a free veth name")
        except BaseException:
            pool.release(addr)
            raise
        sb.endpoints[net.id] = ep
        if gateway:
            sb.gateway_network = net.id
        return ep

    def _publish(self, rec: ContainerRecord, sb: SandboxState) -> None:
        if not sb.gateway_network:
            return
        net = self.networks[sb.gateway_network]
        default_ip = net.host_binding_ip or self.options.default_bind_ip
        for w in portlib.plan(rec.port_bindings, rec.exposed_ports, rec.publish_all, default_ip):
            try:
                sb.ports.append(self.allocator.reserve(w, rec.id))
            except portlib.PortInUse as e:
                ep = sb.endpoints[sb.gateway_network]
                raise portlib.PortInUse(
                    f"driver failed programming external connectivity on endpoint {rec.name} ({ep.endpoint_id}): {e.message}"
                ) from None

    async def teardown(self, container: Any) -> None:
        """Release the container's network after it stopped (idempotent)."""
        container_id, _ = self._ref(container)
        async with self._lock:
            rec = self.containers.get(container_id)
            if rec is None or rec.sandbox is None:
                return
            await self._teardown_locked(rec)

    async def _teardown_locked(self, rec: ContainerRecord) -> None:
        await self.dns.detach(rec.id)
        await asyncio.to_thread(self._teardown_sync, rec, True, True)

    def _teardown_sync(self, rec: ContainerRecord, apply: bool = True, background: bool = False) -> None:
        sb = rec.sandbox
        if sb is None:
            return
        self.allocator.release_owner(rec.id)
        if sb.key and not sb.shared_with:
            with contextlib.suppress(OSError):
                netns.remove(sb.key)
        for nid, ep in sb.endpoints.items():
            if background:
                fut = self._reaper.submit(self._reap, nid, ep.veth, ep.endpoint_id)
                self._reaping.add(fut)
                fut.add_done_callback(self._reaping.discard)
            else:
                self._reap(nid, ep.veth, ep.endpoint_id)
        rec.sandbox = None
        if apply:
            with contextlib.suppress(Exception):
                self._apply_firewall()
        if rec.id in self.containers:
            self.store.save_container(rec)

    def _reap(self, network_id: str, veth: str, endpoint_id: str) -> None:
        """Delete a released endpoint's veth, then free its address (never the other way round:
        the address, and so the MAC, must not appear twice on the bridge)."""
        try:
            links.delete_link(veth)
        except Exception as e:  # noqa: BLE001 - reconcile removes strays at the next start
            log.warning("deleting %s: %s", veth, e)
        pool = self.pools.get(network_id)
        if pool is not None:
            pool.release_owner(endpoint_id)

    # =========================================================================================
    # connect / disconnect
    # =========================================================================================
    async def connect(self, ref: str, container: Any, endpoint_config: dict[str, Any] | None = None) -> bool:
        """Attach a container to a network: at once if it runs, else from its next start.
        `container`: an id, a ContainerNetConfig or the daemon's container object. True if it was
        attached now (Docker then logs a network "connect" event; for a stopped one it does at start)."""
        container_id, cfg = self._ref(container)
        if cfg is not None and container_id not in self.containers:
            await self.register(cfg)
        async with self._lock:
            rec = self._record(container_id)
            net = self.find_network(ref)
            mode = self._mode(rec.network_mode)
            if net.driver == "host" or mode == "host":
                raise InvalidParameter("container cannot be disconnected from host network or connected to host network")
            if mode.startswith("container:"):
                raise InvalidParameter(
                    "Container sharing network namespace with another container or host cannot be connected to any other network"
                )
            if net.driver == "null" or any(self.networks.get(a.network_id, net).driver == "null" for a in rec.attachments):
                raise InvalidParameter(
                    "container cannot be connected to multiple networks with one of the networks in private (none) mode"
                )
            if rec.attachment(net.id) is not None:
                if rec.sandbox is None:
                    return False  # Docker: connecting a stopped container again changes nothing
                raise Forbidden(f"endpoint with name {rec.name} already exists in network {net.name}")
            att = self._attachment(net, endpoint_config or {})
            sb = rec.sandbox
            if sb is None:
                rec.attachments.append(att)
                await asyncio.to_thread(self.store.save_container, rec)
                return False
            await asyncio.to_thread(self._connect_sync, rec, sb, net, att)
            if net.user_defined and not self.dns.attached(rec.id):
                sb.dns = True
                with contextlib.suppress(OSError):
                    await self.dns.attach(rec.id, sb.key)
            await asyncio.to_thread(self._write_hosts, rec)
            return True

    def _connect_sync(self, rec: ContainerRecord, sb: SandboxState, net: NetworkRecord, att: Attachment) -> None:
        used = {ep.ifname for ep in sb.endpoints.values()}
        n = sb.next_if
        while f"eth{n}" in used:
            n += 1
        old_gw = sb.gateway_network
        gw_net = self._gateway_choice([net, *(self.networks.get(nid) for nid in sb.endpoints)])
        ep = self._add_endpoint(rec, sb, net, att, f"eth{n}", gw_net == net.id and not old_gw)
        sb.next_if = n + 1
        rec.attachments.append(att)
        try:
            if gw_net == net.id and old_gw:  # the new network sorts first: the default route moves
                links.set_default_route(sb.key, ep.ifname, ep.gateway)
                sb.gateway_network = net.id
            if not old_gw and sb.gateway_network:
                self._publish(rec, sb)
            self._apply_firewall()
            self.store.save_container(rec)
        except BaseException:
            self._remove_endpoint(rec, sb, net.id)
            rec.attachments.remove(att)
            if old_gw and old_gw in sb.endpoints and sb.gateway_network != old_gw:
                with contextlib.suppress(Exception):
                    links.set_default_route(sb.key, sb.endpoints[old_gw].ifname, sb.endpoints[old_gw].gateway)
            sb.gateway_network = old_gw
            if not old_gw:
                self.allocator.release_owner(rec.id)
                sb.ports = []
            raise

    def _gateway_choice(self, nets: Iterable[NetworkRecord | None]) -> str:
        """The network that gives a container its default route, as Docker orders a sandbox's
        endpoints: internal networks last, then by network name (re-decided at every connect and
        disconnect). Published ports follow it, so replies leave the way requests came in."""
        cands = [n for n in nets if n is not None and n.driver == "bridge" and not n.internal]
        return min(cands, key=lambda n: n.name).id if cands else ""

    async def disconnect(self, ref: str, container_id: str, force: bool = False) -> bool:
        """Detach a container from a network (running: at once); True if a live endpoint was removed."""
        async with self._lock:
            rec = self.containers.get(container_id)
            if rec is None:
                if force:
                    return False
                raise NotFound(f"No such container: {container_id}")
            try:
                net = self.find_network(ref)
            except NotFound:
                if not force:
                    raise
                return False
            if net.driver == "host":
                raise InvalidParameter("container cannot be disconnected from host network or connected to host network")
            att = rec.attachment(net.id)
            if att is None:
                raise Forbidden(f"container {rec.id} is not connected to network {net.name}")
            rec.attachments.remove(att)
            sb = rec.sandbox
            live = sb is not None and net.id in sb.endpoints
            if sb is not None and net.id in sb.endpoints:
                await asyncio.to_thread(self._disconnect_sync, rec, sb, net.id)
                if not any(self.networks[n].user_defined for n in sb.endpoints if n in self.networks):
                    sb.dns = False
                    await self.dns.detach(rec.id)
                await asyncio.to_thread(self._write_hosts, rec)
            await asyncio.to_thread(self.store.save_container, rec)
            return live

    def attached_networks(self, container_id: str) -> list[tuple[str, str, str]]:
        """(network id, name, driver) of every network a running container is attached to now:
        what Docker's network "connect" events at start and "disconnect" events at stop name."""
        rec = self.containers.get(container_id)
        if rec is None or rec.sandbox is None or rec.sandbox.shared_with:
            return []
        out = []
        for att in rec.attachments:
            net = self.networks.get(att.network_id)
            if net is not None and (att.network_id in rec.sandbox.endpoints or net.driver in ("host", "null")):
                out.append((net.id, net.name, net.driver))
        return out

    def _disconnect_sync(self, rec: ContainerRecord, sb: SandboxState, network_id: str) -> None:
        was_gateway = sb.gateway_network == network_id
        self._remove_endpoint(rec, sb, network_id)
        if was_gateway:
            sb.gateway_network = self._gateway_choice(self.networks.get(nid) for nid in sb.endpoints)
            if sb.gateway_network:
                ep = sb.endpoints[sb.gateway_network]
                links.set_default_route(sb.key, ep.ifname, ep.gateway)
            else:
                self.allocator.release_owner(rec.id)
                sb.ports = []
        self._apply_firewall()

    def _remove_endpoint(self, rec: ContainerRecord, sb: SandboxState, network_id: str) -> None:
        ep = sb.endpoints.pop(network_id, None)
        if ep is None:
            return
        with contextlib.suppress(Exception):
            links.delete_inside(sb.key, ep.ifname)
        with contextlib.suppress(Exception):
            links.delete_link(ep.veth)
        pool = self.pools.get(network_id)
        if pool is not None:
            pool.release_owner(ep.endpoint_id)
        if sb.gateway_network == network_id:
            sb.gateway_network = ""

    # =========================================================================================
    # views and files
    # =========================================================================================
    def settings(self, container_id: str) -> dict[str, Any]:
        """NetworkSettings for GET /containers/{id}/json."""
        rec = self._record(container_id)
        view = network_settings(rec, self.networks)
        if rec.sandbox is not None and rec.sandbox.shared_with:
            view["SandboxKey"] = rec.sandbox.key
        return view

    def port_summary(self, container_id: str) -> list[dict[str, Any]]:
        rec = self.containers.get(container_id)
        if rec is None:
            return []
        return portlib.ports_summary(rec.sandbox.ports if rec.sandbox else [], rec.exposed_ports)

    def sandbox_key(self, container_id: str) -> str | None:
        rec = self.containers.get(container_id)
        if rec is None or rec.sandbox is None or not rec.sandbox.key:
            return None
        return rec.sandbox.key

    def _refresh_host_files(self) -> None:
        """Re-read the host's resolv.conf and hosts if they changed. Blocks: worker threads only."""
        for path in (self.options.resolv_conf, self.options.hosts_file):
            try:
                mtime = os.stat(path).st_mtime_ns
                if self._host_files.get(path, (None, ""))[0] == mtime:
                    continue
                with open(path) as f:
                    self._host_files[path] = (mtime, f.read())
            except OSError:
                self._host_files[path] = (0, "")

    def _host_text(self, path: str) -> str:
        """The cached content (see _refresh_host_files): safe on the event loop."""
        return self._host_files.get(path, (0, ""))[1]

    def _host_gateway(self) -> str | None:
        b = self._by_name("bridge")
        if b is None or b.id not in self.pools:
            return None
        return str(self.pools[b.id].gateway)

    def _hosts_text(self, rec: ContainerRecord) -> str:
        extra = files.parse_extra_hosts(rec.extra_hosts, self._host_gateway())
        if rec.sandbox is not None:
            extra += [(names, ip) for names, ip in rec.sandbox.link_hosts.values()]
        hostname = rec.hostname or rec.id[:12]
        if self._mode(rec.network_mode) == "host":
            return files.hosts("", "", [], extra, host_text=self._host_text(self.options.hosts_file))
        addrs = [ep.ip for ep in rec.sandbox.endpoints.values()] if rec.sandbox else []
        return files.hosts(hostname, rec.domainname, addrs, extra)

    def _resolv_text(self, rec: ContainerRecord) -> str:
        host = self._host_text(self.options.resolv_conf)
        mode = self._mode(rec.network_mode)
        dns = rec.dns or self.options.dns
        search = rec.dns_search or self.options.dns_search
        opts = rec.dns_options or self.options.dns_opts
        if mode == "host":
            kind = "host"
        elif rec.sandbox is not None and rec.sandbox.dns:
            kind = "user"
        else:
            kind = "bridge"
        return files.resolv_conf(host, kind, dns, search, opts)

    def _sandbox_view(self, rec: ContainerRecord) -> Sandbox:
        sb = rec.sandbox
        return Sandbox(
            netns_path=(sb.key or None) if sb else None,
            hostname=rec.hostname or rec.id[:12],
            hosts=self._hosts_text(rec),
            resolv_conf=self._resolv_text(rec),
            settings=self.settings(rec.id),
            links=[(lk.child_id, lk.alias, sb.link_hosts[lk.alias][1]) for lk in rec.links if sb and lk.alias in sb.link_hosts],
        )

    @staticmethod
    def _write_in_place(path: str, text: str) -> None:
        # in place (no rename): the file is bind-mounted into the container
        with open(path, "w") as f:
            f.write(text)

    def _write_hosts(self, rec: ContainerRecord) -> None:
        """After connect/disconnect: rewrite the container's hosts file (the daemon wrote it at
        start from Sandbox.hosts) in place, so the bind mount inside sees the change."""
        if rec.hosts_path and rec.sandbox is not None and os.path.exists(rec.hosts_path):
            self._write_in_place(rec.hosts_path, self._hosts_text(rec))

    # =========================================================================================
    # embedded DNS callbacks (event loop)
    # =========================================================================================
    def _peers(self, cid: str) -> list[tuple[ContainerRecord, NetworkRecord, EndpointState]]:
        rec = self.containers.get(cid)
        if rec is None or rec.sandbox is None:
            return []
        # copies: worker threads may be adding an endpoint while the loop answers a query
        mine = [nid for nid in list(rec.sandbox.endpoints) if nid in self.networks and self.networks[nid].user_defined]
        out = []
        for other in list(self.containers.values()):
            sb = other.sandbox
            if sb is None:
                continue
            for nid in mine:
                ep = sb.endpoints.get(nid)
                if ep is not None:
                    out.append((other, self.networks[nid], ep))
        return out

    def _dns_lookup(self, cid: str, name: str) -> list[str] | None:
        name = name.rstrip(".").lower()
        rec = self.containers.get(cid)
        # a link on a user network (EndpointSettings.Links "target:alias") is a name only the
        # linking container resolves: the target's address on that network
        for att in list(rec.attachments) if rec is not None else []:
            for spec in att.links:
                with contextlib.suppress(InvalidParameter):
                    target, alias = legacy_links.parse_link(spec)
                    if alias.lower() == name or f"{alias}.{att.name}".lower() == name:
                        found = self._match_peers(cid, target.lower(), att.network_id)
                        if found:
                            return found
        return self._match_peers(cid, name) or None

    def _match_peers(self, cid: str, name: str, network_id: str = "") -> list[str]:
        found: list[str] = []
        for other, net, ep in self._peers(cid):
            if network_id and net.id != network_id:
                continue
            names = {other.name.lower(), other.id[:12]} | {a.lower() for a in ep.aliases}
            suffix = "." + net.name.lower()
            base = name[: -len(suffix)] if name.endswith(suffix) else name
            if (name in names or base in names) and ep.ip not in found:
                found.append(ep.ip)
        return found

    def _dns_reverse(self, cid: str, ip: str) -> str | None:
        for other, net, ep in self._peers(cid):
            if ep.ip == ip:
                return f"{other.name}.{net.name}"
        return None

    def _dns_upstreams(self, cid: str) -> list[tuple[str, int]]:
        rec = self.containers.get(cid)
        servers: list[str]
        if rec is not None and rec.dns:
            servers = list(rec.dns)
        elif self.options.dns:
            servers = list(self.options.dns)
        elif self.options.dns_upstreams:
            servers = list(self.options.dns_upstreams)
        else:
            servers = files.upstreams(self._host_text(self.options.resolv_conf))
        out = []
        for s in servers:
            host, _, port = s.rpartition(":") if s.count(":") == 1 else (s, "", "")
            out.append((host or s, int(port) if port else 53))
        return out


def _parse_until(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    units = {"s": 1, "m": 60, "h": 3600}
    if value and value[-1] in units:
        try:
            return time.time() - float(value[:-1]) * units[value[-1]]
        except ValueError:
            pass
    try:
        from datetime import datetime

        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise InvalidParameter(f"invalid filter 'until={value}'") from None


def _created_ts(created: str) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(created[:26].rstrip("Z") + "+00:00").timestamp()
    except ValueError:
        return 0.0


def _filter_match(pattern: str, value: str) -> bool:
    """Docker's filters.Match: an exact match, or the value is a (regular expression) search hit;
    an invalid expression matches nothing (`name=^web$` is a common way to ask for one name)."""
    import re

    if pattern == value:
        return True
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return False


def _dangling_value(values: list[str]) -> bool:
    if len(values) > 1:
        raise InvalidParameter('got more than one value for filter key "dangling"')
    if values[0] in ("1", "true"):
        return True
    if values[0] in ("0", "false"):
        return False
    raise InvalidParameter("invalid value for filter 'dangling', must be \"true\" (or \"1\"), or \"false\" (or \"0\")")


def _label_match(labels: dict[str, str], spec: str) -> bool:
    k, eq, v = spec.partition("=")
    return k in labels and (not eq or labels[k] == v)
