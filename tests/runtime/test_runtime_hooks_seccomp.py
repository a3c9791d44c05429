"""OCI hooks (where and when each runs, the state on stdin, failures, timeouts), seccomp profiles
through libseccomp, and `spec`."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from rtutil import RUNC, errmsg, read


def hook(tmp_path, name: str, extra: str = "") -> dict:
    """A hook script that appends "<name> <its view of the state and namespaces>" to a log."""
    log = tmp_path / "hooks.log"
    script = tmp_path / f"{name}.sh"
    script.write_text(
        "#!/bin/sh\n"
        "state=$(cat)\n"
        f"echo \"{name} $(readlink /proc/self/ns/mnt) $(readlink /proc/self/ns/uts) $state\" >> {log}\n"
        f"{extra}\n"
    )
    script.chmod(0o755)
    return {"path": str(script), "args": [str(script), "arg1"], "env": ["HOOKVAR=1"]}


def parse_log(tmp_path) -> list[tuple[str, str, str, dict]]:
    out = []
    for line in read(str(tmp_path / "hooks.log")).splitlines():
        name, mnt, uts, state = line.split(" ", 3)
        out.append((name, mnt, uts, json.loads(state)))
    return out


def test_all_hooks_run_in_order_with_state(rt, tmp_path):
    kinds = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
    # startContainer's path resolves in the container: its script lives in the rootfs and logs
    # through a bind mount of the host's log directory
    logdir = tmp_path / "logs"
    logdir.mkdir()

    def mutate(c):
        c["hooks"] = {k: [hook(logdir, k)] for k in kinds}
        c["hooks"]["startContainer"][0]["path"] = "/hooks/startContainer.sh"
        c["hooks"]["startContainer"][0]["args"] = ["startContainer.sh"]
        c["mounts"].append({"destination": str(logdir), "type": "bind", "source": str(logdir), "options": ["rbind"]})
        c["annotations"] = {"org.dyt.test": "yes"}

    b, cid = rt.bundle(["true"], mutate=mutate)
    os.makedirs(os.path.join(b, "rootfs/hooks"))
    os.rename(logdir / "startContainer.sh", os.path.join(b, "rootfs/hooks/startContainer.sh"))
    rt.create(b, cid)
    rt.cmd("start", cid)
    rt.wait_status(cid, "stopped")
    rt.cmd("delete", cid)
    log = parse_log(logdir)
    assert [e[0] for e in log] == kinds
    host_mnt = os.readlink("/proc/self/ns/mnt")
    by = {e[0]: e for e in log}
    # runtime namespace for prestart/createRuntime/poststart/poststop, the container's for the others
    for k in ("prestart", "createRuntime", "poststart", "poststop"):
        assert by[k][1] == host_mnt, k
    for k in ("createContainer", "startContainer"):
        assert by[k][1] != host_mnt, k
        assert by[k][2] != os.readlink("/proc/self/ns/uts"), k
    for _name, _m, _u, state in log:
        assert state["id"] == cid and state["bundle"] == b
        assert state["annotations"] == {"org.dyt.test": "yes"}
    assert by["prestart"][3]["status"] == "creating" and by["prestart"][3]["pid"] > 0
    assert by["poststart"][3]["status"] == "running"
    assert by["poststop"][3]["status"] == "stopped"
    assert by["createContainer"][3]["pid"] == by["prestart"][3]["pid"]


def test_failing_prestart_hook_fails_create_and_cleans_up(rt, tmp_path):
    def mutate(c):
        c["hooks"] = {"prestart": [hook(tmp_path, "bad", "echo oops >&2; exit 3")]}

    b, cid = rt.bundle(["true"], mutate=mutate)
    r = rt.create(b, cid, check=False)
    assert r.returncode == 1
    msg = errmsg(r.stderr)
    assert "prestart" in msg and "exit status 3" in msg and "oops" in msg
    assert not os.path.exists(os.path.join(rt.root, cid))


def test_hook_timeout(rt, tmp_path):
    def mutate(c):
        h = hook(tmp_path, "slow", "sleep 30")
        h["timeout"] = 1
        c["hooks"] = {"createRuntime": [h]}

    b, cid = rt.bundle(["true"], mutate=mutate)
    r = rt.create(b, cid, check=False)
    assert r.returncode == 1 and "timed out after 1s" in errmsg(r.stderr)


def test_failing_poststart_and_poststop_only_warn(rt, tmp_path):
    def mutate(c):
        c["hooks"] = {"poststart": [hook(tmp_path, "ps1", "exit 1")], "poststop": [hook(tmp_path, "pst", "exit 1")]}

    b, cid = rt.bundle(["true"], mutate=mutate)
    r = rt.run(b, cid)
    assert r.returncode == 0
    assert "level=warning" in r.stderr
    assert [e[0] for e in parse_log(tmp_path)] == ["ps1", "pst"]


# --- seccomp --------------------------------------------------------------------------------------
def test_seccomp_errno_rules_and_argument_filters(rt):
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat", "no_such_syscall_dyt"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["chmod", "fchmodat"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 1, "value": 0o777, "op": "SCMP_CMP_EQ"}]},
            {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 2, "value": 0o777, "op": "SCMP_CMP_EQ"}]},
        ],
    }
    script = ("mkdir /tmp/d 2>&1; touch /tmp/f; chmod 755 /tmp/f && echo chmod-755-ok; "
              "chmod 777 /tmp/f 2>&1; grep Seccomp: /proc/self/status")
    b, cid = rt.bundle(["sh", "-c", script], mutate=lambda c: c["linux"].update(seccomp=profile))
    r = rt.run(b, cid)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "Permission denied" in lines[0]  # errnoRet 13 = EACCES
    assert lines[1] == "chmod-755-ok"
    assert "Operation not permitted" in lines[2]  # no errnoRet: EPERM
    assert lines[3].split() == ["Seccomp:", "2"]


def test_seccomp_default_deny_profile_from_podman(rt):
    path = "/usr/share/containers/seccomp.json"
    if not os.path.exists(path):
        pytest.skip("containers-common's seccomp.json is not installed")
    with open(path) as f:
        src = json.load(f)
    # the OCI form of the profile: unconditional ALLOW rules, default errno (as Docker/podman emit it)
    def applies(s: dict) -> bool:
        inc = s.get("includes") or {}
        return (s["action"] == "SCMP_ACT_ALLOW" and not s.get("args") and set(inc) <= {"arches", "minKernel"}
                and ("arches" not in inc or "amd64" in inc["arches"]))

    names = sorted({n for s in src["syscalls"] if applies(s) for n in s["names"]})
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
               "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
               "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"},
                            {"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    script = "ls / >/dev/null && echo ls-ok; unshare -n true 2>&1 || echo unshare-denied"
    b, cid = rt.bundle(["sh", "-c", script], mutate=lambda c: c["linux"].update(seccomp=profile))
    r = rt.run(b, cid)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "ls-ok"
    assert "unshare-denied" in r.stdout


def test_seccomp_without_no_new_privileges(rt):
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}

    def mutate(c):
        c["linux"]["seccomp"] = profile
        c["process"]["noNewPrivileges"] = False

    b, cid = rt.bundle(["sh", "-c", "grep -E 'Seccomp:|NoNewPrivs' /proc/self/status"], mutate=mutate)
    r = rt.run(b, cid)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["NoNewPrivs:", "0", "Seccomp:", "2"]


def test_seccomp_bad_profile_is_refused_at_create(rt):
    b, cid = rt.bundle(["true"], mutate=lambda c: c["linux"].update(seccomp={"defaultAction": "SCMP_ACT_BOGUS"}))
    r = rt.run(b, cid)
    assert r.returncode == 1 and "invalid seccomp action 'SCMP_ACT_BOGUS'" in errmsg(r.stderr)


# --- spec -----------------------------------------------------------------------------------------
def test_spec_writes_runc_default_config(tmp_path):
    r = subprocess.run([RUNC, "spec"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    ours = json.loads((tmp_path / "config.json").read_text())
    assert ours["process"]["args"] == ["sh"] and ours["process"]["terminal"] is True
    assert ours["root"] == {"path": "rootfs", "readonly": True}
    assert [ns["type"] for ns in ours["linux"]["namespaces"]] == ["pid", "network", "ipc", "uts", "mount"]
    r = subprocess.run([RUNC, "spec"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 1 and "File config.json exists. Remove it first." in r.stderr
    ref = tmp_path / "ref"
    ref.mkdir()
    if subprocess.run(["runc", "spec"], cwd=ref).returncode == 0:
        assert json.loads((ref / "config.json").read_text()) == ours  # same content as runc's
    rl = tmp_path / "rootless"
    rl.mkdir()
    subprocess.run([RUNC, "spec", "--rootless", "-b", str(rl)], check=True)
    c = json.loads((rl / "config.json").read_text())
    assert {"type": "user"} in c["linux"]["namespaces"] and c["linux"]["uidMappings"][0]["size"] == 1
