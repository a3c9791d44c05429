"""Container config + image config + host config -> OCI runtime spec (config.json), purely.

`build_spec(SpecInputs)` carries Docker's defaults (moby's oci defaults as documented): the 14
default capabilities in bounding/effective/permitted (inheritable and ambient empty), masked and
read-only /proc and /sys paths, the /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys and cgroup mounts
with Docker's options, the default device allow-list, the default seccomp policy, and everything
HostConfig changes: --privileged, --cap-add/--cap-drop, --security-opt, --read-only, --tmpfs,
resources, ulimits, sysctls, --init, --userns, namespaces joined by path.

No I/O happens here (but for listing the host's CPUs once, at import, for the masked paths):
everything read from the host (hard rlimits, host devices for --privileged,
the user's uid/gid looked up in the image) is an input, so the whole function is unit-tested
without root.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from dockyard.daemon import seccomp
from dockyard.errors import InvalidParameter

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
INIT_PATH_IN_CONTAINER = "/sbin/docker-init"

DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
]  # fmt: skip

# Every capability the kernel defines up to CAP_CHECKPOINT_RESTORE (40), in number order.
ALL_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]  # fmt: skip



def _thermal_throttle_paths() -> list[str]:
    """Each CPU's thermal_throttle directory: Docker 28 masks them (a thermal side channel).
    They depend on the host, so they are read once, when the daemon loads this module."""
    base = "/sys/devices/system/cpu"
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return []
    out = []
    for n in names:
        p = f"{base}/{n}/thermal_throttle"
        if n.startswith("cpu") and n[3:].isdigit() and os.path.isdir(p):
            out.append(p)
    return out


# Docker's list (moby oci/defaults.go, 28.x), in its order
MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap", *_thermal_throttle_paths(),
]  # fmt: skip
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def _dev(type_: str, major: int | None, minor: int | None, access: str = "rwm", allow: bool = True) -> dict[str, Any]:
    d: dict[str, Any] = {"allow": allow, "type": type_, "access": access}
    if major is not None:
        d["major"] = major
    if minor is not None:
        d["minor"] = minor
    return d


def default_device_rules() -> list[dict[str, Any]]:
    """Docker's device cgroup: deny all, mknod of anything, then the usual character devices."""
    return [
        {"allow": False, "access": "rwm"},
        _dev("c", 1, 5),  # zero
        _dev("c", 1, 3),  # null
        _dev("c", 1, 9),  # urandom
        _dev("c", 1, 8),  # random
        _dev("c", 1, 7),  # full
        _dev("c", 5, 0),  # tty
        _dev("c", 5, 1),  # console
        _dev("c", 10, 229, allow=False),  # fuse stays denied (before the wildcards: v1 cannot punch holes)
        _dev("c", None, None, "m"),
        _dev("b", None, None, "m"),
        _dev("c", 136, None),  # pts
        _dev("c", 5, 2),  # ptmx
        _dev("c", 10, 200),  # tun
    ]


@dataclasses.dataclass(frozen=True)
class SpecInputs:
    """Everything the spec depends on. `config` is Docker's container Config already merged with
    the image's defaults (create does that); `host_config` is Docker's HostConfig."""

    container_id: str
    config: dict[str, Any]
    host_config: dict[str, Any]
    rootfs: str
    args: list[str]
    hostname: str = ""
    user: tuple[int, int, tuple[int, ...]] = (0, 0, ())  # uid, gid, additional gids (resolved in the image)
    mounts: tuple[dict[str, Any], ...] = ()  # OCI mounts from binds, volumes, tmpfs (resolved by the daemon)
    etc_files: dict[str, str] = dataclasses.field(default_factory=dict)  # /etc/hosts etc. -> host path
    netns: str | None = None  # "host", a netns path to join, or None for a new one
    namespace_paths: dict[str, str] = dataclasses.field(default_factory=dict)  # "ipc"/"pid"/"uts": path or "host"; "user": path
    init_path: str | None = None  # host path of a static init (tini) for --init
    hard_limits: dict[str, int] = dataclasses.field(default_factory=dict)  # "RLIMIT_NOFILE" -> host hard limit
    default_ulimits: tuple[dict[str, Any], ...] = ()  # daemon's default-ulimits
    host_devices: tuple[dict[str, Any], ...] = ()  # for --privileged: OCI device entries of host /dev
    seccomp_profile: str | None = None  # the daemon's default profile (Docker-format JSON) or "unconfined"
    id_mappings: tuple[list[dict[str, int]], list[dict[str, int]]] | None = None  # userns remap
    cgroup_parent: str = "dockyard"
    oom_score_adj: int | None = None
    cpu_count: int = 0
    available_caps: tuple[str, ...] | None = None  # the daemon's bounding set: what "all" means here


