"""The container record: what `config.v2.json` and `hostconfig.json` hold, its state machine, and
its Docker-shaped views (`inspect`, the `/containers/json` summary).

A container is plain data plus per-container synchronisation (an operation lock that serialises
start/stop/rm/... on one container, and events that wake `wait` callers). Verbs live elsewhere
(daemon/lifecycle.py, daemon/remove.py, ...); this module only knows the record.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import time
from typing import Any

from dockyard.daemon import timeutil

# state names, as Docker's State.Status
CREATED, RUNNING, PAUSED, RESTARTING, REMOVING, EXITED, DEAD = (
    "created", "running", "paused", "restarting", "removing", "exited", "dead",
)  # fmt: skip


@dataclasses.dataclass
class State:
    running: bool = False
    paused: bool = False
    restarting: bool = False
    oom_killed: bool = False
    removing: bool = False
    dead: bool = False
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    started_at: str = timeutil.ZERO_TIME
    finished_at: str = timeutil.ZERO_TIME
    # State.Health {Status, FailingStreak, Log} once a health check ran (daemon/health.py); kept
    # after the container stops, as Docker keeps it
    health: dict[str, Any] | None = None

    @property
    def status(self) -> str:
        if self.running:
            if self.paused:
                return PAUSED
            if self.restarting:
                return RESTARTING
            return RUNNING
        if self.removing:
            return REMOVING
        if self.dead:
            return DEAD
        if self.started_at == timeutil.ZERO_TIME:
            return CREATED
        return EXITED

    def human(self, now: float | None = None) -> str:
        """The `Status` column of `docker ps`."""
        now = time.time() if now is None else now
        if self.running:
            up = timeutil.human_duration(now - timeutil.parse_ns(self.started_at) / 1e9)
            if self.paused:
                return f"Up {up} (Paused)"
            if self.restarting:
                ago = timeutil.human_duration(now - timeutil.parse_ns(self.finished_at) / 1e9)
                return f"Restarting ({self.exit_code}) {ago} ago"
            if self.health is not None:
                status = self.health.get("Status") or "unhealthy"
                return f"Up {up} ({'health: starting' if status == 'starting' else status})"
            return f"Up {up}"
        if self.removing:
            return "Removal In Progress"
        if self.dead:
            return "Dead"
        if self.started_at == timeutil.ZERO_TIME:
            return "Created"
        if self.finished_at == timeutil.ZERO_TIME:
            return ""
        ago = timeutil.human_duration(now - timeutil.parse_ns(self.finished_at) / 1e9)
        return f"Exited ({self.exit_code}) {ago} ago"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Status": self.status,
            "Running": self.running,
            "Paused": self.paused,
            "Restarting": self.restarting,
            "OOMKilled": self.oom_killed,
            "Dead": self.dead,
            "Pid": self.pid,
            "ExitCode": self.exit_code,
            "Error": self.error,
            "StartedAt": self.started_at,
            "FinishedAt": self.finished_at,
        }
        if self.health is not None:
            out["Health"] = copy.deepcopy(self.health)
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> State:
        return cls(
            running=bool(d.get("Running")),
            paused=bool(d.get("Paused")),
            restarting=bool(d.get("Restarting")),
            oom_killed=bool(d.get("OOMKilled")),
            removing=False,
            dead=bool(d.get("Dead")),
            pid=int(d.get("Pid") or 0),
            exit_code=int(d.get("ExitCode") or 0),
            error=d.get("Error") or "",
            started_at=d.get("StartedAt") or timeutil.ZERO_TIME,
            finished_at=d.get("FinishedAt") or timeutil.ZERO_TIME,
            health=d.get("Health") if isinstance(d.get("Health"), dict) else None,
        )


class Container:
    """One container. Fields mirror Docker's config.v2.json; `config` and `host_config` are the
    API's Config and HostConfig objects (normalised at create)."""

    def __init__(self, id: str, name: str, config: dict[str, Any], host_config: dict[str, Any], image_id: str,
                 created: str | None = None) -> None:  # fmt: skip
        self.id = id
        self.name = name  # without the leading "/"
        self.config = config
        self.host_config = host_config
        self.image_id = image_id
        self.created = created or timeutil.now()
        self.path = ""
        self.args: list[str] = []
        self.state = State()
        self.restart_count = 0
        self.has_been_started = False
        self.manually_stopped = False
        self.mount_points: list[dict[str, Any]] = []  # inspect's Mounts, in order
        self.network_settings: dict[str, Any] = default_network_settings()
        self.exec_ids: list[str] = []
        self.log_path = ""
        self.resolv_conf_path = ""
        self.hostname_path = ""
        self.hosts_path = ""
        self.runtime = ""  # runtime name used for the current run
        self.platform = "linux"
        self.driver = "overlay2"
        self.size_cache: tuple[int, int] | None = None
        # synchronisation, not persisted
        self.op_lock = asyncio.Lock()
        self.exited = asyncio.Event()  # set while not running; cleared at start
        self.exited.set()
        self.removed = asyncio.Event()
        self.next_exit: asyncio.Future[int] | None = None
        self.shim: Any = None  # the live ShimConnection (daemon/shim.py) while running
        self.released = True  # nothing of a run is held (no runtime state, mounts, network)
        self.attach_waiters: list[Any] = []  # attach sessions waiting for the next start

    # --- identity -----------------------------------------------------------------------------
    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def hostname(self) -> str:
        return self.config.get("Hostname") or self.short_id

    # --- persistence --------------------------------------------------------------------------
    def to_disk(self) -> tuple[dict[str, Any], dict[str, Any]]:
        cfg = {
            "ID": self.id,
            "Created": self.created,
            "Path": self.path,
            "Args": self.args,
            "Config": self.config,
            "State": self.state.to_json(),
            "Image": self.image_id,
            "NetworkSettings": self.network_settings,
            "LogPath": self.log_path,
            "Name": "/" + self.name,
            "Driver": self.driver,
            "Platform": self.platform,
            "RestartCount": self.restart_count,
            "HasBeenStartedBefore": self.has_been_started,
            "HasBeenManuallyStopped": self.manually_stopped,
            "MountPoints": self.mount_points,
            "ResolvConfPath": self.resolv_conf_path,
            "HostnamePath": self.hostname_path,
            "HostsPath": self.hosts_path,
            "Runtime": self.runtime,
        }
        return cfg, self.host_config

    @classmethod
    def from_disk(cls, cfg: dict[str, Any], host_config: dict[str, Any]) -> Container:
        c = cls(cfg["ID"], cfg["Name"].lstrip("/"), cfg["Config"], host_config, cfg.get("Image", ""), cfg.get("Created"))
        c.path = cfg.get("Path", "")
        c.args = list(cfg.get("Args") or [])
        c.state = State.from_json(cfg.get("State") or {})
        c.network_settings = cfg.get("NetworkSettings") or default_network_settings()
        c.log_path = cfg.get("LogPath", "")
        c.restart_count = int(cfg.get("RestartCount") or 0)
        c.has_been_started = bool(cfg.get("HasBeenStartedBefore"))
        c.manually_stopped = bool(cfg.get("HasBeenManuallyStopped"))
        c.mount_points = list(cfg.get("MountPoints") or [])
        c.resolv_conf_path = cfg.get("ResolvConfPath", "")
        c.hostname_path = cfg.get("HostnamePath", "")
        c.hosts_path = cfg.get("HostsPath", "")
        c.runtime = cfg.get("Runtime", "")
        c.driver = cfg.get("Driver", "overlay2")
        if c.state.running:
            c.exited.clear()
            c.released = False
        return c

    # --- views ----------------------------------------------------------------------------------
    def inspect(self, image_ref: str = "", graph_driver: dict[str, Any] | None = None,
                sizes: tuple[int, int] | None = None) -> dict[str, Any]:  # fmt: skip
        out: dict[str, Any] = {
            "Id": self.id,
            "Created": self.created,
            "Path": self.path,
            "Args": list(self.args),
            "State": self.state.to_json(),
            "Image": self.image_id,
            "ResolvConfPath": self.resolv_conf_path,
            "HostnamePath": self.hostname_path,
            "HostsPath": self.hosts_path,
            "LogPath": self.log_path,
            "Name": "/" + self.name,
            "RestartCount": self.restart_count,
            "Driver": self.driver,
            "Platform": self.platform,
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": list(self.exec_ids) or None,
            "HostConfig": copy.deepcopy(self.host_config),
            "GraphDriver": graph_driver or {"Data": None, "Name": self.driver},
            "Mounts": [mount_view(m) for m in self.mount_points],
            "Config": copy.deepcopy(self.config),
            "NetworkSettings": copy.deepcopy(self.network_settings),
        }
        if sizes is not None:
            out["SizeRw"], out["SizeRootFs"] = sizes
        return out

    def summary(self, image_ref: str, sizes: tuple[int, int] | None = None) -> dict[str, Any]:
        """One entry of GET /containers/json."""
        cmd = " ".join([self.path, *self.args]).strip()
        ports = port_list(self.network_settings.get("Ports") or {}, self.host_config.get("PortBindings") or {},
                          self.config.get("ExposedPorts") or {}, self.state.running)  # fmt: skip
        nets = self.network_settings.get("Networks") or {}
        out: dict[str, Any] = {
            "Id": self.id,
            "Names": ["/" + self.name],
            "Image": image_ref or self.config.get("Image") or self.image_id,
            "ImageID": self.image_id,
            "Command": cmd,
            "Created": timeutil.unix(self.created),
            "Ports": ports,
            "Labels": dict(self.config.get("Labels") or {}),
            "State": self.state.status,
            "Status": self.state.human(),
            "HostConfig": {"NetworkMode": self.host_config.get("NetworkMode") or "default"},
            "NetworkSettings": {"Networks": copy.deepcopy(nets)},
            "Mounts": [mount_view(m) for m in self.mount_points],
        }
        if sizes is not None:
            out["SizeRw"], out["SizeRootFs"] = sizes
        return out


