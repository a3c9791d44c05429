"""OCI `linux.seccomp` → a loaded seccomp filter.

`compile_profile` is pure: it turns the profile into (default action, architectures, flags,
rules) with libseccomp's action codes, dropping rules whose action equals the default (libseccomp
refuses them) and splitting rules that test one argument twice (libseccomp cannot AND them; runc
ORs them the same way). `build` resolves syscall names (unknown ones are skipped, as runc does)
and builds the filter through dockyard.sys.seccomp.

`compile_bpf` is what containers get: libseccomp's program with runc's -ENOSYS stub in front.
A filter that denies by default would answer EPERM to system calls newer than the profile, and
libcs only fall back to older calls on ENOSYS (glibc's fchmodat2, clone3, ...); so, as runc
does, a system call numbered above the highest one the profile names (per architecture, x32
apart) fails with ENOSYS before the filter sees it. `enosys_stub` builds that prefix (pure).
"""

from __future__ import annotations

import os

from dockyard.sys import seccomp as S

EPERM = 1
_OPS = {
    "SCMP_CMP_NE": S.CMP_NE, "SCMP_CMP_LT": S.CMP_LT, "SCMP_CMP_LE": S.CMP_LE, "SCMP_CMP_EQ": S.CMP_EQ,
    "SCMP_CMP_GE": S.CMP_GE, "SCMP_CMP_GT": S.CMP_GT, "SCMP_CMP_MASKED_EQ": S.CMP_MASKED_EQ,
}
_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": S.ATTR_CTL_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": S.ATTR_CTL_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": S.ATTR_CTL_SSB,
}


class SeccompError(Exception):
    pass


def action(name: str, errno_ret: int | None) -> int:
    if name == "SCMP_ACT_ALLOW":
        return S.ACT_ALLOW
    if name == "SCMP_ACT_ERRNO":
        return S.ACT_ERRNO(EPERM if errno_ret is None else errno_ret)
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return S.ACT_KILL_THREAD
    if name == "SCMP_ACT_KILL_PROCESS":
        return S.ACT_KILL_PROCESS
    if name == "SCMP_ACT_TRAP":
        return S.ACT_TRAP
    if name == "SCMP_ACT_TRACE":
        return S.ACT_TRACE(EPERM if errno_ret is None else errno_ret)
    if name == "SCMP_ACT_LOG":
        return S.ACT_LOG
    if name == "SCMP_ACT_NOTIFY":
        raise SeccompError("seccomp action SCMP_ACT_NOTIFY is not supported (no seccomp agent support)")
    raise SeccompError(f"invalid seccomp action {name!r}")


def arch_name(oci: str) -> str:
    if not oci.startswith("SCMP_ARCH_"):
        raise SeccompError(f"invalid seccomp architecture {oci!r}")
    return oci[len("SCMP_ARCH_"):].lower()


def compile_profile(profile: dict) -> tuple[int, list[str], list[int], list[tuple[int, str, list[tuple[int, int, int, int]]]]]:
    """(default action, arch names, attribute flags, [(action, syscall name, conditions)])."""
    default = action(profile.get("defaultAction", ""), profile.get("defaultErrnoRet"))
    arches = [arch_name(a) for a in profile.get("architectures") or []]
    flags = []
    for f in profile.get("flags") or []:
        if f not in _FLAGS:
            raise SeccompError(f"seccomp flag {f!r} is not supported")
        flags.append(_FLAGS[f])
    rules: list[tuple[int, str, list[tuple[int, int, int, int]]]] = []
    for sc in profile.get("syscalls") or []:
        act = action(sc.get("action", ""), sc.get("errnoRet"))
        if act == default:
            continue
        conds = []
        for a in sc.get("args") or []:
            op = _OPS.get(a.get("op", ""))
            if op is None:
                raise SeccompError(f"invalid seccomp operator {a.get('op')!r}")
            conds.append((int(a["index"]), op, int(a.get("value", 0)), int(a.get("valueTwo", 0))))
        indexes = [c[0] for c in conds]
        split = len(set(indexes)) != len(indexes)
        names = sc.get("names") or ([sc["name"]] if sc.get("name") else [])
        for name in names:
            if split:
                rules.extend((act, name, [c]) for c in conds)
            else:
                rules.append((act, name, conds))
    return default, arches, flags, rules