def normalize_cap(name: str) -> str:
    up = name.strip().upper()
    if up == "ALL":
        return "ALL"
    if not up.startswith("CAP_"):
        up = "CAP_" + up
    return up


def capabilities(host_config: dict[str, Any], available: tuple[str, ...] | None = None) -> list[str]:
    """The capability set after --privileged, --cap-add and --cap-drop, as Docker computes it.
    "All" means every capability the daemon itself holds (`available`; root may lack some)."""
    every = [c for c in ALL_CAPS if available is None or c in available]
    if host_config.get("Privileged"):
        return every
    adds = [normalize_cap(c) for c in host_config.get("CapAdd") or []]
    drops = [normalize_cap(c) for c in host_config.get("CapDrop") or []]
    for kind, names in (("CapAdd", adds), ("CapDrop", drops)):
        for c in names:
            if c != "ALL" and c not in ALL_CAPS:
                raise InvalidParameter(f'invalid {kind}: unknown capability: "{c}"')
    if "ALL" in adds:
        base = list(every)
    else:
        base = list(DEFAULT_CAPS) + [c for c in ALL_CAPS if c in adds and c not in DEFAULT_CAPS]
    if "ALL" in drops:
        # drop ALL then add back what --cap-add names
        return [c for c in every if c in adds]
    return [c for c in base if c not in drops]


def _security_opts(host_config: dict[str, Any]) -> tuple[bool, str | None, bool]:
    """-> (seccomp unconfined?, custom profile JSON or None, no-new-privileges?)"""
    unconfined, profile, nnp = False, None, False
    for opt in host_config.get("SecurityOpt") or []:
        if opt == "no-new-privileges":
            nnp = True
            continue
        sep = "=" if "=" in opt else ":" if ":" in opt else None
        if sep is None:
            raise InvalidParameter(f"Invalid --security-opt: {opt!r}")
        key, value = opt.split(sep, 1)
        if key == "no-new-privileges":
            if value.lower() not in ("true", "false", "1", "0"):
                raise InvalidParameter("invalid --security-opt 2: \"no-new-privileges=" + value + '"')
            nnp = value.lower() in ("true", "1")
        elif key == "seccomp":
            if value == "unconfined":
                unconfined = True
            elif value.lstrip().startswith("{"):
                profile = value
            else:
                raise InvalidParameter(f"opening seccomp profile ({value}) failed: the daemon expects the profile's JSON content")
        elif key in ("apparmor", "label", "systempaths", "mask"):
            if key == "systempaths" and value == "unconfined":
                continue
            continue  # AppArmor and SELinux are not enforced by Dockyard; accepted like Docker on hosts without them
        else:
            raise InvalidParameter(f"Invalid --security-opt: {opt!r}")
    return unconfined, profile, nnp


def _systempaths_unconfined(host_config: dict[str, Any]) -> bool:
    return any(o in ("systempaths=unconfined", "systempaths:unconfined") for o in host_config.get("SecurityOpt") or [])


def base_mounts(host_config: dict[str, Any]) -> list[dict[str, Any]]:
    """Docker's default mounts (/proc, /dev, /dev/pts, /sys, cgroup, mqueue, shm)."""
    privileged = bool(host_config.get("Privileged"))
    shm_size = int(host_config.get("ShmSize") or 64 * 1024 * 1024)
    sys_opt = "rw" if privileged else "ro"
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", sys_opt]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": [sys_opt, "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm_size // 1024}k"]},
    ]  # fmt: skip


def build_env(config: dict[str, Any], hostname: str) -> list[str]:
    """PATH (if the image sets none), HOSTNAME, TERM=xterm with a tty, then the container's env."""
    env = list(config.get("Env") or [])
    keys = {e.split("=", 1)[0] for e in env}
    out = []
    if "PATH" not in keys:
        out.append("PATH=" + DEFAULT_PATH)
    out.append("HOSTNAME=" + hostname)
    if config.get("Tty") and "TERM" not in keys:
        out.append("TERM=xterm")
    return out + [e for e in env if not e.startswith("HOSTNAME=")]


