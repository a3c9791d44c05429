"""Lifecycle verbs on an existing container: start, kill, delete, pause, resume (runc's rules
and messages), and `destroy`, which releases everything a container holds: its processes, its
cgroups (and the now-empty parents), its state directory; then the poststop hooks run."""

from __future__ import annotations

import os

from dockyard.runtime import config as cfg
from dockyard.runtime import state as st
from dockyard.runtime.state import Container, StateError
from dockyard.sys import linux as L


def _warn(msg: str) -> None:
    from dockyard.runtime.log import warn

    warn(msg)


def start(c: Container, check: bool = True) -> None:
    """Let the init exec the program; returns once it has (or the init died). `check=False`
    skips the status check when the caller just created the container (`run`)."""
    if check:
        status = c.status()
        if status == "stopped":
            raise StateError("cannot start a container that has stopped")
        if status != "created":
            raise StateError(f"cannot start an already {status} container")
    try:
        fd = os.open(c.fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno in (6, 2):  # ENXIO: no reader (the init is gone); ENOENT: someone started it
            raise StateError("cannot start a container that has stopped") from None
        raise
    try:
        os.write(fd, b"0")
        # wait until the init has exec'd the program (or died): its end of the FIFO is
        # close-on-exec, and a reader sees POLLHUP once no writer is left
        rfd = os.open(c.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    finally:
        os.close(fd)
    try:
        try:
            os.unlink(c.fifo)
        except FileNotFoundError:
            pass
        _wait_hangup(rfd)
    finally:
        os.close(rfd)
    hooks = (c.config.get("hooks") or {}).get("poststart")
    if hooks:
        from dockyard.runtime import hooks as H

        state = cfg.state_for_hooks(c.id, "running", c.pid, c.bundle, c.config)
        H.run_warn(hooks, state, "poststart", _warn)


def _wait_hangup(rfd: int) -> None:
    import select
    import time

    p = select.poll()
    p.register(rfd, select.POLLIN | select.POLLHUP)
    while True:
        events = p.poll(1000)
        if any(ev & select.POLLHUP for _, ev in events):
            return
        if events:
            time.sleep(0.0005)  # our byte is still unread: the init has not woken yet


def _signal_init(c: Container, sig: int) -> None:
    """Signal the init through a pidfd, after checking it is still the same process."""
    pid = c.pid
    try:
        pfd = L.pidfd_open(pid)
    except OSError:
        raise StateError("container not running") from None
    try:
        if not c.init_alive():
            raise StateError("container not running")
        L.pidfd_send_signal(pfd, sig)
    except ProcessLookupError:
        raise StateError("container not running") from None
    finally:
        os.close(pfd)


def kill(c: Container, sig: int, all_processes: bool = False) -> None:
    status = c.status()
    if status == "stopped" and not all_processes:
        raise StateError("container not running")
    if all_processes:
        signal_all(c, sig)
        return
    _signal_init(c, sig)


def signal_all(c: Container, sig: int) -> None:
    """Signal every process in the container's cgroup, frozen meanwhile so none can fork away."""
    from dockyard.runtime.cgroups import manager_for_state

    cg = manager_for_state(c.data)
    frozen = False
    if sig == 9:
        try:
            cg.freeze()
            frozen = True
        except Exception:  # noqa: BLE001 - no freezer: signal anyway
            pass
    try:
        for pid in cg.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    finally:
        if frozen or cg.frozen():
            try:
                cg.thaw()
            except Exception:  # noqa: BLE001
                pass


def pause(c: Container) -> None:
    status = c.status()
    if status != "running" and status != "created":
        raise StateError("container not running")
    from dockyard.runtime.cgroups import manager_for_state

    manager_for_state(c.data).freeze()


def resume(c: Container) -> None:
    if c.status() != "paused":
        raise StateError("container not paused")
    from dockyard.runtime.cgroups import manager_for_state

    manager_for_state(c.data).thaw()


def delete(root: str, container_id: str, force: bool = False) -> None:
    try:
        c = st.load(root, container_id)
    except StateError:
        # an aborted create may leave a directory without state.json: remove it (as runc does)
        d = st.container_dir(root, container_id)
        if st.valid_id(container_id) and os.path.isdir(d):
            st.remove_dir(root, container_id)
            if force:
                return
        if force and st.valid_id(container_id):
            return
        raise
    status = c.status()
    if status in ("running", "paused") and not force:
        raise StateError(f"cannot delete container {container_id} that is not stopped: {status}")
    destroy(c)


def destroy(c: Container, init_status_known: bool = False) -> None:
    """Kill what is left, remove the cgroups and the state, run poststop hooks."""
    import time

    from dockyard.runtime.cgroups import CgroupError, manager_for_state
    from dockyard.runtime.create import _wait_gone

    cg = manager_for_state(c.data)
    if not init_status_known and c.init_alive():
        try:
            _signal_init(c, 9)
        except StateError:
            pass
        if cg.frozen():
            try:
                cg.thaw()
            except CgroupError:
                pass
    # Wait until the cgroup is empty rather than for the init to be reaped: a namespace's dying
    # init lingers until every process of its namespace is reaped, even those whose parent is
    # elsewhere (an `exec -d` process adopted by a slow host init), but it leaves its cgroups
    # first. With a shared (or no) PID namespace the others must be killed one by one.
    deadline = time.monotonic() + 10
    last_kill = 0.0
    while True:
        try:
            pids = cg.pids()
        except OSError:
            pids = []
        if not pids:
            break
        now = time.monotonic()
        if now > deadline:
            break
        if now - last_kill > 0.05:
            for p in pids:
                try:
                    os.kill(p, 9)
                except ProcessLookupError:
                    pass
            last_kill = now
        time.sleep(0.002)
    if not cg.paths or not any(os.path.isdir(p) for p in cg.paths.values()):
        _wait_gone(c.pid)
    try:
        cg.destroy()
    except CgroupError as e:
        _warn(str(e))
    hooks = (c.config.get("hooks") or {}).get("poststop")
    st.remove_dir(c.root, c.id)
    if hooks:
        from dockyard.runtime import hooks as H

        state = cfg.state_for_hooks(c.id, "stopped", 0, c.bundle, c.config)
        H.run_warn(hooks, state, "poststop", _warn)
