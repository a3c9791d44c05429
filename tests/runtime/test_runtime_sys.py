"""The syscall wrappers the runtime added to dockyard.sys.linux, on the real kernel, in
throwaway child processes where they change process state."""

from __future__ import annotations

import os

from dockyard.sys import linux as L
from support.child import in_child


def test_prlimit_reads_and_lowers_but_cannot_raise_above_hard():
    soft, hard = L.prlimit(0, 7)  # RLIMIT_NOFILE
    assert 0 < soft <= hard

    def child():
        L.prlimit(0, 7, (64, 128))
        if L.prlimit(0, 7) != (64, 128):
            return 1
        try:
            L.prlimit(0, 7, (64, 129))  # raising the hard limit needs CAP_SYS_RESOURCE
        except PermissionError:
            return 0
        return 0 if L.capget()[0] >> 24 & 1 else 2

    assert in_child(child) == 0


def test_pty_ioctls_and_winsize():
    master, slave = os.openpty()
    try:
        L.set_winsize(master, 40, 132)
        assert L.get_winsize(slave) == (40, 132)
        assert L.ioctl_get_int(master, L.TIOCGPTN) >= 0
    finally:
        os.close(master)
        os.close(slave)


def test_personality_in_a_child():
    def child():
        L.personality(L.PER_LINUX32)
        return 0 if os.uname().machine in ("i686", "i386", "armv8l", "armv7l") else 1

    assert in_child(child) == 0


def test_close_range_cloexec_marks_fds():
    r, w = os.pipe()
    os.set_inheritable(r, True)
    os.set_inheritable(w, True)

    def child():
        L.close_range(min(r, w), max(r, w), L.CLOSE_RANGE_CLOEXEC)
        return 0 if not os.get_inheritable(r) and not os.get_inheritable(w) else 1

    try:
        assert in_child(child) == 0
    finally:
        os.close(r)
        os.close(w)
