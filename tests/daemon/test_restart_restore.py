"""Restart policies, live restore after SIGKILL of the daemon, clean shutdown, log rotation."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest

from support.daemon import TestDaemon, busybox_daemon, demux
from support.poll import wait_for


def make(d: TestDaemon, cmd: list[str], name: str | None = None, **body: object) -> str:
    body = {"Image": "busybox", "Cmd": cmd, **body}
    st, r = d.api("POST", "/containers/create" + (f"?name={name}" if name else ""), body)
    assert st == 201, r
    return r["Id"]


def start(d: TestDaemon, cid: str) -> None:
    st, r = d.api("POST", f"/containers/{cid}/start")
    assert st == 204, r


def inspect(d: TestDaemon, cid: str) -> dict:
    st, c = d.api("GET", f"/containers/{cid}/json")
    assert st == 200, c
    return c


def test_restart_policies(daemon: TestDaemon) -> None:
    always = make(daemon, ["sh", "-c", "sleep 0.2; exit 1"], HostConfig={"RestartPolicy": {"Name": "always"}})
    onfail = make(daemon, ["sh", "-c", "exit 3"], HostConfig={"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}})
    never = make(daemon, ["sh", "-c", "exit 1"])
    ok = make(daemon, ["true"], HostConfig={"RestartPolicy": {"Name": "on-failure"}})
    for c in (always, onfail, never, ok):
        start(daemon, c)
    assert wait_for(lambda: inspect(daemon, always)["RestartCount"] >= 2)
    assert wait_for(lambda: inspect(daemon, onfail)["RestartCount"] == 2 and not inspect(daemon, onfail)["State"]["Running"])
    time.sleep(1)
    c = inspect(daemon, onfail)
    assert c["RestartCount"] == 2 and c["State"]["ExitCode"] == 3 and c["State"]["Status"] == "exited"
    assert inspect(daemon, never)["RestartCount"] == 0 and inspect(daemon, ok)["RestartCount"] == 0
    # a manual stop ends the restarts, even during the backoff
    st, _ = daemon.api("POST", f"/containers/{always}/stop?t=1")
    assert st in (204, 304)
    n = inspect(daemon, always)["RestartCount"]
    time.sleep(1.5)
    c = inspect(daemon, always)
    assert c["RestartCount"] == n and not c["State"]["Running"] and not c["State"]["Restarting"]
    for cid in (always, onfail, never, ok):
        assert daemon.api("DELETE", f"/containers/{cid}?force=1")[0] == 204


def test_live_restore_after_sigkill(tmp_path) -> None:  # noqa: ANN001
    d = busybox_daemon(str(tmp_path / "d"))
    try:
        runner = make(d, ["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"], "runner")
        start(d, runner)
        tty = make(d, ["sh"], "ttyc", Tty=True, OpenStdin=True)
        start(d, tty)
        done = make(d, ["sh", "-c", "exit 3"], "done")
        start(d, done)
        d.api("POST", f"/containers/{done}/wait")
        short = make(d, ["sh", "-c", "sleep 1.5; echo bye; exit 7"], "short")
        start(d, short)
        pid = inspect(d, runner)["State"]["Pid"]
        d.kill()  # SIGKILL: the shims keep the containers
        os.kill(pid, 0)
        time.sleep(2.0)  # "short" exits while there is no daemon
        d.start()
        c = inspect(d, runner)
        assert c["State"]["Running"] and c["State"]["Pid"] == pid
        c = inspect(d, done)
        assert c["State"]["Status"] == "exited" and c["State"]["ExitCode"] == 3
        c = inspect(d, short)
        assert c["State"]["Status"] == "exited" and c["State"]["ExitCode"] == 7
        st, raw = d.api("GET", f"/containers/{short}/logs?stdout=1")
        assert demux(raw)[1] == b"bye\n"
        # logs kept flowing while the daemon was away, and follow works again
        st, raw = d.api("GET", f"/containers/{runner}/logs?stdout=1")
        ticks = demux(raw)[1].decode().split()
        assert len(ticks) >= 2 * 10
        # exec and attach work on the restored container
        st, r = d.api("POST", f"/containers/{runner}/exec", {"Cmd": ["echo", "exec-ok"], "AttachStdout": True})
        st, hdrs, s, rest = d.hijack(f"/exec/{r['Id']}/start", {})
        data = rest
        while chunk := s.recv(4096):
            data += chunk
        assert demux(data)[1] == b"exec-ok\n"
        st, hdrs, s, rest = d.hijack(f"/containers/{runner}/attach?stream=1&stdout=1")
        s.settimeout(5)
        got = rest
        while b"tick" not in got:
            got += s.recv(4096)
        s.close()
        st, hdrs, s, rest = d.hijack(f"/containers/{tty}/attach?stream=1&stdin=1&stdout=1")
        s.sendall(b"echo restored\n")
        s.settimeout(5)
        got = rest
        while b"restored\r\n" not in got.replace(b"echo restored", b""):
            got += s.recv(4096)
        s.close()
        assert d.api("POST", f"/containers/{runner}/stop?t=1")[0] == 204
        assert inspect(d, runner)["State"]["Running"] is False
        # a clean shutdown (no live-restore) stops what runs; leaves no mount behind
        d.stop()
        with open("/proc/self/mountinfo") as f:
            assert d.data_root not in f.read()
        d.start()
        assert inspect(d, tty)["State"]["Running"] is False
    finally:
        d.cleanup()


def test_unless_stopped_across_restart(tmp_path) -> None:  # noqa: ANN001
    d = busybox_daemon(str(tmp_path / "d"))
    try:
        loop = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
        keep = make(d, loop, HostConfig={"RestartPolicy": {"Name": "unless-stopped"}})
        manual = make(d, loop, HostConfig={"RestartPolicy": {"Name": "unless-stopped"}})
        alw = make(d, loop, HostConfig={"RestartPolicy": {"Name": "always"}})
        for c in (keep, manual, alw):
            start(d, c)
        d.api("POST", f"/containers/{manual}/stop?t=1")
        d.stop()
        d.start()
        assert wait_for(lambda: inspect(d, keep)["State"]["Running"] and inspect(d, alw)["State"]["Running"])
        assert inspect(d, manual)["State"]["Running"] is False
    finally:
        d.cleanup()


def test_log_rotation(daemon: TestDaemon) -> None:
    line = "x" * 99
    cid = make(daemon, ["sh", "-c", f"i=0; while [ $i -lt 200 ]; do echo {line}; i=$((i+1)); done"],
               HostConfig={"LogConfig": {"Type": "json-file", "Config": {"max-size": "2k", "max-file": "3"}}})
    start(daemon, cid)
    daemon.api("POST", f"/containers/{cid}/wait")
    log = inspect(daemon, cid)["LogPath"]
    assert os.path.exists(log + ".1") and os.path.exists(log + ".2") and not os.path.exists(log + ".3")
    for f in (log, log + ".1", log + ".2"):
        assert os.path.getsize(f) < 2048 + 200
    st, raw = daemon.api("GET", f"/containers/{cid}/logs?stdout=1")
    lines = demux(raw)[1].splitlines()
    assert 0 < len(lines) < 200 and all(x == line.encode() for x in lines)
    daemon.api("DELETE", f"/containers/{cid}")


def test_logs_follow_and_partial_lines(daemon: TestDaemon) -> None:
    cid = make(daemon, ["sh", "-c", "echo one; sleep 0.5; printf 'no-newline'; sleep 0.5; echo; echo two"])
    start(daemon, cid)
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(daemon.socket)
    s.sendall(f"GET /containers/{cid}/logs?stdout=1&follow=1 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    buf = b""
    while not buf.endswith(b"0\r\n\r\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    body = buf.split(b"\r\n\r\n", 1)[1]
    assert b"one\n" in body and b"two\n" in body and b"no-newline" in body
    # as Docker's copier: a line is logged when its newline comes (or the buffer fills, or EOF)
    with open(inspect(daemon, cid)["LogPath"]) as f:
        entries = [json.loads(x)["log"] for x in f]
    assert entries == ["one\n", "no-newline\n", "two\n"]
    daemon.api("DELETE", f"/containers/{cid}")


@pytest.mark.parametrize("tty", [False, True])
def test_long_line_split(daemon: TestDaemon, tty: bool) -> None:
    cid = make(daemon, ["sh", "-c", "head -c 40000 /dev/zero | tr '\\0' a; echo"], Tty=tty)
    start(daemon, cid)
    daemon.api("POST", f"/containers/{cid}/wait")
    with open(inspect(daemon, cid)["LogPath"]) as f:
        entries = [json.loads(x)["log"] for x in f]
    assert len(entries) == 3 and len(entries[0]) == 16384 and not entries[0].endswith("\n")
    assert "".join(entries).rstrip("\r\n") == "a" * 40000
    daemon.api("DELETE", f"/containers/{cid}")


def test_supervisor_killed(daemon: TestDaemon) -> None:
    """If a container's shim dies, the container is recorded as exited (255) and what is left of
    it is killed and released: nothing runs unsupervised."""
    cid = make(daemon, ["sleep", "60"])
    start(daemon, cid)
    pid = inspect(daemon, cid)["State"]["Pid"]
    with open(os.path.join(daemon.exec_root, "containers", cid, "shim.pid")) as f:
        shim_pid = int(f.read())
    os.kill(shim_pid, 9)
    assert wait_for(lambda: not inspect(daemon, cid)["State"]["Running"])
    c = inspect(daemon, cid)
    assert c["State"]["ExitCode"] == 255
    assert wait_for(lambda: not os.path.exists(f"/proc/{pid}"))
    assert not os.path.exists(os.path.join(daemon.exec_root, "containers", cid))
    assert not os.path.exists(os.path.join(daemon.exec_root, "runtime", cid))
    daemon.api("DELETE", f"/containers/{cid}")
