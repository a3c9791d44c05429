"""`exec`: run another process in a running container.

The process spec comes from `--process FILE` (capabilities default to the container's when the
file has none), or from the container's own process with the command-line overrides (args,
--tty, --cwd, --env, --user, --additional-gids, --cap, --no-new-privs), as runc builds it. A
first child is placed in the container's cgroups, joins every namespace of the container
through /proc/<init>/ns/* (user first, mount last), sets up stdio, credentials and seccomp, and
execs the exec helper (dockyard.runtime.exechelper), which forks the process that enters the PID
namespace and execs the program: no Python process ever appears in the container. Setup errors
come back over the channel; a failed final execve is reported on the process's stderr (exit 1),
as with runc. Without --detach we wait and exit with the process's status.
"""

from __future__ import annotations

import os

from dockyard.runtime import state as st
from dockyard.runtime.channel import Channel, ChildFailed
from dockyard.runtime.state import StateError
from dockyard.sys import linux as L


class ExecOptions:
    def __init__(self) -> None:
        self.process = ""
        self.args: list[str] = []
        self.tty = False
        self.console_socket = ""
        self.detach = False
        self.pid_file = ""
        self.cwd = ""
        self.env: list[str] = []
        self.user = ""
        self.additional_gids: list[str] = []
        self.caps: list[str] = []
        self.no_new_privs = False
        self.preserve_fds = 0
        self.ignore_paused = False
        self.extra: dict = {}  # process fields set by flags (apparmorProfile, selinuxLabel)


def build_process(container_proc: dict, o: ExecOptions, read_file=None) -> dict:
    """The OCI process object for an exec (pure; `read_file` reads --process)."""
    if o.process:
        from dockyard.runtime import jsonfast

        if read_file is not None:
            text = read_file(o.process)
        else:
            with open(o.process, "rb") as f:
                text = f.read()
        try:
            p = jsonfast.loads(text)
        except ValueError as e:
            raise StateError(f"process file {o.process}: {e}") from None
        if not isinstance(p, dict):
            raise StateError(f"process file {o.process}: not a JSON object")
        if "capabilities" not in p and "capabilities" in container_proc:
            p["capabilities"] = container_proc["capabilities"]
        if o.tty:
            p["terminal"] = True
        return p
    if not o.args:
        raise StateError("exec args cannot be empty")
    p = {k: v for k, v in container_proc.items() if k not in ("args", "terminal", "consoleSize")}
    p = _deepcopy(p)
    p["args"] = list(o.args)
    p["terminal"] = o.tty
    if o.cwd:
        p["cwd"] = o.cwd
    if o.env:
        p["env"] = list(p.get("env") or []) + list(o.env)
    if o.user:
        u, _, g = o.user.partition(":")
        try:
            user = {"uid": int(u), "gid": int(g) if g else 0}
        except ValueError:
            raise StateError(f"parsing {o.user} as uid:gid failed (only numeric ids are accepted)") from None
        old = p.get("user") or {}
        if "umask" in old:
            user["umask"] = old["umask"]
        p["user"] = user
    if o.additional_gids:
        p.setdefault("user", {"uid": 0, "gid": 0})["additionalGids"] = [int(g) for g in o.additional_gids]
    if o.caps:
        c = p.setdefault("capabilities", {})
        for key in ("bounding", "effective", "permitted", "inheritable", "ambient"):
            if key == "ambient" and key not in c:
                continue
            cur = list(c.get(key) or [])
            for cap in o.caps:
                name = cap.upper() if cap.upper().startswith("CAP_") else "CAP_" + cap.upper()
                if name not in cur:
                    cur.append(name)
            c[key] = cur
    if o.no_new_privs:
        p["noNewPrivileges"] = True
    p.update(o.extra)
    return p


def _deepcopy(v):
    if isinstance(v, dict):
        return {k: _deepcopy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_deepcopy(x) for x in v]
    return v


_NS_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


def container_namespaces(c: st.Container) -> list[tuple[str, str]]:
    """(type, /proc/<init>/ns/<name>) for every namespace the container has."""
    types = {ns.get("type") for ns in ((c.config.get("linux") or {}).get("namespaces") or [])}
    return [(t, f"/proc/{c.pid}/ns/{L.NAMESPACE_PROC_NAMES[t]}") for t in _NS_ORDER if t in types]


