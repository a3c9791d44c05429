"""daemon/oci_spec.py and daemon/seccomp.py: the pure container -> OCI spec translation."""

from __future__ import annotations

import json

import pytest

from dockyard.daemon import oci_spec, seccomp
from dockyard.daemon.hostconfig import normalize_host_config
from dockyard.errors import InvalidParameter

CID = "ab" * 32


def spec(cfg: dict | None = None, hc: dict | None = None, **kw: object) -> dict:
    config = {"Image": "busybox", "Cmd": ["sh"], **(cfg or {})}
    inp = oci_spec.SpecInputs(container_id=CID, config=config, host_config=normalize_host_config(hc or {}),
                              rootfs="/merged", args=kw.pop("args", ["sh"]), **kw)  # type: ignore[arg-type]
    return oci_spec.build_spec(inp)


def test_docker_defaults() -> None:
    s = spec()
    caps = s["process"]["capabilities"]
    assert caps["bounding"] == caps["effective"] == caps["permitted"] == oci_spec.DEFAULT_CAPS
    assert len(oci_spec.DEFAULT_CAPS) == 14
    assert caps["inheritable"] == [] and caps["ambient"] == []
    assert s["hostname"] == CID[:12]
    assert s["linux"]["cgroupsPath"] == f"dockyard/{CID}"
    assert "/proc/kcore" in s["linux"]["maskedPaths"] and "/sys/firmware" in s["linux"]["maskedPaths"]
    assert s["linux"]["readonlyPaths"] == ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
    mounts = {m["destination"]: m for m in s["mounts"]}
    assert mounts["/dev"]["options"] == ["nosuid", "strictatime", "mode=755", "size=65536k"]
    assert "newinstance" in mounts["/dev/pts"]["options"] and "gid=5" in mounts["/dev/pts"]["options"]
    assert "ro" in mounts["/sys"]["options"] and "ro" in mounts["/sys/fs/cgroup"]["options"]
    assert "size=65536k" in mounts["/dev/shm"]["options"]
    types = [n["type"] for n in s["linux"]["namespaces"]]
    assert types == ["mount", "network", "uts", "pid", "ipc"]
    dev = s["linux"]["resources"]["devices"]
    assert dev[0] == {"allow": False, "access": "rwm"}
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"} in dev  # /dev/null
    assert {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"} in dev  # fuse
    assert s["root"] == {"path": "/merged", "readonly": False}
    assert s["process"]["env"][:2] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                       f"HOSTNAME={CID[:12]}"]
    assert s["process"]["cwd"] == "/" and s["process"]["noNewPrivileges"] is False
    sc = s["linux"]["seccomp"]
    assert sc["defaultAction"] == "SCMP_ACT_ERRNO" and sc["defaultErrnoRet"] == 1
    allowed = {n for r in sc["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args") for n in r["names"]}
    for denied in ("mount", "umount2", "unshare", "setns", "reboot", "kexec_load", "init_module", "bpf", "keyctl",
                   "add_key", "open_by_handle_at", "pivot_root", "swapon", "acct"):
        assert denied not in allowed, denied
    for ok in ("read", "write", "execve", "chown", "socketpair", "chroot"):
        assert ok in allowed or any(ok in r["names"] for r in sc["syscalls"]), ok
    clone3 = [r for r in sc["syscalls"] if r["names"] == ["clone3"]]
    assert clone3 and clone3[0]["action"] == "SCMP_ACT_ERRNO" and clone3[0]["errnoRet"] == 38
    assert s["linux"]["sysctl"]["net.ipv4.ip_unprivileged_port_start"] == "0"


def test_tty_env_and_user() -> None:
    s = spec({"Tty": True, "Env": ["A=1", "PATH=/bin"], "WorkingDir": "/w"}, user=(1000, 100, (10, 20)))
    assert s["process"]["terminal"] is True
    assert s["process"]["env"] == [f"HOSTNAME={CID[:12]}", "TERM=xterm", "A=1", "PATH=/bin"]
    assert s["process"]["user"] == {"uid": 1000, "gid": 100, "additionalGids": [10, 20]}
    assert s["process"]["cwd"] == "/w"


