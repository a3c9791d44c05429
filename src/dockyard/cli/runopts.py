"""`run`/`create` flags and their translation into the Engine API's create body (pure).

Owns: the container flags Docker's `run` and `create` accept (same names, types and help), and
`build_create(opts, args)` turning parsed flags into (Config, HostConfig, NetworkingConfig) as
Docker's CLI sends them to `POST /containers/create`: env and env files, labels and label files,
ports (`-p [ip:][host:]container[/proto]`, ranges, `-P`, `--expose`), volumes (`-v`), `--mount`
CSV, `--tmpfs`, resources, restart policy, ulimits, devices, security options (a seccomp profile
file is read and sent inline, as Docker does), networks with `--ip`/`--mac-address`/aliases,
health checks, and the attach flags. Errors carry Docker's words and raise `CLIError(..., 125)`.
"""

from __future__ import annotations

import os

from dockyard.cli.command import CLIError
from dockyard.cli.flags import Flag, FlagError, parse_ram_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockyard.cli.flags import Options


def _f(name: str, short: str = "", kind: str = "string", help: str = "", **kw: Any) -> Flag:
    return Flag(name, short, kind, help=help, **kw)


CONTAINER_FLAGS = [
    _f("add-host", kind="list", help="Add a custom host-to-IP mapping (host:ip)"),
    _f("annotation", kind="map", help="Add an annotation to the container (passed through to the OCI runtime)", show_default="map[]"),
    _f("attach", "a", "list", "Attach to STDIN, STDOUT or STDERR"),
    _f("blkio-weight", kind="uint16", help="Block IO (relative weight), between 10 and 1000, or 0 to disable", show_default="0"),
    _f("blkio-weight-device", kind="list", help="Block IO weight (relative device weight)", show_default="[]"),
    _f("cap-add", kind="list", help="Add Linux capabilities"),
    _f("cap-drop", kind="list", help="Drop Linux capabilities"),
    _f("cgroup-parent", help="Optional parent cgroup for the container"),
    _f("cgroupns", help="Cgroup namespace to use (host|private)\n"
       "'host':    Run the container in the Dockyard host's cgroup namespace\n"
       "'private': Run the container in its own private cgroup namespace\n"
       "'':        Use the cgroup namespace as configured by the\n"
       "           default-cgroupns-mode option on the daemon (default)"),
    _f("cidfile", help="Write the container ID to the file"),
    _f("cpu-period", kind="int", help="Limit CPU CFS (Completely Fair Scheduler) period"),
    _f("cpu-quota", kind="int", help="Limit CPU CFS (Completely Fair Scheduler) quota"),
    _f("cpu-rt-period", kind="int", help="Limit CPU real-time period in microseconds"),
    _f("cpu-rt-runtime", kind="int", help="Limit CPU real-time runtime in microseconds"),
    _f("cpu-shares", "c", "int", "CPU shares (relative weight)"),
    _f("cpus", kind="decimal", help="Number of CPUs"),
    _f("cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)"),
    _f("cpuset-mems", help="MEMs in which to allow execution (0-3, 0,1)"),
    _f("device", kind="list", help="Add a host device to the container"),
    _f("device-cgroup-rule", kind="list", help="Add a rule to the cgroup allowed devices list"),
    _f("device-read-bps", kind="list", help="Limit read rate (bytes per second) from a device", show_default="[]"),
    _f("device-read-iops", kind="list", help="Limit read rate (IO per second) from a device", show_default="[]"),
    _f("device-write-bps", kind="list", help="Limit write rate (bytes per second) to a device", show_default="[]"),
    _f("device-write-iops", kind="list", help="Limit write rate (IO per second) to a device", show_default="[]"),
    _f("dns", kind="list", help="Set custom DNS servers"),
    _f("dns-option", kind="list", help="Set DNS options"),
    _f("dns-search", kind="list", help="Set custom DNS search domains"),
    _f("domainname", help="Container NIS domain name"),
    _f("entrypoint", help="Overwrite the default ENTRYPOINT of the image"),
    _f("env", "e", "list", "Set environment variables"),
    _f("env-file", kind="list", help="Read in a file of environment variables"),
    _f("expose", kind="list", help="Expose a port or a range of ports"),
    _f("group-add", kind="list", help="Add additional groups to join"),
    _f("health-cmd", help="Command to run to check health"),
    _f("health-interval", kind="duration", help="Time between running the check (ms|s|m|h)", show_default="0s"),
    _f("health-retries", kind="int", help="Consecutive failures needed to report unhealthy"),
    _f("health-start-interval", kind="duration", help="Time between running the check during the start period (ms|s|m|h)", show_default="0s"),
    _f("health-start-period", kind="duration", help="Start period for the container to initialize before starting health-retries countdown (ms|s|m|h)", show_default="0s"),
    _f("health-timeout", kind="duration", help="Maximum time to allow one check to run (ms|s|m|h)", show_default="0s"),
    _f("hostname", "h", help="Container host name"),
    _f("init", kind="bool", help="Run an init inside the container that forwards signals and reaps processes"),
    _f("interactive", "i", "bool", "Keep STDIN open even if not attached"),
    _f("ip", help="IPv4 address (e.g., 172.30.100.104)"),
    _f("ip6", help="IPv6 address (e.g., 2001:db8::33)"),
    _f("ipc", help="IPC mode to use"),
    _f("isolation", help="Container isolation technology"),
    _f("kernel-memory", kind="bytes", help="Kernel memory limit"),
    _f("label", "l", "list", "Set meta data on a container"),
    _f("label-file", kind="list", help="Read in a line delimited file of labels"),
    _f("link", kind="list", help="Add link to another container"),
    _f("link-local-ip", kind="list", help="Container IPv4/IPv6 link-local addresses"),
    _f("log-driver", help="Logging driver for the container"),
    _f("log-opt", kind="list", help="Log driver options"),
    _f("mac-address", help="Container MAC address (e.g., 92:d0:c6:0a:29:33)"),
    _f("memory", "m", "bytes", "Memory limit"),
    _f("memory-reservation", kind="bytes", help="Memory soft limit"),
    _f("memory-swap", kind="swapbytes", help="Swap limit equal to memory plus swap: '-1' to enable unlimited swap"),
    _f("memory-swappiness", kind="int", default=-1, help="Tune container memory swappiness (0 to 100)"),
    _f("mount", kind="list", metavar="mount", help="Attach a filesystem mount to the container"),
    _f("name", help="Assign a name to the container"),
    _f("network", kind="list", metavar="network", help="Connect a container to a network"),
    _f("network-alias", kind="list", help="Add network-scoped alias for the container"),
    _f("no-healthcheck", kind="bool", help="Disable any container-specified HEALTHCHECK"),
    _f("oom-kill-disable", kind="bool", help="Disable OOM Killer"),
    _f("oom-score-adj", kind="int", help="Tune host's OOM preferences (-1000 to 1000)"),
    _f("pid", help="PID namespace to use"),
    _f("pids-limit", kind="int", help="Tune container pids limit (set -1 for unlimited)"),
    _f("platform", help="Set platform if server is multi-platform capable"),
    _f("privileged", kind="bool", help="Give extended privileges to this container"),
    _f("publish", "p", "list", "Publish a container's port(s) to the host"),
    _f("publish-all", "P", "bool", "Publish all exposed ports to random ports"),
    _f("pull", default="missing", help='Pull image before running ("always", "missing", "never")'),
    _f("quiet", "q", "bool", "Suppress the pull output"),
    _f("read-only", kind="bool", help="Mount the container's root filesystem as read only"),
    _f("restart", default="no", help="Restart policy to apply when a container exits"),
    _f("rm", kind="bool", help="Automatically remove the container and its associated anonymous volumes when it exits"),
    _f("runtime", help="Runtime to use for this container"),
    _f("security-opt", kind="list", help="Security Options"),
    _f("shm-size", kind="bytes", help="Size of /dev/shm"),
    _f("stop-signal", help="Signal to stop the container"),
    _f("stop-timeout", kind="int", help="Timeout (in seconds) to stop a container"),
    _f("storage-opt", kind="list", help="Storage driver options for the container"),
    _f("sysctl", kind="map", help="Sysctl options", show_default="map[]"),
    _f("tmpfs", kind="list", help="Mount a tmpfs directory"),
    _f("tty", "t", "bool", "Allocate a pseudo-TTY"),
    _f("ulimit", kind="list", metavar="ulimit", help="Ulimit options", show_default="[]"),
    _f("user", "u", help="Username or UID (format: <name|uid>[:<group|gid>])"),
    _f("userns", help="User namespace to use"),
    _f("uts", help="UTS namespace to use"),
    _f("volume", "v", "list", "Bind mount a volume"),
    _f("volume-driver", help="Optional volume driver for the container"),
    _f("volumes-from", kind="list", help="Mount volumes from the specified container(s)"),
    _f("workdir", "w", help="Working directory inside the container"),
]

