"""GET /info, /version and /system/df: what the daemon reports about itself and the host."""

from __future__ import annotations

import asyncio
import os
import platform
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

from dockyard.daemon import timeutil

if TYPE_CHECKING:
    from dockyard.daemon.daemon import Daemon

API_VERSION = "1.43"
MIN_API_VERSION = "1.24"
ENGINE_VERSION = "0.1.0"
GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def _os_release() -> tuple[str, str]:
    try:
        with open("/etc/os-release") as f:
            kv = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
        return kv.get("PRETTY_NAME", "Linux").strip('"'), kv.get("VERSION_ID", "").strip('"')
    except OSError:
        return "Linux", ""


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _fs_type(path: str) -> str:
    best, fstype = "", "unknown"
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                mnt = parts[1].encode().decode("unicode_escape")
                if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                    best, fstype = mnt, parts[2]
    except OSError:
        pass
    return {"ext4": "extfs", "ext3": "extfs", "ext2": "extfs"}.get(fstype, fstype)


def cgroup_version() -> str:
    try:
        with open("/proc/self/mounts") as f:
            mounts = [line.split() for line in f]
    except OSError:
        return "1"
    if any(m[1] == "/sys/fs/cgroup" and m[2] == "cgroup2" for m in mounts):
        return "2"
    return "1"


def version() -> dict[str, Any]:
    kernel = platform.release()
    details = {"ApiVersion": API_VERSION, "Arch": GO_ARCH, "BuildTime": "", "Experimental": "false",
               "GitCommit": "", "GoVersion": "python" + platform.python_version(), "KernelVersion": kernel,
               "MinAPIVersion": MIN_API_VERSION, "Os": "linux"}  # fmt: skip
    return {
        "Platform": {"Name": "Dockyard Engine"},
        "Components": [{"Name": "Engine", "Version": ENGINE_VERSION, "Details": details}],
        "Version": ENGINE_VERSION,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "python" + platform.python_version(),
        "Os": "linux",
        "Arch": GO_ARCH,
        "KernelVersion": kernel,
        "BuildTime": "",
    }


def _info_sync(d: Daemon) -> dict[str, Any]:
    cs = d.store.all()
    running = sum(1 for c in cs if c.state.running and not c.state.paused)
    paused = sum(1 for c in cs if c.state.paused)
    images = len(d.images.images()) if d.images is not None else 0
    os_name, os_version = _os_release()
    cgv = cgroup_version()
    try:
        nfd = len(os.listdir("/proc/self/fd"))
    except OSError:
        nfd = 0
    runtimes = {name: {"path": rt.path, **({"runtimeArgs": list(rt.args)} if rt.args else {})}
                for name, rt in d.config.runtimes.items()}  # fmt: skip
    sec = ["name=seccomp,profile=builtin"]
    if cgv == "2":
        sec.append("name=cgroupns")
    if d.config.userns_remap:
        sec.append("name=userns")
    return {
        "ID": _daemon_id(d),
        "Containers": len(cs),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": len(cs) - running - paused,
        "Images": images,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", _fs_type(d.data_root)], ["Supports d_type", "true"],
                         ["Using metacopy", "false"], ["Native Overlay Diff", "true"], ["userxattr", "false"]],  # fmt: skip
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"], "Authorization": None,
                    "Log": ["json-file", "local", "none"]},  # fmt: skip
        "MemoryLimit": True,
        "SwapLimit": os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") or cgv == "2",
        "KernelMemory": False,
        "KernelMemoryTCP": False,
        "CpuCfsPeriod": True,
        "CpuCfsQuota": True,
        "CPUShares": True,
        "CPUSet": True,
        "PidsLimit": True,
        "IPv4Forwarding": _read("/proc/sys/net/ipv4/ip_forward") == "1",
        "BridgeNfIptables": False,
        "BridgeNfIp6tables": False,
        "Debug": d.config.log_level == "debug",
        "NFd": nfd,
        "OomKillDisable": cgv == "1",
        "NGoroutines": len(asyncio.all_tasks()) if _loop_running() else 0,
        "SystemTime": timeutil.now(),
        "LoggingDriver": d.config.log_driver,
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgv,
        "NEventsListener": len(d.events._subs),
        "KernelVersion": platform.release(),
        "OperatingSystem": os_name,
        "OSVersion": os_version,
        "OSType": "linux",
        "Architecture": platform.machine(),
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": d.images.registry_config.info() if d.images is not None else None,
        "NCPU": os.cpu_count() or 1,
        "MemTotal": _mem_total(),
        "GenericResources": None,
        "DockerRootDir": d.data_root,
        "HttpProxy": os.environ.get("HTTP_PROXY", ""),
        "HttpsProxy": os.environ.get("HTTPS_PROXY", ""),
        "NoProxy": os.environ.get("NO_PROXY", ""),
        "Name": socket.gethostname(),
        "Labels": list(d.config.labels),
        "ExperimentalBuild": d.config.experimental,
        "ServerVersion": ENGINE_VERSION,
        "Runtimes": runtimes,
        "DefaultRuntime": d.config.default_runtime,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False, "Error": "",
                  "RemoteManagers": None},  # fmt: skip
        "LiveRestoreEnabled": d.config.live_restore,
        "Isolation": "",
        "InitBinary": "docker-init",
        "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": sec,
        "CDISpecDirs": [],
        "Warnings": None,
        "ProductLicense": "Apache-2.0",
        "DefaultAddressPools": None,
    }


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _daemon_id(d: Daemon) -> str:
    path = os.path.join(d.data_root, "engine-id")
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        import uuid

        from dockyard.util import atomic_write

        eid = str(uuid.uuid4())
        atomic_write(path, eid)
        return eid


async def info(d: Daemon) -> dict[str, Any]:
    out = await asyncio.to_thread(_info_sync, d)
    out["NGoroutines"] = len(asyncio.all_tasks())
    return out


def _df_sync(d: Daemon, types: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not types or "image" in types:
        if d.images is not None and hasattr(d.images, "disk_usage"):
            imgs, layers_size = d.images.disk_usage()
        else:
            imgs, layers_size = [], 0
        out["LayersSize"] = layers_size
        out["Images"] = imgs
    if not types or "container" in types:
        cs = []
        for c in d.store.all():
            try:
                sizes = d.layers.sizes(c.id)
            except Exception:  # noqa: BLE001 - a container being removed
                sizes = (0, 0)
            cs.append(c.summary(c.config.get("Image") or c.image_id, sizes))
        out["Containers"] = cs
    if not types or "volume" in types:
        vols = []
        for v in d.volumes.all():
            vols.append(v.inspect(d.volumes.path(v.name), {"Size": d.volumes.size(v.name),
                                                           "RefCount": len(d.volumes.users(v.name))}))  # fmt: skip
        out["Volumes"] = vols
    if not types or "build-cache" in types:
        out["BuildCache"] = []
    return out


async def df(d: Daemon, types: set[str] | None = None) -> dict[str, Any]:
    return await asyncio.to_thread(_df_sync, d, types or set())


def uptime(d: Daemon) -> float:
    return time.time() - d.started_at


def python() -> str:
    return sys.version
