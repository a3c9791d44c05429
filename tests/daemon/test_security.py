"""Docker's defaults and their knobs, observed from inside real containers: capabilities, seccomp,
masked and read-only paths, devices, --privileged, --read-only, no-new-privileges, --init,
--user, ulimits, and resources in the container's cgroups."""

from __future__ import annotations

import os

from support.daemon import TestDaemon

DEFAULT_CAPEFF = 0x00000000A80425FB  # the 14 capabilities Docker grants


def run(d: TestDaemon, script: str, **kw: object) -> tuple[int, str, str]:
    cid, code, out = d.run(["sh", "-c", script], **kw)
    d.api("DELETE", f"/containers/{cid}?force=1")
    return code, out.decode(), cid


def capeff(out: str) -> int:
    line = next(x for x in out.splitlines() if x.startswith("CapEff:"))
    return int(line.split()[1], 16)


def test_default_confinement(daemon: TestDaemon) -> None:
    code, out, _ = run(daemon, "grep -E 'CapEff|CapInh|CapAmb|NoNewPrivs|Seccomp:' /proc/self/status; "
                       "mount -t tmpfs none /mnt 2>&1 && echo MOUNTED; "
                       "wc -c < /proc/timer_list; echo x > /proc/sys/kernel/hostname 2>&1; "
                       "ls /dev; cat /sys/firmware 2>&1 | head -1; echo x > /sys/kernel/uevent_helper 2>&1; "
                       "grep ' /dev/shm ' /proc/mounts; mknod /tmp/fuse c 10 229 && (cat /tmp/fuse 2>&1)")
    assert capeff(out) == DEFAULT_CAPEFF
    assert "CapInh:\t0000000000000000" in out and "CapAmb:\t0000000000000000" in out
    assert "Seccomp:\t2" in out
    assert "MOUNTED" not in out
    lines = out.splitlines()
    assert "0" in [x.strip() for x in lines]  # /proc/timer_list is masked (bind of /dev/null)
    assert "Read-only file system" in out
    for dev in ("null", "zero", "random", "urandom", "full", "tty", "pts", "shm", "mqueue"):
        assert dev in lines, dev
    assert "Operation not permitted" in out  # fuse is denied by the device cgroup


def test_seccomp_blocks_and_unconfined(daemon: TestDaemon) -> None:
    code, out, _ = run(daemon, "unshare -n true 2>&1; echo rc=$?", HostConfig={"CapAdd": ["SYS_ADMIN"], "SecurityOpt": ["apparmor=unconfined"]})
    assert "rc=0" in out  # CAP_SYS_ADMIN opens unshare in the default profile
    code, out, _ = run(daemon, "unshare -U true 2>&1; echo rc=$?")
    assert "rc=0" not in out  # no new user namespaces without it
    code, out, _ = run(daemon, "grep Seccomp: /proc/self/status", HostConfig={"SecurityOpt": ["seccomp=unconfined"]})
    assert "Seccomp:\t0" in out


def test_privileged_and_caps(daemon: TestDaemon) -> None:
    code, out, _ = run(daemon, "grep CapEff /proc/self/status; mkdir -p /m; mount -t tmpfs none /m && echo MOUNTED; "
                       "grep Seccomp: /proc/self/status",
                       HostConfig={"Privileged": True})
    assert capeff(out) & (1 << 21) and "MOUNTED" in out and "Seccomp:\t0" in out  # CAP_SYS_ADMIN
    code, out, _ = run(daemon, "grep CapEff /proc/self/status", HostConfig={"CapDrop": ["ALL"]})
    assert capeff(out) == 0
    code, out, _ = run(daemon, "grep CapEff /proc/self/status; chown 1 /tmp 2>&1",
                       HostConfig={"CapDrop": ["CHOWN"], "CapAdd": ["NET_ADMIN"]})
    eff = capeff(out)
    assert not eff & 1 and eff & (1 << 12) and "Operation not permitted" in out
    st, r = daemon.api("POST", "/containers/create", {"Image": "busybox", "HostConfig": {"CapAdd": ["BOGUS"]}})
    assert st == 201  # validated at start, as dockerd does when it builds the spec
    st, r2 = daemon.api("POST", f"/containers/{r['Id']}/start")
    assert st == 400 and r2["message"] == 'invalid CapAdd: unknown capability: "CAP_BOGUS"'
    daemon.api("DELETE", f"/containers/{r['Id']}")


