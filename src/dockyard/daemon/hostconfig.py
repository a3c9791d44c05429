"""Validating and normalising a create request's Config and HostConfig, purely, in Docker's words.

`normalize_host_config` fills the defaults inspect shows and applies Docker's adjustments (swap =
2x memory when unset, shm size, restart policy "no"); `validate_host_config` raises the same
errors dockerd does for bad resources, restart policies, log options, sysctls and ulimits;
`merge_image_config` is moby's MergeConfig (the image's defaults under the user's settings).
"""

from __future__ import annotations

import copy
from typing import Any

from dockyard.daemon.config import parse_size
from dockyard.errors import InvalidParameter

RESTART_POLICIES = ("", "no", "always", "unless-stopped", "on-failure")
ULIMIT_NAMES = {"as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
                "rss", "rtprio", "rttime", "sigpending", "stack"}  # fmt: skip
LOG_DRIVERS = {"json-file", "local", "none"}
JSON_FILE_OPTS = {"max-size", "max-file", "compress", "labels", "labels-regex", "env", "env-regex", "tag", "mode",
                  "max-buffer-size"}  # fmt: skip
# sysctls with their own kernel namespace (what runc accepts in a container)
NS_SYSCTLS = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
              "kernel.shmmni", "kernel.shm_rmid_forced", "kernel.domainname", "kernel.hostname"}  # fmt: skip
NS_SYSCTL_PREFIXES = ("fs.mqueue.", "net.")

CONFIG_DEFAULTS: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None, "Cmd": None,
    "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None,
}  # fmt: skip

HOST_CONFIG_DEFAULTS: dict[str, Any] = {
    "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}}, "NetworkMode": "default",
    "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": False,
    "VolumeDriver": "", "VolumesFrom": None, "ConsoleSize": [0, 0], "CapAdd": None, "CapDrop": None,
    "CgroupnsMode": "host", "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None,
    "IpcMode": "private", "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "", "Privileged": False,
    "PublishAllPorts": False, "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "", "UsernsMode": "",
    "ShmSize": 67108864, "Runtime": "", "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0,
    "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": [],
    "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [], "CpuPeriod": 0,
    "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "",
    "Devices": [], "DeviceCgroupRules": None, "DeviceRequests": None, "MemoryReservation": 0, "MemorySwap": 0,
    "MemorySwappiness": None, "OomKillDisable": False, "PidsLimit": None, "Ulimits": None, "CpuCount": 0,
    "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0, "Init": None, "Tmpfs": None, "Sysctls": None,
    "Mounts": None,
}  # fmt: skip


def _int(hc: dict[str, Any], key: str) -> int:
    v = hc.get(key)
    if v is None:
        return 0
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise InvalidParameter(f"invalid value for {key}: {v!r}")
    return int(v)


def parse_cpuset(value: str) -> set[int]:
    out: set[int] = set()
    if not value:
        return out
    for part in value.split(","):
        part = part.strip()
        if "-" in part:
            a, _, b = part.partition("-")
            if not a.isdigit() or not b.isdigit() or int(a) > int(b):
                raise ValueError(value)
            out.update(range(int(a), int(b) + 1))
        elif part.isdigit():
            out.add(int(part))
        else:
            raise ValueError(value)
    return out


# Config fields with their JSON types, to refuse what Go's decoder would refuse (in its words)
_CONFIG_TYPES: dict[str, tuple[type, str]] = {
    "Hostname": (str, "string"), "Domainname": (str, "string"), "User": (str, "string"),
    "Env": (list, "[]string"), "Image": (str, "string"), "WorkingDir": (str, "string"),
    "Labels": (dict, "map[string]string"), "Volumes": (dict, "map[string]struct {}"),
    "ExposedPorts": (dict, "nat.PortSet"), "StopSignal": (str, "string"),
    "Tty": (bool, "bool"), "OpenStdin": (bool, "bool"), "StdinOnce": (bool, "bool"),
    "AttachStdin": (bool, "bool"), "AttachStdout": (bool, "bool"), "AttachStderr": (bool, "bool"),
}  # fmt: skip
_JSON_KIND = {str: "string", int: "number", float: "number", bool: "bool", list: "array", dict: "object"}


def _type_error(field: str, value: Any, want: str, struct: str = "Config") -> InvalidParameter:
    kind = _JSON_KIND.get(type(value), "value")
    return InvalidParameter(f"json: cannot unmarshal {kind} into Go struct field {struct}.{field} of type {want}")


