"""Image config helpers: Docker's timestamps, the empty container config, and `--change`
instructions (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR)
applied to a config as `docker import` and `docker commit` do."""

from __future__ import annotations

import datetime as _dt
import json
import platform
import shlex

from dockyard.errors import InvalidParameter

DOCKER_VERSION = "24.0.0-dockyard"


def now_rfc3339() -> str:
    """Current UTC time as Go's RFC3339Nano: 2024-05-01T12:00:00.123456789Z."""
    t = _dt.datetime.now(_dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}000Z"


def parse_time(s: str | None) -> float:
    """Seconds since the epoch from an RFC3339 string (any fraction length); 0 if absent."""
    if not s:
        return 0.0
    s = s.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    frac = ""
    main, tz = s, ""
    for sign in ("+", "-"):
        idx = s.rfind(sign)
        if idx > 10:
            main, tz = s[:idx], s[idx:]
            break
    if "." in main:
        main, frac = main.split(".", 1)
    try:
        base = _dt.datetime.fromisoformat(main + tz).timestamp()
    except ValueError:
        return 0.0
    return base + (float("0." + frac) if frac.isdigit() else 0.0)


def go_arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(m, m)


def empty_container_config() -> dict:
    return {
        "Hostname": "",
        "Domainname": "",
        "User": "",
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "Tty": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "Env": None,
        "Cmd": None,
        "Image": "",
        "Volumes": None,
        "WorkingDir": "",
        "Entrypoint": None,
        "OnBuild": None,
        "Labels": None,
    }


def _json_or_shell(rest: str) -> list[str]:
    rest = rest.strip()
    if rest.startswith("["):
        try:
            value = json.loads(rest)
            if isinstance(value, list) and all(isinstance(x, str) for x in value):
                return value
        except ValueError:
            pass
    return ["/bin/sh", "-c", rest]


def _kv_pairs(rest: str, what: str) -> list[tuple[str, str]]:
    words = shlex.split(rest)
    if not words:
        raise InvalidParameter(f"{what} requires at least one argument")
    if "=" not in words[0]:
        # legacy form: ENV key value with spaces
        key, _, value = rest.strip().partition(" ")
        return [(key, value.strip())]
    out = []
    for w in words:
        if "=" not in w:
            raise InvalidParameter(f"{what} names can not be blank" if w.startswith("=") else f"Syntax error - can't find = in \"{w}\". Must be of the form: name=value")
        k, _, v = w.partition("=")
        out.append((k, v))
    return out


ALLOWED_CHANGES = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR")


def apply_changes(config: dict, changes: list[str] | None) -> dict:
    """Apply Dockerfile-style `--change` lines to a container config dict (returned, modified)."""
    for line in changes or []:
        line = line.strip()
        if not line:
            continue
        instr, _, rest = line.partition(" ")
        instr = instr.upper()
        if instr not in ALLOWED_CHANGES:
            raise InvalidParameter(f"{instr} is not a valid change command")
        if instr == "CMD":
            config["Cmd"] = _json_or_shell(rest)
        elif instr == "ENTRYPOINT":
            config["Entrypoint"] = _json_or_shell(rest)
        elif instr == "ENV":
            env = list(config.get("Env") or [])
            for k, v in _kv_pairs(rest, "ENV"):
                env = [e for e in env if e.split("=", 1)[0] != k] + [f"{k}={v}"]
            config["Env"] = env
        elif instr == "LABEL":
            labels = dict(config.get("Labels") or {})
            labels.update(_kv_pairs(rest, "LABEL"))
            config["Labels"] = labels
        elif instr == "EXPOSE":
            ports = dict(config.get("ExposedPorts") or {})
            for p in rest.split():
                ports[p if "/" in p else f"{p}/tcp"] = {}
            config["ExposedPorts"] = ports
        elif instr == "VOLUME":
            vols = dict(config.get("Volumes") or {})
            for v in _json_or_shell(rest) if rest.strip().startswith("[") else rest.split():
                vols[v] = {}
            config["Volumes"] = vols
        elif instr == "USER":
            config["User"] = rest.strip()
        elif instr == "WORKDIR":
            config["WorkingDir"] = rest.strip()
        elif instr == "STOPSIGNAL":
            config["StopSignal"] = rest.strip()
        elif instr == "ONBUILD":
            config["OnBuild"] = list(config.get("OnBuild") or []) + [rest.strip()]
    return config
