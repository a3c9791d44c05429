"""bpf(2) through ctypes: load a cgroup device program and attach it to a cgroup (v2 device rules).

Kept apart from linux.py so the runtime's hot path (cgroup v1 here) never defines these types.
"""

from __future__ import annotations

import ctypes
import os

from dockyard.sys.linux import _MACHINE, _err, _syscall

SYS_BPF = 321 if _MACHINE in ("x86_64", "amd64") else 280
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2


class _BpfProgLoad(ctypes.Structure):
    _fields_ = [
        ("prog_type", ctypes.c_uint32),
        ("insn_cnt", ctypes.c_uint32),
        ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64),
        ("log_level", ctypes.c_uint32),
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64),
        ("kern_version", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32),
        ("_pad", ctypes.c_uint8 * 64),
    ]


class _BpfProgAttach(ctypes.Structure):
    _fields_ = [
        ("target_fd", ctypes.c_uint32),
        ("attach_bpf_fd", ctypes.c_uint32),
        ("attach_type", ctypes.c_uint32),
        ("attach_flags", ctypes.c_uint32),
        ("replace_bpf_fd", ctypes.c_uint32),
        ("_pad", ctypes.c_uint8 * 44),
    ]


def prog_load_cgroup_device(insns: bytes) -> int:
    """Load a BPF_PROG_TYPE_CGROUP_DEVICE program (raw 8-byte instructions); returns its fd."""
    buf = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(b"Apache")
    log = ctypes.create_string_buffer(65536)
    attr = _BpfProgLoad()
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE
    attr.insn_cnt = len(insns) // 8
    attr.insns = ctypes.addressof(buf)
    attr.license = ctypes.addressof(lic)
    attr.log_level = 1
    attr.log_size = len(log)
    attr.log_buf = ctypes.addressof(log)
    fd = _syscall(SYS_BPF, BPF_PROG_LOAD, ctypes.byref(attr), ctypes.sizeof(attr))
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), "bpf prog load: " + log.value.decode(errors="replace")[-500:])
    return int(fd)


def prog_attach(prog_fd: int, cgroup_fd: int, attach_type: int = BPF_CGROUP_DEVICE, flags: int = BPF_F_ALLOW_MULTI) -> None:
    attr = _BpfProgAttach()
    attr.target_fd = cgroup_fd
    attr.attach_bpf_fd = prog_fd
    attr.attach_type = attach_type
    attr.attach_flags = flags
    if _syscall(SYS_BPF, BPF_PROG_ATTACH, ctypes.byref(attr), ctypes.sizeof(attr)) != 0:
        raise _err("bpf prog attach")
