"""Raw Linux system calls through ctypes: the only place in Dockyard that calls libc directly.

Everything else (runtime, storage, network, daemon) imports these wrappers. Each wrapper raises
OSError with the kernel's errno and the path or name involved, never returns -1. Only the
standard library is imported so the runtime's start-up stays short.
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long

# --- syscall numbers (those glibc does not wrap, or wraps too recently) -------------------------
_MACHINE = os.uname().machine
if _MACHINE in ("x86_64", "amd64"):
    SYS_PIVOT_ROOT, SYS_OPENAT2, SYS_PIDFD_OPEN, SYS_PIDFD_SEND_SIGNAL = 155, 437, 434, 424
    SYS_CLOSE_RANGE, SYS_MOUNT_SETATTR, SYS_OPEN_TREE, SYS_MOVE_MOUNT = 436, 442, 428, 429
    SYS_SECCOMP, SYS_KEYCTL = 317, 250
elif _MACHINE in ("aarch64", "arm64"):
    SYS_PIVOT_ROOT, SYS_OPENAT2, SYS_PIDFD_OPEN, SYS_PIDFD_SEND_SIGNAL = 41, 437, 434, 424
    SYS_CLOSE_RANGE, SYS_MOUNT_SETATTR, SYS_OPEN_TREE, SYS_MOVE_MOUNT = 436, 442, 428, 429
    SYS_SECCOMP, SYS_KEYCTL = 277, 219
else:  # pragma: no cover - other architectures are not supported yet
    raise ImportError(f"dockyard.sys.linux: unsupported architecture {_MACHINE}")

# --- namespaces (clone flags) -------------------------------------------------------------------
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080

# OCI namespace type -> clone flag, and the /proc/<pid>/ns/<file> name for each
NAMESPACE_FLAGS: dict[str, int] = {
    "pid": CLONE_NEWPID,
    "network": CLONE_NEWNET,
    "mount": CLONE_NEWNS,
    "ipc": CLONE_NEWIPC,
    "uts": CLONE_NEWUTS,
    "user": CLONE_NEWUSER,
    "cgroup": CLONE_NEWCGROUP,
    "time": CLONE_NEWTIME,
}
NAMESPACE_PROC_NAMES: dict[str, str] = {
    "pid": "pid",
    "network": "net",
    "mount": "mnt",
    "ipc": "ipc",
    "uts": "uts",
    "user": "user",
    "cgroup": "cgroup",
    "time": "time",
}

# --- mount flags ---------------------------------------------------------------------------------
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_FORCE = 1
MNT_DETACH = 2
MNT_EXPIRE = 4
UMOUNT_NOFOLLOW = 8

# mount_setattr(2)
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x00000001
MOUNT_ATTR_NOSUID = 0x00000002
MOUNT_ATTR_NODEV = 0x00000004
MOUNT_ATTR_NOEXEC = 0x00000008

# --- prctl ----------------------------------------------------------------------------------------
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

# --- openat2 resolve flags -----------------------------------------------------------------------
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10


def _err(what: str | None = None) -> OSError:
    e = ctypes.get_errno()
    return OSError(e, os.strerror(e), what) if what else OSError(e, os.strerror(e))


def _b(s: str | bytes | None) -> bytes | None:
    if s is None:
        return None
    return s if isinstance(s, bytes) else os.fsencode(s)


# --- mounts ---------------------------------------------------------------------------------------
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)


def mount(
    source: str | bytes | None,
    target: str | bytes,
    fstype: str | bytes | None = None,
    flags: int = 0,
    data: str | bytes | None = None,
) -> None:
    """mount(2). Raises OSError naming the target."""
    if _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)) != 0:
        raise _err(os.fsdecode(target))


def umount(target: str | bytes, flags: int = 0) -> None:
    """umount2(2)."""
    if _libc.umount2(_b(target), flags) != 0:
        raise _err(os.fsdecode(target))


def pivot_root(new_root: str | bytes, put_old: str | bytes) -> None:
    if _syscall(SYS_PIVOT_ROOT, _b(new_root), _b(put_old)) != 0:
        raise _err(os.fsdecode(new_root))


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def mount_setattr(path: str, attr_set: int, attr_clr: int = 0, recursive: bool = True) -> None:
    """mount_setattr(2) on an absolute path, e.g. a recursive read-only bind (kernel >= 5.12)."""
    attr = _MountAttr(attr_set, attr_clr, 0, 0)
    flags = AT_RECURSIVE if recursive else 0
    if _syscall(SYS_MOUNT_SETATTR, -100, _b(path), flags, ctypes.byref(attr), ctypes.sizeof(attr)) != 0:
        raise _err(path)


# --- namespaces -----------------------------------------------------------------------------------
def unshare(flags: int) -> None:
    if _libc.unshare(ctypes.c_int(flags)) != 0:
        raise _err("unshare")


def setns(fd: int, nstype: int = 0) -> None:
    if _libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)) != 0:
        raise _err("setns")


def setns_path(path: str, nstype: int = 0) -> None:
    """Join the namespace behind a /proc/<pid>/ns/* file or a bind mount of one."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)) != 0:
            raise _err(path)
    finally:
        os.close(fd)


def sethostname(name: str) -> None:
    b = name.encode()
    if _libc.sethostname(b, ctypes.c_size_t(len(b))) != 0:
        raise _err("sethostname")


def setdomainname(name: str) -> None:
    b = name.encode()
    if _libc.setdomainname(b, ctypes.c_size_t(len(b))) != 0:
        raise _err("setdomainname")


# --- prctl and capabilities ----------------------------------------------------------------------
_libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    r = _libc.prctl(option, arg2, arg3, arg4, arg5)
    if r < 0:
        raise _err("prctl")
    return r


def set_no_new_privs() -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def set_child_subreaper(on: bool = True) -> None:
    prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0)


def set_pdeathsig(sig: int) -> None:
    prctl(PR_SET_PDEATHSIG, sig)


def set_keepcaps(on: bool) -> None:
    prctl(PR_SET_KEEPCAPS, 1 if on else 0)


def set_process_name(name: str) -> None:
    buf = ctypes.create_string_buffer(name.encode()[:15])
    _libc.prctl(PR_SET_NAME, ctypes.cast(buf, ctypes.c_void_p).value or 0, 0, 0, 0)


def capbset_drop(cap: int) -> None:
    prctl(PR_CAPBSET_DROP, cap)


def capbset_read(cap: int) -> bool:
    return prctl(PR_CAPBSET_READ, cap) == 1


def cap_ambient_raise(cap: int) -> None:
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)


def cap_ambient_clear_all() -> None:
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def capget(pid: int = 0) -> tuple[int, int, int]:
    """Return (effective, permitted, inheritable) as 64-bit masks."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapData * 2)()
    if _libc.capget(ctypes.byref(hdr), data) != 0:
        raise _err("capget")
    join = lambda a, b: a | (b << 32)  # noqa: E731
    return (
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
        join(data[0].inheritable, data[1].inheritable),
    )


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set this thread's capability sets from 64-bit masks."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    m = 0xFFFFFFFF
    data[0] = _CapData(effective & m, permitted & m, inheritable & m)
    data[1] = _CapData(effective >> 32, permitted >> 32, inheritable >> 32)
    if _libc.capset(ctypes.byref(hdr), data) != 0:
        raise _err("capset")


# --- files ----------------------------------------------------------------------------------------
class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str | bytes, flags: int, mode: int = 0, resolve: int = RESOLVE_IN_ROOT) -> int:
    """openat2(2): open `path` relative to `dirfd` with path resolution confined as `resolve` says.

    With RESOLVE_IN_ROOT, `..`, absolute paths and absolute symlinks all stay inside `dirfd`:
    the primitive that makes tar extraction and `cp` into a container escape-proof.
    """
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    fd = _syscall(SYS_OPENAT2, dirfd, _b(path), ctypes.byref(how), ctypes.sizeof(how))
    if fd < 0:
        raise _err(os.fsdecode(path))
    return fd


def pidfd_open(pid: int) -> int:
    fd = _syscall(SYS_PIDFD_OPEN, pid, 0)
    if fd < 0:
        raise _err(f"pidfd_open {pid}")
    return fd


def pidfd_send_signal(pidfd: int, sig: int) -> None:
    if _syscall(SYS_PIDFD_SEND_SIGNAL, pidfd, sig, None, 0) != 0:
        raise _err("pidfd_send_signal")


def close_range(first: int, last: int = 0xFFFFFFFF, flags: int = 0) -> None:
    if _syscall(SYS_CLOSE_RANGE, ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(flags)) != 0:
        raise _err("close_range")


def syscall(number: int, *args: object) -> int:
    """A raw syscall for the rare case not wrapped above; returns the result, raises on -1."""
    r = _syscall(number, *args)
    if r < 0:
        raise _err(f"syscall {number}")
    return int(r)


# --- resource limits, keyrings, files (used by the runtime) -------------------------------------
class _Rlimit(ctypes.Structure):
    _fields_ = [("cur", ctypes.c_uint64), ("max", ctypes.c_uint64)]


RLIM_INFINITY = 0xFFFFFFFFFFFFFFFF
_libc.prlimit64.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


def prlimit(pid: int, resource: int, limits: tuple[int, int] | None = None) -> tuple[int, int]:
    """prlimit64(2): set (soft, hard) for `resource` of `pid` (0 = self) when `limits` is given;
    returns the previous (soft, hard). Unlimited is RLIM_INFINITY."""
    old = _Rlimit()
    new = _Rlimit(limits[0] & RLIM_INFINITY, limits[1] & RLIM_INFINITY) if limits is not None else None
    if _libc.prlimit64(pid, resource, ctypes.byref(new) if new is not None else None, ctypes.byref(old)) != 0:
        raise _err(f"prlimit resource {resource}")
    return int(old.cur), int(old.max)


KEYCTL_JOIN_SESSION_KEYRING = 1


def keyctl_join_session_keyring(name: str | None) -> int:
    """keyctl(KEYCTL_JOIN_SESSION_KEYRING): join (creating) a new session keyring, as runc does."""
    r = _syscall(SYS_KEYCTL, KEYCTL_JOIN_SESSION_KEYRING, _b(name))
    if r < 0:
        raise _err("keyctl")
    return int(r)


CLOSE_RANGE_CLOEXEC = 4

# ioctls for terminals (asm-generic values, x86_64 and aarch64 agree)
TIOCSCTTY = 0x540E
TIOCGWINSZ = 0x5413
TIOCSWINSZ = 0x5414
TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431

_libc.ioctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)


def ioctl_int(fd: int, request: int, arg: int = 0) -> int:
    """ioctl(2) with an integer argument (e.g. TIOCSCTTY)."""
    r = _libc.ioctl(fd, request, ctypes.c_void_p(arg))
    if r < 0:
        raise _err("ioctl")
    return r


def ioctl_get_int(fd: int, request: int) -> int:
    """ioctl(2) that writes an int through its pointer argument (e.g. TIOCGPTN)."""
    v = ctypes.c_int(0)
    if _libc.ioctl(fd, request, ctypes.cast(ctypes.byref(v), ctypes.c_void_p)) < 0:
        raise _err("ioctl")
    return v.value


def ioctl_set_int(fd: int, request: int, value: int) -> None:
    """ioctl(2) that reads an int through its pointer argument (e.g. TIOCSPTLCK)."""
    v = ctypes.c_int(value)
    if _libc.ioctl(fd, request, ctypes.cast(ctypes.byref(v), ctypes.c_void_p)) < 0:
        raise _err("ioctl")


class _Winsize(ctypes.Structure):
    _fields_ = [("row", ctypes.c_ushort), ("col", ctypes.c_ushort), ("x", ctypes.c_ushort), ("y", ctypes.c_ushort)]


def get_winsize(fd: int) -> tuple[int, int]:
    """(rows, cols) of the terminal on `fd`."""
    ws = _Winsize()
    if _libc.ioctl(fd, TIOCGWINSZ, ctypes.cast(ctypes.byref(ws), ctypes.c_void_p)) < 0:
        raise _err("ioctl TIOCGWINSZ")
    return ws.row, ws.col


def set_winsize(fd: int, rows: int, cols: int) -> None:
    ws = _Winsize(rows, cols, 0, 0)
    if _libc.ioctl(fd, TIOCSWINSZ, ctypes.cast(ctypes.byref(ws), ctypes.c_void_p)) < 0:
        raise _err("ioctl TIOCSWINSZ")


# --- personality ------------------------------------------------------------------------------------
PER_LINUX = 0x0000
PER_LINUX32 = 0x0008
_libc.personality.argtypes = (ctypes.c_ulong,)


def personality(persona: int) -> int:
    """personality(2): set the execution domain; returns the previous one."""
    r = _libc.personality(persona)
    if r == -1:
        raise _err("personality")
    return int(r)
