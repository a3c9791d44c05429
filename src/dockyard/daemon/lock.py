"""One daemon per data root and per exec root.

At start-up the daemon takes an exclusive `flock` on `<data-root>/dockyard.lock` and on
`<exec-root>/dockyard.lock` and keeps both descriptors open for its whole life. The kernel drops
a flock when the last descriptor of the open file goes away, so the locks end with the process
however it ends (SIGKILL included): there is never a stale lock to clean up. The descriptors are
close-on-exec, so shims and runtimes the daemon starts (which outlive it) never hold them.

The holder writes its pid into the file, so a second daemon can say who is in the way:
"failed to start daemon, ensure dockyard is not running: process with PID N is still running
(it holds /var/lib/dockyard/dockyard.lock)", in the spirit of dockerd's pidfile message.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os

LOCK_NAME = "dockyard.lock"


class LockHeld(Exception):
    """Another process holds the lock; `pid` is its pid when it could be read (0 otherwise)."""

    def __init__(self, path: str, pid: int) -> None:
        self.path = path
        self.pid = pid
        if pid:
            msg = (f"failed to start daemon, ensure dockyard is not running: process with PID {pid} is still running "
                   f"(it holds {path})")  # fmt: skip
        else:
            msg = f"failed to start daemon, ensure dockyard is not running: another process holds {path}"
        super().__init__(msg)


def _read_pid(fd: int) -> int:
    try:
        return int(os.pread(fd, 32, 0).decode(errors="replace").strip() or 0)
    except (OSError, ValueError):
        return 0


def acquire(root: str) -> int:
    """Lock `<root>/dockyard.lock` (creating `root` if needed); returns the descriptor to keep
    open. Raises LockHeld when another process has it."""
    os.makedirs(root, mode=0o711, exist_ok=True)
    path = os.path.join(root, LOCK_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        pid = _read_pid(fd)
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise LockHeld(path, pid) from None
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def acquire_all(roots: list[str]) -> list[int]:
    """Lock every root (duplicates once), in order; on failure release what was taken and raise."""
    fds: list[int] = []
    seen: set[str] = set()
    try:
        for r in roots:
            key = os.path.realpath(r)
            if key in seen:
                continue
            seen.add(key)
            fds.append(acquire(r))
    except BaseException:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        raise
    return fds
