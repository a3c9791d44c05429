"""Rendering the daemon's JSON progress stream (pull, push, load, import) as Docker does.

Owns: one line per layer id redrawn in place on a terminal (cursor up/down, erase line, the
`[=====>    ]  1.2MB/3.4MB 2s` bar), plain lines without a terminal (progress updates dropped,
status changes kept), `stream` text, and errors in the stream (`errorDetail`) which end the
display with `StreamError`.
"""

from __future__ import annotations

import os
import time

from dockyard.cli.jsonfast import loads
from dockyard.cli.units import human_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any


class StreamError(Exception):
    """An error message inside a JSON progress stream."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _go_duration_whole_seconds(seconds: int) -> str:
    if seconds <= 0:
        return "0s"
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h{m}m{s}s"
    if m:
        return f"{m}m{s}s"
    return f"{s}s"


def progress_string(detail: dict[str, Any], width: int, now: float | None = None) -> str:
    """JSONProgress.String(): bar (if width > 110), numbers, time left (if width > 50)."""
    current = int(detail.get("current") or 0)
    total = int(detail.get("total") or 0)
    units = detail.get("units") or ""
    start = int(detail.get("start") or 0)
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        if not units:
            return f"{human_size(current):>8}"
        return f"{current} {units}"
    percentage = int(current / total * 100) // 2
    percentage = min(percentage, 50)
    bar = ""
    if width > 110:
        bar = "[" + "=" * percentage + ">" + " " * max(0, 50 - percentage) + "] "
    numbers = ""
    if detail.get("hidecounts"):
        numbers = ""
    elif not units:
        numbers = f"{human_size(current):>8}/{human_size(total)}"
        if current > total:
            numbers = f"{human_size(current):>8}"
    else:
        numbers = f"{current}/{total} {units}"
        if current > total:
            numbers = f"{current} {units}"
    left = ""
    if current > 0 and start > 0 and percentage < 50:
        now = time.time() if now is None else now
        per = (now - start) / current
        remaining = int((total - current) * per)
        if width > 50:
            left = " " + _go_duration_whole_seconds(remaining)
    return bar + numbers + left


class ProgressPrinter:
    """Feed decoded messages; writes to `out` (a text stream)."""

    def __init__(self, out: Any, is_terminal: bool | None = None, width: int | None = None,
                 aux: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.out = out
        if is_terminal is None:
            try:
                is_terminal = os.isatty(out.fileno())
            except (AttributeError, OSError, ValueError):
                is_terminal = False
        self.tty = is_terminal
        if width is None:
            width = 200
            if is_terminal:
                try:
                    width = os.get_terminal_size(out.fileno()).columns
                except (AttributeError, OSError, ValueError):
                    pass
        self.width = width
        self.ids: dict[str, int] = {}
        self.aux = aux

    def feed(self, jm: dict[str, Any]) -> None:
        if jm.get("aux") is not None:
            if self.aux:
                self.aux(jm["aux"])
            return
        out = self.out
        ident = jm.get("id") or ""
        has_progress = "progressDetail" in jm and jm["progressDetail"] is not None
        progress_msg = jm.get("progress") or ""
        diff = 0
        if ident and (has_progress or progress_msg):
            line = self.ids.get(ident)
            if line is None:
                line = len(self.ids)
                self.ids[ident] = line
                if self.tty:
                    out.write("\n")
            diff = len(self.ids) - line
            if self.tty and diff:
                out.write(f"\x1b[{diff}A")
        else:
            self.ids = {}
        err = jm.get("errorDetail") or ({"message": jm["error"]} if jm.get("error") else None)
        if err:
            out.flush()
            code = int(err.get("code") or 0)
            if code == 401:
                raise StreamError("authentication is required", 401)
            raise StreamError(err.get("message") or jm.get("error") or "unknown error", code)
        self._display(jm, has_progress)
        if ident and self.tty and diff:
            out.write(f"\x1b[{diff}B")
        out.flush()

    def _display(self, jm: dict[str, Any], has_progress: bool) -> None:
        out = self.out
        stream = jm.get("stream") or ""
        detail = jm.get("progressDetail") or {}
        pstr = progress_string(detail, self.width) if has_progress else ""
        endl = ""
        if self.tty and not stream and has_progress:
            out.write("\x1b[2K\r")
            endl = "\r"
        elif has_progress and pstr:
            return  # no progress bars without a terminal
        if jm.get("timeNano"):
            from dockyard.cli.units import rfc3339

            out.write(rfc3339(jm["timeNano"] / 1e9) + " ")
        elif jm.get("time"):
            from dockyard.cli.units import rfc3339

            out.write(rfc3339(jm["time"]) + " ")
        if jm.get("id"):
            out.write(f"{jm['id']}: ")
        if jm.get("from"):
            out.write(f"(from {jm['from']}) ")
        status = jm.get("status") or ""
        if has_progress and self.tty:
            out.write(f"{status} {pstr}{endl}")
        elif jm.get("progress"):
            out.write(f"{status} {jm['progress']}{endl}")
        elif stream:
            out.write(f"{stream}{endl}")
        else:
            out.write(f"{status}{endl}\n")


def display_stream(lines: Iterable[bytes], out: Any, is_terminal: bool | None = None,
                   aux: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Render a whole newline-delimited JSON progress stream; raises StreamError on an error."""
    printer = ProgressPrinter(out, is_terminal, aux=aux)
    for raw in lines:
        try:
            jm = loads(raw)
        except ValueError:
            continue
        if isinstance(jm, dict):
            printer.feed(jm)
