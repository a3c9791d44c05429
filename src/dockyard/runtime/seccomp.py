"""OCI `linux.seccomp` → a loaded seccomp filter.

`compile_profile` is pure: it turns the profile into (default action, architectures, flags,
rules) with libseccomp's action codes, dropping rules whose action equals the default (libseccomp
refuses them) and splitting rules that test one argument twice (libseccomp cannot AND them; runc
ORs them the same way). `load` resolves syscall names (unknown ones are skipped, as runc does),
builds the filter through dockyard.sys.seccomp and installs it.
"""

from __future__ import annotations

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


def build(profile: dict) -> S.Filter:
    default, arches, flags, rules = compile_profile(profile)
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


def load(profile: dict) -> None:
    """Build and install the filter into the calling thread."""
    f = build(profile)
    try:
        f.load()
    finally:
        f.release()
