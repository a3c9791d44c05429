"""bpf(2) for the network layer, through ctypes: hash maps, cgroup sock_addr programs, cgroup links.

Used by dockyard.network.redirect (published ports reached from the host's 127.0.0.1 connect
straight to the container). Every function raises OSError with the kernel's errno; the program
loader adds the tail of the verifier's log. The bpf_attr union is built as raw bytes at the
kernel's offsets (include/uapi/linux/bpf.h), so no ctypes Structure per command is needed.
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct

from dockyard.sys.linux import _MACHINE, _syscall

SYS_BPF = 321 if _MACHINE in ("x86_64", "amd64") else 280

# commands
BPF_MAP_CREATE, BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_ELEM = 0, 1, 2, 3
BPF_PROG_LOAD, BPF_LINK_CREATE = 5, 28
# map and program types, attach points
BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LRU_HASH = 1, 9
BPF_PROG_TYPE_CGROUP_SOCK_ADDR = 18
BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_INET4_GETPEERNAME, BPF_CGROUP_INET4_GETSOCKNAME = 10, 29, 31
# helpers
FUNC_MAP_LOOKUP_ELEM, FUNC_MAP_UPDATE_ELEM, FUNC_GET_SOCKET_COOKIE, FUNC_GET_NETNS_COOKIE = 1, 2, 46, 122
BPF_PSEUDO_MAP_FD = 1
SO_NETNS_COOKIE = 71

_ATTR_SIZE = 144


def _call(cmd: int, attr: ctypes.Array[ctypes.c_char], what: str) -> int:
    ret = _syscall(SYS_BPF, cmd, attr, _ATTR_SIZE)
    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), what)
    return int(ret)


def _attr() -> ctypes.Array[ctypes.c_char]:
    return ctypes.create_string_buffer(_ATTR_SIZE)


def map_create(map_type: int, key_size: int, value_size: int, max_entries: int, name: str = "") -> int:
    """A new map; returns its fd (close it to free the map once no program uses it)."""
    a = _attr()
    struct.pack_into("=IIII", a, 0, map_type, key_size, value_size, max_entries)
    struct.pack_into("=16s", a, 28, name.encode()[:15])
    return _call(BPF_MAP_CREATE, a, f"bpf map create {name}")


def _elem(fd: int, key: bytes, value: ctypes.Array[ctypes.c_char] | None, flags: int = 0) -> ctypes.Array[ctypes.c_char]:
    a = _attr()
    kbuf = ctypes.create_string_buffer(key, len(key))
    struct.pack_into("=IxxxxQQQ", a, 0, fd, ctypes.addressof(kbuf), ctypes.addressof(value) if value is not None else 0, flags)
    a._keep = (kbuf, value)  # type: ignore[attr-defined]  # alive until the call returns
    return a


def map_update(fd: int, key: bytes, value: bytes, flags: int = 0) -> None:
    v = ctypes.create_string_buffer(value, len(value))
    _call(BPF_MAP_UPDATE_ELEM, _elem(fd, key, v, flags), "bpf map update")


def map_delete(fd: int, key: bytes) -> bool:
    """Remove a key; False if it was not there."""
    try:
        _call(BPF_MAP_DELETE_ELEM, _elem(fd, key, None), "bpf map delete")
    except FileNotFoundError:
        return False
    return True


def map_lookup(fd: int, key: bytes, value_size: int) -> bytes | None:
    v = ctypes.create_string_buffer(value_size)
    try:
        _call(BPF_MAP_LOOKUP_ELEM, _elem(fd, key, v), "bpf map lookup")
    except FileNotFoundError:
        return None
    return v.raw


def prog_load(prog_type: int, insns: bytes, expected_attach_type: int, name: str = "", license_: str = "Apache") -> int:
    """Load a program (raw 8-byte instructions); returns its fd. The verifier's log on failure."""
    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(license_.encode())
    log = ctypes.create_string_buffer(1 << 16)
    a = _attr()
    struct.pack_into("=IIQQII", a, 0, prog_type, len(insns) // 8, ctypes.addressof(code), ctypes.addressof(lic), 1, len(log))
    struct.pack_into("=Q", a, 32, ctypes.addressof(log))
    struct.pack_into("=16s", a, 48, name.encode()[:15])
    struct.pack_into("=I", a, 68, expected_attach_type)
    try:
        return _call(BPF_PROG_LOAD, a, f"bpf prog load {name}")
    except OSError as e:
        raise OSError(e.errno, e.strerror, f"bpf prog load {name}: {log.value.decode(errors='replace')[-800:]}") from None


def link_create(prog_fd: int, target_fd: int, attach_type: int) -> int:
    """Attach a program to a cgroup as a bpf_link: it stays attached while the returned fd is
    open (in this process or a child it was passed to), and goes away with the last close, so a
    crashed daemon leaves nothing attached."""
    a = _attr()
    struct.pack_into("=IIII", a, 0, prog_fd, target_fd, attach_type, 0)
    return _call(BPF_LINK_CREATE, a, "bpf link create")


def netns_cookie() -> int:
    """The cookie of the calling thread's network namespace (what bpf_get_netns_cookie returns)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        return int.from_bytes(s.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8), "little")


# --- a tiny assembler ---------------------------------------------------------------------------
class Asm:
    """eBPF instructions with labels (enough for small sock_addr programs)."""

    def __init__(self) -> None:
        self.insns: list[list[int | str]] = []  # [opcode, dst, src, off | label, imm]
        self.labels: dict[str, int] = {}

    def _emit(self, op: int, dst: int = 0, src: int = 0, off: int | str = 0, imm: int = 0) -> Asm:
        self.insns.append([op, dst, src, off, imm])
        return self

    def label(self, name: str) -> Asm:
        self.labels[name] = len(self.insns)
        return self

    def mov(self, dst: int, src: int) -> Asm:
        return self._emit(0xBF, dst, src)

    def movi(self, dst: int, imm: int) -> Asm:
        return self._emit(0xB7, dst, 0, 0, imm)

    def addi(self, dst: int, imm: int) -> Asm:
        return self._emit(0x07, dst, 0, 0, imm)

    def ldxw(self, dst: int, src: int, off: int) -> Asm:
        return self._emit(0x61, dst, src, off)

    def stxw(self, dst: int, off: int, src: int) -> Asm:
        return self._emit(0x63, dst, src, off)

    def stxdw(self, dst: int, off: int, src: int) -> Asm:
        return self._emit(0x7B, dst, src, off)

    def jnei(self, dst: int, imm: int, label: str) -> Asm:
        return self._emit(0x55, dst, 0, label, imm)

    def jeqi(self, dst: int, imm: int, label: str) -> Asm:
        return self._emit(0x15, dst, 0, label, imm)

    def call(self, helper: int) -> Asm:
        return self._emit(0x85, 0, 0, 0, helper)

    def exit(self) -> Asm:
        return self._emit(0x95)

    def ld_map_fd(self, dst: int, fd: int) -> Asm:
        self._emit(0x18, dst, BPF_PSEUDO_MAP_FD, 0, fd)
        return self._emit(0, 0, 0, 0, 0)  # the second half of the 16-byte load

    def bytes(self) -> bytes:
        out = bytearray()
        for pc, (op, dst, src, off, imm) in enumerate(self.insns):
            if isinstance(off, str):
                off = self.labels[off] - (pc + 1)
            out += struct.pack("<BBhi", int(op), (int(src) << 4) | int(dst), int(off), int(imm))
        return bytes(out)
