"""Reading a container's json-file log (and its rotated files) for GET /containers/{id}/logs and
attach's `logs=1`: stdout/stderr selection, since/until, tail, timestamps, and follow (which keeps
reading across rotations until the container stops)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from dockyard.daemon import timeutil

POLL = 0.1


@dataclass(frozen=True)
class LogOptions:
    stdout: bool = True
    stderr: bool = True
    since_ns: int = 0
    until_ns: int = 0  # 0: no bound
    tail: int = -1  # -1: all
    timestamps: bool = False
    follow: bool = False


@dataclass(frozen=True)
class Entry:
    stream: str  # "stdout" | "stderr"
    data: bytes
    time: str
    time_ns: int


def _files(path: str, max_file: int = 100) -> list[str]:
    """Rotated files oldest first, then the current one."""
    out = []
    for i in range(max_file, 0, -1):
        p = f"{path}.{i}"
        if os.path.exists(p):
            out.append(p)
    if os.path.exists(path):
        out.append(path)
    return out


def parse_line(line: bytes) -> Entry | None:
    try:
        d = json.loads(line)
    except ValueError:
        return None
    t = d.get("time", "")
    try:
        ns = timeutil.parse_ns(t)
    except ValueError:
        ns = 0
    return Entry(d.get("stream", "stdout"), d.get("log", "").encode("utf-8", "surrogateescape"), t, ns)


def _wanted(e: Entry, o: LogOptions) -> bool:
    if e.stream == "stdout" and not o.stdout:
        return False
    if e.stream == "stderr" and not o.stderr:
        return False
    if o.since_ns and e.time_ns < o.since_ns:
        return False
    return not (o.until_ns and e.time_ns > o.until_ns)


def read_existing(path: str, o: LogOptions) -> tuple[list[Entry], tuple[int, int] | None]:
    """Entries already on disk and where the current file ends (inode, offset) for following."""
    entries: list[Entry] | deque[Entry] = deque(maxlen=o.tail) if o.tail >= 0 else []
    if o.tail == 0:
        pos = None
        if os.path.exists(path):
            st = os.stat(path)
            pos = (st.st_ino, st.st_size)
        return [], pos
    pos = None
    for f in _files(path):
        try:
            with open(f, "rb") as fh:
                data = fh.read()
                if f == path:
                    pos = (os.fstat(fh.fileno()).st_ino, len(data))
        except FileNotFoundError:
            continue
        end = data.rfind(b"\n") + 1
        if f == path and pos is not None:
            pos = (pos[0], end)
        for line in data[:end].splitlines():
            e = parse_line(line)
            if e is not None and _wanted(e, o):
                entries.append(e)
    return list(entries), pos


def _read_from(path: str, pos: tuple[int, int] | None) -> tuple[list[Entry], tuple[int, int] | None]:
    """New complete lines since `pos`; follows a rotation (new inode) from its start, after
    finishing the rotated file."""
    out: list[Entry] = []
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return out, pos
    if pos is not None and st.st_ino != pos[0]:
        # rotated: read the rest of the old file (now path.1) first
        old = f"{path}.1"
        try:
            with open(old, "rb") as fh:
                if os.fstat(fh.fileno()).st_ino == pos[0]:
                    fh.seek(pos[1])
                    rest = fh.read()
                    for line in rest[: rest.rfind(b"\n") + 1].splitlines():
                        e = parse_line(line)
                        if e:
                            out.append(e)
        except FileNotFoundError:
            pass
        pos = (st.st_ino, 0)
    if pos is None:
        pos = (st.st_ino, 0)
    if st.st_size < pos[1]:
        pos = (st.st_ino, 0)  # truncated (max-file 1)
    if st.st_size == pos[1]:
        return out, pos
    with open(path, "rb") as fh:
        fh.seek(pos[1])
        data = fh.read()
    end = data.rfind(b"\n") + 1
    for line in data[:end].splitlines():
        e = parse_line(line)
        if e:
            out.append(e)
    return out, (st.st_ino, pos[1] + end)


def frame(e: Entry, tty: bool, timestamps: bool) -> bytes:
    data = e.data
    if timestamps:
        data = e.time.encode() + b" " + data
    if tty:
        return data
    return bytes([2 if e.stream == "stderr" else 1, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


async def stream(path: str, o: LogOptions, running: Any) -> AsyncIterator[Entry]:
    """Entries to send; with follow, keeps going while `running()` is true (and drains after)."""
    entries, pos = await asyncio.to_thread(read_existing, path, o)
    for e in entries:
        yield e
    if not o.follow:
        return
    while True:
        alive = running()
        new, pos = await asyncio.to_thread(_read_from, path, pos)
        for e in new:
            if o.until_ns and e.time_ns > o.until_ns:
                return
            if _wanted(e, o):
                yield e
        if not alive:
            return
        if o.until_ns and o.until_ns < time.time_ns():
            return
        await asyncio.sleep(POLL)
