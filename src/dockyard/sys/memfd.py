"""Sealed memfds: an anonymous in-memory file that nobody can modify once it is made.

`sealed(name, data)` returns a read-only, close-on-exec descriptor of a memfd holding `data`,
sealed against writes, truncation and growth (F_SEAL_*), with the writable descriptor closed,
so it can be executed (execveat/fexecve) without ETXTBSY and reopened for writing by no one.
"""

from __future__ import annotations

import ctypes
import os

from dockyard.sys import linux

F_ADD_SEALS = 1033
F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE = 1, 2, 4, 8
MFD_CLOEXEC, MFD_ALLOW_SEALING, MFD_EXEC = 1, 2, 0x10

_fcntl = linux._libc.fcntl
_fcntl.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int)
_fcntl.restype = ctypes.c_int


def sealed(name: str, data: bytes, executable: bool = True) -> int:
    flags = MFD_CLOEXEC | MFD_ALLOW_SEALING
    try:
        fd = os.memfd_create(name, flags | (MFD_EXEC if executable else 0))
    except OSError:  # kernels before 6.3 do not know MFD_EXEC (and exec is allowed there)
        fd = os.memfd_create(name, flags)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if _fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e), "memfd seals")
        # a descriptor open for writing would make execve fail with ETXTBSY: keep a read-only one
        return os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(fd)
