"""The cgroup v2 driver on a real cgroup2 mount. This machine is hybrid: its cgroup2 hierarchy
(/sys/fs/cgroup/unified) has almost no controllers, but cgroup.procs, cgroup.freeze,
cgroup.events, cpu.stat and BPF device programs are core cgroup2 features, so moving a process,
freezing it, reading its CPU usage and filtering its device access are all real here."""

from __future__ import annotations

import os
import secrets
import time

import pytest

from dockyard.runtime.cgroups.v2 import V2Manager

UNIFIED = "/sys/fs/cgroup/unified"


def _cgroup2_mount() -> str | None:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[fields.index("-") + 1] == "cgroup2":
                return fields[4]
    return None


@pytest.fixture
def v2dir():
    mnt = _cgroup2_mount()
    if mnt is None:
        pytest.skip("no cgroup2 mount")
    with open("/proc/self/cgroup") as f:
        own = next(line.split(":", 2)[2].strip() for line in f if line.startswith("0::"))
    base = os.path.join(mnt + (own if own != "/" else ""), "dyt-v2-" + secrets.token_hex(4))
    os.mkdir(base)
    try:
        yield base
    finally:
        for d in sorted((os.path.join(dp, n) for dp, dn, _ in os.walk(base) for n in dn), key=len, reverse=True):
            os.rmdir(d)
        os.rmdir(base)


def _child(script):
    """Fork a child that waits for a byte, runs `script()` and reports its string over a pipe."""
    go_r, go_w = os.pipe()
    res_r, res_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(go_w)
            os.read(go_r, 1)
            out = script()
            os.write(res_w, out.encode())
        finally:
            os._exit(0)
    os.close(go_r)
    os.close(res_w)
    return pid, go_w, res_r


def _try_open(path: str, flags: int) -> str:
    try:
        os.close(os.open(path, flags))
        return "ok"
    except PermissionError:
        return "EPERM"
    except OSError as e:
        return e.strerror


def test_v2_devices_filter_freeze_stats_and_destroy(v2dir, tmp_path):
    m = V2Manager(os.path.join(v2dir, "ctr"), v2dir)
    m.create()
    assert os.path.isdir(m.path)
    os.mknod(tmp_path / "mem", 0o600 | 0o020000, os.makedev(1, 1))    # not allowed: c 1:1
    os.mknod(tmp_path / "loop", 0o600 | 0o060000, os.makedev(7, 200))  # not allowed: b 7:200

    def script():
        made = "ok"
        try:
            os.mknod(tmp_path / "made", 0o600 | 0o020000, os.makedev(1, 1))  # mknod itself is allowed
        except OSError as e:
            made = e.strerror
        return " ".join([_try_open("/dev/null", os.O_RDWR), _try_open("/dev/full", os.O_WRONLY),
                         _try_open(str(tmp_path / "mem"), os.O_RDONLY), _try_open(str(tmp_path / "loop"), os.O_RDONLY),
                         made])

    pid, go, res = _child(script)
    try:
        m.apply(pid)
        assert m.pids() == [pid]
        m.set({}, {"resources": {"devices": [{"allow": False, "access": "rwm"}]}})
        os.write(go, b"x")
        out = os.read(res, 100).decode().split()
    finally:
        os.waitpid(pid, 0)
    assert out == ["ok", "ok", "EPERM", "EPERM", "ok"]
    assert m.pids() == []

    # freeze a busy process, see it stop using CPU, thaw it
    pid = os.fork()
    if pid == 0:
        while True:
            pass
    try:
        m.apply(pid)
        time.sleep(0.2)
        m.freeze()
        assert m.frozen()
        with open(os.path.join(m.path, "cgroup.events")) as f:
            assert "frozen 1" in f.read()
        u0 = m.stats()["cpu"]["usage"]["total"]
        time.sleep(0.3)
        assert m.stats()["cpu"]["usage"]["total"] == u0
        m.thaw()
        assert not m.frozen()
        time.sleep(0.3)
        assert m.stats()["cpu"]["usage"]["total"] > u0
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    m.destroy()
    assert not os.path.exists(m.path)
