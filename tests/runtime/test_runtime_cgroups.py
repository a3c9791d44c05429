"""Resource limits on this machine's cgroups (v1 here): memory/OOM, CPU quota, pids, cpuset,
pause/resume, statistics, update, and cleanup of the container's cgroups and their parents."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time

from rtutil import cgroup_dirs, own_cgroup_dir, read, wait_for

from dockyard.runtime.stats import container_stats


def start_detached(rt, args, mutate=None, **kw):
    b, cid = rt.bundle(args, mutate=mutate, **kw)
    rt.create(b, cid)
    rt.cmd("start", cid)
    return b, cid


def test_memory_limit_oom_kills(rt):
    def mutate(c):
        c["linux"]["resources"]["memory"] = {"limit": 32 << 20, "swap": 32 << 20}

    b, cid = rt.bundle(["dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"], mutate=mutate)
    r = rt.run(b, cid)
    assert r.returncode == 128 + 9, (r.returncode, r.stderr)
    # and the same program fits without the limit
    b, cid = rt.bundle(["dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"])
    assert rt.run(b, cid).returncode == 0


def test_cpu_quota_gives_about_half_a_cpu(rt):
    def mutate(c):
        c["linux"]["resources"]["cpu"] = {"quota": 50000, "period": 100000}

    b, cid = start_detached(rt, ["sh", "-c", "while :; do :; done"], mutate=mutate)
    usage = os.path.join(own_cgroup_dir("cpuacct"), cid, "cpuacct.usage")
    assert read(os.path.join(own_cgroup_dir("cpu"), cid, "cpu.cfs_quota_us")).strip() == "50000"
    time.sleep(0.3)
    u0, t0 = int(read(usage)), time.monotonic()
    time.sleep(2.0)
    u1, t1 = int(read(usage)), time.monotonic()
    share = (u1 - u0) / 1e9 / (t1 - t0)
    assert 0.25 < share < 0.65, share
    rt.cmd("delete", "-f", cid)


def test_pids_limit_stops_a_fork_bomb(rt):
    def mutate(c):
        c["linux"]["resources"]["pids"] = {"limit": 24}

    b, cid = start_detached(rt, ["sh", "-c", "bomb() { bomb | bomb & }; bomb; sleep 1000"], mutate=mutate)
    pids_dir = os.path.join(own_cgroup_dir("pids"), cid)
    assert read(os.path.join(pids_dir, "pids.max")).strip() == "24"
    wait_for(lambda: int(read(os.path.join(pids_dir, "pids.events")).split()[1]) > 0, 10)
    assert int(read(os.path.join(pids_dir, "pids.events")).split()[1]) > 0  # forks were refused
    assert int(read(os.path.join(pids_dir, "pids.current"))) <= 24
    rt.cmd("delete", "-f", cid)
    assert cgroup_dirs(cid) == []


def test_cpuset_pins_to_cpu0(rt):
    b, cid = rt.bundle(["grep", "Cpus_allowed_list", "/proc/self/status"],
                       mutate=lambda c: c["linux"]["resources"].update(cpu={"cpus": "0", "mems": "0"}))
    r = rt.run(b, cid)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["Cpus_allowed_list:", "0"]


def test_pause_and_resume(rt):
    b, cid = start_detached(rt, ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.01; done"])
    count = os.path.join(b, "rootfs/tmp/count")
    wait_for(lambda: os.path.exists(count) and read(count).strip())
    rt.cmd("pause", cid)
    assert rt.status(cid) == "paused"
    time.sleep(0.1)
    frozen = read(count)
    time.sleep(0.3)
    assert read(count) == frozen
    r = rt.cmd("exec", cid, "true", check=False)
    assert "cannot exec in a paused container" in r.stderr
    r = rt.cmd("pause", cid, check=False)
    assert r.returncode == 1
    rt.cmd("resume", cid)
    assert rt.status(cid) == "running"
    assert wait_for(lambda: read(count) != frozen, 5)
    r = rt.cmd("resume", cid, check=False)
    assert "container not paused" in r.stderr
    # a paused container can be force-deleted
    rt.cmd("pause", cid)
    rt.cmd("delete", "-f", cid)
    assert cgroup_dirs(cid) == []


def test_stats_and_events(rt):
    def mutate(c):
        c["linux"]["resources"]["memory"] = {"limit": 64 << 20}
        c["linux"]["resources"]["pids"] = {"limit": 50}

    b, cid = start_detached(rt, ["sh", "-c", "sleep 1000 & sleep 1000 & wait"], mutate=mutate)
    wait_for(lambda: len(json.loads(rt.cmd("ps", "--format", "json", cid).stdout)) == 3)
    s = container_stats(cid, rt.root)
    assert s["pids"] == {"current": 3, "limit": 50}
    assert s["memory"]["usage"]["limit"] == 64 << 20
    assert s["memory"]["usage"]["usage"] > 0
    assert s["cpu"]["usage"]["total"] > 0
    assert "ioServiceBytesRecursive" in s["blkio"]
    ev = json.loads(rt.cmd("events", "--stats", cid).stdout)
    assert ev["type"] == "stats" and ev["id"] == cid and ev["data"]["pids"]["current"] == 3
    rt.cmd("delete", "-f", cid)


def test_update_changes_limits(rt, tmp_path):
    b, cid = start_detached(rt, ["sleep", "1000"],
                            mutate=lambda c: c["linux"]["resources"].update(memory={"limit": 64 << 20}))
    mem = os.path.join(own_cgroup_dir("memory"), cid)
    rt.cmd("update", "--memory", "128m", "--pids-limit", "77", "--cpu-quota", "20000", "--cpu-period", "100000", cid)
    assert int(read(os.path.join(mem, "memory.limit_in_bytes"))) == 128 << 20
    assert read(os.path.join(own_cgroup_dir("pids"), cid, "pids.max")).strip() == "77"
    assert read(os.path.join(own_cgroup_dir("cpu"), cid, "cpu.cfs_quota_us")).strip() == "20000"
    res = tmp_path / "res.json"
    res.write_text(json.dumps({"memory": {"limit": 96 << 20}, "pids": {"limit": 0}}))
    rt.cmd("update", "-r", str(res), cid)
    assert int(read(os.path.join(mem, "memory.limit_in_bytes"))) == 96 << 20
    assert read(os.path.join(own_cgroup_dir("pids"), cid, "pids.max")).strip() == "max"
    # the daemon's form: resources on stdin
    rt.cmd("update", "--resources", "-", cid, input=json.dumps({"memory": {"limit": 80 << 20}}))
    assert int(read(os.path.join(mem, "memory.limit_in_bytes"))) == 80 << 20
    assert rt.state(cid)["status"] == "running"
    r = rt.cmd("update", "--memory", "lots", cid, check=False)
    assert r.returncode == 1 and "invalid size" in r.stderr
    rt.cmd("delete", "-f", cid)


def test_delete_removes_empty_parents_but_not_busy_ones(rt):
    parent = "dyt-parent-" + secrets.token_hex(3)
    b1, c1 = rt.bundle(["sleep", "1000"], mutate=lambda c: c["linux"].update(cgroupsPath=f"{parent}/a"))
    b2, c2 = rt.bundle(["sleep", "1000"], mutate=lambda c: c["linux"].update(cgroupsPath=f"{parent}/b"))
    rt.create(b1, c1)
    rt.create(b2, c2)
    assert len(cgroup_dirs(parent)) >= 8
    assert os.path.isdir(os.path.join(own_cgroup_dir("memory"), parent, "a"))
    rt.cmd("delete", c1)
    assert os.path.isdir(os.path.join(own_cgroup_dir("pids"), parent, "b"))
    rt.cmd("delete", c2)
    assert cgroup_dirs(parent) == []


def test_absolute_cgroups_path_stays_under_the_runtimes_cgroup(rt):
    name = "dyt-abs-" + secrets.token_hex(3)
    b, cid = rt.bundle(["cat", "/proc/self/cgroup"], mutate=lambda c: c["linux"].update(cgroupsPath=f"/{name}/ctr"))
    r = rt.run(b, cid, "--keep")
    assert r.returncode == 0, r.stderr
    lines = dict((line.split(":", 2)[1], line.split(":", 2)[2]) for line in r.stdout.splitlines())
    with open("/proc/self/cgroup") as f:
        mine = dict((line.split(":", 2)[1], line.split(":", 2)[2].strip()) for line in f)
    assert lines["memory"] == mine["memory"].rstrip("/") + f"/{name}/ctr"
    assert lines["pids"] == (mine["pids"].rstrip("/") + f"/{name}/ctr")
    rt.cmd("delete", cid)
    assert cgroup_dirs(name) == []


def test_kill_all_with_shared_pid_namespace_and_cleanup(rt):
    # without its own PID namespace the init's death does not end the others: delete must
    def mutate(c):
        c["linux"]["namespaces"] = [ns for ns in c["linux"]["namespaces"] if ns["type"] != "pid"]

    b, cid = start_detached(rt, ["sh", "-c", "sleep 1000 & sleep 1000 & wait"], mutate=mutate)
    wait_for(lambda: len(json.loads(rt.cmd("ps", "--format", "json", cid).stdout)) == 3)
    pids = json.loads(rt.cmd("ps", "--format", "json", cid).stdout)
    rt.cmd("delete", "-f", cid)
    for p in pids:
        assert wait_for(lambda p=p: not os.path.exists(f"/proc/{p}") or
                        read(f"/proc/{p}/stat").rsplit(")", 1)[1].split()[0] == "Z", 5)
    assert cgroup_dirs(cid) == []
    assert subprocess.run(["true"]).returncode == 0


def test_concurrent_runs_sharing_a_parent_cgroup(rt):
    from concurrent.futures import ThreadPoolExecutor

    parent = "dyt-shared-" + secrets.token_hex(3)
    bundles = [rt.bundle(["true"], mutate=lambda c, i=i: c["linux"].update(cgroupsPath=f"{parent}/c{i}"))
               for i in range(6)]
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda bc: rt.run(bc[0], bc[1]), bundles))
    assert [r.returncode for r in results] == [0] * 6, [r.stderr for r in results]
    assert cgroup_dirs(parent) == []
