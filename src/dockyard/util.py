"""Small shared helpers: atomic file writes and id generation."""

from __future__ import annotations

import os


def atomic_write(path: str, data: bytes | str, mode: int = 0o644, fsync_dir: bool = False, fsync: bool = True) -> None:
    """Write `data` to `path` so readers see the old or the new content, never a mix.

    Temp file in the same directory, fsync, rename; optionally fsync the directory too.
    `fsync=False` keeps the atomicity but not the durability (for files under /run, which do not
    outlive a reboot anyway: the runtime's state).
    """
    if isinstance(data, str):
        data = data.encode()
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.rename(tmp, path)
    if fsync_dir:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def new_id() -> str:
    """A 64-hex-digit id, as Docker uses for containers, execs, networks."""
    import secrets  # lazily: importing it costs ~15 ms, too much for the runtime's hot path

    return secrets.token_hex(32)
