"""docker/go-units formatting, shared by the CLI, the daemon and the image progress stream.

Owns `human_size` (HumanSizeWithPrecision: decimal, "4.26MB"), `bytes_size` (BytesSize: binary,
"1.5MiB") and `human_duration` (HumanDuration: "3 seconds", "About a minute"). Standard library
only and no imports at all, so the CLI can use it without slowing its start.
"""

from __future__ import annotations

_DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def _go_g(value: float, precision: int) -> str:
    """Go's fmt "%.<precision>g"."""
    text = f"{value:.{precision}g}"
    if "e" in text:
        mant, exp = text.split("e")
        sign = exp[0]
        digits = exp[1:].lstrip("0").rjust(2, "0")
        text = f"{mant}e{sign}{digits}"
    return text


def human_size(size: float, precision: int = 4) -> str:
    """go-units HumanSizeWithPrecision (HumanSize is precision 4): base 1000, "1.23kB", "0B"."""
    i = 0
    size = float(size)
    while size >= 1000.0 and i < len(_DECIMAL) - 1:
        size /= 1000.0
        i += 1
    return _go_g(size, precision) + _DECIMAL[i]


def bytes_size(size: float) -> str:
    """go-units BytesSize: base 1024, "%.4g" then the unit, e.g. 1.953MiB."""
    i = 0
    size = float(size)
    while size >= 1024.0 and i < len(_BINARY) - 1:
        size /= 1024.0
        i += 1
    return _go_g(size, 4) + _BINARY[i]


def human_duration(seconds: float) -> str:
    """go-units HumanDuration ("Up 3 seconds", "About an hour", "2 weeks")."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)  # Go: int(d.Hours() + 0.5), not banker's rounding
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"
