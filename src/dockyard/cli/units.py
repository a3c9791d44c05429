"""Human-readable units and times as the Docker CLI prints them (docker/go-units semantics).

Owns: RFC 3339 parsing into epoch seconds, `timestamp_arg` (the
`--since/--until` forms: Unix seconds, RFC 3339 dates, Go durations like `10m`), `truncate_id`,
and `ellipsis`; re-exports the size and duration formatting of `dockyard.gounits`.
"""

from __future__ import annotations

import time

from dockyard.gounits import bytes_size, human_duration, human_size  # noqa: F401  (re-exported)


def parse_rfc3339(text: str) -> float | None:
    """'2024-01-02T03:04:05.123456789Z' or with a ±hh:mm offset -> epoch seconds (None if zero/bad)."""
    if not text or text.startswith("0001-01-01"):
        return None
    try:
        date, _, rest = text.partition("T")
        y, mo, d = (int(x) for x in date.split("-"))
        offset = 0
        if rest.endswith("Z") or rest.endswith("z"):
            clock = rest[:-1]
        else:
            k = max(rest.rfind("+"), rest.rfind("-"))
            if k > 0:
                clock, off = rest[:k], rest[k:]
                oh, _, om = off[1:].partition(":")
                offset = (int(oh) * 3600 + int(om or 0) * 60) * (1 if off[0] == "+" else -1)
            else:
                clock = rest
        hms, _, frac = clock.partition(".")
        hh, mm, ss = (int(x) for x in hms.split(":"))
        days = _days_from_civil(y, mo, d)
        return days * 86400 + hh * 3600 + mm * 60 + ss + (float("0." + frac) if frac else 0.0) - offset
    except (ValueError, IndexError):
        return None


def _days_from_civil(y: int, m: int, d: int) -> int:
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def format_local(epoch: float, with_zone: bool = True) -> str:
    """Go's time.Time.String() for a local time: '2024-01-02 03:04:05 +0000 UTC'."""
    t = time.localtime(epoch)
    text = time.strftime("%Y-%m-%d %H:%M:%S", t)
    if with_zone:
        text += " " + time.strftime("%z", t) + " " + (time.strftime("%Z", t) or "UTC")
    return text


def rfc3339(epoch: float, nano: bool = True) -> str:
    t = time.gmtime(epoch)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", t)
    if nano:
        frac = f"{epoch - int(epoch):.9f}"[2:].rstrip("0")
        if frac:
            base += "." + frac
    return base + "Z"


def timestamp_arg(value: str, now: float | None = None) -> str:
    """docker's timetypes.GetTimestamp: the `since`/`until` query value for a flag value."""
    from dockyard.cli.flags import parse_go_duration

    if now is None:
        now = time.time()
    if not value:
        return ""
    try:
        d = parse_go_duration(value)
        return f"{now - d:.9f}".rstrip("0").rstrip(".") if d != int(d) else str(int(now - d))
    except ValueError:
        pass
    if all(c.isdigit() or c == "." for c in value) and value.count(".") <= 1:
        return value
    if "T" not in value and len(value) == 10 and value[4] == "-":
        value += "T00:00:00"
    has_zone = value.endswith("Z") or (len(value) > 19 and value[19:].lstrip(".0123456789")[:1] in ("+", "-"))
    epoch = parse_rfc3339(value if has_zone else value + "Z")
    if epoch is None:
        raise ValueError(f'failed to parse value as time or duration: "{value}"')
    if not has_zone:
        epoch -= -time.timezone if time.localtime().tm_isdst == 0 else -time.altzone
    if epoch == int(epoch):
        return str(int(epoch))
    return f"{epoch:.9f}"


def truncate_id(ident: str) -> str:
    if ":" in ident:
        ident = ident.split(":", 1)[1]
    return ident[:12]


def ellipsis(s: str, width: int) -> str:
    if width <= 0:
        return ""
    if width == 1:
        return s[:1]
    if len(s) <= width:
        return s
    return s[:width - 1] + "…"