def mount_view(m: dict[str, Any]) -> dict[str, Any]:
    """A stored mount point as inspect's `Mounts` entry."""
    out: dict[str, Any] = {"Type": m.get("Type", "bind")}
    if m.get("Type") == "volume":
        out["Name"] = m.get("Name", "")
    out["Source"] = m.get("Source", "")
    out["Destination"] = m.get("Destination", "")
    if m.get("Type") == "volume":
        out["Driver"] = m.get("Driver", "local")
    out["Mode"] = m.get("Mode", "")
    out["RW"] = bool(m.get("RW", True))
    out["Propagation"] = m.get("Propagation", "")
    return out


def default_network_settings() -> dict[str, Any]:
    return {
        "Bridge": "",
        "SandboxID": "",
        "SandboxKey": "",
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": {},
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
        "Networks": {},
    }


def port_list(ports: dict[str, Any], bindings: dict[str, Any], exposed: dict[str, Any], running: bool) -> list[dict[str, Any]]:
    """The `Ports` array of /containers/json: published bindings while running, exposed ports otherwise."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    source = ports if running and ports else {}
    for key, binds in source.items():
        port, _, proto = key.partition("/")
        seen.add(key)
        if not binds:
            out.append({"PrivatePort": int(port), "Type": proto or "tcp"})
            continue
        for b in binds:
            entry: dict[str, Any] = {"IP": b.get("HostIp") or "0.0.0.0", "PrivatePort": int(port), "Type": proto or "tcp"}
            if b.get("HostPort"):
                entry["PublicPort"] = int(b["HostPort"])
            out.append(entry)
    for key in exposed:
        if key in seen:
            continue
        port, _, proto = key.partition("/")
        if port.isdigit():
            out.append({"PrivatePort": int(port), "Type": proto or "tcp"})
    return out