def test_readonly_nnp_init_user_ulimits(daemon: TestDaemon) -> None:
    code, out, _ = run(daemon, "touch /x 2>&1; touch /tmp/x && echo TMPOK; grep NoNewPrivs /proc/self/status; "
                       "cat /proc/1/cmdline | tr '\\0' ' '; echo; ulimit -n; ulimit -Hn",
                       HostConfig={"ReadonlyRootfs": True, "Tmpfs": {"/tmp": ""}, "SecurityOpt": ["no-new-privileges"],
                                   "Init": True, "Ulimits": [{"Name": "nofile", "Soft": 1000, "Hard": 2000}]})
    assert "Read-only file system" in out and "TMPOK" in out and "NoNewPrivs:\t1" in out
    assert "/sbin/docker-init -- sh -c" in out
    assert out.strip().splitlines()[-2:] == ["1000", "2000"]
    code, out, _ = run(daemon, "id", User="nobody")
    assert out.strip().startswith("uid=65534(nobody) gid=65534")
    code, out, _ = run(daemon, "id -u; id -g", User="1234:4321")
    assert out.split() == ["1234", "4321"]
    st, r = daemon.api("POST", "/containers/create", {"Image": "busybox", "User": "ghost"})
    st, r2 = daemon.api("POST", f"/containers/{r['Id']}/start")
    assert st == 400 and r2["message"] == "unable to find user ghost: no matching entries in passwd file"
    daemon.api("DELETE", f"/containers/{r['Id']}")
    st, r = daemon.api("POST", "/containers/create", {"Image": "busybox", "HostConfig": {
        "Ulimits": [{"Name": "nofile", "Soft": 1, "Hard": 10**7}]}})
    st, r2 = daemon.api("POST", f"/containers/{r['Id']}/start")
    assert st == 400 and "exceeds the daemon's hard limit" in r2["message"]
    daemon.api("DELETE", f"/containers/{r['Id']}")


def _cgroup_file(pid: int, controller: str, name: str) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.strip().split(":", 2)
            if controller in ctrls.split(","):
                return os.path.join("/sys/fs/cgroup", controller, path.lstrip("/"), name)
    raise AssertionError(f"no {controller} cgroup")


def test_resources_in_cgroups(daemon: TestDaemon) -> None:
    hc = {"Memory": 48 << 20, "NanoCpus": 500_000_000, "CpuShares": 256, "PidsLimit": 20, "CpusetCpus": "0"}
    st, r = daemon.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["sleep", "30"], "HostConfig": hc})
    cid = r["Id"]
    try:
        daemon.api("POST", f"/containers/{cid}/start")
        pid = daemon.api("GET", f"/containers/{cid}/json")[1]["State"]["Pid"]
        path = _cgroup_file(pid, "memory", "memory.limit_in_bytes")
        assert f"/{daemon.cgroup_parent}/{cid}/" in path  # cgroupsPath "<parent>/<id>" under our own cgroup
        with open(path) as f:
            assert int(f.read()) == 48 << 20
        with open(_cgroup_file(pid, "cpu", "cpu.cfs_quota_us")) as f:
            assert int(f.read()) == 50000
        with open(_cgroup_file(pid, "cpu", "cpu.shares")) as f:
            assert int(f.read()) == 256
        with open(_cgroup_file(pid, "pids", "pids.max")) as f:
            assert f.read().strip() == "20"
        with open(_cgroup_file(pid, "cpuset", "cpuset.cpus")) as f:
            assert f.read().strip() == "0"
        cg = os.path.dirname(path)
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")
    assert not os.path.exists(cg)  # the container's cgroup is gone with it


def test_oom_killed(daemon: TestDaemon) -> None:
    cid, code, _ = daemon.run(["sh", "-c", "x=a; while true; do x=$x$x; done"],
                              HostConfig={"Memory": 8 << 20, "MemorySwap": 8 << 20})
    st, c = daemon.api("GET", f"/containers/{cid}/json")
    daemon.api("DELETE", f"/containers/{cid}")
    assert code == 137 and c["State"]["OOMKilled"] is True
