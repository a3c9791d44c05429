"""The default seccomp profile against Docker's (moby's profiles/seccomp/default.json, as of
Docker 25+: io_uring removed, the kernel 5.17-6.7 syscalls added), rule by rule, and what it
does in real containers: each system call below is made with raw arguments by a static probe and
must fail (or not) with the errno Docker's containers see (checked against dockerd 20.10 + runc
1.1 on this machine where that older profile agrees)."""

from __future__ import annotations

import os

import pytest
from secutil import probe_mount, run

from dockyard.daemon import seccomp
from dockyard.daemon.oci_spec import DEFAULT_CAPS

EPERM, EBADF, EFAULT, EINVAL, ENOSYS = 1, 9, 14, 22, 38

# Docker's capability-gated groups (includes.caps in moby's profile)
CAP_GATED = {
    "CAP_DAC_READ_SEARCH": {"open_by_handle_at"},
    "CAP_SYS_ADMIN": {"bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
                      "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open",
                      "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount",
                      "umount2", "unshare"},
    "CAP_SYS_BOOT": {"reboot"},
    "CAP_SYS_CHROOT": {"chroot"},
    "CAP_SYS_MODULE": {"delete_module", "init_module", "finit_module"},
    "CAP_SYS_PACCT": {"acct"},
    "CAP_SYS_PTRACE": {"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"},
    "CAP_SYS_RAWIO": {"iopl", "ioperm"},
    "CAP_SYS_TIME": {"settimeofday", "stime", "clock_settime", "clock_settime64"},
    "CAP_SYS_TTY_CONFIG": {"vhangup"},
    "CAP_SYS_NICE": {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"},
    "CAP_SYSLOG": {"syslog"},
    "CAP_BPF": {"bpf"},
    "CAP_PERFMON": {"perf_event_open"},
}  # fmt: skip
# never allowed by Docker's default profile, whatever the capabilities
NEVER = {"add_key", "keyctl", "request_key", "swapon", "swapoff", "kexec_load", "kexec_file_load", "userfaultfd",
         "move_pages", "migrate_pages", "io_uring_setup", "io_uring_enter", "io_uring_register", "pivot_root",
         "uselib", "ustat", "sysfs", "_sysctl", "nfsservctl", "vm86", "vm86old", "create_module", "get_kernel_syms",
         "query_module", "afs_syscall", "tuxcall", "security"}  # fmt: skip
# a sample of the unconditional allow-list, including the newest entries
ALWAYS = {"read", "write", "openat2", "close_range", "epoll_pwait2", "faccessat2", "futex_waitv", "landlock_add_rule",
          "memfd_secret", "process_mrelease", "pidfd_open", "pidfd_send_signal", "rseq", "cachestat", "fchmodat2",
          "map_shadow_stack", "futex_wake", "futex_wait", "futex_requeue", "name_to_handle_at", "seccomp",
          "process_vm_readv", "process_vm_writev", "ptrace", "statx", "membarrier", "io_setup", "io_submit"}  # fmt: skip


def _allowed(profile: dict) -> dict[str, list[dict]]:
    """syscall name -> the rules that name it (SCMP_ACT_ALLOW or an errno)."""
    out: dict[str, list[dict]] = {}
    for rule in profile["syscalls"]:
        for n in rule["names"]:
            out.setdefault(n, []).append(rule)
    return out


# --- the profile as data (pure) --------------------------------------------------------------------
def test_default_profile_matches_dockers_rules() -> None:
    prof = seccomp.default_profile(list(DEFAULT_CAPS), arch="amd64")
    assert prof["defaultAction"] == "SCMP_ACT_ERRNO" and prof["defaultErrnoRet"] == EPERM
    assert prof["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    rules = _allowed(prof)
    for name in ALWAYS:
        assert any(r["action"] == "SCMP_ACT_ALLOW" and not r.get("args") for r in rules.get(name, [])), name
    for name in NEVER:
        assert name not in rules, name
    # CAP_SYS_CHROOT is a default capability: chroot is allowed; the other gated groups are not
    assert "chroot" in rules
    for cap, names in CAP_GATED.items():
        if cap in DEFAULT_CAPS:
            continue
        for name in names - {"clone", "clone3", "ptrace", "process_vm_readv", "process_vm_writev"}:
            assert name not in rules, (cap, name)
    # argument filters
    assert rules["clone"] == [{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [
        {"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]
    assert rules["clone3"] == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS}]
    assert rules["socket"] == [{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [
        {"index": 0, "value": 40, "valueTwo": 0, "op": "SCMP_CMP_NE"}]}]
    assert sorted(r["args"][0]["value"] for r in rules["personality"]) == [0, 8, 0x20000, 0x20008, 0xFFFFFFFF]
    assert all(r["args"][0]["op"] == "SCMP_CMP_EQ" for r in rules["personality"])
    assert {"arch_prctl", "modify_ldt"} <= set(rules)
    assert "arm_fadvise64_64" not in rules and "s390_runtime_instr" not in rules


@pytest.mark.parametrize("cap", sorted(CAP_GATED))
def test_capability_opens_its_group(cap: str) -> None:
    prof = seccomp.default_profile([*DEFAULT_CAPS, cap], arch="amd64")
    rules = _allowed(prof)
    for name in CAP_GATED[cap]:
        assert any(r["action"] == "SCMP_ACT_ALLOW" and not r.get("args") for r in rules.get(name, [])), name
    if cap == "CAP_SYS_ADMIN":
        # no namespace-flag filter on clone and no ENOSYS for clone3 any more
        assert not any(r["action"] != "SCMP_ACT_ALLOW" for r in rules["clone3"])
        assert any(not r.get("args") for r in rules["clone"])
    else:
        assert rules["clone3"][0]["errnoRet"] == ENOSYS


# --- in real containers ----------------------------------------------------------------------------
# (name, number, args, errno in a default container); x86_64 numbers
DEFAULT_CASES = [
    ("getpid", 39, "", 0),
    ("unshare-user", 272, "0x10000000", EPERM),
    ("unshare-ns", 272, "0x20000", EPERM),
    ("mount", 165, "0 0 0 0 0", EPERM),
    ("umount2", 166, "0 0", EPERM),
    ("keyctl", 250, "0 0xfffffffd 0", EPERM),
    ("add_key", 248, "0 0 0 0 0", EPERM),
    ("request_key", 249, "0 0 0 0", EPERM),
    ("bpf", 321, "0 0 0", EPERM),
    ("perf_event_open", 298, "0 0 -1 -1 0", EPERM),
    ("clock_settime", 227, "0 0", EPERM),
    ("settimeofday", 164, "0 0", EPERM),
    ("reboot", 169, "0 0 0 0", EPERM),
    ("swapon", 167, "0 0", EPERM),
    ("swapoff", 168, "0", EPERM),
    ("clone3", 435, "0 0", ENOSYS),
    ("clone-newns", 56, "0x20011", EPERM),
    ("personality-query", 135, "0xffffffff", 0),
    ("personality-norandom", 135, "0x40000", EPERM),
    ("socket-vsock", 41, "40 1 0", EPERM),
    ("socket-inet", 41, "2 1 0", 0),
    ("io_uring_setup", 425, "1 0", EPERM),
    ("open_by_handle_at", 304, "0 0 0", EPERM),
    ("syslog", 103, "10 0 0", EPERM),
    ("acct", 163, "0", EPERM),
    ("setns", 308, "-1 0", EPERM),
    ("kcmp", 312, "1 1 0 0 0", EPERM),
    ("pidfd_getfd", 438, "0 0 0", EPERM),
    ("finit_module", 313, "-1 0 0", EPERM),
    ("delete_module", 176, "0 0", EPERM),
    ("iopl", 172, "0", EPERM),
    ("kexec_load", 246, "0 0 0 0", EPERM),
    ("userfaultfd", 323, "0", EPERM),
    ("fsopen", 430, "0 0", EPERM),
    ("move_pages", 279, "0 0 0 0 0 0", EPERM),
    ("vhangup", 153, "", EPERM),
    ("mbind", 237, "0 0 0 0 0 0", EPERM),
    ("chroot-allowed", 161, "0", EFAULT),  # CAP_SYS_CHROOT is a default capability
    # syscalls newer than any the profile names: ENOSYS (runc's stub), so libcs fall back
    ("newer-470", 470, "", ENOSYS),
    ("newer-1000", 1000, "", ENOSYS),
]


def _probe_script(cases: list[tuple[str, int, str, int]]) -> str:
    return "; ".join(f'echo "{name}=$(/p/sysprobe {nr} {args})"' for name, nr, args, _ in cases)


def _results(out: str) -> dict[str, int]:
    res = {}
    for line in out.splitlines():
        name, sep, val = line.partition("=")
        if sep and val.strip().lstrip("-").isdigit():
            res[name] = int(val)
    return res


pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers are x86_64's")


def test_default_container_syscalls(daemon, probes) -> None:  # noqa: ANN001
    code, out = run(daemon, _probe_script(DEFAULT_CASES), HostConfig=probe_mount(probes))
    got = _results(out)
    want = {name: errno for name, _, _, errno in DEFAULT_CASES}
    assert got == want, out


def test_ptrace_of_a_sibling_and_ordinary_programs(daemon, probes) -> None:  # noqa: ANN001
    # Docker allows ptrace (kernel >= 4.8): attaching to a process with the same credentials works
    # another user's process needs CAP_SYS_PTRACE, which a container lacks by default (the kernel's EPERM)
    script = ("sleep 30 & pid=$!; echo attach=$(/p/sysprobe 101 16 $pid); kill -9 $pid; "
              "su nobody -s /bin/sh -c 'exec sleep 30' & pid=$!; "
              "until grep -q 'Uid:.65534' /proc/$pid/status; do sleep 0.05; done; echo other=$(/p/sysprobe 101 16 $pid); "
              "kill -9 $pid; /p/thread; ls / >/dev/null && date >/dev/null && wc -l /etc/passwd >/dev/null && "
              "echo ordinary-ok")  # fmt: skip
    code, out = run(daemon, script, HostConfig=probe_mount(probes))
    assert "attach=0" in out and "other=1" in out and "thread-ok" in out and "ordinary-ok" in out, out


@pytest.mark.parametrize("cap, cases", [
    ("SYS_ADMIN", [("unshare-uts", 272, "0x04000000", 0), ("mount", 165, "0 0 0 0 0", EFAULT), ("clone3", 435, "0 0", EINVAL),
                   ("setns", 308, "-1 0", EBADF), ("keyctl", 250, "0 0xfffffffd 0", EPERM), ("swapon", 167, "0 0", EPERM)]),
    ("SYS_TIME", [("clock_settime", 227, "0 0", EFAULT)]),
    ("SYS_BOOT", [("reboot", 169, "0 0 0 0", EINVAL)]),
    ("SYS_MODULE", [("finit_module", 313, "-1 0 0", (EBADF, ENOSYS))]),  # ENOSYS: a kernel without modules
    ("SYS_PTRACE", [("kcmp", 312, "1 1 0 0 0", 0)]),
])  # fmt: skip
def test_capability_opens_syscalls_in_a_container(daemon, probes, cap: str, cases) -> None:  # noqa: ANN001
    code, out = run(daemon, _probe_script(cases), HostConfig={**probe_mount(probes), "CapAdd": [cap]})
    got = _results(out)
    assert set(got) == {c[0] for c in cases}, out
    for name, _, _, want in cases:
        assert got[name] in (want if isinstance(want, tuple) else (want,)), (name, out)


def test_clone3_with_cap_sys_admin_and_threads(daemon, probes) -> None:  # noqa: ANN001
    code, out = run(daemon, "/p/thread", HostConfig={**probe_mount(probes), "CapAdd": ["SYS_ADMIN"]})
    assert "thread-ok" in out, out


def test_unconfined_and_custom_profiles(daemon, probes) -> None:  # noqa: ANN001
    # the keyring calls are denied by the filter, not by the kernel
    code, out = run(daemon, 'echo "keyctl=$(/p/sysprobe 250 0 0xfffffffd 0)"; grep Seccomp: /proc/self/status',
                    HostConfig={**probe_mount(probes), "SecurityOpt": ["seccomp=unconfined"]})
    assert "keyctl=0" in out and "Seccomp:\t0" in out, out
    profile = ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO",'
               ' "errnoRet": 13}]}')
    code, out = run(daemon, 'echo "getppid=$(/p/sysprobe 110)"; echo "newer=$(/p/sysprobe 470)"',
                    HostConfig={**probe_mount(probes), "SecurityOpt": [f"seccomp={profile}"]})
    # an allow-by-default profile gets no ENOSYS stub: unknown numbers reach the kernel (ENOSYS too)
    assert _results(out) == {"getppid": 13, "newer": ENOSYS}, out


# --- the ENOSYS stub (pure) ------------------------------------------------------------------------
def _run_stub(prog: list[tuple[int, int, int, int]], arch: int, nr: int) -> str:
    """Interpret the stub's classic BPF for one syscall: 'enosys' or 'filter' (fell through)."""
    acc, pc = 0, 0
    while pc < len(prog):
        code, jt, jf, k = prog[pc]
        if code == 0x20:
            acc = nr if k == 0 else arch
        elif code == 0x05:
            pc += k
        elif code in (0x15, 0x25, 0x45):
            cond = acc == k if code == 0x15 else acc > k if code == 0x25 else bool(acc & k)
            pc += jt if cond else jf
        elif code == 0x06:
            assert k == 0x50000 | ENOSYS
            return "enosys"
        pc += 1
    return "filter"


def test_enosys_stub_per_architecture() -> None:
    from dockyard.runtime.seccomp import enosys_stub
    from dockyard.sys import seccomp as S

    x32 = S.X32_SYSCALL_BIT
    stub = enosys_stub({S.AUDIT_ARCH_X86_64: 456, S.AUDIT_ARCH_I386: 460, S.SCMP_ARCH_X32: x32 | 547})
    assert _run_stub(stub, S.AUDIT_ARCH_X86_64, 0) == "filter"
    assert _run_stub(stub, S.AUDIT_ARCH_X86_64, 456) == "filter"
    assert _run_stub(stub, S.AUDIT_ARCH_X86_64, 457) == "enosys"
    assert _run_stub(stub, S.AUDIT_ARCH_X86_64, x32 | 547) == "filter"
    assert _run_stub(stub, S.AUDIT_ARCH_X86_64, x32 | 548) == "enosys"
    assert _run_stub(stub, S.AUDIT_ARCH_I386, 460) == "filter"
    assert _run_stub(stub, S.AUDIT_ARCH_I386, 461) == "enosys"
    assert _run_stub(stub, S.AUDIT_ARCH_AARCH64, 9999) == "filter"  # not in the filter: its bad-arch action
    only64 = enosys_stub({S.AUDIT_ARCH_X86_64: 300})
    assert _run_stub(only64, S.AUDIT_ARCH_X86_64, 301) == "enosys"
    assert _run_stub(only64, S.AUDIT_ARCH_X86_64, x32 | 5) == "filter"


def test_compiled_program_has_the_stub_only_when_denying_by_default() -> None:
    from dockyard.runtime.seccomp import build, compile_bpf

    def plain(profile: dict) -> bytes:
        f = build(profile)
        try:
            return f.export_program()
        finally:
            f.release()

    deny_prof = seccomp.default_profile(list(DEFAULT_CAPS), arch="amd64")
    allow_prof = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                  "flags": ["SECCOMP_FILTER_FLAG_LOG"], "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}
    deny, allow = compile_bpf(deny_prof), compile_bpf(allow_prof)
    libseccomp = plain(deny_prof)
    assert deny.code.endswith(libseccomp) and len(deny.code) > len(libseccomp)  # the stub comes first
    assert allow.code == plain(allow_prof) and allow.flags == 2  # SECCOMP_FILTER_FLAG_LOG
    assert len(deny.code) // 8 <= 4096 and deny.flags == 0


def test_compiled_programs_are_cached_per_profile(tmp_path) -> None:  # noqa: ANN001
    from dockyard.runtime import seccomp as SC

    prof = seccomp.default_profile(list(DEFAULT_CAPS), arch="amd64")
    cache = str(tmp_path / "cache")
    first = SC.compile_bpf(prof, cache)
    files = os.listdir(cache)
    assert len(files) == 1 and files[0].endswith(".bpf")
    hit = SC.compile_bpf(prof, cache)
    assert (hit.code, hit.flags) == (first.code, first.flags)
    # another capability set is another program; a damaged entry is compiled again
    other = SC.compile_bpf(seccomp.default_profile([*DEFAULT_CAPS, "CAP_SYS_ADMIN"], arch="amd64"), cache)
    assert other.code != first.code and len(os.listdir(cache)) == 2
    with open(os.path.join(cache, files[0]), "wb") as f:
        f.write(b"\0\0\0\0bad")
    assert SC.compile_bpf(prof, cache).code == first.code
