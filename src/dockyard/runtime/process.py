"""The last steps before the user's program runs, shared by a container's init and by `exec`.

`Process` is the parsed `process` object of the spec. Inside the container the caller runs:
`lookup()` (the executable, resolved in the container's PATH: fails at create, not at start),
`prepare_seccomp()` (built early so errors surface early), then `finalize_and_exec()`:
rlimits, no_new_privs, seccomp (before dropping capabilities when no_new_privs is off, as it then
needs CAP_SYS_ADMIN; otherwise at the last moment), bounding set, setgroups/setresgid/setresuid
with capabilities kept across the uid change, capset, ambient, cwd, umask, HOME (from the
container's /etc/passwd when the spec sets none, as runc does), execve through the exec helper
(dockyard.runtime.exechelper: the host interpreter is never what the container execs).
"""

from __future__ import annotations

import os

from dockyard.runtime import caps as C
from dockyard.runtime import exechelper
from dockyard.runtime import rlimits as R
from dockyard.sys import linux as L

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ProcessError(Exception):
    pass


class Process:
    def __init__(self, proc: dict, last_cap: int | None = None) -> None:
        self.spec = proc
        self.args: list[str] = list(proc.get("args") or [])
        self.env: list[str] = list(proc.get("env") or [])
        self.cwd: str = proc.get("cwd") or "/"
        user = proc.get("user") or {}
        self.uid = int(user.get("uid", 0))
        self.gid = int(user.get("gid", 0))
        self.additional_gids = [int(g) for g in user.get("additionalGids") or []]
        umask = user.get("umask")
        self.umask = 0o022 if umask is None else int(umask)
        self.terminal = bool(proc.get("terminal"))
        self.nnp = bool(proc.get("noNewPrivileges"))
        self.oom_score_adj = proc.get("oomScoreAdj")
        self.last_cap = C.last_cap() if last_cap is None else last_cap
        self.caps = C.CapSets(proc.get("capabilities"), self.last_cap) if "capabilities" in proc else None
        self.rlimits = R.parse(proc.get("rlimits"))
        self.apparmor = proc.get("apparmorProfile") or ""
        self.selinux = proc.get("selinuxLabel") or ""
        size = proc.get("consoleSize") or {}
        self.console_size = (int(size.get("height", 0)), int(size.get("width", 0))) if size else None
        self.personality: int | None = None
        self.path = ""
        self.home = ""
        self._filter = None

    def check_lsm(self) -> None:
        """AppArmor and SELinux labels are applied on exec; refuse them where the LSM is off."""
        if self.apparmor and not lsm_enabled("apparmor"):
            raise ProcessError(f"apparmor profile {self.apparmor!r} is set, but AppArmor is not enabled on this host")
        if self.selinux and not lsm_enabled("selinux"):
            raise ProcessError("selinux label is specified in config, but selinux is disabled or not supported")

    def set_personality(self, linux: dict) -> None:
        p = linux.get("personality")
        if not p:
            return
        domain = p.get("domain", "LINUX")
        if domain not in ("LINUX", "LINUX32"):
            raise ProcessError(f"personality domain {domain!r} is not supported")
        self.personality = L.PER_LINUX32 if domain == "LINUX32" else L.PER_LINUX

    def env_value(self, key: str) -> str | None:
        prefix = key + "="
        for e in reversed(self.env):
            if e.startswith(prefix):
                return e[len(prefix):]
        return None

    def lookup(self) -> str:
        """Resolve args[0] inside the container, as execvp would with the process's PATH (and the
        user's home directory, for HOME, when the spec's env has none)."""
        if self.env_value("HOME") is None:
            self.home = passwd_home(self.uid)
        if not self.args:
            raise ProcessError("args must not be empty")
        name = self.args[0]
        if "/" in name:
            p = name if name.startswith("/") else os.path.join(self.cwd, name)
            self._check_exe(p, name)
            self.path = p
            return p
        for d in (self.env_value("PATH") or DEFAULT_PATH).split(":"):
            p = os.path.join(d or ".", name)
            try:
                if os.path.isfile(p) and os.access(p, os.X_OK):
                    self.path = p
                    return p
            except OSError:
                continue
        raise ProcessError(f'exec: "{name}": executable file not found in $PATH')

    @staticmethod
    def _check_exe(p: str, name: str) -> None:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise ProcessError(f'exec: "{name}": stat {name}: no such file or directory') from None
        except OSError as e:
            raise ProcessError(f'exec: "{name}": {e.strerror}') from None
        if (st.st_mode & 0o170000) == 0o040000:
            raise ProcessError(f'exec: "{name}": is a directory')
        if not os.access(p, os.X_OK):
            raise ProcessError(f'exec: "{name}": permission denied')

    def prepare_seccomp(self, profile: dict | None, cache_dir: str = "") -> None:
        if profile:
            from dockyard.runtime import seccomp

            self._filter = seccomp.compile_bpf(profile, cache_dir)

    def _load_seccomp(self) -> None:
        if self._filter is not None:
            f, self._filter = self._filter, None
            try:
                f.load()
            finally:
                f.release()

    def set_oom_score_adj(self) -> None:
        if self.oom_score_adj is None:
            return
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(int(self.oom_score_adj)))

    def apply_exec_labels(self) -> None:
        """Write the AppArmor/SELinux labels the next execve applies (once). `exec` does it before
        entering the container's mount namespace: /proc there belongs to a PID namespace the
        exec'ing process is not in."""
        if self.apparmor:
            _write_attr("apparmor/exec", f"exec {self.apparmor}", "exec")
        if self.selinux:
            _write_attr("exec", self.selinux, None)
        self.apparmor = self.selinux = ""

    def apply_rlimits(self) -> None:
        R.apply(self.rlimits)

    def finalize_and_exec(self, preserve_fds: int = 0, helper_fd: int = -1, report_fd: int = -1,
                          tty: bool = False) -> None:
        """Never returns: ends in execve (or raises). `helper_fd`: the exec helper's memfd. With
        `report_fd` (exec), the helper forks the process that runs the program (a new session,
        with fd 0 as controlling terminal when `tty`) and writes "pid N" there."""
        if self.nnp:
            L.set_no_new_privs()
        else:
            self._load_seccomp()
        if self.caps is not None:
            C.drop_bounding(self.caps, self.last_cap)
        L.set_keepcaps(True)
        try:
            os.setgroups(self.additional_gids)
        except PermissionError:
            if self.additional_gids:
                raise
        os.setresgid(self.gid, self.gid, self.gid)
        os.setresuid(self.uid, self.uid, self.uid)
        L.set_keepcaps(False)
        if self.caps is not None:
            C.apply(self.caps, self.last_cap)
        try:
            os.chdir(self.cwd)
        except OSError as e:
            raise ProcessError(f"chdir to cwd ({self.cwd!r}) set in config.json failed: {e.strerror}") from None
        # a cwd reached through an fd to a host directory (/proc/self/fd/N, CVE-2024-21626) is
        # outside the root: getcwd says so
        try:
            where = os.getcwd()
        except FileNotFoundError:
            where = "(unreachable)"
        if where.startswith("(unreachable)"):
            raise ProcessError("current working directory is outside of container mount namespace root -- "
                               "possible container breakout detected")  # fmt: skip
        os.umask(self.umask)
        if self.personality is not None:
            L.personality(self.personality)
        self.apply_exec_labels()
        reset_signals()
        # everything above fd 2 (and the preserved ones) closes on exec
        L.close_range(3 + preserve_fds, 0xFFFFFFFF, L.CLOSE_RANGE_CLOEXEC)
        if self.nnp:
            self._load_seccomp()
        env = {}
        for e in self.env:
            k, sep, v = e.partition("=")
            if sep and k:
                env[k] = v
        if "HOME" not in env:
            env["HOME"] = self.home or "/"
        if report_fd >= 0:
            exechelper.fork_exec_via(helper_fd, report_fd, tty, self.path, self.args, env)
        exechelper.exec_via(helper_fd, self.path, self.args, env)


