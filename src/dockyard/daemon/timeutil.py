"""Time in Docker's formats: RFC 3339 with nanoseconds (Go's RFC3339Nano), its zero time, the
`since`/`until` values the API accepts, and go-units' HumanDuration ("Up 3 seconds")."""

from __future__ import annotations

import time
from datetime import datetime

from dockyard.gounits import human_duration  # noqa: F401  (re-exported)

ZERO_TIME = "0001-01-01T00:00:00Z"


def format_ns(ns: int) -> str:
    """Nanoseconds since the epoch -> '2024-05-01T12:00:00.123456789Z' (trailing zeros trimmed)."""
    sec, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    if frac:
        base += "." + f"{frac:09d}".rstrip("0")
    return base + "Z"


def now() -> str:
    return format_ns(time.time_ns())


def parse_ns(value: str | None) -> int:
    """RFC 3339 (any fraction, Z or offset) -> ns since the epoch; the zero time and '' -> 0."""
    if not value or value.startswith("0001-01-01"):
        return 0
    s = value.strip()
    frac_ns = 0
    tz = "+00:00"
    if s.endswith("Z"):
        s = s[:-1]
    else:
        for sign in ("+", "-"):
            idx = s.rfind(sign)
            if idx > 10:
                s, tz = s[:idx], s[idx:]
                break
    if "." in s:
        s, frac = s.split(".", 1)
        frac_ns = int((frac + "000000000")[:9])
    dt = datetime.fromisoformat(s + tz)
    return int(dt.timestamp()) * 1_000_000_000 + frac_ns


def parse_api_time(value: str, now_ns: int | None = None) -> int:
    """The `since`/`until` query values: unix seconds with an optional fraction, an RFC 3339 time,
    or a Go duration relative to now ('10m', '1h30m')."""
    v = value.strip()
    if not v:
        return 0
    try:
        if "." in v:
            sec, frac = v.split(".", 1)
            return int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])
        return int(v) * 1_000_000_000
    except ValueError:
        pass
    if v[-1] in "smhun" and v[0].isdigit():
        d = parse_go_duration(v)
        return (now_ns if now_ns is not None else time.time_ns()) - d
    return parse_ns(v)


def parse_go_duration(v: str) -> int:
    """'1h30m', '10s', '500ms' -> nanoseconds."""
    units = {"ns": 1, "us": 1000, "µs": 1000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
             "h": 3_600_000_000_000}  # fmt: skip
    total, num, i = 0, "", 0
    while i < len(v):
        ch = v[i]
        if ch.isdigit() or ch == ".":
            num += ch
            i += 1
            continue
        unit = v[i : i + 2] if v[i : i + 2] in units else ch
        if unit not in units or not num:
            raise ValueError(f"time: invalid duration {v!r}")
        total += int(float(num) * units[unit])
        num = ""
        i += len(unit)
    if num:
        raise ValueError(f"time: missing unit in duration {v!r}")
    return total


def unix(value: str) -> int:
    """RFC 3339 -> unix seconds (the `Created` of /containers/json)."""
    return parse_ns(value) // 1_000_000_000

