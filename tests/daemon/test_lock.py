"""One daemon per data root and exec root (daemon/lock.py): a second daemon is refused with the
holder's pid, also while the first is still shutting down; a SIGKILLed holder leaves no stale lock."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from support.daemon import SRC, TestDaemon, busybox_daemon

sys.path.insert(0, SRC)

from dockyard.daemon import lock  # noqa: E402


def _holder(root: str) -> subprocess.Popen[bytes]:
    """A process that takes the lock and sleeps (prints 'ok' once it holds it)."""
    code = f"import sys, time; sys.path.insert(0, {SRC!r})\nfrom dockyard.daemon import lock\n" \
           f"lock.acquire({root!r}); print('ok', flush=True); time.sleep(600)\n"  # fmt: skip
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert p.stdout is not None and p.stdout.readline().strip() == b"ok"
    return p


def test_lock_is_exclusive_and_dies_with_its_holder(tmp_path) -> None:  # noqa: ANN001
    root = str(tmp_path / "root")
    p = _holder(root)
    try:
        with pytest.raises(lock.LockHeld) as ei:
            lock.acquire(root)
        assert ei.value.pid == p.pid
        assert str(ei.value) == (f"failed to start daemon, ensure dockyard is not running: process with PID {p.pid} "
                                 f"is still running (it holds {root}/dockyard.lock)")  # fmt: skip
    finally:
        p.kill()  # SIGKILL: no chance to clean anything up
        p.wait()
    fd = lock.acquire(root)  # the kernel dropped the lock with the process
    try:
        with open(os.path.join(root, "dockyard.lock")) as f:
            assert f.read().strip() == str(os.getpid())
    finally:
        os.close(fd)


def test_acquire_all_releases_on_failure(tmp_path) -> None:  # noqa: ANN001
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    p = _holder(b)
    try:
        with pytest.raises(lock.LockHeld):
            lock.acquire_all([a, b])
        os.close(lock.acquire(a))  # a was given back when b failed
    finally:
        p.kill()
        p.wait()
    fds = lock.acquire_all([a, b, a])  # the same root twice is locked once
    assert len(fds) == 2
    for fd in fds:
        os.close(fd)


def _second(first: TestDaemon, **override: str) -> tuple[int, str]:
    """Run a second daemon on `first`'s roots (some overridden); returns (exit code, stderr)."""
    other = TestDaemon(first.root)
    other.prefix, other.cgroup_parent = first.prefix, first.cgroup_parent
    for k, v in override.items():
        setattr(other, k, v)
    other.pidfile = os.path.join(first.root, "second.pid")
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    try:
        cp = subprocess.run(other.command(), capture_output=True, text=True, env=env, timeout=60)
    finally:
        shutil.rmtree(other.sockdir, ignore_errors=True)
    return cp.returncode, cp.stderr


def test_second_daemon_is_refused(tmp_path) -> None:  # noqa: ANN001
    d = busybox_daemon(str(tmp_path / "d"))
    try:
        for root in (d.data_root, d.exec_root):
            with open(os.path.join(root, "dockyard.lock")) as f:
                assert f.read().strip() == str(d.pid)
        want = f"failed to start daemon, ensure dockyard is not running: process with PID {d.pid} is still running"
        rc, err = _second(d)
        assert rc == 1 and want in err and f"{d.data_root}/dockyard.lock" in err, err
        # the same data root with another exec root, and the other way round
        rc, err = _second(d, exec_root=str(tmp_path / "other-exec"))
        assert rc == 1 and f"{d.data_root}/dockyard.lock" in err, err
        rc, err = _second(d, data_root=str(tmp_path / "other-data"))
        assert rc == 1 and f"{d.exec_root}/dockyard.lock" in err, err
        assert d.api("GET", "/_ping")[0] == 200  # the first one did not notice
        # SIGKILL leaves no stale lock: the same roots start again at once
        d.kill()
        d.start()
        assert d.api("GET", "/_ping")[0] == 200
    finally:
        d.cleanup()


def test_refused_while_the_first_is_shutting_down(tmp_path) -> None:  # noqa: ANN001
    d = busybox_daemon(str(tmp_path / "d"))
    try:
        # a container that ignores SIGTERM keeps the first daemon's shutdown busy for its stop timeout
        body = {"Image": "busybox", "Cmd": ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"], "StopTimeout": 4}
        st, r = d.api("POST", "/containers/create", body)
        assert st == 201, r
        assert d.api("POST", f"/containers/{r['Id']}/start")[0] == 204
        assert d.proc is not None
        d.proc.send_signal(signal.SIGTERM)
        deadline = time.time() + 10
        while os.path.exists(d.socket) and time.time() < deadline:  # the listeners go first
            time.sleep(0.02)
        assert not os.path.exists(d.socket) and d.proc.poll() is None
        rc, err = _second(d)
        assert rc == 1 and f"process with PID {d.pid} is still running" in err, err
        assert d.proc.wait(60) == 0
        d.start()  # once it is gone, the roots are free
        assert d.api("GET", "/_ping")[0] == 200
    finally:
        d.cleanup()