def passwd_home(uid: int, path: str = "/etc/passwd") -> str:
    """The home directory of `uid` in the container's /etc/passwd ("/" when there is none), read
    without blocking on a FIFO or reading a device an image put there."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return "/"
    try:
        if (os.fstat(fd).st_mode & 0o170000) != 0o100000:
            return "/"
        data = os.read(fd, 1 << 20).decode(errors="replace")
    except OSError:
        return "/"
    finally:
        os.close(fd)
    want = str(uid)
    for line in data.splitlines():
        parts = line.split(":")
        if len(parts) >= 6 and parts[2] == want:
            return parts[5] or "/"
    return "/"


def lsm_enabled(name: str) -> bool:
    if name == "apparmor":
        try:
            with open("/sys/module/apparmor/parameters/enabled") as f:
                return f.read().strip() == "Y"
        except OSError:
            return False
    return os.path.isdir("/sys/fs/selinux") and os.path.exists("/sys/fs/selinux/enforce")


def _write_attr(path: str, value: str, fallback: str | None) -> None:
    """Write an LSM exec attribute of this thread (applies at the next execve)."""
    for p in (path, fallback):
        if p is None:
            continue
        try:
            with open(f"/proc/thread-self/attr/{p}", "w") as f:
                f.write(value)
            return
        except FileNotFoundError:
            continue
    raise ProcessError(f"cannot set the exec label {value!r}: no /proc/thread-self/attr/{path}")


def reset_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ; ignored signals survive execve. Undo that, unblock all."""
    import _signal

    for s in (13, 25):  # SIGPIPE, SIGXFSZ
        _signal.signal(s, _signal.SIG_DFL)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])


def exec_error_status(e: BaseException) -> int:
    return 127 if isinstance(e, FileNotFoundError) else 126
