"""File helpers shared by the cgroup controllers: read and write one cgroupfs file, with errors
that name the file and the value (runc's wording: `failed to write "X": ...`)."""

from __future__ import annotations

import os


class CgroupError(Exception):
    pass


def write(directory: str, name: str, value: str | int) -> None:
    path = f"{directory}/{name}"
    data = str(value).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except OSError as e:
        raise CgroupError(f'failed to write "{value}": open {path}: {e.strerror}') from None
    try:
        os.write(fd, data)
    except OSError as e:
        raise CgroupError(f'failed to write "{value}": write {path}: {e.strerror}') from None
    finally:
        os.close(fd)


def read(directory: str, name: str) -> str:
    with open(f"{directory}/{name}") as f:
        return f.read()


def read_int(directory: str, name: str, default: int = 0) -> int:
    """An integer file; "max" reads as -1; a missing file gives `default`."""
    try:
        s = read(directory, name).strip()
    except (FileNotFoundError, OSError):
        return default
    if s == "max":
        return -1
    try:
        return int(s)
    except ValueError:
        return default


def read_kv(directory: str, name: str) -> dict[str, int]:
    """A flat keyed file ("key value" per line), such as memory.stat or cpu.stat."""
    out: dict[str, int] = {}
    try:
        text = read(directory, name)
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return out


def exists(directory: str, name: str) -> bool:
    return os.path.exists(f"{directory}/{name}")