def test_privileged() -> None:
    dev = {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0}
    s = spec(hc={"Privileged": True}, host_devices=(dev,))
    assert s["process"]["capabilities"]["bounding"] == oci_spec.ALL_CAPS
    assert "seccomp" not in s["linux"] and "maskedPaths" not in s["linux"]
    assert s["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert s["linux"]["devices"] == [dev]
    assert "rw" in {m["destination"]: m for m in s["mounts"]}["/sys"]["options"]


def test_cap_add_drop() -> None:
    s = spec(hc={"CapAdd": ["NET_ADMIN", "cap_sys_time"], "CapDrop": ["CHOWN", "CAP_KILL"]})
    caps = s["process"]["capabilities"]["bounding"]
    assert "CAP_NET_ADMIN" in caps and "CAP_SYS_TIME" in caps
    assert "CAP_CHOWN" not in caps and "CAP_KILL" not in caps
    # seccomp follows the capabilities: settimeofday allowed with CAP_SYS_TIME
    names = {n for r in s["linux"]["seccomp"]["syscalls"] for n in r["names"]}
    assert "settimeofday" in names
    s = spec(hc={"CapDrop": ["ALL"], "CapAdd": ["NET_BIND_SERVICE"]})
    assert s["process"]["capabilities"]["bounding"] == ["CAP_NET_BIND_SERVICE"]
    s = spec(hc={"CapAdd": ["ALL"]})
    assert s["process"]["capabilities"]["bounding"] == oci_spec.ALL_CAPS
    with pytest.raises(InvalidParameter, match='invalid CapAdd: unknown capability: "CAP_BOGUS"'):
        spec(hc={"CapAdd": ["BOGUS"]})


def test_security_opts() -> None:
    s = spec(hc={"SecurityOpt": ["seccomp=unconfined", "no-new-privileges"]})
    assert "seccomp" not in s["linux"] and s["process"]["noNewPrivileges"] is True
    s = spec(hc={"SecurityOpt": ["no-new-privileges:true"]})
    assert s["process"]["noNewPrivileges"] is True
    prof = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["chown"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_CHOWN"]}},
    ], "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}]}
    s = spec(hc={"SecurityOpt": ["seccomp=" + json.dumps(prof)]})
    sc = s["linux"]["seccomp"]
    assert sc["defaultAction"] == "SCMP_ACT_ALLOW"
    assert [r["names"] for r in sc["syscalls"]] == [["mkdir"]]
    with pytest.raises(InvalidParameter):
        spec(hc={"SecurityOpt": ["bogus=1"]})
    s = spec(hc={"SecurityOpt": ["systempaths=unconfined"]})
    assert "maskedPaths" not in s["linux"]


def test_mounts_readonly_tmpfs_init() -> None:
    user = ({"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind", "rprivate", "ro"]},
            {"destination": "/dev/shm", "type": "bind", "source": "/tmp/shm", "options": ["rbind", "rprivate", "rw"]})
    s = spec(hc={"ReadonlyRootfs": True, "Tmpfs": {"/run": "size=1m,exec"}, "Init": True}, mounts=user,
             init_path="/usr/bin/docker-init", etc_files={"/etc/hosts": "/c/hosts", "/etc/resolv.conf": "/c/resolv"})
    assert s["root"]["readonly"] is True
    m = {x["destination"]: x for x in s["mounts"]}
    assert m["/run"]["type"] == "tmpfs" and "size=1m" in m["/run"]["options"] and "noexec" not in m["/run"]["options"]
    assert m["/dev/shm"]["type"] == "bind"  # the user's mount replaces the default shm
    assert m["/etc/hosts"]["source"] == "/c/hosts"
    assert m["/sbin/docker-init"]["source"] == "/usr/bin/docker-init" and "ro" in m["/sbin/docker-init"]["options"]
    assert s["process"]["args"] == ["/sbin/docker-init", "--", "sh"]
    dests = [x["destination"] for x in s["mounts"]]
    assert dests.index("/dev") < dests.index("/dev/shm")  # parents first


