"""The container's init (PID 1 in a new PID namespace), from fork to execve.

Runs in the namespaces the intermediate stage made: builds the root filesystem from the plan
(asking the runtime to run prestart/createRuntime hooks and running createContainer hooks just
before pivot_root), sets hostname and domainname, checks that the program exists, says "ready",
and then blocks reading the exec FIFO (opened before pivot_root) until `start` writes to it.
Then startContainer hooks, rlimits and the process's final steps (dockyard.runtime.process).

Nothing may be imported after pivot_root (the runtime's files are not in the container): the
runtime imports what the init will need (console, hooks, the seccomp filter) before it forks.

Errors before "ready" travel to the runtime over the channel (and fail `create`); errors after it
are written to the container's stderr, as runc does, and the init exits 127 or 126.
"""

from __future__ import annotations

import os

from dockyard.runtime import config as cfg
from dockyard.runtime import rootfs as rfs
from dockyard.runtime.channel import Channel
from dockyard.runtime.process import Process
from dockyard.sys import linux as L


class InitSpec:
    """Everything the init needs, prepared by the runtime before fork."""

    def __init__(self) -> None:
        self.container_id = ""
        self.bundle = ""
        self.rootfs = ""
        self.config: dict = {}
        self.plan: list[tuple] = []
        self.process: Process | None = None
        self.fifo_fd = -1
        self.console_fd = -1
        self.mount_ns = True
        self.userns = False
        self.cgroup_dirs: list[tuple[str, str, str]] = []
        self.cgroup_links: list[tuple[str, str]] = []
        self.cgroup_v2 = False
        self.cgroupns = False
        self.need_hooks = False
        self.preserve_fds = 0
        self.new_keyring = True
        self.helper_fd = -1  # the exec helper's sealed memfd (dockyard.runtime.exechelper)


def _hook_state(spec: InitSpec, pid: int, status: str) -> dict:
    return cfg.state_for_hooks(spec.container_id, status, pid, spec.bundle, spec.config)


def run_init(ch: Channel, spec: InitSpec) -> None:
    """Never returns."""
    ready = False
    proc = spec.process
    assert proc is not None
    try:
        os.setsid()
        hooks = spec.config.get("hooks") or {}
        host_pid = [0]
        proc.set_oom_score_adj()

        def before_pivot() -> None:
            if spec.need_hooks:
                ch.reply("hooks")
                line = ch._readline(ch.down_r)
                if not line or not line.startswith("ok"):
                    os._exit(1)
                host_pid[0] = int(line.split()[1])
            if hooks.get("createContainer"):
                from dockyard.runtime import hooks as H

                H.run(hooks["createContainer"], _hook_state(spec, host_pid[0], "creating"), "createContainer")

        def console() -> None:
            from dockyard.runtime import console as con

            con.setup_console(spec.console_fd, proc.uid, proc.gid, bind_console=True, size=proc.console_size)
            os.close(spec.console_fd)
            spec.console_fd = -1

        if spec.mount_ns:
            ctx = rfs.Context(spec.rootfs, spec.userns)
            ctx.cgroup_dirs = spec.cgroup_dirs
            ctx.links = spec.cgroup_links
            ctx.cgroup_v2 = spec.cgroup_v2
            ctx.cgroupns = spec.cgroupns
            ctx.before_pivot = before_pivot
            ctx.console = console
            rfs.execute(spec.plan, ctx)
        else:
            before_pivot()
            os.chroot(spec.rootfs)
            os.chdir("/")
            if proc.terminal:
                console()
        if spec.config.get("hostname"):
            L.sethostname(spec.config["hostname"])
        if spec.config.get("domainname"):
            L.setdomainname(spec.config["domainname"])
        if not os.path.isdir(proc.cwd):
            os.makedirs(proc.cwd, 0o755, exist_ok=True)
        os.chdir(proc.cwd)
        proc.lookup()
        if spec.new_keyring:
            try:
                L.keyctl_join_session_keyring(spec.container_id[:200] or None)
            except OSError:
                pass  # keyrings unavailable (e.g. in a user namespace): not fatal, as runc
        for fd in range(3, 3 + spec.preserve_fds):
            try:
                os.set_inheritable(fd, True)
            except OSError:
                pass
        _die_on_signals()
        ch.reply("ready")
        ready = True
        ch.close()
        # block until `start` writes a byte (or the runtime deletes us). The FIFO stays open
        # (close-on-exec) so that `start` sees it close when the program is running.
        while True:
            try:
                if os.read(spec.fifo_fd, 1):
                    break
            except InterruptedError:
                continue
        if hooks.get("startContainer"):
            from dockyard.runtime import hooks as H

            H.run(hooks["startContainer"], _hook_state(spec, host_pid[0], "created"), "startContainer")
        proc.apply_rlimits()
        proc.finalize_and_exec(spec.preserve_fds, spec.helper_fd)
    except BaseException as e:  # noqa: BLE001 - everything must reach the runtime or stderr
        msg = _message(e)
        if not ready:
            try:
                ch.reply("error " + msg)
            except OSError:
                pass
        else:
            try:
                os.write(2, f"dockyard-runc: {msg}\n".encode())
            except OSError:
                pass
        os._exit(127 if isinstance(e, FileNotFoundError) or "not found" in msg else 126 if ready else 1)
    os._exit(1)


def _die_on_signals() -> None:
    """Until execve, die on the signals whose default action is to terminate. As PID 1 of its
    PID namespace the init would otherwise ignore them (only signals with a handler reach a
    namespace's init), and `kill <created container> TERM` must stop it, as with runc."""
    import _signal

    def handler(signum: int, _frame: object) -> None:
        os._exit(128 + signum)

    for s in (1, 2, 3, 10, 12, 14, 15, 24, 25, 26, 27, 29, 30, 31):
        _signal.signal(s, handler)


def _message(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    return str(e) or e.__class__.__name__
