"""The new mount API (fsopen, fsconfig, fsmount, move_mount) through ctypes.

storage/ uses it to mount overlay filesystems whose layer list would not fit in the one page
that mount(2) accepts for its options: `fsconfig("lowerdir+", path)` adds one lower layer at a
time (kernel >= 6.8), so an image of hundreds of layers still mounts.
"""

from __future__ import annotations

import ctypes
import os

from dockyard.sys.linux import _b, _err, _syscall

# Same numbers on x86_64 and aarch64 (the "new" syscalls share one table).
SYS_MOVE_MOUNT, SYS_FSOPEN, SYS_FSCONFIG, SYS_FSMOUNT = 429, 430, 431, 432

FSOPEN_CLOEXEC = 0x1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
FSMOUNT_CLOEXEC = 0x1
MOVE_MOUNT_F_EMPTY_PATH = 0x4
AT_FDCWD = -100


def fsopen(fstype: str) -> int:
    fd = _syscall(SYS_FSOPEN, _b(fstype), FSOPEN_CLOEXEC)
    if fd < 0:
        raise _err(f"fsopen {fstype}")
    return int(fd)


def fsconfig_string(fsfd: int, key: str, value: str) -> None:
    if _syscall(SYS_FSCONFIG, fsfd, FSCONFIG_SET_STRING, _b(key), _b(value), 0) != 0:
        raise _err(f"fsconfig {key}={value}")


def fsconfig_flag(fsfd: int, key: str) -> None:
    if _syscall(SYS_FSCONFIG, fsfd, FSCONFIG_SET_FLAG, _b(key), None, 0) != 0:
        raise _err(f"fsconfig {key}")


def fsconfig_create(fsfd: int) -> None:
    if _syscall(SYS_FSCONFIG, fsfd, FSCONFIG_CMD_CREATE, None, None, 0) != 0:
        raise _err("fsconfig create")


def fsmount(fsfd: int, attr_flags: int = 0) -> int:
    fd = _syscall(SYS_FSMOUNT, fsfd, FSMOUNT_CLOEXEC, ctypes.c_uint(attr_flags))
    if fd < 0:
        raise _err("fsmount")
    return int(fd)


def move_mount_to(mntfd: int, target: str) -> None:
    """Attach the detached mount `mntfd` at `target`."""
    if _syscall(SYS_MOVE_MOUNT, mntfd, b"", AT_FDCWD, _b(target), MOVE_MOUNT_F_EMPTY_PATH) != 0:
        raise _err(target)


def mount_fs(fstype: str, target: str, source: str, options: list[tuple[str, str | None]]) -> None:
    """Mount a filesystem at `target` built from (key, value) options; value None is a flag.

    Keys may repeat (e.g. overlay's "lowerdir+"), which mount(2)'s option string cannot express.
    """
    fsfd = fsopen(fstype)
    try:
        fsconfig_string(fsfd, "source", source)
        for key, value in options:
            if value is None:
                fsconfig_flag(fsfd, key)
            else:
                fsconfig_string(fsfd, key, value)
        fsconfig_create(fsfd)
        mntfd = fsmount(fsfd)
        try:
            move_mount_to(mntfd, target)
        finally:
            os.close(mntfd)
    finally:
        os.close(fsfd)