def normalize_config(cfg: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(CONFIG_DEFAULTS)
    for key, (typ, want) in _CONFIG_TYPES.items():
        v = cfg.get(key)
        if v is not None and not isinstance(v, typ) or (typ is not bool and isinstance(v, bool)):
            raise _type_error(key, v, want)
    for key in ("Env",):
        for item in cfg.get(key) or []:
            if not isinstance(item, str):
                raise _type_error(key, item, "string")
    out.update(copy.deepcopy(cfg))
    for key in ("Cmd", "Entrypoint"):  # Docker's strslice: a string is a one-element list
        v = out.get(key)
        if isinstance(v, str):
            out[key] = [v]
        elif v is not None and (not isinstance(v, list) or not all(isinstance(x, str) for x in v)):
            raise _type_error(key, v, "strslice.StrSlice")
    if out.get("StopTimeout") is not None and (isinstance(out["StopTimeout"], bool) or not isinstance(out["StopTimeout"], int)):
        raise _type_error("StopTimeout", out["StopTimeout"], "int")
    if out.get("Volumes") == {}:
        out["Volumes"] = None  # the Docker CLI sends {}; dockerd shows null
    return out


def normalize_host_config(hc: dict[str, Any] | None, default_shm: int = 64 * 1024 * 1024,
                          cgroupns_default: str = "host", log_driver: str = "json-file") -> dict[str, Any]:  # fmt: skip
    out = copy.deepcopy(HOST_CONFIG_DEFAULTS)
    out["ShmSize"] = default_shm
    out["CgroupnsMode"] = cgroupns_default
    for k, v in (hc or {}).items():
        if v is None and k in out and out[k] is not None and k not in ("PidsLimit", "MemorySwappiness", "Init"):
            continue  # null means "default" for fields Docker fills
        out[k] = copy.deepcopy(v)
    # the Docker CLI sends MemorySwappiness -1 and PidsLimit 0 when the flags are not given;
    # dockerd stores null for both ("unset"; a PidsLimit <= 0 means unlimited)
    if out.get("MemorySwappiness") == -1:
        out["MemorySwappiness"] = None
    pids = out.get("PidsLimit")
    if isinstance(pids, int) and not isinstance(pids, bool) and pids <= 0:
        out["PidsLimit"] = None
    if not out.get("NetworkMode"):
        out["NetworkMode"] = "default"
    rp = out.get("RestartPolicy") or {}
    out["RestartPolicy"] = {"Name": rp.get("Name") or "no", "MaximumRetryCount": int(rp.get("MaximumRetryCount") or 0)}
    lc = out.get("LogConfig") or {}
    out["LogConfig"] = {"Type": lc.get("Type") or log_driver, "Config": dict(lc.get("Config") or {})}
    if not out.get("ShmSize"):
        out["ShmSize"] = default_shm
    if not out.get("IpcMode"):
        out["IpcMode"] = "private"
    if not out.get("CgroupnsMode"):
        out["CgroupnsMode"] = cgroupns_default
    if out.get("Memory") and not out.get("MemorySwap"):
        out["MemorySwap"] = 2 * int(out["Memory"])
    if out.get("PortBindings") is None:
        out["PortBindings"] = {}
    return out


def validate_restart_policy(rp: dict[str, Any], auto_remove: bool) -> None:
    name = rp.get("Name") or ""
    n = rp.get("MaximumRetryCount") or 0
    if name not in RESTART_POLICIES:
        raise InvalidParameter(
            f"invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        )
    if n and name != "on-failure":
        raise InvalidParameter("invalid restart policy: maximum retry count can only be used with 'on-failure'")
    if n < 0:
        raise InvalidParameter("invalid restart policy: maximum retry count must be a positive integer")
    if auto_remove and name not in ("", "no"):
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")


def validate_log_config(lc: dict[str, Any]) -> None:
    kind = lc.get("Type") or "json-file"
    if kind not in LOG_DRIVERS:
        raise InvalidParameter(f"logger: no log driver named '{kind}' is registered")
    opts = lc.get("Config") or {}
    if kind == "none" and opts:
        raise InvalidParameter("logger: none driver does not take options")
    for k, v in opts.items():
        if kind in ("json-file", "local") and k not in JSON_FILE_OPTS:
            raise InvalidParameter(f"unknown log opt '{k}' for {kind} log driver")
        if k == "max-size":
            try:
                if parse_size(v) <= 0 and v not in ("-1",):
                    raise ValueError
            except ValueError:
                raise InvalidParameter(f"invalid size: '{v}'") from None
        if k == "max-file":
            try:
                if int(v) < 1:
                    raise ValueError
            except ValueError:
                raise InvalidParameter("max-file cannot be less than 1") from None
    if opts.get("max-file") and opts.get("max-file") != "1" and not opts.get("max-size"):
        raise InvalidParameter("max-file can only be set if max-size is set")


def validate_resources(hc: dict[str, Any], ncpu: int, host_cpus: set[int] | None = None) -> None:
    mem = _int(hc, "Memory")
    swap = _int(hc, "MemorySwap")
    if mem and mem < 6 * 1024 * 1024:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    if swap and swap != -1:
        if not mem:
            raise InvalidParameter("You should always set the Memory limit when using Memoryswap limit, see usage")
        if swap < mem:
            raise InvalidParameter("Minimum memoryswap limit should be larger than memory limit, see usage")
    res = _int(hc, "MemoryReservation")
    if res and res < 6 * 1024 * 1024:
        raise InvalidParameter("Minimum memory reservation allowed is 6MB")
    if mem and res and mem < res:
        raise InvalidParameter("Minimum memory limit can not be less than memory reservation limit, see usage")
    swp = hc.get("MemorySwappiness")
    if swp is not None and swp != -1 and not 0 <= int(swp) <= 100:
        raise InvalidParameter(f"Invalid value: {swp}, valid memory swappiness range is 0-100")
    nano = _int(hc, "NanoCpus")
    if nano:
        if _int(hc, "CpuPeriod"):
            raise InvalidParameter("Conflicting options: Nano CPUs and CPU Period cannot both be set")
        if _int(hc, "CpuQuota"):
            raise InvalidParameter("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
        if nano < 0 or (ncpu and nano > ncpu * 1_000_000_000):
            raise InvalidParameter(
                f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
            )
    period = _int(hc, "CpuPeriod")
    if period and not 1000 <= period <= 1_000_000:
        raise InvalidParameter("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    quota = _int(hc, "CpuQuota")
    if quota and quota != -1 and quota < 1000:
        raise InvalidParameter("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    shares = _int(hc, "CpuShares")
    if shares < 0:
        raise InvalidParameter("shares: invalid argument")
    for key, what in (("CpusetCpus", "cpus"), ("CpusetMems", "mems")):
        val = hc.get(key) or ""
        if not val:
            continue
        try:
            wanted = parse_cpuset(val)
        except ValueError:
            raise InvalidParameter(f"Invalid value {val} for cpuset {what}") from None
        if key == "CpusetCpus" and host_cpus is not None and not wanted <= host_cpus:
            avail = _format_cpuset(host_cpus)
            raise InvalidParameter(f"Requested CPUs are not available - requested {val}, available: {avail}")
    w = _int(hc, "BlkioWeight")
    if w and not 10 <= w <= 1000:
        raise InvalidParameter("Range of blkio weight is from 10 to 1000")
    oom = _int(hc, "OomScoreAdj")
    if not -1000 <= oom <= 1000:
        raise InvalidParameter(f"Invalid value {oom}, range for oom score adj is [-1000, 1000]")
    pids = hc.get("PidsLimit")
    if pids is not None and not isinstance(pids, int):
        raise InvalidParameter(f"invalid value for PidsLimit: {pids!r}")
    shm = hc.get("ShmSize")
    if shm is not None and int(shm) < 0:
        raise InvalidParameter("SHM size can not be less than 0")


def _format_cpuset(cpus: set[int]) -> str:
    s = sorted(cpus)
    if not s:
        return ""
    ranges, start, prev = [], s[0], s[0]
    for c in s[1:]:
        if c == prev + 1:
            prev = c
            continue
        ranges.append(f"{start}-{prev}" if start != prev else str(start))
        start = prev = c
    ranges.append(f"{start}-{prev}" if start != prev else str(start))
    return ",".join(ranges)


def validate_ulimits(hc: dict[str, Any]) -> None:
    for u in hc.get("Ulimits") or []:
        name = str(u.get("Name", ""))
        if name not in ULIMIT_NAMES:
            raise InvalidParameter(f"invalid ulimit type: {name}")
        if int(u.get("Soft", 0)) > int(u.get("Hard", 0)):
            raise InvalidParameter(f"ulimit soft limit must be less than or equal to hard limit: {u.get('Soft')} > {u.get('Hard')}")


def validate_sysctls(hc: dict[str, Any]) -> None:
    net_mode = hc.get("NetworkMode") or ""
    ipc_mode = hc.get("IpcMode") or ""
    for key in hc.get("Sysctls") or {}:
        if key in NS_SYSCTLS or key.startswith("kernel.msg") or key.startswith("fs.mqueue."):
            if ipc_mode == "host" and not key.startswith("kernel.domainname") and not key.startswith("kernel.hostname"):
                raise InvalidParameter(f"sysctl {key!r} is not allowed in host IPC namespace")
            continue
        if key.startswith("net."):
            if net_mode == "host":
                raise InvalidParameter(f"sysctl {key!r} not allowed in host network namespace")
            continue
        raise InvalidParameter(f"sysctl {key!r} is not allowed")


def validate_host_config(hc: dict[str, Any], ncpu: int, host_cpus: set[int] | None = None) -> None:
    validate_restart_policy(hc.get("RestartPolicy") or {}, bool(hc.get("AutoRemove")))
    validate_log_config(hc.get("LogConfig") or {})
    validate_resources(hc, ncpu, host_cpus)
    validate_ulimits(hc)
    validate_sysctls(hc)
    for mode_key in ("IpcMode", "PidMode", "UTSMode"):
        mode = hc.get(mode_key) or ""
        if mode and mode not in ("host", "private", "shareable", "none") and not mode.startswith("container:"):
            raise InvalidParameter(f"invalid {mode_key.replace('Mode', '').upper()} mode: {mode}")
    if hc.get("UsernsMode") not in (None, "", "host", "private"):
        raise InvalidParameter(f"invalid USER mode: {hc.get('UsernsMode')}")


def merge_image_config(user: dict[str, Any], image: dict[str, Any]) -> dict[str, Any]:
    """moby's MergeConfig: the image's config fills what the user left unset."""
    out = copy.deepcopy(user)
    img = image or {}
    if not out.get("User"):
        out["User"] = img.get("User") or ""
    if img.get("ExposedPorts"):
        ports = dict(img["ExposedPorts"])
        ports.update(out.get("ExposedPorts") or {})
        out["ExposedPorts"] = ports
    if not out.get("Env"):
        out["Env"] = list(img.get("Env") or [])
    else:
        keys = {e.split("=", 1)[0] for e in out["Env"]}
        out["Env"] = list(out["Env"]) + [e for e in img.get("Env") or [] if e.split("=", 1)[0] not in keys]
    if img.get("Labels"):
        labels = dict(img["Labels"])
        labels.update(out.get("Labels") or {})
        out["Labels"] = labels
    if not out.get("Entrypoint"):
        if not out.get("Cmd"):
            out["Cmd"] = copy.deepcopy(img.get("Cmd"))
        if out.get("Entrypoint") is None:
            out["Entrypoint"] = copy.deepcopy(img.get("Entrypoint"))
    if not out.get("WorkingDir"):
        out["WorkingDir"] = img.get("WorkingDir") or ""
    if img.get("Volumes"):
        vols = dict(img["Volumes"])
        vols.update(out.get("Volumes") or {})
        out["Volumes"] = vols
    if not out.get("StopSignal") and img.get("StopSignal"):
        out["StopSignal"] = img["StopSignal"]
    if img.get("Healthcheck"):
        if out.get("Healthcheck") is None:
            out["Healthcheck"] = copy.deepcopy(img["Healthcheck"])
        else:  # field by field: what the user left zero comes from the image (moby's MergeConfig)
            hc = dict(out["Healthcheck"])
            for key in ("Test", "Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
                if not hc.get(key) and img["Healthcheck"].get(key):
                    hc[key] = copy.deepcopy(img["Healthcheck"][key])
            out["Healthcheck"] = hc
    if not out.get("OnBuild") and img.get("OnBuild"):
        out["OnBuild"] = list(img["OnBuild"])
    if out.get("Entrypoint") == [""]:
        out["Entrypoint"] = None
    return out


def command_of(config: dict[str, Any]) -> tuple[str, list[str]]:
    """(Path, Args) from Entrypoint + Cmd; raises Docker's 'No command specified'."""
    ep = list(config.get("Entrypoint") or [])
    cmd = list(config.get("Cmd") or [])
    full = ep + cmd
    if not full or not full[0]:
        raise InvalidParameter("No command specified")
    return full[0], full[1:]
