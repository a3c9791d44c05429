"""`run`: create + start, then (unless --detach) stay as the container's parent: forward signals,
relay the terminal when there is no console socket, reap zombies, and exit with the container's
status (128+N when signal N killed it); then delete the container unless --keep.

Also `wait_foreground`, shared with `exec`: the subreaper loop for one process of interest.
"""

from __future__ import annotations

import os

from dockyard.runtime import signals
from dockyard.sys import linux as L


class Forwarder:
    """Signal handlers that pass what we receive on to the container's process."""

    def __init__(self) -> None:
        self.target = 0
        self.pending: list[int] = []

    def install(self) -> None:
        import _signal

        for s in signals.FORWARDED:
            _signal.signal(s, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        if self.target:
            try:
                os.kill(self.target, signum)
            except ProcessLookupError:
                pass
        else:
            self.pending.append(signum)

    def set_target(self, pid: int) -> None:
        self.target = pid
        for s in self.pending:
            try:
                os.kill(pid, s)
            except ProcessLookupError:
                pass
        self.pending.clear()


def exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 255


def wait_foreground(pid: int, master: int = -1) -> int:
    """Reap children until `pid` exits (relaying `master` meanwhile); returns its exit code."""
    result: list[int] = []

    def reap(block: bool) -> bool:
        while True:
            try:
                r, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                if not result:
                    result.append(255)
                return True
            except InterruptedError:
                continue
            if r == 0:
                return bool(result)
            if r == pid:
                result.append(exit_code(status))
                return True

    if master >= 0:
        from dockyard.runtime.console import relay

        relay(master, lambda: reap(False))
        os.close(master)
    while not result:
        reap(True)
    return result[0]


def run(root: str, container_id: str, opts, detach: bool = False, keep: bool = False) -> int:
    """`run`. In the foreground we are always a subreaper: the init is our grandchild, and
    becoming its parent is how we wait for it (runc's --no-subreaper is accepted and ignored)."""
    from dockyard.runtime import lifecycle
    from dockyard.runtime.create import create

    fwd = None
    if not detach:
        fwd = Forwarder()
        fwd.install()
        L.set_child_subreaper(True)
    c, our_console = create(root, container_id, opts, attached=not detach, forwarding=fwd is not None)
    try:
        master = -1
        if our_console >= 0:
            from dockyard.runtime.console import recv_fd

            master = recv_fd(our_console)
            os.close(our_console)
        lifecycle.start(c, check=False)
    except BaseException:
        lifecycle.destroy(c)
        raise
    if detach:
        return 0
    assert fwd is not None
    fwd.set_target(c.pid)
    code = wait_foreground(c.pid, master)
    if not keep:
        lifecycle.destroy(c, init_status_known=True)
    return code