RUN_ONLY_FLAGS = [
    _f("detach", "d", "bool", "Run container in background and print container ID"),
    _f("detach-keys", help="Override the key sequence for detaching a container"),
    _f("sig-proxy", kind="bool", default=True, help="Proxy received signals to the process"),
]


def _bad(flag: str, value: str, why: str) -> FlagError:
    """A bad flag value: printed with the usage line, exit status 125 (as pflag's errors)."""
    return FlagError(f'invalid argument "{value}" for "{flag}" flag: {why}')


# ---- env, labels ------------------------------------------------------------------------------

def _read_kv_file(path: str, env: bool) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise CLIError(f"open {path}: no such file or directory", 125) from None
    except OSError as e:
        raise CLIError(f"open {path}: {e.strerror.lower() if e.strerror else e}", 125) from None
    out = []
    for n, raw in enumerate(lines, 1):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        if key != key.strip() or any(c.isspace() for c in key) or (not key and eq):
            if not key:
                raise CLIError(f"no variable name on line '{raw}'", 125)
            raise CLIError(f"variable '{key}' contains whitespaces", 125)
        if eq:
            out.append(f"{key}={value}")
        elif env:
            if key in os.environ:
                out.append(f"{key}={os.environ[key]}")
        else:
            out.append(key)
        del n
    return out