def rlimits(inp: SpecInputs) -> list[dict[str, Any]]:
    """Ulimits (daemon defaults, then the container's) as OCI rlimits; never above the host's hard
    limit unless explicitly asked (then it is an error: root here lacks CAP_SYS_RESOURCE)."""
    merged: dict[str, dict[str, Any]] = {}
    for u in list(inp.default_ulimits) + list(inp.host_config.get("Ulimits") or []):
        merged[str(u["Name"]).lower()] = u
    out = []
    for name, u in merged.items():
        rtype = "RLIMIT_" + name.upper()
        soft, hard = int(u.get("Soft", 0)), int(u.get("Hard", 0))
        if soft > hard:
            raise InvalidParameter(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
        limit = inp.hard_limits.get(rtype)
        if limit is not None and limit >= 0 and hard > limit:
            raise InvalidParameter(
                f"ulimit {name}={soft}:{hard} exceeds the daemon's hard limit {limit} (raising it needs CAP_SYS_RESOURCE)"
            )
        out.append({"type": rtype, "soft": soft, "hard": hard})
    return out


def resources(host_config: dict[str, Any]) -> dict[str, Any]:
    hc = host_config
    res: dict[str, Any] = {}
    mem: dict[str, Any] = {}
    if hc.get("Memory"):
        mem["limit"] = int(hc["Memory"])
        swap = hc.get("MemorySwap")
        if swap in (None, 0):
            mem["swap"] = 2 * int(hc["Memory"])  # Docker's default: as much swap as memory
        else:
            mem["swap"] = int(swap)
    if hc.get("MemoryReservation"):
        mem["reservation"] = int(hc["MemoryReservation"])
    if hc.get("MemorySwappiness") not in (None, -1):
        mem["swappiness"] = int(hc["MemorySwappiness"])
    if hc.get("OomKillDisable"):
        mem["disableOOMKiller"] = True
    if mem:
        res["memory"] = mem
    cpu: dict[str, Any] = {}
    if hc.get("CpuShares"):
        cpu["shares"] = int(hc["CpuShares"])
    if hc.get("NanoCpus"):
        cpu["period"] = 100000
        cpu["quota"] = int(hc["NanoCpus"]) * 100000 // 1_000_000_000
    if hc.get("CpuPeriod"):
        cpu["period"] = int(hc["CpuPeriod"])
    if hc.get("CpuQuota"):
        cpu["quota"] = int(hc["CpuQuota"])
    if hc.get("CpuRealtimePeriod"):
        cpu["realtimePeriod"] = int(hc["CpuRealtimePeriod"])
    if hc.get("CpuRealtimeRuntime"):
        cpu["realtimeRuntime"] = int(hc["CpuRealtimeRuntime"])
    if hc.get("CpusetCpus"):
        cpu["cpus"] = str(hc["CpusetCpus"])
    if hc.get("CpusetMems"):
        cpu["mems"] = str(hc["CpusetMems"])
    if cpu:
        res["cpu"] = cpu
    pids = hc.get("PidsLimit")
    if pids is not None and int(pids) != 0:
        res["pids"] = {"limit": int(pids) if int(pids) > 0 else -1}
    if hc.get("BlkioWeight"):
        res["blockIO"] = {"weight": int(hc["BlkioWeight"])}
    return res


def _namespaces(inp: SpecInputs) -> list[dict[str, Any]]:
    hc = inp.host_config
    out: list[dict[str, Any]] = [{"type": "mount"}]
    if inp.netns != "host":
        out.append({"type": "network", "path": inp.netns} if inp.netns else {"type": "network"})
    for kind, mode_key in (("uts", "UTSMode"), ("pid", "PidMode"), ("ipc", "IpcMode")):
        path = inp.namespace_paths.get(kind)
        mode = str(hc.get(mode_key) or "")
        if path == "host" or mode == "host":
            continue
        out.append({"type": kind, "path": path} if path else {"type": kind})
    if hc.get("CgroupnsMode") == "private":
        out.append({"type": "cgroup"})
    user_path = inp.namespace_paths.get("user")
    if user_path:
        # userns-remap with container:<id> modes: join that container's user namespace too
        out.append({"type": "user", "path": user_path})
    elif inp.id_mappings:
        out.append({"type": "user"})
    return out


def _user_mount(m: dict[str, Any]) -> dict[str, Any]:
    return {k: m[k] for k in ("destination", "type", "source", "options") if k in m}


def build_spec(inp: SpecInputs) -> dict[str, Any]:
    cfg, hc = inp.config, inp.host_config
    privileged = bool(hc.get("Privileged"))
    caps = capabilities(hc, inp.available_caps)
    unconfined, profile, nnp = _security_opts(hc)
    hostname = inp.hostname or inp.container_id[:12]
    uid, gid, groups = inp.user
    args = list(inp.args)
    if not args:
        raise InvalidParameter("No command specified")

    mounts = base_mounts(hc)
    user_mounts = [_user_mount(m) for m in inp.mounts]
    user_dests = {m["destination"].rstrip("/") or "/" for m in user_mounts}
    # a user mount over a default destination replaces it (e.g. -v x:/dev/shm)
    mounts = [m for m in mounts if m["destination"] not in user_dests]
    for dest in ("/etc/resolv.conf", "/etc/hostname", "/etc/hosts"):
        src = inp.etc_files.get(dest)
        if src and dest not in user_dests:
            opts = ["rbind", "rprivate"]
            mounts.append({"destination": dest, "type": "bind", "source": src, "options": opts})
    if hc.get("Init") and inp.init_path:
        args = [INIT_PATH_IN_CONTAINER, "--", *args]
        mounts.append({"destination": INIT_PATH_IN_CONTAINER, "type": "bind", "source": inp.init_path,
                       "options": ["bind", "ro", "nosuid", "nodev", "rprivate"]})  # fmt: skip
    for path, opts in (hc.get("Tmpfs") or {}).items():
        if path.rstrip("/") in user_dests:
            continue
        extra = [o for o in str(opts or "").split(",") if o]
        base = ["nosuid", "nodev", "noexec"]
        if "exec" in extra:
            base.remove("noexec")
        if "dev" in extra:
            base.remove("nodev")
        if "suid" in extra:
            base.remove("nosuid")
        mounts.append({"destination": path, "type": "tmpfs", "source": "tmpfs",
                       "options": base + [o for o in extra if o not in ("exec", "dev", "suid")]})  # fmt: skip
    mounts += user_mounts
    # parents before children, as Docker sorts them (stable for equal depth)
    mounts.sort(key=lambda m: len([p for p in m["destination"].split("/") if p]))

    process: dict[str, Any] = {
        "terminal": bool(cfg.get("Tty")),
        "user": {"uid": uid, "gid": gid},
        "args": args,
        "env": build_env(cfg, hostname),
        "cwd": cfg.get("WorkingDir") or "/",
        "capabilities": {"bounding": list(caps), "effective": list(caps), "permitted": list(caps),
                         "inheritable": [], "ambient": []},  # fmt: skip
        "noNewPrivileges": nnp,
    }
    if groups:
        process["user"]["additionalGids"] = list(groups)
    if cfg.get("Tty") and hc.get("ConsoleSize") and any(hc["ConsoleSize"]):
        h, w = hc["ConsoleSize"]
        process["consoleSize"] = {"height": int(h), "width": int(w)}
    rl = rlimits(inp)
    if rl:
        process["rlimits"] = rl
    oom = inp.oom_score_adj if inp.oom_score_adj is not None else hc.get("OomScoreAdj")
    if oom:
        process["oomScoreAdj"] = int(oom)

    linux: dict[str, Any] = {
        "cgroupsPath": f"{inp.cgroup_parent or 'dockyard'}/{inp.container_id}",
        "namespaces": _namespaces(inp),
        "resources": resources(hc),
    }
    linux["resources"]["devices"] = default_device_rules() if not privileged else [{"allow": True, "access": "rwm"}]
    if privileged:
        linux["devices"] = [dict(d) for d in inp.host_devices]
    if not privileged and not _systempaths_unconfined(hc):
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
    sysctl = dict(hc.get("Sysctls") or {})
    if inp.netns != "host":
        # Docker (20.10+) lets unprivileged processes bind low ports and ping in a private netns
        sysctl.setdefault("net.ipv4.ip_unprivileged_port_start", "0")
        sysctl.setdefault("net.ipv4.ping_group_range", "0 2147483647")
    if sysctl:
        linux["sysctl"] = sysctl
    daemon_default = inp.seccomp_profile  # the daemon's --seccomp-profile (JSON text, or "unconfined")
    if daemon_default == "unconfined" and not profile:
        unconfined = True
    if not privileged and not unconfined:
        if profile:
            linux["seccomp"] = seccomp.from_docker_profile(profile, caps)
        elif daemon_default:
            linux["seccomp"] = seccomp.from_docker_profile(daemon_default, caps)
        else:
            linux["seccomp"] = seccomp.default_profile(caps)
    if inp.id_mappings and not inp.namespace_paths.get("user"):
        linux["uidMappings"], linux["gidMappings"] = inp.id_mappings
    mount_opts = {o for m in user_mounts for o in m.get("options", [])}
    if mount_opts & {"shared", "rshared"}:
        linux["rootfsPropagation"] = "rshared"
    elif mount_opts & {"slave", "rslave"}:
        linux["rootfsPropagation"] = "rslave"

    spec: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": inp.rootfs, "readonly": bool(hc.get("ReadonlyRootfs"))},
        "hostname": hostname,
        "mounts": mounts,
        "linux": linux,
    }
    if cfg.get("Domainname"):
        spec["domainname"] = cfg["Domainname"]
    if inp.netns == "host" or hc.get("UTSMode") == "host":
        spec.pop("hostname", None)
    return spec
