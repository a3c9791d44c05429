"""Pure helpers of the builder: how metadata instructions change the run config and how the
classic builder words them in history (`#(nop)  CMD ["sh"]`).

    go_quote_list(["sh", "-c"]) -> '["sh" "-c"]'        Go's %q of a []string
    parse_duration("1m30s") -> ns                        Go's time.ParseDuration
    healthcheck(inst, shell) -> dict                     HEALTHCHECK's Healthcheck config
    set_env(env_list, key, value) -> env_list            replace in place or append
    expose_ports(ports) -> {"80/tcp": {}}
    check_platform(text)                                 only linux/amd64 builds
"""

from __future__ import annotations

import json
import re

from dockyard.build.parser import Instruction
from dockyard.errors import InvalidParameter

_UNITS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
          "h": 3600_000_000_000}  # fmt: skip


def go_quote_list(items: list[str] | None) -> str:
    return "[" + " ".join(json.dumps(s, ensure_ascii=False) for s in items or []) + "]"


def parse_duration(text: str) -> int:
    s = text.strip()
    if s in ("0", ""):
        return 0
    total = 0.0
    pos = 0
    for m in re.finditer(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise InvalidParameter(f'time: invalid duration "{text}"')
    return int(total)


def healthcheck(inst: Instruction) -> dict:
    rest = inst.rest
    word, _, args = rest.partition(" ")
    kind = word.upper()
    if kind == "NONE":
        if args.strip() or inst.flags:
            raise inst.error("HEALTHCHECK NONE takes no arguments")
        return {"Test": ["NONE"]}
    if kind != "CMD":
        raise InvalidParameter(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    args = args.strip()
    test: list[str]
    try:
        value = json.loads(args) if args.startswith("[") else None
    except ValueError:
        value = None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        test = ["CMD", *value]
    else:
        test = ["CMD-SHELL", args]
    hc: dict = {"Test": test}
    for flag, key in (("interval", "Interval"), ("timeout", "Timeout"), ("start-period", "StartPeriod"),
                      ("start-interval", "StartInterval")):  # fmt: skip
        if flag in inst.flags:
            ns = parse_duration(inst.flags[flag])
            if 0 < ns < 1_000_000:
                raise InvalidParameter(f"{key} in HEALTHCHECK cannot be less than 1ms")
            hc[key] = ns
    if "retries" in inst.flags:
        try:
            hc["Retries"] = int(inst.flags["retries"])
        except ValueError:
            raise InvalidParameter(f'strconv.ParseInt: parsing "{inst.flags["retries"]}": invalid syntax') from None
        if hc["Retries"] < 0:
            raise InvalidParameter("--retries cannot be negative")
    unknown = set(inst.flags) - {"interval", "timeout", "start-period", "start-interval", "retries"}
    if unknown:
        raise InvalidParameter(f"Unknown flag: {sorted(unknown)[0]}")
    return hc


def healthcheck_comment(hc: dict) -> str:
    from dockyard.daemon.health import go_duration

    if hc.get("Test") == ["NONE"]:
        return 'HEALTHCHECK &{["NONE"] "0s" "0s" "0s" \'\\x00\'}'
    # Go's %q of API 1.43's HealthConfig: Test, Interval, Timeout, StartPeriod, Retries
    durs = " ".join(f'"{go_duration(int(hc.get(k) or 0))}"' for k in ("Interval", "Timeout", "StartPeriod"))
    return f"HEALTHCHECK &{{{go_quote_list(hc['Test'])} {durs} '\\x{int(hc.get('Retries') or 0):02x}'}}"


def set_env(env: list[str] | None, key: str, value: str) -> list[str]:
    out = list(env or [])
    for i, e in enumerate(out):
        if e.split("=", 1)[0] == key:
            out[i] = f"{key}={value}"
            return out
    out.append(f"{key}={value}")
    return out


def env_map(env: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in env or []:
        k, _, v = e.partition("=")
        out[k] = v
    return out


def expose_ports(ports: list[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for p in ports:
        port, _, proto = p.partition("/")
        proto = (proto or "tcp").lower()
        if proto not in ("tcp", "udp", "sctp"):
            raise InvalidParameter(f"invalid proto: {proto}")
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", port)
        if not m:
            raise InvalidParameter(f"invalid containerPort: {port}")
        lo = int(m.group(1))
        hi = int(m.group(2) or lo)
        if hi < lo or hi > 65535:
            raise InvalidParameter(f"invalid containerPort: {port}")
        for n in range(lo, hi + 1):
            out[f"{n}/{proto}"] = {}
    return out


def check_platform(text: str) -> None:
    if not text:
        return
    parts = text.lower().split("/")
    os_, arch = parts[0], (parts[1] if len(parts) > 1 else "amd64")
    if os_ != "linux" or arch not in ("amd64", "x86_64"):
        raise InvalidParameter(f'"{text}": this daemon builds only linux/amd64 images')