def parse_env(values: list[str], files: list[str]) -> list[str]:
    env = []
    for path in files:
        env.extend(_read_kv_file(path, env=True))
    for v in values:
        if not v or v.startswith("="):
            raise _bad("-e, --env", v, "invalid environment variable: " + v)
        if "=" in v:
            env.append(v)
        elif v in os.environ:
            env.append(f"{v}={os.environ[v]}")
    return env


def parse_labels(values: list[str], files: list[str]) -> dict[str, str]:
    items = []
    for path in files:
        items.extend(_read_kv_file(path, env=False))
    items.extend(values)
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise _bad("-l, --label", item, "invalid label format")
        out[key] = value
    return out


# ---- ports ----------------------------------------------------------------------------------

def _port_range(text: str, what: str) -> tuple[int, int]:
    if not text:
        return 0, 0
    lo_s, _, hi_s = text.partition("-")
    try:
        lo = int(lo_s)
        hi = int(hi_s) if hi_s else lo
    except ValueError:
        raise CLIError(f"invalid {what}: {text}", 125) from None
    if not (0 <= lo <= 65535 and 0 <= hi <= 65535) or hi < lo:
        raise CLIError(f"invalid {what}: {text}", 125)
    return lo, hi


def parse_publish(specs: list[str]) -> tuple[dict[str, dict], dict[str, list[dict[str, str]]]]:
    """nat.ParsePortSpecs: ('[ip:][hostPort:]containerPort[/proto]') -> (exposed, bindings)."""
    exposed: dict[str, dict] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in specs:
        if "=" in spec and ("target=" in spec or "published=" in spec):
            fields = dict(p.partition("=")[::2] for p in spec.split(","))
            proto = fields.get("protocol", "tcp")
            key = f"{fields.get('target', '')}/{proto}"
            exposed[key] = {}
            bindings.setdefault(key, []).append({"HostIp": "", "HostPort": fields.get("published", "")})
            continue
        raw, _, proto = spec.partition("/")
        proto = proto or "tcp"
        if proto not in ("tcp", "udp", "sctp"):
            raise CLIError(f"invalid proto: {proto}", 125)
        ip = ""
        if raw.startswith("["):
            end = raw.find("]")
            ip, raw = raw[1:end], raw[end + 1:].lstrip(":")
            parts = raw.split(":")
            host_port, container_port = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
        else:
            parts = raw.split(":")
            if len(parts) == 1:
                host_port, container_port = "", parts[0]
            elif len(parts) == 2:
                host_port, container_port = parts
            elif len(parts) == 3:
                ip, host_port, container_port = parts
            else:
                ip = ":".join(parts[:-2])
                host_port, container_port = parts[-2], parts[-1]
        if not container_port:
            raise CLIError(f"no port specified: {spec}<empty>", 125)
        c_lo, c_hi = _port_range(container_port, "containerPort")
        h_lo, h_hi = _port_range(host_port, "hostPort")
        same_size = (h_hi - h_lo) == (c_hi - c_lo)
        if host_port and not same_size and c_lo != c_hi:
            raise CLIError(f"invalid ranges specified for container and host Ports: {container_port} and {host_port}", 125)
        for i in range(c_hi - c_lo + 1):
            key = f"{c_lo + i}/{proto}"
            exposed[key] = {}
            if not host_port:
                hp = ""
            elif same_size:
                hp = str(h_lo + i)
            else:
                hp = f"{h_lo}-{h_hi}"
            bindings.setdefault(key, []).append({"HostIp": ip, "HostPort": hp})
    return exposed, bindings


