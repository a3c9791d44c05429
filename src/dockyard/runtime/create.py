"""`create` and `run`: from a bundle to a container whose init waits on the exec FIFO.

The runtime process forks once (the intermediate stage, dockyard.runtime.nsenter), places that
child in the container's cgroups, writes its uid/gid maps when it asks, runs the
prestart/createRuntime hooks when the init asks, and returns when the init says "ready". The
init was forked by the intermediate stage, which exits at once: the init is then re-parented to
the nearest subreaper (the daemon's shim, conmon, or `run` itself, which sets
PR_SET_CHILD_SUBREAPER) or to the host's init.
"""

from __future__ import annotations

import os

from dockyard.runtime import config as cfg
from dockyard.runtime import state as st
from dockyard.runtime.channel import Channel, ChildFailed
from dockyard.sys import linux as L


class Options:
    def __init__(self) -> None:
        self.bundle = "."
        self.pid_file = ""
        self.console_socket = ""
        self.no_pivot = False
        self.no_new_keyring = False
        self.preserve_fds = 0


class CreateError(Exception):
    pass


def check_rlimits(rlimits: list[tuple[int, str, int, int]]) -> None:
    """Refuse at create time what the kernel would refuse at start (raising a hard limit without
    CAP_SYS_RESOURCE), with a message that says so."""
    if not rlimits:
        return
    eff = L.capget()[0]
    if eff >> 24 & 1:  # CAP_SYS_RESOURCE
        return
    for num, name, _soft, hard in rlimits:
        cur = L.prlimit(0, num)[1]
        want = L.RLIM_INFINITY if hard < 0 else hard
        if want > cur:
            shown = "unlimited" if want == L.RLIM_INFINITY else str(want)
            raise CreateError(f"error setting rlimit type {name}: hard limit {shown} is above the current hard "
                              f"limit {cur} and raising it needs CAP_SYS_RESOURCE, which this runtime lacks")


def write_pid_file(path: str, pid: int) -> None:
    from dockyard.util import atomic_write

    atomic_write(os.path.abspath(path), str(pid), mode=0o644, fsync=False)


def _cgroup_mount_info(cg) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """For "cgroup" mounts: (dir name, host path, mount options) per v1 hierarchy, and the
    symlinks for co-mounted controllers (cpu -> cpu,cpuacct)."""
    if cg.version == 2:
        return [("", cg.path, "")], []
    dirs: list[tuple[str, str, str]] = []
    links: list[tuple[str, str]] = []
    seen: set[str] = set()
    for ctrl, path in cg.paths.items():
        name = cg.names.get(ctrl, ctrl)
        if name in seen:
            continue
        seen.add(name)
        dirs.append((name, path, cg.mount_opts.get(ctrl, ctrl)))
        if "," in name:
            for part in name.split(","):
                links.append((part, name))
    return dirs, links


