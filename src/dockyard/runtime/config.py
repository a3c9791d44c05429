"""Reading and checking an OCI bundle's config.json (runtime-spec 1.0.x, Linux).

Pure functions over the config as plain data (dicts and lists, exactly as parsed): load it,
validate it with runc's error messages, and answer the questions every other module asks
(which namespaces are new, which are joined by path, where the rootfs is).
"""

from __future__ import annotations

import os

from dockyard.runtime import jsonfast

OCI_VERSION = "1.0.2"
NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")


class ConfigError(Exception):
    """The bundle or its config.json cannot be used; the message is shown to the user."""


def load_bundle(bundle: str) -> tuple[dict, str]:
    """Read <bundle>/config.json; returns (config, absolute rootfs path)."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigError("JSON specification file config.json not found") from None
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    try:
        config = jsonfast.loads(data)
    except ValueError as e:
        raise ConfigError(f"config.json: {e}") from None
    if not isinstance(config, dict):
        raise ConfigError("config.json: the top level must be an object")
    return config, rootfs_path(config, bundle)


def rootfs_path(config: dict, bundle: str) -> str:
    root = config.get("root") or {}
    p = root.get("path") or "rootfs"
    if not os.path.isabs(p):
        p = os.path.join(bundle, p)
    return os.path.normpath(p)


def namespaces(config: dict) -> list[dict]:
    return ((config.get("linux") or {}).get("namespaces")) or []


def new_namespaces(config: dict) -> list[str]:
    """Types of the namespaces to create (listed without a path)."""
    return [ns["type"] for ns in namespaces(config) if not ns.get("path")]


def joined_namespaces(config: dict) -> list[tuple[str, str]]:
    """(type, path) of the namespaces to join."""
    return [(ns["type"], ns["path"]) for ns in namespaces(config) if ns.get("path")]


def has_namespace(config: dict, kind: str) -> bool:
    return any(ns.get("type") == kind for ns in namespaces(config))


def has_new_namespace(config: dict, kind: str) -> bool:
    return any(ns.get("type") == kind and not ns.get("path") for ns in namespaces(config))


def _check_sysctl(config: dict, key: str) -> None:
    ipc_keys = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")
    if key in ipc_keys or key.startswith("fs.mqueue."):
        if not has_namespace(config, "ipc"):
            raise ConfigError(f"sysctl {key!r} is not allowed in the hosts ipc namespace")
        return
    if key.startswith("net."):
        if not has_namespace(config, "network"):
            raise ConfigError(f"sysctl {key!r} is not allowed in the hosts network namespace")
        return
    if key in ("kernel.hostname", "kernel.domainname"):
        if not has_namespace(config, "uts"):
            raise ConfigError(f"sysctl {key!r} is not allowed as it conflicts with the OCI \"hostname\" field")
        return
    if key.startswith("user.") or key.startswith("kernel.ns_last_pid"):
        return
    raise ConfigError(f"sysctl {key!r} is not in a separate kernel namespace")


def validate(config: dict, rootfs: str, need_process: bool = True) -> None:
    """Reject configs runc would reject, with runc's messages."""
    if not config.get("ociVersion"):
        raise ConfigError("config.json: ociVersion is required")
    if not os.path.isdir(rootfs):
        raise ConfigError(f"rootfs ({rootfs}) does not exist")
    proc = config.get("process")
    if need_process:
        if not isinstance(proc, dict):
            raise ConfigError("process property must not be empty")
        if not proc.get("args"):
            raise ConfigError("args must not be empty")
        if not proc.get("cwd", "/").startswith("/"):
            raise ConfigError(f"cwd {proc.get('cwd')!r} is not an absolute path")
    seen: set[str] = set()
    for ns in namespaces(config):
        t = ns.get("type")
        if t not in NAMESPACE_TYPES:
            raise ConfigError(f"namespace {t!r} does not exist")
        if t in seen:
            raise ConfigError(f"malformed spec file: duplicated ns {t!r}")
        seen.add(t)
        if ns.get("path") and not os.path.exists(ns["path"]):
            raise ConfigError(f"namespace path {ns['path']!r}: no such file or directory")
    linux = config.get("linux") or {}
    if has_new_namespace(config, "user"):
        if not linux.get("uidMappings"):
            raise ConfigError("user namespaces enabled, but no uid mappings found.")
        if not linux.get("gidMappings"):
            raise ConfigError("user namespaces enabled, but no gid mappings found.")
    elif (linux.get("uidMappings") or linux.get("gidMappings")) and not has_namespace(config, "user"):
        raise ConfigError("user namespace mappings specified, but USER namespace isn't enabled in the config")
    if config.get("hostname") and not has_namespace(config, "uts"):
        raise ConfigError("unable to set hostname without a private UTS namespace")
    if config.get("domainname") and not has_namespace(config, "uts"):
        raise ConfigError("unable to set domainname without a private UTS namespace")
    for key in linux.get("sysctl") or {}:
        _check_sysctl(config, key)
    if linux.get("intelRdt"):
        raise ConfigError("intelRdt is not supported by dockyard-runc")
    if linux.get("timeOffsets") and not has_new_namespace(config, "time"):
        raise ConfigError("time offsets specified, but no new time namespace")
    for m in config.get("mounts") or []:
        if not m.get("destination"):
            raise ConfigError("mount destination must not be empty")


def state_for_hooks(container_id: str, status: str, pid: int, bundle: str, config: dict) -> dict:
    """The OCI state object handed to hooks on stdin."""
    s = {"ociVersion": config.get("ociVersion") or OCI_VERSION, "id": container_id, "status": status,
         "bundle": bundle, "annotations": config.get("annotations") or {}}
    if pid:
        s["pid"] = pid
    return s