def parse_expose(values: list[str], exposed: dict[str, dict]) -> None:
    for v in values:
        port, _, proto = v.partition("/")
        proto = proto or "tcp"
        lo, hi = _port_range(port, "range format for --expose")
        for p in range(lo, hi + 1):
            exposed[f"{p}/{proto}"] = {}


# ---- volumes and mounts -------------------------------------------------------------------------

def parse_volumes(values: list[str]) -> tuple[list[str], dict[str, dict]]:
    binds: list[str] = []
    anon: dict[str, dict] = {}
    for v in values:
        parts = v.split(":")
        if len(parts) == 1:
            if not v.startswith("/"):
                raise CLIError(f"invalid volume specification: '{v}'", 125)
            anon[v] = {}
            continue
        if len(parts) > 3 or not parts[1].startswith("/"):
            if len(parts) >= 2 and not parts[1].startswith("/"):
                raise CLIError(f"invalid volume specification: '{v}': invalid mount config for type \"bind\": "
                               f"invalid mount path: '{parts[1]}' mount path must be absolute", 125)
            raise CLIError(f"invalid volume specification: '{v}'", 125)
        src = parts[0]
        if src.startswith(".") or src.startswith("~"):
            src = os.path.abspath(os.path.expanduser(src))
            v = ":".join([src, *parts[1:]])
        binds.append(v)
    return binds, anon


def _bool_opt(key: str, value: str | None) -> bool:
    if value is None:
        return True
    low = value.lower()
    if low in ("1", "true", "yes"):
        return True
    if low in ("0", "false", "no"):
        return False
    raise CLIError(f'invalid argument "{value}" for "--mount" flag: invalid value for {key}: {value}', 125)