def create(root: str, container_id: str, opts: Options, attached: bool = False, forwarding: bool = False):
    """Create the container; returns (Container, our end of the internal console socketpair or -1).

    `attached` (run in the foreground) allows a terminal without --console-socket: the master is
    then sent to us over an internal socketpair for `run` to relay. `forwarding`: `run` installed
    signal handlers that the children must drop."""
    from dockyard.runtime.cgroups import new_manager
    from dockyard.runtime.init import InitSpec
    from dockyard.runtime.plan import rootfs_plan
    from dockyard.runtime.process import Process

    st.check_id(container_id)
    bundle = os.path.abspath(opts.bundle)
    config, rootfs = cfg.load_bundle(bundle)
    cfg.validate(config, rootfs)
    linux = config.get("linux") or {}
    proc_spec = config["process"]
    terminal = bool(proc_spec.get("terminal"))
    if terminal and not opts.console_socket and not attached:
        raise CreateError("cannot allocate tty if runc will detach without setting console socket")
    if not terminal and opts.console_socket:
        raise CreateError("cannot use console socket if runc will not allocate tty")
    proc = Process(proc_spec)
    proc.check_lsm()
    proc.set_personality(linux)
    check_rlimits(proc.rlimits)
    # built here: errors fail `create` directly, and the init cannot import after pivot_root
    proc.prepare_seccomp(linux.get("seccomp"), st.SECCOMP_CACHE)
    hooks = config.get("hooks") or {}
    if hooks.get("createContainer") or hooks.get("startContainer"):
        import subprocess  # noqa: F401 - preloaded for the init, which runs these hooks

        from dockyard.runtime import hooks as _hooks  # noqa: F401
    new = cfg.new_namespaces(config)
    join = cfg.joined_namespaces(config)
    plan = rootfs_plan(config, rootfs, opts.no_pivot, os.path.exists("/proc/kcore"), bundle)
    early_sysctls: dict[str, str] = {}
    if ("user" in new or any(t == "user" for t, _ in join)) and any(t == "network" for t, _ in join):
        # a joined network namespace may belong to the host's user namespace: its sysctls are
        # written before we enter the container's user namespace (see nsenter.py)
        early_sysctls = {k: str(v) for k, v in (linux.get("sysctl") or {}).items() if k.startswith("net.")}
        plan = [op for op in plan if not (op[0] == "sysctl" and op[1] in early_sysctls)]

    cdir = st.reserve(root, container_id)
    cg = None
    ch = None
    child = init_pid = 0
    console_fd = our_console = -1
    fifo_fd = helper = -1
    try:
        from dockyard.runtime.exechelper import helper_fd

        helper = helper_fd(3 + opts.preserve_fds)
        fifo = os.path.join(cdir, st.FIFO_NAME)
        os.mkfifo(fifo, 0o622)
        fifo_fd = os.open(fifo, os.O_RDWR | os.O_CLOEXEC)  # never blocks; the init reads from it
        cg = new_manager(linux.get("cgroupsPath") or "", container_id)
        if terminal:
            if opts.console_socket:
                from dockyard.runtime.console import connect

                console_fd = connect(opts.console_socket)
            else:
                from dockyard.runtime.console import socketpair

                our_console, console_fd = socketpair()

        spec = InitSpec()
        spec.container_id = container_id
        spec.bundle = bundle
        spec.rootfs = rootfs
        spec.config = config
        spec.plan = plan
        spec.process = proc
        spec.fifo_fd = fifo_fd
        spec.console_fd = console_fd
        spec.mount_ns = cfg.has_namespace(config, "mount")
        spec.userns = cfg.has_namespace(config, "user")
        spec.cgroup_v2 = cg.version == 2
        spec.cgroupns = cfg.has_new_namespace(config, "cgroup")
        spec.cgroup_dirs, spec.cgroup_links = _cgroup_mount_info(cg)
        spec.need_hooks = any(hooks.get(k) for k in ("prestart", "createRuntime", "createContainer", "startContainer"))
        spec.preserve_fds = opts.preserve_fds
        spec.new_keyring = not opts.no_new_keyring
        spec.helper_fd = helper

        ch = Channel()
        child = os.fork()
        if child == 0:
            _intermediate(ch, spec, cg, join, new, linux, forwarding, our_console, early_sysctls)
        ch.parent_side()
        if console_fd >= 0:
            os.close(console_fd)
            console_fd = -1
        os.close(fifo_fd)
        fifo_fd = -1
        if helper >= 0:
            os.close(helper)
            helper = -1
        # The child makes the cgroups and moves itself in (cg.join_self: no RCU grace period to
        # wait for), then says "cgroup"; we write the limits while it makes its namespaces. The
        # init asks "go?" before it builds the rootfs (device rules must be in place for its
        # mknods) and we answer once the limits are written. Every message we send is the answer
        # to a request, so only the child that asked is reading.
        pending_hooks = False
        while True:
            line = ch.recv()
            if line is None:
                raise ChildFailed("container init exited before it was ready")
            if line == "cgroup":
                cg.set(linux.get("resources") or {}, linux)
            elif line == "go?":
                ch.send("go")
            elif line == "map":
                from dockyard.runtime.nsenter import write_id_maps

                write_id_maps(child, linux.get("uidMappings") or [], linux.get("gidMappings") or [])
                ch.send("mapped")
            elif line.startswith("pid "):
                init_pid = int(line[4:])
                _reap(child)
                child = 0
            elif line == "hooks":
                pending_hooks = True
            if pending_hooks and init_pid:
                from dockyard.runtime import hooks as H

                pending_hooks = False
                state = cfg.state_for_hooks(container_id, "creating", init_pid, bundle, config)
                H.run(hooks.get("prestart"), state, "prestart")
                H.run(hooks.get("createRuntime"), state, "createRuntime")
                ch.send(f"ok {init_pid}")
            elif line == "ready":
                break
            elif line.startswith("error "):
                raise ChildFailed(line[6:])
        ch.close()
        ch = None
        started = st.proc_start_time(init_pid)
        data = {
            "id": container_id,
            "pid": init_pid,
            "init_start": started[0] if started else 0,
            "bundle": bundle,
            "rootfs": rootfs,
            "created": st.now_rfc3339(),
            "owner": "",
            "no_pivot": opts.no_pivot,
            "cgroup": cg.to_state(),
            "config": config,
        }
        c = st.Container(root, data)
        c.save()
        if opts.pid_file:
            write_pid_file(opts.pid_file, init_pid)
        return c, our_console
    except BaseException:
        if ch is not None:
            ch.close()
        for fd in (console_fd, our_console, fifo_fd, helper):
            if fd >= 0:
                os.close(fd)
        if child:
            _kill_quietly(child)
            _reap(child)
        if init_pid:
            _kill_quietly(init_pid)
            _wait_gone(init_pid)
        if cg is not None:
            for pid in _safe_pids(cg):
                _kill_quietly(pid)
            try:
                cg.destroy()
            except Exception:  # noqa: BLE001 - the original error is the one to report
                pass
        st.remove_dir(root, container_id)
        raise


