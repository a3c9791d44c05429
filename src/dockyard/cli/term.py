"""The local terminal: raw mode, window size, detach-key sequences.

Owns: putting stdin in raw mode for `-it` and restoring it (also on errors and signals),
reading the window size of stdout, and parsing `--detach-keys` (Docker's `ctrl-p,ctrl-q` syntax).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


def parse_detach_keys(spec: str) -> bytes:
    """'ctrl-p,ctrl-q' -> b'\\x10\\x11'; single characters stand for themselves."""
    out = bytearray()
    for key in spec.split(","):
        k = key.strip()
        if len(k) == 1:
            out.append(ord(k))
            continue
        low = k.lower()
        if low.startswith("ctrl-") and len(k) == 6:
            c = k[5]
            if "a" <= c.lower() <= "z":
                out.append(ord(c.lower()) - ord("a") + 1)
                continue
            special = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}
            if c in special:
                out.append(special[c])
                continue
        raise ValueError(f"Unknown character: '{k}'")
    if not out:
        raise ValueError("Unknown character: ''")
    return bytes(out)


def window_size(fd: int = 1) -> tuple[int, int] | None:
    """(rows, cols) of the terminal on fd, or None."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return None
    return size.lines, size.columns


class RawMode:
    """Context manager: stdin in raw mode (like Docker's term.SetRawTerminal), restored after."""

    def __init__(self, fd: int = 0, enabled: bool = True) -> None:
        self.fd = fd
        self.enabled = enabled and os.isatty(fd)
        self.saved: Any = None

    def __enter__(self) -> RawMode:
        if self.enabled:
            import termios
            import tty

            self.saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd, termios.TCSANOW)  # cfmakeraw, as Docker's term.MakeRaw
        return self

    def restore(self) -> None:
        if self.saved is not None:
            import termios

            try:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
            except termios.error:
                pass
            self.saved = None

    def __exit__(self, *exc: object) -> None:
        self.restore()
