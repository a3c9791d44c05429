"""libseccomp through ctypes: build a seccomp filter in memory and load it into this thread.

The runtime (dockyard.runtime.seccomp) translates an OCI `linux.seccomp` object into calls on
`Filter`; this module only knows libseccomp's C API. The library is loaded on first use, so a
container without a seccomp profile never pays for it.
"""

from __future__ import annotations

import ctypes
import os

from dockyard.sys import linux

# actions (seccomp.h)
ACT_KILL_PROCESS = 0x80000000
ACT_KILL_THREAD = 0x00000000
ACT_TRAP = 0x00030000
ACT_NOTIFY = 0x7FC00000
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000


def ACT_ERRNO(errno: int) -> int:  # noqa: N802 - libseccomp's macro name
    return 0x00050000 | (errno & 0xFFFF)


def ACT_TRACE(msg: int) -> int:  # noqa: N802
    return 0x7FF00000 | (msg & 0xFFFF)


# comparison operators (enum scmp_compare)
CMP_NE, CMP_LT, CMP_LE, CMP_EQ, CMP_GE, CMP_GT, CMP_MASKED_EQ = 1, 2, 3, 4, 5, 6, 7

# filter attributes (enum scmp_filter_attr)
ATTR_ACT_DEFAULT = 1
ATTR_ACT_BADARCH = 2
ATTR_CTL_NNP = 3
ATTR_CTL_TSYNC = 4
ATTR_API_TSKIP = 5
ATTR_CTL_LOG = 6
ATTR_CTL_SSB = 7

NR_SCMP_ERROR = -1

# seccomp(2)
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1
SECCOMP_FILTER_FLAG_LOG = 2
SECCOMP_FILTER_FLAG_SPEC_ALLOW = 4
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
# filter attributes -> seccomp(2) flags, for programs loaded without libseccomp
ATTR_TO_FLAG = {4: SECCOMP_FILTER_FLAG_TSYNC, 6: SECCOMP_FILTER_FLAG_LOG, 7: SECCOMP_FILTER_FLAG_SPEC_ALLOW}

# AUDIT_ARCH_* (what seccomp_data.arch holds); libseccomp's tokens equal them except for x32,
# which shares x86_64's and sets bit 30 in the syscall number
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
AUDIT_ARCH_AARCH64 = 0xC00000B7
AUDIT_ARCH_ARM = 0x40000028
SCMP_ARCH_X32 = 0x4000003E
X32_SYSCALL_BIT = 0x40000000


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


_lib: ctypes.CDLL | None = None


def _load() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        try:
            lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
        except OSError as e:
            raise OSError(f"seccomp: libseccomp is not available ({e}); apt-get install libseccomp2") from None
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = (ctypes.c_uint32,)
        lib.seccomp_release.argtypes = (ctypes.c_void_p,)
        lib.seccomp_load.argtypes = (ctypes.c_void_p,)
        lib.seccomp_arch_add.argtypes = (ctypes.c_void_p, ctypes.c_uint32)
        lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        lib.seccomp_arch_resolve_name.argtypes = (ctypes.c_char_p,)
        lib.seccomp_arch_native.restype = ctypes.c_uint32
        lib.seccomp_syscall_resolve_name.argtypes = (ctypes.c_char_p,)
        lib.seccomp_syscall_resolve_name_arch.argtypes = (ctypes.c_uint32, ctypes.c_char_p)
        lib.seccomp_attr_set.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32)
        lib.seccomp_rule_add_array.argtypes = (
            ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(_ArgCmp))
        lib.seccomp_export_bpf.argtypes = (ctypes.c_void_p, ctypes.c_int)
        _lib = lib
    return _lib


def _check(rc: int, what: str) -> None:
    if rc < 0:
        raise OSError(-rc, os.strerror(-rc), f"seccomp: {what}")


def resolve_syscall(name: str) -> int | None:
    """The syscall number (or libseccomp's pseudo number) for `name`, None if unknown."""
    nr = _load().seccomp_syscall_resolve_name(name.encode())
    return None if nr == NR_SCMP_ERROR else nr