def parse_mount(spec: str) -> dict[str, Any]:
    """Docker's --mount CSV: type=bind|volume|tmpfs, source, target, readonly, bind-propagation, ..."""
    m: dict[str, Any] = {"Type": "volume"}
    bind: dict[str, Any] = {}
    vol: dict[str, Any] = {}
    tmpfs: dict[str, Any] = {}
    fields = [f for f in spec.split(",") if f]
    for field in fields:
        key, eq, value = field.partition("=")
        key = key.strip().lower()
        val: str | None = value if eq else None
        if key == "type":
            if val not in ("bind", "volume", "tmpfs", "npipe", "image", "cluster"):
                raise CLIError(f'invalid argument "{spec}" for "--mount" flag: invalid mount type: {val}', 125)
            m["Type"] = val
        elif key in ("source", "src"):
            m["Source"] = val or ""
        elif key in ("target", "dst", "destination"):
            m["Target"] = val or ""
        elif key in ("readonly", "ro"):
            m["ReadOnly"] = _bool_opt(key, val)
        elif key == "consistency":
            m["Consistency"] = val
        elif key == "bind-propagation":
            bind["Propagation"] = val
        elif key == "bind-nonrecursive":
            bind["NonRecursive"] = _bool_opt(key, val)
        elif key == "bind-recursive":
            if val == "disabled":
                bind["NonRecursive"] = True
        elif key == "bind-create-host-path":
            bind["CreateMountpoint"] = _bool_opt(key, val)
        elif key == "volume-nocopy":
            vol["NoCopy"] = _bool_opt(key, val)
        elif key == "volume-subpath":
            vol["Subpath"] = val
        elif key == "volume-label":
            k, _, v2 = (val or "").partition("=")
            vol.setdefault("Labels", {})[k] = v2
        elif key == "volume-driver":
            vol.setdefault("DriverConfig", {})["Name"] = val
        elif key == "volume-opt":
            k, _, v2 = (val or "").partition("=")
            vol.setdefault("DriverConfig", {}).setdefault("Options", {})[k] = v2
        elif key == "tmpfs-size":
            try:
                tmpfs["SizeBytes"] = parse_ram_size(val or "")
            except ValueError:
                raise CLIError(f'invalid argument "{spec}" for "--mount" flag: invalid value for {key}: {val}', 125) from None
        elif key == "tmpfs-mode":
            try:
                tmpfs["Mode"] = int(val or "", 8)
            except ValueError:
                raise CLIError(f'invalid argument "{spec}" for "--mount" flag: invalid value for {key}: {val}', 125) from None
        else:
            raise CLIError(f'invalid argument "{spec}" for "--mount" flag: unexpected key \'{key}\' in \'{field}\'', 125)
    if not m.get("Target"):
        raise CLIError(f'invalid argument "{spec}" for "--mount" flag: target is required', 125)
    if bind:
        if m["Type"] != "bind":
            raise CLIError(f'invalid argument "{spec}" for "--mount" flag: cannot mix \'bind-*\' options with mount type \'{m["Type"]}\'', 125)
        m["BindOptions"] = bind
    if vol:
        if m["Type"] != "volume":
            raise CLIError(f'invalid argument "{spec}" for "--mount" flag: cannot mix \'volume-*\' options with mount type \'{m["Type"]}\'', 125)
        m["VolumeOptions"] = vol
    if tmpfs:
        if m["Type"] != "tmpfs":
            raise CLIError(f'invalid argument "{spec}" for "--mount" flag: cannot mix \'tmpfs-*\' options with mount type \'{m["Type"]}\'', 125)
        m["TmpfsOptions"] = tmpfs
    return m


def parse_tmpfs(values: list[str]) -> dict[str, str]:
    out = {}
    for v in values:
        path, _, options = v.partition(":")
        if not path.startswith("/"):
            raise CLIError(f"invalid tmpfs specification: '{v}': mount path must be absolute", 125)
        out[path] = options
    return out


# ---- resources and misc -------------------------------------------------------------------------

def parse_restart(policy: str) -> dict[str, Any]:
    if not policy:
        return {"Name": "no", "MaximumRetryCount": 0}
    name, _, count = policy.partition(":")
    if name not in ("no", "always", "on-failure", "unless-stopped"):
        raise CLIError(f"invalid restart policy '{name}'", 125)
    if count and name != "on-failure":
        raise CLIError("invalid restart policy: maximum retry count can only be used with 'on-failure'", 125)
    retries = 0
    if count:
        try:
            retries = int(count)
        except ValueError:
            raise CLIError(f"invalid restart policy format: maximum retry count must be an integer: {count}", 125) from None
    return {"Name": name, "MaximumRetryCount": retries}


