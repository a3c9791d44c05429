"""Inode flags (FS_IOC_GETFLAGS / FS_IOC_SETFLAGS, what chattr(1) changes), via fcntl.ioctl.

storage/ sets FS_TOPDIR_FL ("chattr +T") on `<data-root>/overlay2`: ext4's Orlov allocator then
places each new layer directory (and so the layer's files) in a block group with free inodes,
instead of next to its parent. Without it, layers land in the groups where earlier layers were
just deleted, and ext4 without a journal skips every recently deleted inode on each allocation:
measured here, extracting the debian layer took 7.9 s (5.5 s of system time) without the flag and
1.75 s (0.5 s) with it, paired over 5 rounds of extract + delete. Filesystems without the flag
ignore it.
"""

from __future__ import annotations

import fcntl
import os
import struct

FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
FS_TOPDIR_FL = 0x00020000


def get_flags(fd: int) -> int:
    buf = bytearray(4)
    fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf)
    return struct.unpack("i", buf)[0]


def set_flags(fd: int, flags: int) -> None:
    fcntl.ioctl(fd, FS_IOC_SETFLAGS, bytearray(struct.pack("i", flags)))


def set_topdir(path: str) -> bool:
    """Mark a directory as the top of a hierarchy; False where the filesystem has no such flag."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        flags = get_flags(fd)
        if not flags & FS_TOPDIR_FL:
            set_flags(fd, flags | FS_TOPDIR_FL)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