def build(profile: dict, compiled: tuple | None = None) -> S.Filter:
    default, arches, flags, rules = compiled or compile_profile(profile)
    f = S.Filter(default)
    try:
        for a in arches:
            token = S.resolve_arch(a)
            if token is None:
                continue  # an architecture this libseccomp does not know: skipped, as runc
            f.add_arch(token)
        for flag in flags:
            f.set_attr(flag, 1)
        cache: dict[str, int | None] = {}
        for act, name, conds in rules:
            nr = cache.get(name, -2)
            if nr == -2:
                nr = cache[name] = S.resolve_syscall(name)
            if nr is None:
                continue  # unknown syscall name: skipped
            f.add_rule(act, nr, conds)
    except BaseException:
        f.release()
        raise
    return f


# classic BPF opcodes and struct seccomp_data offsets
_LD_W_ABS, _JEQ_K, _JGT_K, _JSET_K, _JA, _RET_K = 0x20, 0x15, 0x25, 0x45, 0x05, 0x06
_OFF_NR, _OFF_ARCH = 0, 4
_ALLOWING = ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE")


def last_syscalls(profile: dict, arches: list[int], resolve) -> dict[int, int]:  # noqa: ANN001
    """{libseccomp arch token: the highest syscall number the profile names on it}; `resolve`
    is (token, name) -> number or None."""
    names = set()
    for sc in profile.get("syscalls") or []:
        names.update(sc.get("names") or ([sc["name"]] if sc.get("name") else []))
    out = {}
    for arch in arches:
        nrs = [nr for nr in (resolve(arch, n) for n in names) if nr is not None]
        if nrs:
            out[arch] = max(nrs)
    return out


def enosys_stub(last: dict[int, int]) -> list[tuple[int, int, int, int]]:
    """A BPF prefix (code, jt, jf, k) returning ENOSYS for syscall numbers above `last[arch]`,
    and jumping past itself (into the filter that follows) for everything else."""
    errno_enosys = S.ACT_ERRNO(38)
    # one section per AUDIT_ARCH; x32 shares x86_64's and is told apart by bit 30 of the number
    native: dict[int, dict[str, int]] = {}
    for arch, nr in last.items():
        if arch == S.SCMP_ARCH_X32:
            native.setdefault(S.AUDIT_ARCH_X86_64, {})["x32"] = nr
        else:
            native.setdefault(arch, {})["main"] = nr
    # sections are laid out after the arch dispatch; labels resolved below
    body: list[tuple] = []
    entry: dict[int, int] = {}
    for arch, limits in native.items():
        entry[arch] = len(body)
        body.append((_LD_W_ABS, 0, 0, _OFF_NR))
        if arch == S.AUDIT_ARCH_X86_64:
            main = limits.get("main", 0xFFFFFFFF)  # no x86_64 entry: never ENOSYS for it
            x32 = limits.get("x32", 0xFFFFFFFF)
            # jset bit30 ? x32 check : x86_64 check
            body.append((_JSET_K, 2, 0, S.X32_SYSCALL_BIT))
            body.append((_JGT_K, "enosys", 0, main))
            body.append((_JA, 0, 0, "filter"))
            body.append((_JGT_K, "enosys", 0, x32))
            body.append((_JA, 0, 0, "filter"))
        else:
            body.append((_JGT_K, "enosys", 0, limits["main"]))
            body.append((_JA, 0, 0, "filter"))
    head_len = 1 + len(native) + 1  # ld arch, one jeq per arch, ja filter
    prog: list[tuple] = [(_LD_W_ABS, 0, 0, _OFF_ARCH)]
    for arch in native:
        prog.append((_JEQ_K, ("body", entry[arch]), 0, arch))
    prog.append((_JA, 0, 0, "filter"))
    prog.extend(body)
    prog.append((_RET_K, 0, 0, errno_enosys))
    enosys_at = len(prog) - 1
    filter_at = len(prog)

    def target(label, pc: int) -> int:  # noqa: ANN001
        if isinstance(label, int):
            return label
        if label == "enosys":
            dest = enosys_at
        elif label == "filter":
            dest = filter_at
        else:
            dest = head_len + label[1]
        off = dest - pc - 1
        if not 0 <= off <= 0xFFFFFFFF:
            raise SeccompError("seccomp: ENOSYS stub jump out of range")
        return off

    out = []
    for pc, (code, jt, jf, k) in enumerate(prog):
        jt, jf = target(jt, pc), target(jf, pc)
        if code == _JA:
            k, jt, jf = target(k, pc), 0, 0
        elif jt > 255 or jf > 255:
            raise SeccompError("seccomp: ENOSYS stub jump out of range")
        out.append((code, jt, jf, k))
    return out