def _intermediate(ch: Channel, spec, cg, join, new, linux: dict, forwarding: bool, our_console: int,
                  early_sysctls: dict[str, str] | None = None) -> None:  # fmt: skip
    """The first child. Never returns."""
    try:
        if forwarding:
            import _signal

            from dockyard.runtime.signals import FORWARDED

            for s in FORWARDED:
                _signal.signal(s, _signal.SIG_DFL)
        ch.child_side()
        if not spec.userns:
            # until it execs, nothing in the container may open this process's /proc files (its
            # exe is the host's interpreter, its fds the runtime's); in a user namespace the
            # container's root is no host root, and the maps must be written from outside
            L.prctl(L.PR_SET_DUMPABLE, 0)
        if our_console >= 0:
            os.close(our_console)
        cg.create()
        cg.join_self()
        ch.reply("cgroup")
        from dockyard.runtime import nsenter

        nsenter.enter(ch, join, new, linux.get("timeOffsets"), early_sysctls)
        pid = os.fork()
        if pid == 0:
            from dockyard.runtime.init import run_init

            ch.reply("go?")
            ch.wait_for("go")
            run_init(ch, spec)
        ch.reply(f"pid {pid}")
        os._exit(0)
    except BaseException as e:  # noqa: BLE001
        from dockyard.runtime.init import _message

        try:
            ch.reply("error " + _message(e))
        finally:
            os._exit(1)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _kill_quietly(pid: int, sig: int = 9) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        pass


def _safe_pids(cg) -> list[int]:
    try:
        return cg.pids()
    except OSError:
        return []


def _wait_gone(pid: int, timeout: float = 10.0) -> None:
    """Wait until `pid` has exited (reaping it if it is our child; a zombie counts as gone)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r, _ = os.waitpid(pid, os.WNOHANG)
            if r == pid:
                return
        except ChildProcessError:
            pass
        s = st.proc_start_time(pid)
        if s is None or s[1] in ("Z", "X"):
            return
        time.sleep(0.002)