def test_resources_and_rlimits() -> None:
    hc = {"Memory": 64 << 20, "NanoCpus": 1_500_000_000, "CpuShares": 512, "CpusetCpus": "0", "PidsLimit": 50,
          "BlkioWeight": 300, "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]}
    s = spec(hc=hc, hard_limits={"RLIMIT_NOFILE": 20000})
    r = s["linux"]["resources"]
    assert r["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    assert r["cpu"] == {"shares": 512, "period": 100000, "quota": 150000, "cpus": "0"}
    assert r["pids"] == {"limit": 50} and r["blockIO"] == {"weight": 300}
    assert s["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048}]
    with pytest.raises(InvalidParameter, match="exceeds the daemon's hard limit 20000"):
        spec(hc={"Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 30000}]}, hard_limits={"RLIMIT_NOFILE": 20000})
    s = spec(hc={"Memory": 64 << 20, "MemorySwap": -1})
    assert s["linux"]["resources"]["memory"]["swap"] == -1


def test_namespaces_by_path_and_host() -> None:
    s = spec(hc={"NetworkMode": "host", "PidMode": "host"}, netns="host")
    types = [n["type"] for n in s["linux"]["namespaces"]]
    assert "network" not in types and "pid" not in types and "hostname" not in s
    assert "net.ipv4.ip_unprivileged_port_start" not in s["linux"].get("sysctl", {})
    s = spec(netns="/run/netns/x", namespace_paths={"ipc": "/proc/9/ns/ipc"})
    ns = {n["type"]: n for n in s["linux"]["namespaces"]}
    assert ns["network"]["path"] == "/run/netns/x" and ns["ipc"]["path"] == "/proc/9/ns/ipc"


def test_no_command() -> None:
    with pytest.raises(InvalidParameter, match="No command specified"):
        spec(args=[])


def test_seccomp_profile_kernel_and_caps() -> None:
    prof = json.dumps({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "99.0"}},
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"}]})
    out = seccomp.from_docker_profile(prof, [], kernel="6.1.0")
    assert [r["names"] for r in out["syscalls"]] == [["read"]]
    with pytest.raises(InvalidParameter, match="Decoding seccomp profile failed"):
        seccomp.from_docker_profile("{nope", [])
    d = seccomp.default_profile(oci_spec.DEFAULT_CAPS, "amd64")
    assert d["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    names = [r["names"] for r in d["syscalls"]]
    assert ["arch_prctl", "modify_ldt"] in names


def test_user_namespace_mappings() -> None:
    maps = ([{"containerID": 0, "hostID": 100000, "size": 65536}], [{"containerID": 0, "hostID": 100000, "size": 65536}])
    s = spec(id_mappings=maps)
    assert {"type": "user"} in s["linux"]["namespaces"]
    assert s["linux"]["uidMappings"] == maps[0] and s["linux"]["gidMappings"] == maps[1]
    s = spec()
    assert "uidMappings" not in s["linux"] and all(n["type"] != "user" for n in s["linux"]["namespaces"])


def test_daemon_default_seccomp_profile() -> None:
    prof = json.dumps({"defaultAction": "SCMP_ACT_LOG", "syscalls": []})
    s = spec(seccomp_profile=prof)
    assert s["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_LOG"
    s = spec(seccomp_profile="unconfined")
    assert "seccomp" not in s["linux"]
    s = spec(hc={"SecurityOpt": ["seccomp=" + json.dumps({"defaultAction": "SCMP_ACT_ALLOW"})]}, seccomp_profile=prof)
    assert s["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ALLOW"  # the container's own wins