def resolve_syscall_arch(arch: int, name: str) -> int | None:
    """The number of `name` on architecture token `arch` (x32 numbers carry bit 30); None when
    that architecture has no such system call (or libseccomp does not know it)."""
    nr = _load().seccomp_syscall_resolve_name_arch(arch, name.encode())
    return None if nr < 0 else nr


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


def library_version() -> str:
    """libseccomp's version, e.g. "2.5.4"."""
    lib = _load()
    lib.seccomp_version.restype = ctypes.POINTER(_Version)
    v = lib.seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"


def native_arch() -> int:
    """libseccomp's token for the architecture this process runs."""
    return int(_load().seccomp_arch_native())


def resolve_arch(name: str) -> int | None:
    """An architecture token for a libseccomp arch name such as "x86_64", None if unknown."""
    token = _load().seccomp_arch_resolve_name(name.encode())
    return token or None


class Filter:
    """One seccomp filter context (seccomp_init ... seccomp_release)."""

    def __init__(self, default_action: int) -> None:
        self._lib = _load()
        self._ctx = self._lib.seccomp_init(default_action)
        if not self._ctx:
            raise OSError(f"seccomp: seccomp_init failed for default action {default_action:#x}")
        # we set no_new_privs ourselves, when the spec asks; libseccomp would force it on load
        self.set_attr(ATTR_CTL_NNP, 0)

    def set_attr(self, attr: int, value: int) -> None:
        _check(self._lib.seccomp_attr_set(self._ctx, attr, value), f"attribute {attr}")

    def add_arch(self, token: int) -> None:
        rc = self._lib.seccomp_arch_add(self._ctx, token)
        if rc != -17:  # -EEXIST: the native architecture is always present
            _check(rc, f"arch {token:#x}")

    def add_rule(self, action: int, syscall: int, conditions: list[tuple[int, int, int, int]] = ()) -> None:  # type: ignore[assignment]
        """seccomp_rule_add_array: `conditions` are (arg index, CMP_*, datum_a, datum_b)."""
        n = len(conditions)
        arr = (_ArgCmp * max(n, 1))()
        for i, (arg, op, a, b) in enumerate(conditions):
            arr[i] = _ArgCmp(arg, op, a & 0xFFFFFFFFFFFFFFFF, b & 0xFFFFFFFFFFFFFFFF)
        _check(self._lib.seccomp_rule_add_array(self._ctx, action, syscall, n, arr), f"rule for syscall {syscall}")

    def load(self) -> None:
        """Install the filter into the calling thread (and, with TSYNC, all threads)."""
        _check(self._lib.seccomp_load(self._ctx), "load")

    def export_bpf(self, fd: int) -> None:
        """Write the compiled BPF program to `fd` (for tests and debugging)."""
        _check(self._lib.seccomp_export_bpf(self._ctx, fd), "export")

    def export_program(self) -> bytes:
        """The compiled classic BPF program: struct sock_filter entries, host byte order."""
        fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            self.export_bpf(fd)
            size = os.lseek(fd, 0, os.SEEK_CUR)
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)

    def release(self) -> None:
        if self._ctx:
            self._lib.seccomp_release(self._ctx)
            self._ctx = None


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def load_program(program: bytes, flags: int = 0) -> None:
    """Install a classic BPF seccomp program into the calling thread: seccomp(2) with `flags`
    (SECCOMP_FILTER_FLAG_*), or prctl(PR_SET_SECCOMP) when there are none. Like seccomp_load,
    it needs no_new_privs or CAP_SYS_ADMIN."""
    if not program or len(program) % 8 or len(program) // 8 > 0xFFFF:
        raise OSError(22, "seccomp: invalid BPF program length", len(program))
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p).value)
    if flags:
        linux.syscall(linux.SYS_SECCOMP, ctypes.c_ulong(SECCOMP_SET_MODE_FILTER), ctypes.c_ulong(flags),
                      ctypes.byref(prog))
    else:
        linux.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog))
