"""The devices controller: which device nodes the container may mknod, read and write.

The rule list is the config's `linux.resources.devices`, then an allow rule per `linux.devices`
entry, then runc's default allowed devices (null, zero, full, random, urandom, tty, ptmx, pts,
tun, and mknod of anything). On cgroup v1 the rules are written in order to devices.deny /
devices.allow; on v2 they are compiled into a BPF_PROG_TYPE_CGROUP_DEVICE program (last
matching rule wins, like v1) and attached to the container's cgroup.
"""

from __future__ import annotations

import os
import struct

from dockyard.runtime.cgroups.fs import write

# (type, major, minor, access, allow); -1 = wildcard
DEFAULT_ALLOWED: tuple[tuple[str, int, int, str, bool], ...] = (
    ("c", -1, -1, "m", True),
    ("b", -1, -1, "m", True),
    ("c", 1, 3, "rwm", True),    # /dev/null
    ("c", 1, 8, "rwm", True),    # /dev/random
    ("c", 1, 7, "rwm", True),    # /dev/full
    ("c", 5, 0, "rwm", True),    # /dev/tty
    ("c", 1, 5, "rwm", True),    # /dev/zero
    ("c", 1, 9, "rwm", True),    # /dev/urandom
    ("c", 136, -1, "rwm", True),  # /dev/pts/*
    ("c", 5, 2, "rwm", True),    # /dev/ptmx
    ("c", 10, 200, "rwm", True),  # /dev/net/tun
)


def _num(v: object) -> int:
    return -1 if v is None else int(v)  # type: ignore[call-overload]


def rules(config_linux: dict) -> list[tuple[str, int, int, str, bool]]:
    """The ordered rule list for a container (see module docstring). Empty when unrestricted."""
    res = (config_linux.get("resources") or {}).get("devices")
    out = []
    for r in res or []:
        t = r.get("type") or "a"
        out.append((t, _num(r.get("major")), _num(r.get("minor")), r.get("access") or "rwm", bool(r.get("allow"))))
    for d in config_linux.get("devices") or []:
        t = d.get("type", "c")
        t = "c" if t == "u" else t
        if t in ("c", "b"):
            out.append((t, int(d.get("major", 0)), int(d.get("minor", 0)), "rwm", True))
    if not out:
        return []
    out.extend(DEFAULT_ALLOWED)
    return out


def _v1_line(t: str, major: int, minor: int, access: str) -> str:
    if t == "a":
        return "a"
    return f"{t} {'*' if major < 0 else major}:{'*' if minor < 0 else minor} {access}"


def set_v1_rules(d: str, rule_list: list[tuple[str, int, int, str, bool]]) -> None:
    for t, major, minor, access, allow in rule_list:
        write(d, "devices.allow" if allow else "devices.deny", _v1_line(t, major, minor, access))


def set_v1(paths: dict[str, str], linux: dict) -> None:
    d = paths.get("devices")
    r = rules(linux)
    if d and r:
        set_v1_rules(d, r)


# --- cgroup v2: a BPF device program ---------------------------------------------------------------
_ACC = {"m": 1, "r": 2, "w": 4}
_TYPE = {"b": 1, "c": 2}


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def compile_bpf(rule_list: list[tuple[str, int, int, str, bool]]) -> bytes:
    """A cgroup device program for the rules (last matching rule wins; default deny)."""
    default = False
    start = 0
    for i, (t, major, minor, access, allow) in enumerate(rule_list):
        if t == "a" and major < 0 and minor < 0 and set(access) >= {"r", "w", "m"}:
            default, start = allow, i + 1  # a full wildcard resets everything before it
    body: list[list[bytes]] = []
    for t, major, minor, access, allow in reversed(rule_list[start:]):
        block: list[tuple[int, int, int, int, int | None]] = []  # (code, dst, src, imm, jump-to-next?)
        if t != "a":
            block.append((0x55, 2, 0, _TYPE[t], 1))  # if r2 != type goto next
        acc = 0
        for c in access:
            acc |= _ACC.get(c, 0)
        if acc != 7:
            block.append((0xBC, 1, 3, 0, None))   # w1 = w3
            block.append((0x54, 1, 0, acc, None))  # w1 &= acc
            block.append((0x5D, 1, 3, 0, 1))      # if r1 != r3 goto next
        if major >= 0:
            block.append((0x55, 4, 0, major, 1))
        if minor >= 0:
            block.append((0x55, 5, 0, minor, 1))
        block.append((0xB4, 0, 0, 1 if allow else 0, None))  # w0 = verdict
        block.append((0x95, 0, 0, 0, None))                  # exit
        n = len(block)
        body.append([_insn(code, dst, src, (n - 1 - i) if jump else 0, imm)
                     for i, (code, dst, src, imm, jump) in enumerate(block)])
    prologue = [
        _insn(0x61, 2, 1, 0),       # w2 = ctx->access_type
        _insn(0x54, 2, 0, 0, 0xFFFF),  # w2 &= 0xffff (device type)
        _insn(0x61, 3, 1, 0),       # w3 = ctx->access_type
        _insn(0x74, 3, 0, 0, 16),   # w3 >>= 16 (access)
        _insn(0x61, 4, 1, 4),       # w4 = ctx->major
        _insn(0x61, 5, 1, 8),       # w5 = ctx->minor
    ]
    epilogue = [_insn(0xB4, 0, 0, 0, 1 if default else 0), _insn(0x95)]
    return b"".join(prologue) + b"".join(b"".join(b) for b in body) + b"".join(epilogue)


def set_v2(path: str, linux: dict) -> None:
    r = rules(linux)
    if not r:
        return
    from dockyard.sys import bpf

    prog = bpf.prog_load_cgroup_device(compile_bpf(r))
    try:
        cg = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            bpf.prog_attach(prog, cg)
        finally:
            os.close(cg)
    finally:
        os.close(prog)