def parse_ulimit(value: str) -> dict[str, Any]:
    name, eq, limits = value.partition("=")
    if not eq:
        raise _bad("--ulimit", value, f"invalid ulimit argument: {value}")
    soft_s, _, hard_s = limits.partition(":")
    try:
        soft = int(soft_s)
        hard = int(hard_s) if hard_s else soft
    except ValueError:
        raise _bad("--ulimit", value, f"invalid ulimit argument: {value}") from None
    if soft > hard:
        raise _bad("--ulimit", value, f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
    known = {"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
             "rss", "rtprio", "rttime", "sigpending", "stack"}
    if name not in known:
        raise _bad("--ulimit", value, f"invalid ulimit type: {name}")
    return {"Name": name, "Soft": soft, "Hard": hard}


def parse_device(value: str) -> dict[str, str]:
    parts = value.split(":")
    src = parts[0]
    dst = src
    perms = "rwm"
    if len(parts) == 2:
        if all(c in "rwm" for c in parts[1]) and not parts[1].startswith("/"):
            perms = parts[1]
        else:
            dst = parts[1]
    elif len(parts) == 3:
        dst, perms = parts[1], parts[2]
    elif len(parts) > 3:
        raise _bad("--device", value, f"invalid device specification: {value}")
    if not all(c in "rwm" for c in perms) or not perms:
        raise _bad("--device", value, f"invalid device mode: {perms}")
    return {"PathOnHost": src, "PathInContainer": dst, "CgroupPermissions": perms}


def parse_security_opts(values: list[str]) -> list[str]:
    out = []
    for v in values:
        key, sep, value = v.partition("=")
        if not sep:
            key, sep2, value = v.partition(":")
            if sep2 and key in ("seccomp", "apparmor", "label"):
                raise CLIError(f"Invalid --security-opt: {v!r}", 125)
            if v == "no-new-privileges":
                out.append(v)
                continue
            raise CLIError(f"Invalid --security-opt: {v!r}", 125)
        if key == "seccomp" and value not in ("unconfined", "builtin"):
            try:
                with open(value, "rb") as f:
                    raw = f.read()
            except OSError as e:
                raise CLIError(f"opening seccomp profile ({value}) failed: {e.strerror}", 125) from None
            from dockyard.cli.jsonfast import dumps, loads

            try:
                profile = dumps(loads(raw))
            except ValueError as e:
                raise CLIError(f"compacting json for seccomp profile ({value}) failed: {e}", 125) from None
            out.append(f"seccomp={profile}")
            continue
        out.append(v)
    return out


def parse_add_hosts(values: list[str]) -> list[str]:
    out = []
    for v in values:
        if "=" in v:
            host, _, ip = v.partition("=")
        else:
            host, _, ip = v.partition(":")
        if not host or not ip:
            raise _bad("--add-host", v, f"bad format for add-host: {v!r}")
        if ip.startswith("[") and ip.endswith("]"):
            ip = ip[1:-1]
        out.append(f"{host}:{ip}")
    return out


def parse_network(values: list[str]) -> list[dict[str, Any]]:
    nets = []
    for v in values:
        if "=" in v and ("name=" in v or "alias=" in v or "ip=" in v):
            spec: dict[str, Any] = {"aliases": [], "driver_opts": {}}
            for field in v.split(","):
                key, _, val = field.partition("=")
                if key == "name":
                    spec["name"] = val
                elif key == "alias":
                    spec["aliases"].append(val)
                elif key == "ip":
                    spec["ip"] = val
                elif key == "ip6":
                    spec["ip6"] = val
                elif key == "mac-address":
                    spec["mac"] = val
                elif key == "driver-opt":
                    k, _, v2 = val.partition("=")
                    spec["driver_opts"][k] = v2
                else:
                    raise _bad("--network", v, f"invalid field '{key}' must be a key=value pair")
            nets.append(spec)
        else:
            nets.append({"name": v, "aliases": [], "driver_opts": {}})
    return nets


# ---- the create body ----------------------------------------------------------------------------

def build_create(opts: Options, args: list[str], is_run: bool) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(Config, HostConfig, NetworkingConfig) for POST /containers/create."""
    image = args[0]
    cmd = args[1:]
    changed = opts.changed

    attach = [a.lower() for a in opts["attach"]]
    for a in attach:
        if a not in ("stdin", "stdout", "stderr"):
            raise _bad("-a, --attach", a, "valid streams are STDIN, STDOUT and STDERR")
    attach_stdin = "stdin" in attach or bool(opts["interactive"])
    attach_stdout = "stdout" in attach or not attach
    attach_stderr = "stderr" in attach or not attach

    exposed, bindings = parse_publish(opts["publish"])
    parse_expose(opts["expose"], exposed)
    binds, anon = parse_volumes(opts["volume"])
    mounts = [parse_mount(m) for m in opts["mount"]]
    env = parse_env(opts["env"], opts["env-file"])
    labels = parse_labels(opts["label"], opts["label-file"])

    entrypoint: list[str] | None = None
    if opts["entrypoint"]:
        entrypoint = [opts["entrypoint"]]
    elif "entrypoint" in changed:
        entrypoint = [""]

    # Docker's CLI: a --health-* option counts only when it is not zero or empty, and the
    # HealthConfig it sends omits zero fields (Go's omitempty), so the image's values fill them
    health: dict[str, Any] | None = None
    health_flags = ("health-cmd", "health-interval", "health-timeout", "health-start-period", "health-retries",
                    "health-start-interval")  # fmt: skip
    have_health = any(opts[k] for k in health_flags)
    if opts["no-healthcheck"]:
        if have_health:
            raise CLIError("--no-healthcheck conflicts with --health-* options", 125)
        health = {"Test": ["NONE"]}
    elif have_health:
        for flag in ("health-interval", "health-timeout", "health-retries", "health-start-period",
                     "health-start-interval"):  # fmt: skip
            if opts[flag] < 0:
                raise CLIError(f"--{flag} cannot be negative", 125)
        health = {}
        if opts["health-cmd"]:
            health["Test"] = ["CMD-SHELL", opts["health-cmd"]]
        for flag, key in (("health-interval", "Interval"), ("health-timeout", "Timeout"),
                          ("health-start-period", "StartPeriod"), ("health-start-interval", "StartInterval")):
            if opts[flag]:
                health[key] = int(round(opts[flag] * 1e9))
        if opts["health-retries"]:
            health["Retries"] = opts["health-retries"]

    config: dict[str, Any] = {
        "Hostname": opts["hostname"],
        "Domainname": opts["domainname"],
        "User": opts["user"],
        "AttachStdin": attach_stdin,
        "AttachStdout": attach_stdout,
        "AttachStderr": attach_stderr,
        "ExposedPorts": exposed or None,
        "Tty": bool(opts["tty"]),
        "OpenStdin": bool(opts["interactive"]),
        "StdinOnce": False,
        "Env": env,
        "Cmd": cmd or None,
        "Image": image,
        "Volumes": anon or None,
        "WorkingDir": opts["workdir"],
        "Entrypoint": entrypoint,
        "OnBuild": None,
        "Labels": labels,
    }
    if opts["mac-address"]:
        config["MacAddress"] = opts["mac-address"]
    if opts["stop-signal"]:
        config["StopSignal"] = opts["stop-signal"]
    if "stop-timeout" in changed:
        config["StopTimeout"] = opts["stop-timeout"]
    if health is not None:
        config["Healthcheck"] = health

    networks = parse_network(opts["network"])
    network_mode = networks[0]["name"] if networks else "default"

    memory = opts["memory"]
    swap = opts["memory-swap"]
    nano_cpus = 0
    if opts["cpus"]:
        nano_cpus = int(round(opts["cpus"] * 1e9))
    if opts["cpus"] < 0:
        raise CLIError(f"invalid argument \"{opts['cpus']}\" for \"--cpus\" flag: value must be positive", 125)

    restart = parse_restart(opts["restart"])
    if opts["rm"] and restart["Name"] not in ("", "no"):
        raise CLIError("Conflicting options: --restart and --rm", 125)

    log_config = {"Type": opts["log-driver"], "Config": {}}
    for item in opts["log-opt"]:
        k, eq, v = item.partition("=")
        if not eq:
            raise _bad("--log-opt", item, "invalid key value pair format in driver options")
        log_config["Config"][k] = v

    storage_opt = {}
    for item in opts["storage-opt"]:
        k, eq, v = item.partition("=")
        if not eq:
            raise CLIError("invalid storage option", 125)
        storage_opt[k] = v

    host: dict[str, Any] = {
        "Binds": binds or None,
        "ContainerIDFile": opts["cidfile"],
        "LogConfig": log_config,
        "NetworkMode": network_mode,
        "PortBindings": bindings,
        "RestartPolicy": restart,
        "AutoRemove": bool(opts["rm"]),
        "VolumeDriver": opts["volume-driver"],
        "VolumesFrom": opts["volumes-from"] or None,
        "ConsoleSize": [0, 0],
        "Annotations": opts["annotation"] or None,
        "CapAdd": opts["cap-add"] or None,
        "CapDrop": opts["cap-drop"] or None,
        "CgroupnsMode": opts["cgroupns"],
        "Dns": opts["dns"],
        "DnsOptions": opts["dns-option"],
        "DnsSearch": opts["dns-search"],
        "ExtraHosts": parse_add_hosts(opts["add-host"]) or None,
        "GroupAdd": opts["group-add"] or None,
        "IpcMode": opts["ipc"],
        "Cgroup": "",
        "Links": opts["link"] or None,
        "OomScoreAdj": opts["oom-score-adj"],
        "PidMode": opts["pid"],
        "Privileged": bool(opts["privileged"]),
        "PublishAllPorts": bool(opts["publish-all"]),
        "ReadonlyRootfs": bool(opts["read-only"]),
        "SecurityOpt": parse_security_opts(opts["security-opt"]) or None,
        "StorageOpt": storage_opt or None,
        "Tmpfs": parse_tmpfs(opts["tmpfs"]) or None,
        "UTSMode": opts["uts"],
        "UsernsMode": opts["userns"],
        "ShmSize": opts["shm-size"],
        "Sysctls": opts["sysctl"] or None,
        "Runtime": opts["runtime"],
        "Isolation": opts["isolation"],
        "CpuShares": opts["cpu-shares"],
        "Memory": memory,
        "NanoCpus": nano_cpus,
        "CgroupParent": opts["cgroup-parent"],
        "BlkioWeight": opts["blkio-weight"],
        "CpuPeriod": opts["cpu-period"],
        "CpuQuota": opts["cpu-quota"],
        "CpuRealtimePeriod": opts["cpu-rt-period"],
        "CpuRealtimeRuntime": opts["cpu-rt-runtime"],
        "CpusetCpus": opts["cpuset-cpus"],
        "CpusetMems": opts["cpuset-mems"],
        "Devices": [parse_device(d) for d in opts["device"]],
        "DeviceCgroupRules": opts["device-cgroup-rule"],
        "KernelMemory": opts["kernel-memory"],
        "MemoryReservation": opts["memory-reservation"],
        "MemorySwap": swap,
        "OomKillDisable": bool(opts["oom-kill-disable"]),
        "Ulimits": [parse_ulimit(u) for u in opts["ulimit"]] or None,
        "Mounts": mounts or None,
    }
    if "memory-swappiness" in changed:
        host["MemorySwappiness"] = opts["memory-swappiness"]
    if "pids-limit" in changed:
        host["PidsLimit"] = opts["pids-limit"]
    if "init" in changed:
        host["Init"] = bool(opts["init"])
    if "oom-kill-disable" not in changed:
        host.pop("OomKillDisable")

    endpoints: dict[str, Any] = {}
    for idx, net in enumerate(networks or [{"name": "default", "aliases": [], "driver_opts": {}}]):
        ep: dict[str, Any] = {}
        ipam: dict[str, str] = {}
        aliases = list(net["aliases"])
        if idx == 0:
            if opts["ip"]:
                ipam["IPv4Address"] = opts["ip"]
            if opts["ip6"]:
                ipam["IPv6Address"] = opts["ip6"]
            aliases += opts["network-alias"]
            if opts["link"]:  # as the Docker CLI: on a user network, links are per-endpoint names
                ep["Links"] = list(opts["link"])
            if opts["link-local-ip"]:
                ipam["LinkLocalIPs"] = opts["link-local-ip"]  # type: ignore[assignment]
        if net.get("ip"):
            ipam["IPv4Address"] = net["ip"]
        if net.get("ip6"):
            ipam["IPv6Address"] = net["ip6"]
        if ipam:
            ep["IPAMConfig"] = ipam
        if aliases:
            ep["Aliases"] = aliases
        if net.get("mac"):
            ep["MacAddress"] = net["mac"]
        if net["driver_opts"]:
            ep["DriverOpts"] = net["driver_opts"]
        if ep or len(networks) > 1:
            endpoints[net["name"]] = ep
    networking = {"EndpointsConfig": endpoints}

    if is_run and not opts["detach"] and config["OpenStdin"] and config["AttachStdin"]:
        config["StdinOnce"] = True
    if is_run and opts["detach"]:
        if attach:
            raise CLIError("conflicting options: cannot specify both --attach and --detach", 125)
        config["AttachStdin"] = config["AttachStdout"] = config["AttachStderr"] = False
        config["StdinOnce"] = False
    return config, host, networking
