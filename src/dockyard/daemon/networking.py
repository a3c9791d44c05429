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
import logging
import os
from typing import Any

from dockyard.daemon.config import DaemonConfig
from dockyard.errors import Conflict, InvalidParameter, NotFound
from dockyard.network import files

log = logging.getLogger("dockyard.networking")

@dataclasses.dataclass
class Sandbox:
    netns: str | None  # path of a namespace to join, "host", or None for a fresh one
    hosts: str
    resolv_conf: str
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)  # NetworkSettings fields to set
    env: list[str] = dataclasses.field(default_factory=list)  # legacy links' variables (merge_env)


def _resolv_conf(host_resolv: str, host_config: dict[str, Any], mode: str) -> str:
    return files.resolv_conf(host_resolv, mode, host_config.get("Dns"), host_config.get("DnsSearch"),
                             host_config.get("DnsOptions"))


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
            return Sandbox("host", hosts or files.DEFAULT_HOSTS, _resolv_conf(host_resolv, hc, "host"),
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
        extra = files.parse_extra_hosts(hc.get("ExtraHosts"), None)
        hosts = files.hosts(c.hostname, c.config.get("Domainname") or "", [], extra)
        nets = {"none": endpoint_settings()} if mode == "none" else {}
        return Sandbox(None, hosts, _resolv_conf(host_resolv, hc, "bridge"), {"Networks": nets})

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