class Program:
    """A compiled filter, ready to install with one syscall (no libseccomp needed then)."""

    def __init__(self, code: bytes, flags: int) -> None:
        self.code = code
        self.flags = flags

    def load(self) -> None:
        S.load_program(self.code, self.flags)

    def release(self) -> None:
        self.code = b""


STUB_VERSION = "1"  # part of the cache key: bump when enosys_stub changes


def _cache_key(profile: dict) -> str:
    import _sha256

    # the profile as parsed from config.json: its repr is stable for the same text
    material = f"{STUB_VERSION} {S.library_version()} {os.uname().machine} {profile!r}"
    return _sha256.sha256(material.encode()).hexdigest()


def _cached(cache_dir: str, key: str) -> Program | None:
    try:
        with open(os.path.join(cache_dir, key + ".bpf"), "rb") as f:
            data = f.read()
    except OSError:
        return None
    code = data[4:]
    if not code or len(code) % 8:
        return None
    return Program(code, int.from_bytes(data[:4], "little"))


def _store(cache_dir: str, key: str, prog: Program) -> None:
    """Best effort: a compiled program for the next container with the same profile."""
    try:
        os.makedirs(os.path.dirname(cache_dir), 0o700, exist_ok=True)
        os.makedirs(cache_dir, 0o700, exist_ok=True)
        names = os.listdir(cache_dir)
        if len(names) >= 64:  # bounded: start over
            for n in names:
                os.unlink(os.path.join(cache_dir, n))
        tmp = os.path.join(cache_dir, f".{key}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, prog.flags.to_bytes(4, "little") + prog.code)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(cache_dir, key + ".bpf"))
    except OSError:
        pass


def compile_bpf(profile: dict, cache_dir: str = "") -> Program:
    """The profile as a loadable program: libseccomp's filter, with the ENOSYS stub in front
    unless the default action lets system calls through. With `cache_dir` (the runtime keeps
    one under its --root) the program is compiled once per distinct profile and libseccomp
    version: Docker's default profile costs ~30 ms to compile, a cached one ~1 ms to read."""
    key = ""
    if cache_dir:
        key = _cache_key(profile)
        hit = _cached(cache_dir, key)
        if hit is not None:
            return hit
    import struct

    compiled = compile_profile(profile)
    f = build(profile, compiled)
    try:
        code = f.export_program()
    finally:
        f.release()
    _default, arch_names, attrs, _rules = compiled
    flags = 0
    for a in attrs:
        flags |= S.ATTR_TO_FLAG.get(a, 0)
    if profile.get("defaultAction") not in _ALLOWING:
        tokens = [t for t in (S.resolve_arch(a) for a in arch_names) if t is not None]
        if not tokens:
            tokens = [S.native_arch()]
        last = last_syscalls(profile, tokens, S.resolve_syscall_arch)
        if last:
            stub = enosys_stub(last)
            code = b"".join(struct.pack("=HBBI", c, jt, jf, k) for c, jt, jf, k in stub) + code
    if len(code) // 8 > 4096:  # BPF_MAXINSNS
        raise SeccompError(f"seccomp: the filter has {len(code) // 8} instructions, more than the kernel's 4096")
    prog = Program(code, flags)
    if key:
        _store(cache_dir, key, prog)
    return prog


def load(profile: dict) -> None:
    """Build and install the filter into the calling thread."""
    f = build(profile)
    try:
        f.load()
    finally:
        f.release()
