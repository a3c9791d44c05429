"""Daemon options: dockerd's command-line flags and daemon.json keys, merged into one frozen value.

Flags win over the config file, as in dockerd (which refuses a flag also set in the file; we
let the flag win and log it). Options other layers need (networking's bridge and nft table names,
address pools) travel in `DaemonConfig.network` untouched, so adding one is a small change here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
from typing import Any

DEFAULT_DATA_ROOT = "/var/lib/dockyard"
DEFAULT_EXEC_ROOT = "/run/dockyard"
DEFAULT_HOST = "unix:///run/dockyard/dockyard.sock"
DEFAULT_CONFIG_FILE = "/etc/dockyard/daemon.json"
DEFAULT_RUNTIME = "dockyard-runc"

# json-file defaults: bounded, like Docker's "local" driver (Docker's json-file is unbounded)
DEFAULT_LOG_OPTS = {"max-size": "20m", "max-file": "5"}

# daemon.json keys we understand (Docker's names); others are rejected like dockerd does
KNOWN_KEYS = {
    "data-root", "exec-root", "hosts", "log-level", "pidfile", "debug", "default-runtime", "runtimes",
    "live-restore", "log-driver", "log-opts", "tls", "tlsverify", "tlscacert", "tlscert", "tlskey",
    "default-ulimits", "init-path", "init", "shutdown-timeout", "userns-remap", "seccomp-profile",
    "no-new-privileges", "bridge", "bip", "default-address-pools", "icc", "ip-forward", "iptables",
    "ip-masq", "fixed-cidr", "mtu", "dns", "dns-opts", "dns-search", "default-shm-size", "cgroup-parent",
    "experimental", "features", "labels", "storage-driver", "insecure-registries", "registry-mirrors",
    "max-concurrent-downloads", "max-concurrent-uploads", "group", "nft-table", "bridge-name",
    "default-cgroupns-mode", "ipv6", "userland-proxy", "exec-opts", "containerd", "bridge-prefix", "dns-upstreams",
    "port-redirect",
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Runtime:
    name: str
    path: str
    args: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class DaemonConfig:
    data_root: str = DEFAULT_DATA_ROOT
    exec_root: str = DEFAULT_EXEC_ROOT
    hosts: tuple[str, ...] = (DEFAULT_HOST,)
    log_level: str = "info"
    pidfile: str | None = None
    config_file: str | None = None
    default_runtime: str = "dockyard-runc"
    runtimes: dict[str, Runtime] = dataclasses.field(default_factory=dict)
    live_restore: bool = False
    log_driver: str = "json-file"
    log_opts: dict[str, str] = dataclasses.field(default_factory=lambda: dict(DEFAULT_LOG_OPTS))
    tls: bool = False
    tlsverify: bool = False
    tlscacert: str | None = None
    tlscert: str | None = None
    tlskey: str | None = None
    default_ulimits: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    init_path: str | None = None
    shutdown_timeout: int = 15
    userns_remap: str = ""
    id_mapping: Any = None  # storage.idshift.IdentityMapping once daemon/idmap.setup() resolved userns_remap
    seccomp_profile: str | None = None
    no_new_privileges: bool = False
    cgroup_parent: str = "dockyard"
    shim_path: str | None = None
    default_shm_size: int = 64 * 1024 * 1024
    experimental: bool = False
    labels: tuple[str, ...] = ()
    insecure_registries: tuple[str, ...] = ()
    registry_mirrors: tuple[str, ...] = ()
    socket_group: str = "root"
    network: dict[str, Any] = dataclasses.field(default_factory=dict)  # passed through to networking
    raw: dict[str, Any] = dataclasses.field(default_factory=dict)  # the whole daemon.json

    def runtime(self, name: str | None = None) -> Runtime:
        name = name or self.default_runtime
        rt = self.runtimes.get(name)
        if rt is None:
            from dockyard.errors import InvalidParameter

            raise InvalidParameter(f"unknown or invalid runtime name: {name}")
        return rt


def _find_shim() -> str | None:
    here = os.path.dirname(os.path.abspath(__file__))
    repo_build = os.path.normpath(os.path.join(here, "..", "..", "..", "build", "dockyard-shim"))
    for cand in (os.environ.get("DOCKYARD_SHIM"), repo_build, shutil.which("dockyard-shim")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def _find_init() -> str | None:
    for cand in ("/usr/bin/docker-init", "/usr/bin/tini-static", "/usr/libexec/podman/catatonit", "/usr/bin/catatonit"):
        if os.access(cand, os.X_OK):
            return os.path.realpath(cand)
    return None


def _resolve_runtime_path(path: str) -> str:
    if os.path.isabs(path):
        return path
    return shutil.which(path) or path


def _default_runtimes() -> dict[str, Runtime]:
    out = {"dockyard-runc": Runtime("dockyard-runc", _resolve_runtime_path("dockyard-runc"))}
    for name in ("runc", "crun"):
        p = shutil.which(name)
        if p:
            out[name] = Runtime(name, p)
    return out


def parse_size(value: str | int) -> int:
    """Docker's RAMInBytes: 64m, 1g, 512k, 10b, 100 (bytes)."""
    if isinstance(value, int):
        return value
    s = value.strip().lower()
    units = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}
    num, unit = s, "b"
    if s and s[-1] == "b" and len(s) > 1 and s[-2] in units:
        s = s[:-1]
    if s and s[-1] in units:
        num, unit = s[:-1], s[-1]
    try:
        n = float(num)
    except ValueError:
        raise ValueError(f"invalid size: '{value}'") from None
    if n < 0:
        raise ValueError(f"invalid size: '{value}'")
    return int(n * units[unit])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dockyard daemon", description="The Dockyard daemon (Docker Engine API).")
    p.add_argument("--data-root", help=f"root of persistent state (default {DEFAULT_DATA_ROOT})")
    p.add_argument("--exec-root", help=f"root of runtime state (default {DEFAULT_EXEC_ROOT})")
    p.add_argument("-H", "--host", action="append", dest="hosts", help="daemon socket(s) to listen on (repeatable)")
    p.add_argument("-l", "--log-level", choices=["debug", "info", "warn", "error", "fatal"])
    p.add_argument("-D", "--debug", action="store_true", default=None)
    p.add_argument("-p", "--pidfile")
    p.add_argument("--config-file", default=None, help=f"daemon configuration file (default {DEFAULT_CONFIG_FILE})")
    p.add_argument("--runtime", "--default-runtime", dest="default_runtime", help="default OCI runtime (name or path)")
    p.add_argument("--add-runtime", action="append", default=[], metavar="NAME=PATH")
    p.add_argument("--live-restore", action="store_true", default=None)
    p.add_argument("--tls", action="store_true", default=None)
    p.add_argument("--tlsverify", action="store_true", default=None)
    p.add_argument("--tlscacert")
    p.add_argument("--tlscert")
    p.add_argument("--tlskey")
    p.add_argument("--log-driver")
    p.add_argument("--log-opt", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--default-ulimit", action="append", default=[], metavar="NAME=SOFT[:HARD]")
    p.add_argument("--init-path")
    p.add_argument("--shutdown-timeout", type=int)
    p.add_argument("--userns-remap")
    p.add_argument("--seccomp-profile")
    p.add_argument("--no-new-privileges", action="store_true", default=None)
    p.add_argument("--cgroup-parent")
    p.add_argument("--shim", dest="shim_path", help="path of dockyard-shim")
    p.add_argument("-G", "--group", dest="socket_group")
    p.add_argument("--experimental", action="store_true", default=None)
    p.add_argument("--label", action="append", default=[])
    p.add_argument("--insecure-registry", action="append", default=[])
    p.add_argument("--registry-mirror", action="append", default=[])
    # networking, passed through to the network layer
    p.add_argument("-b", "--bridge", dest="net_bridge")
    p.add_argument("--bip", dest="net_bip")
    p.add_argument("--bridge-name", dest="net_bridge_name", help="name of the default bridge device")
    p.add_argument("--nft-table", dest="net_nft_table", help="name of the nftables table the daemon owns")
    p.add_argument("--bridge-prefix", dest="net_bridge_prefix", help="interface name prefix of user networks' bridges")
    p.add_argument("--icc", dest="net_icc", choices=["true", "false"])
    p.add_argument("--ip-forward", dest="net_ip_forward", choices=["true", "false"])
    p.add_argument("--default-address-pool", dest="net_default_address_pools", action="append", default=[])
    p.add_argument("--fixed-cidr", dest="net_fixed_cidr")
    p.add_argument("--mtu", dest="net_mtu", type=int)
    p.add_argument("--dns", dest="net_dns", action="append", default=[])
    p.add_argument("--dns-search", dest="net_dns_search", action="append", default=[])
    p.add_argument("--dns-opt", dest="net_dns_opts", action="append", default=[])
    return p


def _parse_ulimit(spec: str) -> tuple[str, dict[str, Any]]:
    name, _, vals = spec.partition("=")
    soft, _, hard = vals.partition(":")
    hard = hard or soft
    return name, {"Name": name, "Soft": int(soft), "Hard": int(hard)}


def load(argv: list[str] | None = None) -> DaemonConfig:
    args = build_parser().parse_args(argv)
    path = args.config_file or DEFAULT_CONFIG_FILE
    raw: dict[str, Any] = {}
    if os.path.exists(path):
        with open(path) as f:
            try:
                raw = json.load(f)
            except ValueError as e:
                raise SystemExit(f"unable to configure the Docker daemon with file {path}: {e}") from None
        unknown = sorted(set(raw) - KNOWN_KEYS)
        if unknown:
            raise SystemExit(f"the following directives don't match any configuration option: {', '.join(unknown)}")
    elif args.config_file:
        raise SystemExit(f"unable to configure the Docker daemon with file {path}: open {path}: no such file or directory")

    def pick(flag: Any, key: str, default: Any) -> Any:
        if flag not in (None, [], ""):
            return flag
        return raw.get(key, default)

    runtimes = _default_runtimes()
    for name, spec in (raw.get("runtimes") or {}).items():
        runtimes[name] = Runtime(name, _resolve_runtime_path(spec["path"]), tuple(spec.get("runtimeArgs") or ()))
    for item in args.add_runtime:
        name, _, path = item.partition("=")
        runtimes[name] = Runtime(name, _resolve_runtime_path(path))
    default_runtime = pick(args.default_runtime, "default-runtime", DEFAULT_RUNTIME)
    if default_runtime not in runtimes:
        # a path or a command name given directly
        runtimes[default_runtime] = Runtime(default_runtime, _resolve_runtime_path(default_runtime))

    log_opts = dict(DEFAULT_LOG_OPTS)
    log_opts.update(raw.get("log-opts") or {})
    for item in args.log_opt:
        k, _, v = item.partition("=")
        log_opts[k] = v

    ulimits: dict[str, dict[str, Any]] = {}
    for name, u in (raw.get("default-ulimits") or {}).items():
        ulimits[name] = {"Name": u.get("Name", name), "Soft": int(u["Soft"]), "Hard": int(u["Hard"])}
    for item in args.default_ulimit:
        name, u = _parse_ulimit(item)
        ulimits[name] = u

    network: dict[str, Any] = {}
    for key in ("bridge", "bip", "bridge-name", "nft-table", "icc", "ip-forward", "default-address-pools",
                "fixed-cidr", "mtu", "dns", "dns-search", "dns-opts", "iptables", "ip-masq", "ipv6", "userland-proxy",
                "bridge-prefix", "dns-upstreams", "port-redirect"):  # fmt: skip
        if key in raw:
            network[key] = raw[key]
    for attr, val in vars(args).items():
        if attr.startswith("net_") and val not in (None, []):
            key = attr[4:].replace("_", "-")
            if val in ("true", "false"):
                val = val == "true"
            network[key] = val

    debug = pick(args.debug, "debug", False)
    log_level = pick(args.log_level, "log-level", "debug" if debug else "info")
    tlsverify = bool(pick(args.tlsverify, "tlsverify", False))
    return DaemonConfig(
        data_root=os.path.abspath(pick(args.data_root, "data-root", DEFAULT_DATA_ROOT)),
        exec_root=os.path.abspath(pick(args.exec_root, "exec-root", DEFAULT_EXEC_ROOT)),
        hosts=tuple(pick(args.hosts, "hosts", [DEFAULT_HOST])),
        log_level=log_level,
        pidfile=pick(args.pidfile, "pidfile", None),
        config_file=path if os.path.exists(path) else None,
        default_runtime=default_runtime,
        runtimes=runtimes,
        live_restore=bool(pick(args.live_restore, "live-restore", False)),
        log_driver=pick(args.log_driver, "log-driver", "json-file"),
        log_opts=log_opts,
        tls=bool(pick(args.tls, "tls", False)) or tlsverify,
        tlsverify=tlsverify,
        tlscacert=pick(args.tlscacert, "tlscacert", None),
        tlscert=pick(args.tlscert, "tlscert", None),
        tlskey=pick(args.tlskey, "tlskey", None),
        default_ulimits=ulimits,
        init_path=pick(args.init_path, "init-path", None) or _find_init(),
        shutdown_timeout=int(pick(args.shutdown_timeout, "shutdown-timeout", 15)),
        userns_remap=pick(args.userns_remap, "userns-remap", ""),
        seccomp_profile=pick(args.seccomp_profile, "seccomp-profile", None),
        no_new_privileges=bool(pick(args.no_new_privileges, "no-new-privileges", False)),
        cgroup_parent=pick(args.cgroup_parent, "cgroup-parent", "dockyard"),
        shim_path=pick(args.shim_path, "shim", None) or _find_shim(),
        default_shm_size=parse_size(raw.get("default-shm-size", 64 * 1024 * 1024)),
        experimental=bool(pick(args.experimental, "experimental", False)),
        labels=tuple(pick(args.label, "labels", [])),
        insecure_registries=tuple(pick(args.insecure_registry, "insecure-registries", [])),
        registry_mirrors=tuple(pick(args.registry_mirror, "registry-mirrors", [])),
        socket_group=pick(args.socket_group, "group", "root"),
        network=network,
        raw=raw,
    )
