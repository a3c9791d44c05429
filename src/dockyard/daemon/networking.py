"""The daemon's one seam to networking: `prepare(container)` before the runtime creates the
container, `release(container)` after it stopped, plus the /networks backend (`service`).

`prepare` returns a `Sandbox`: the network namespace the runtime should join (None: a new one
with only `lo`; "host": the host's), the content of /etc/hosts and /etc/resolv.conf, and the
NetworkSettings to show in inspect. When the network layer (`dockyard.network.service.
NetworkService`) is installed it does the work for bridge and user networks; without it every
non-host, non-container network mode gets a private namespace with only `lo`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
from typing import Any

from dockyard.daemon.config import DaemonConfig
from dockyard.errors import Conflict, InvalidParameter, NotFound

log = logging.getLogger("dockyard.networking")

DEFAULT_DNS = ["8.8.8.8", "8.8.4.4"]
HOSTS_HEADER = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)


@dataclasses.dataclass
class Sandbox:
    netns: str | None  # path of a namespace to join, "host", or None for a fresh one
    hosts: str
    resolv_conf: str
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)  # NetworkSettings fields to set
    env: list[str] = dataclasses.field(default_factory=list)  # legacy links' variables (merge_env)


def filter_resolv_conf(text: str, keep_loopback: bool = False) -> str:
    """The host's resolv.conf as Docker passes it on: loopback nameservers dropped (they mean
    nothing inside the container's namespace); Google's resolvers if nothing is left."""
    lines, servers = [], 0
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "nameserver" and len(parts) > 1:
            try:
                if not keep_loopback and ipaddress.ip_address(parts[1].split("%")[0]).is_loopback:
                    continue
            except ValueError:
                continue
            servers += 1
        lines.append(line)
    if servers == 0:
        lines += [f"nameserver {ip}" for ip in DEFAULT_DNS]
    return "\n".join(lines).strip() + "\n"


def resolv_conf_for(host_resolv: str, host_config: dict[str, Any], host_network: bool) -> str:
    dns = host_config.get("Dns") or []
    search = host_config.get("DnsSearch") or []
    opts = host_config.get("DnsOptions") or []
    if not dns and not search and not opts:
        return filter_resolv_conf(host_resolv, keep_loopback=host_network)
    base = filter_resolv_conf(host_resolv, keep_loopback=host_network)
    out = []
    keep = [ln for ln in base.splitlines() if ln.split()[:1] not in (["nameserver"], ["search"], ["options"])]
    out += keep
    if search:
        out.append("search " + " ".join(search))
    else:
        out += [ln for ln in base.splitlines() if ln.startswith("search ")]
    if dns:
        out += [f"nameserver {d}" for d in dns]
    else:
        out += [ln for ln in base.splitlines() if ln.startswith("nameserver ")]
    if opts:
        out.append("options " + " ".join(opts))
    else:
        out += [ln for ln in base.splitlines() if ln.startswith("options ")]
    return "\n".join(out).strip() + "\n"


def hosts_for(hostname: str, domainname: str, ip: str | None, extra_hosts: list[str]) -> str:
    text = HOSTS_HEADER
    for entry in extra_hosts:
        sep = "=" if "=" in entry else ":" if ":" in entry else None
        if sep is None:
            continue
        name, addr = entry.split(sep, 1)
        text += f"{addr}\t{name}\n"
    if ip:
        names = f"{hostname}.{domainname} {hostname}" if domainname else hostname
        text += f"{ip}\t{names}\n"
    return text


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


class Networking:
    def __init__(self, config: DaemonConfig, daemon: Any) -> None:
        self.config = config
        self.daemon = daemon
        # The network layer: dockyard.network.service.NetworkService (docs/network.md). Without
        # it (pyroute2/libnftables missing) every non-host, non-container network mode gets a
        # private namespace with only `lo`.
        self.service: Any = None
        try:
            from dockyard.network.service import NetworkService
        except ImportError as e:  # pragma: no cover - a broken install
            log.error("networking disabled: %s", e)
        else:
            self.service = NetworkService(config.data_root, config.exec_root, dict(config.network))

    async def start(self) -> None:
        if self.service is not None:
            # after reconcile: the containers still running keep their network, the rest is freed
            await self.service.start([c.id for c in self.daemon.store.all() if c.state.running])

    async def register(self, c: Any, networking_config: dict[str, Any] | None) -> None:
        """At create: validate the network part (Docker's errors) and record it, with the
        endpoint config of NetworkingConfig (aliases, --ip)."""
        if self.service is None:
            return
        from dockyard.network.config import from_container

        cfg = from_container(c)
        eps = dict((networking_config or {}).get("EndpointsConfig") or {})
        if "default" in eps:
            # the Docker CLI keys the endpoint by the network mode it sent: "default" is the bridge
            eps.setdefault("bridge", eps.pop("default") or {})
            eps.pop("default", None)
        cfg.endpoints = eps
        await self.service.register(cfg)

    async def close(self) -> None:
        if self.service is not None and hasattr(self.service, "close"):
            await self.service.close()

    def validate_mode(self, host_config: dict[str, Any]) -> None:
        mode = host_config.get("NetworkMode") or "default"
        if mode.startswith("container:"):
            ref = mode.split(":", 1)[1]
            if not ref:
                raise InvalidParameter("Invalid network mode: invalid container format container:<name|id>")
            if host_config.get("PortBindings"):
                raise InvalidParameter("conflicting options: port publishing and the container type network mode")
        if mode == "host" and host_config.get("PortBindings"):
            pass  # Docker warns and ignores published ports in host mode

    async def prepare(self, c: Any) -> Sandbox:
        hc = c.host_config
        mode = hc.get("NetworkMode") or "default"
        host_resolv = await _to_thread(_read, "/etc/resolv.conf")
        if mode == "host" and self.service is None:
            hosts = await _to_thread(_read, "/etc/hosts")
            return Sandbox("host", hosts or HOSTS_HEADER, resolv_conf_for(host_resolv, hc, True),
                           {"SandboxKey": "", "Networks": {"host": endpoint_settings()}})  # fmt: skip
        if mode.startswith("container:"):
            other = self.daemon.store.find(mode.split(":", 1)[1])
            if other is None:
                raise NotFound(f"No such container: {mode.split(':', 1)[1]}")
            if not other.state.running:
                raise Conflict(f"cannot join network of a non running container: {other.id}")
            hosts = await _to_thread(_read, other.hosts_path)
            resolv = await _to_thread(_read, other.resolv_conf_path)
            return Sandbox(f"/proc/{other.state.pid}/ns/net", hosts, resolv, {"SandboxKey": "", "Networks": {}})
        if self.service is not None:
            sandbox = await self.service.setup(c)
            if sandbox.links:
                sandbox.env = self._link_env(c, sandbox.links)
            self._events(c, "connect", self.service.attached_networks(c.id))
            return sandbox
        # no network layer (or --network none): a private namespace with only lo
        hosts = hosts_for(c.hostname, c.config.get("Domainname") or "", None, hc.get("ExtraHosts") or [])
        nets = {"none": endpoint_settings()} if mode == "none" else {}
        return Sandbox(None, hosts, resolv_conf_for(host_resolv, hc, False), {"Networks": nets})

    async def release(self, c: Any) -> None:
        mode = c.host_config.get("NetworkMode") or "default"
        if self.service is not None and not mode.startswith("container:"):
            attached = self.service.attached_networks(c.id)
            try:
                await self.service.teardown(c)
            except Exception as e:  # noqa: BLE001 - release must not fail the exit path
                log.warning("network teardown of %s: %s", c.id[:12], e)
            self._events(c, "disconnect", attached)

    def _events(self, c: Any, action: str, networks: list[tuple[str, str, str]]) -> None:
        """Docker's network events when a container joins its networks at start ("connect") and
        leaves them at stop ("disconnect"): actor the network, attributes container, name, type."""
        publish = getattr(getattr(self.daemon, "events", None), "publish", None)
        if publish is None:
            return
        for nid, name, driver in networks:
            publish("network", action, nid, {"container": c.id, "name": name, "type": driver})

    def _link_env(self, c: Any, targets: list[tuple[str, str, str]]) -> list[str]:
        """Environment variables of legacy links (--link on the default bridge)."""
        from dockyard.network import legacy_links

        env: list[str] = []
        for child_id, alias, ip in targets:
            child = self.daemon.store.find(child_id)
            if child is None:
                continue
            env += legacy_links.link_env(
                c.name, alias, ip, child.config.get("ExposedPorts"), list(child.config.get("Env") or [])
            )
        return env

    def links_view(self, c: Any) -> list[str] | None:
        """HostConfig.Links for inspect, Docker's way: "/child:/parent/alias" for each child that
        still exists."""
        fn = getattr(self.service, "links_view", None)
        return fn(c.id) if fn is not None else c.host_config.get("Links")

    async def forget(self, c: Any) -> None:
        """The container is removed: drop what the network layer still keeps for it."""
        if self.service is None:
            return
        fn = getattr(self.service, "unregister", None) or getattr(self.service, "remove", None)
        if fn is not None:
            try:
                await fn(c)
            except Exception as e:  # noqa: BLE001
                log.warning("network unregister of %s: %s", c.id[:12], e)


def merge_link_env(env: list[str], link_env: list[str], config_env: list[str] | None) -> list[str]:
    """The process environment with legacy links' variables: after PATH/HOSTNAME/TERM, before
    the container's own variables, which win."""
    from dockyard.network import legacy_links

    return legacy_links.merge_env(env, link_env, config_env)


def endpoint_settings() -> dict[str, Any]:
    return {
        "IPAMConfig": None,
        "Links": None,
        "Aliases": None,
        "NetworkID": "",
        "EndpointID": "",
        "Gateway": "",
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "MacAddress": "",
        "DriverOpts": None,
    }


async def _to_thread(fn: Any, *args: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(fn, *args)


def write_files(container_dir: str, hostname: str, sandbox: Sandbox) -> dict[str, str]:
    """Write hostname, hosts and resolv.conf into the container's directory (blocking)."""
    from dockyard.util import atomic_write

    paths = {
        "/etc/hostname": os.path.join(container_dir, "hostname"),
        "/etc/hosts": os.path.join(container_dir, "hosts"),
        "/etc/resolv.conf": os.path.join(container_dir, "resolv.conf"),
    }
    atomic_write(paths["/etc/hostname"], hostname + "\n")
    atomic_write(paths["/etc/hosts"], sandbox.hosts)
    atomic_write(paths["/etc/resolv.conf"], sandbox.resolv_conf)
    return paths
