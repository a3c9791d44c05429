"""Docker's JSON progress messages (the lines of /images/create, /images/{name}/push, /images/load).

    status("Pulling from library/busybox", id_="latest") -> {"status": ..., "id": ...}
    bar("Downloading", "a1b2c3d4e5f6", current, total) -> {"status", "progressDetail", "progress", "id"}
"""

from __future__ import annotations

import time
from collections.abc import Callable

from dockyard.gounits import human_size

Progress = Callable[[dict], None]


def status(text: str, id_: str | None = None) -> dict:
    msg: dict = {"status": text}
    if id_ is not None:
        msg["id"] = id_
    return msg


def detail(text: str, id_: str) -> dict:
    return {"status": text, "progressDetail": {}, "id": id_}


def bar(action: str, id_: str, current: int, total: int) -> dict:
    width = 50
    text = ""
    if total > 0:
        pct = min(1.0, current / total)
        n = int(pct * width)
        text = "[" + "=" * n + ">" + " " * (width - n) + "] "
        text += f"{human_size(current):>8}/{human_size(total)}"
    else:
        text = f"{human_size(current):>8}"
    return {"status": action, "progressDetail": {"current": current, "total": total}, "progress": text, "id": id_}


class Throttle:
    """Calls `emit` at most every `interval` seconds (and always for the final value)."""

    def __init__(self, emit: Progress | None, action: str, id_: str, total: int, interval: float = 0.1) -> None:
        self.emit, self.action, self.id, self.total, self.interval = emit, action, id_, total, interval
        self.last = 0.0

    def __call__(self, current: int) -> None:
        if self.emit is None:
            return
        now = time.monotonic()
        if now - self.last >= self.interval or current >= self.total > 0:
            self.last = now
            self.emit(bar(self.action, self.id, current, self.total))
