"""Signal names and numbers as Docker accepts them ("SIGTERM", "TERM", "15", "SIGRTMIN+3")."""

from __future__ import annotations

import signal as _signal

from dockyard.errors import InvalidParameter


def parse(value: str | int | None, default: int = _signal.SIGKILL) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, int):
        sig = value
    else:
        s = str(value).strip().upper()
        if s.isdigit():
            sig = int(s)
        else:
            if not s.startswith("SIG"):
                s = "SIG" + s
            if s.startswith("SIGRTMIN+") or s.startswith("SIGRTMAX-"):
                base = _signal.SIGRTMIN if s.startswith("SIGRTMIN") else _signal.SIGRTMAX
                try:
                    off = int(s[9:])
                except ValueError:
                    raise InvalidParameter(f"Invalid signal: {value}") from None
                sig = base + off if s.startswith("SIGRTMIN") else base - off
            else:
                try:
                    sig = int(getattr(_signal.Signals, s))
                except AttributeError:
                    raise InvalidParameter(f"Invalid signal: {value}") from None
    if not 0 < sig <= 64:
        raise InvalidParameter(f"Invalid signal: {value}")
    return sig