def exec_process(root: str, container_id: str, o: ExecOptions) -> int:
    from dockyard.runtime.cgroups import manager_for_state
    from dockyard.runtime.process import Process

    c = st.load(root, container_id)
    status = c.status()
    if status == "stopped":
        raise StateError("cannot exec in a stopped container")
    if status == "paused" and not o.ignore_paused:
        raise StateError("cannot exec in a paused container")
    spec = build_process(c.config.get("process") or {}, o)
    terminal = bool(spec.get("terminal"))
    if terminal and o.detach and not o.console_socket:
        raise StateError("cannot allocate tty if runc will detach without setting console socket")
    if not terminal and o.console_socket:
        raise StateError("cannot use console socket if runc will not allocate tty")
    proc = Process(spec)
    proc.check_lsm()
    proc.set_personality(c.config.get("linux") or {})
    from dockyard.runtime.create import check_rlimits

    check_rlimits(proc.rlimits)
    proc.prepare_seccomp((c.config.get("linux") or {}).get("seccomp"), st.SECCOMP_CACHE)  # before fork
    join = container_namespaces(c)
    cg = manager_for_state(c.data)
    seccomp_profile = (c.config.get("linux") or {}).get("seccomp")
    no_pivot = bool(c.data.get("no_pivot"))
    rootfs = c.data.get("rootfs", "")

    fwd = None
    if not o.detach:
        from dockyard.runtime.run import Forwarder

        fwd = Forwarder()
        fwd.install()
        L.set_child_subreaper(True)
    console_fd = our_console = -1
    if terminal:
        from dockyard.runtime import console as con

        if o.console_socket:
            console_fd = con.connect(o.console_socket)
        else:
            our_console, console_fd = con.socketpair()
    from dockyard.runtime.exechelper import helper_fd

    helper = helper_fd(3 + o.preserve_fds)
    ch = Channel()
    child = os.fork()
    if child == 0:
        _intermediate(ch, cg, join, proc, seccomp_profile, console_fd, our_console, no_pivot, rootfs, o.preserve_fds,
                      fwd is not None, helper)
    ch.parent_side()
    if console_fd >= 0:
        os.close(console_fd)
    if helper >= 0:
        os.close(helper)
    pid = 0
    try:
        while True:
            line = ch.recv()
            if line is None:
                break
            if line.startswith("pid "):
                pid = int(line[4:])
                try:
                    os.waitpid(child, 0)
                except ChildProcessError:
                    pass
                child = 0
            elif line.startswith("error "):
                raise ChildFailed(line[6:])
        if not pid:
            raise ChildFailed("exec failed: the process exited before it started")
    except BaseException:
        ch.close()
        if child:
            try:
                os.kill(child, 9)
                os.waitpid(child, 0)
            except OSError:
                pass
        if pid:
            try:
                os.waitpid(pid, 0)
            except OSError:
                pass
        if our_console >= 0:
            os.close(our_console)
        raise
    ch.close()
    if o.pid_file:
        from dockyard.runtime.create import write_pid_file

        write_pid_file(o.pid_file, pid)
    master = -1
    if our_console >= 0:
        from dockyard.runtime.console import recv_fd

        master = recv_fd(our_console)
        os.close(our_console)
    if o.detach:
        return 0
    assert fwd is not None
    fwd.set_target(pid)
    from dockyard.runtime.run import wait_foreground

    return wait_foreground(pid, master)


def _intermediate(ch: Channel, cg, join, proc, seccomp_profile, console_fd: int, our_console: int, no_pivot: bool,
                  rootfs: str, preserve_fds: int, forwarding: bool, helper: int = -1) -> None:
    """The first child: joins the container's cgroups and namespaces (the PID namespace only
    applies to its children), sets the process up, then execs the exec helper, which forks the
    process that enters the container (no Python process is ever in the container's PID
    namespace: see exechelper.py) and reports its pid. Never returns."""
    from dockyard.runtime.init import _message

    try:
        if not any(t == "user" for t, _ in join):
            L.prctl(L.PR_SET_DUMPABLE, 0)  # see create._intermediate
        if forwarding:
            import _signal

            from dockyard.runtime.signals import FORWARDED

            for s in FORWARDED:
                _signal.signal(s, _signal.SIG_DFL)
        ch.child_side()
        if our_console >= 0:
            os.close(our_console)
        cg.join_self()
        # what goes through /proc/self is done before joining the mount namespace: the
        # container's /proc shows its PID namespace, which only our children enter
        proc.set_oom_score_adj()
        proc.apply_exec_labels()
        from dockyard.runtime import nsenter

        nsenter.enter(ch, join, [])
        if no_pivot and rootfs:
            os.chroot(rootfs)
        os.chdir("/")
        if console_fd >= 0:
            from dockyard.runtime.console import setup_console

            # the process the helper forks makes the pty its controlling terminal (after setsid)
            setup_console(console_fd, proc.uid, proc.gid, bind_console=False, size=proc.console_size, ctty=False)
            os.close(console_fd)
        try:
            os.chdir(proc.cwd)
        except OSError:
            pass
        proc.lookup()
        for fd in range(3, 3 + preserve_fds):
            os.set_inheritable(fd, True)
        proc.apply_rlimits()
        # the channel's write end is close-on-exec: EOF once the helper has exited and the
        # program has been exec'd
        proc.finalize_and_exec(preserve_fds, helper, report_fd=ch.up_w, tty=console_fd >= 0)
    except BaseException as e:  # noqa: BLE001
        try:
            ch.reply("error " + _message(e))
        finally:
            os._exit(127 if "not found" in str(e) else 126)
