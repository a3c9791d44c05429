"""Run a function in a forked child (for syscalls that change the caller: unshare, setns,
prlimit) and get its exit code; an exception in the child is exit code 99."""

from __future__ import annotations

import os
from collections.abc import Callable


def in_child(fn: Callable[[], int | None]) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(fn() or 0)
        except BaseException:
            os._exit(99)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
