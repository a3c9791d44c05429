"""A guard that catches blocking work on the event loop (for tests; off by default).

With `DOCKYARD_LOOP_GUARD=<file>` in its environment, the daemon installs an audit hook once it
serves requests: any file open, directory change, process spawn, or ctypes call (mount, umount,
...) made on the event-loop thread is appended to <file> with a short stack. Imports (which open
.py/.pyc files) and reads of /proc and /sys pseudo-files are not counted. The test fixture fails a
test whose daemon wrote anything there.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from typing import Any

WATCHED = {
    "open", "os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.listdir", "os.scandir", "os.chmod", "os.chown",
    "os.link", "os.symlink", "os.truncate", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.move",
    "subprocess.Popen", "os.system", "os.fork", "os.forkpty", "os.posix_spawn", "os.exec", "os.spawn",
    "ctypes.call_function", "ctypes.dlopen", "os.walk",
}  # fmt: skip
_IGNORED_SUFFIXES = (".py", ".pyc", ".so", ".pth", ".json.pyc")
_IGNORED_PREFIXES = ("/proc/", "/sys/", "/dev/")

_state: dict[str, Any] = {"thread": None, "file": None, "on": False}


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _state["on"] or event not in WATCHED:
        return
    if threading.get_ident() != _state["thread"]:
        return
    if event == "open":
        path = args[0]
        if isinstance(path, int):
            return
        p = os.fsdecode(path) if isinstance(path, bytes | str) else str(path)
        if p.endswith(_IGNORED_SUFFIXES) or p.startswith(_IGNORED_PREFIXES) or "/site-packages/" in p or "/lib/python" in p:
            return
        if p == _state["file"]:
            return
    _state["on"] = False  # no recursion while we record
    try:
        stack = "".join(traceback.format_stack(limit=8)[:-1])
        with open(_state["file"], "a") as f:
            f.write(f"BLOCKING {event} {args!r:.200}\n{stack}\n")
    finally:
        _state["on"] = True


def install() -> None:
    path = os.environ.get("DOCKYARD_LOOP_GUARD")
    if not path:
        return
    _state["thread"] = threading.get_ident()
    _state["file"] = path
    _state["on"] = True
    sys.addaudithook(_hook)
