"""Exec: create, start (attached, detached, tty, stdin), inspect, resize, errors."""

from __future__ import annotations

import socket
import time

from support.daemon import TestDaemon, demux


def started(d: TestDaemon, **body: object) -> str:
    body.setdefault("Image", "busybox")
    body.setdefault("Cmd", ["sh", "-c", "while true; do sleep 0.1; done"])
    st, r = d.api("POST", "/containers/create", body)
    assert st == 201, r
    st, r = d.api("POST", f"/containers/{r['Id']}/start")
    assert st == 204, r
    return d.api("GET", "/containers/json?all=1")[1][0]["Id"]


def exec_create(d: TestDaemon, cid: str, **body: object) -> str:
    body.setdefault("AttachStdout", True)
    body.setdefault("AttachStderr", True)
    st, r = d.api("POST", f"/containers/{cid}/exec", body)
    assert st == 201, r
    return r["Id"]


def read_all(s: socket.socket, rest: bytes) -> bytes:
    data = rest
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data


def test_exec_attached(daemon: TestDaemon) -> None:
    cid = started(daemon, Env=["FROM_CTR=1"])
    try:
        eid = exec_create(daemon, cid, Cmd=["sh", "-c", "echo $FROM_CTR $X; pwd; id -u; echo oops >&2; exit 4"],
                          Env=["X=2"], WorkingDir="/tmp", User="65534")
        st, info = daemon.api("GET", f"/exec/{eid}/json")
        assert info["Running"] is False and info["ExitCode"] is None and info["ContainerID"] == cid
        assert info["ProcessConfig"]["entrypoint"] == "sh"
        st, hdrs, s, rest = daemon.hijack(f"/exec/{eid}/start", {"Detach": False, "Tty": False})
        assert st == 101 and hdrs["content-type"] == "application/vnd.docker.multiplexed-stream"
        _, out, err = demux(read_all(s, rest))
        assert out == b"1 2\n/tmp\n65534\n" and err == b"oops\n"
        st, info = daemon.api("GET", f"/exec/{eid}/json")
        assert info["ExitCode"] == 4 and info["Running"] is False and info["Pid"] > 0
        st, r = daemon.api("POST", f"/exec/{eid}/start", {"Detach": False})
        assert st == 409 and r["message"] == f"Error: Exec command {eid} has already run"
        st, c = daemon.api("GET", f"/containers/{cid}/json")
        assert eid in c["ExecIDs"]
        # the exec joined the container: same PID namespace, same hostname
        eid = exec_create(daemon, cid, Cmd=["sh", "-c", "hostname; ls /proc | grep -c '^[0-9]'"])
        st, hdrs, s, rest = daemon.hijack(f"/exec/{eid}/start", {})
        host, nprocs = demux(read_all(s, rest))[1].split()
        assert host.decode() == cid[:12] and int(nprocs) < 10
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")


def test_exec_stdin_tty_detach(daemon: TestDaemon) -> None:
    cid = started(daemon)
    try:
        eid = exec_create(daemon, cid, Cmd=["cat"], AttachStdin=True)
        st, hdrs, s, rest = daemon.hijack(f"/exec/{eid}/start", {"Detach": False})
        s.sendall(b"to cat\n")
        s.shutdown(socket.SHUT_WR)
        assert demux(read_all(s, rest))[1] == b"to cat\n"
        eid = exec_create(daemon, cid, Cmd=["sh", "-c", "tty; stty size"], Tty=True, ConsoleSize=[20, 70])
        st, hdrs, s, rest = daemon.hijack(f"/exec/{eid}/start", {"Detach": False, "Tty": True, "ConsoleSize": [20, 70]})
        assert hdrs["content-type"] == "application/vnd.docker.raw-stream"
        out = read_all(s, rest)
        assert out.startswith(b"/dev/pts/") and b"20 70\r\n" in out
        eid = exec_create(daemon, cid, Cmd=["sh", "-c", "sleep 0.5; touch /detached"], AttachStdout=False, AttachStderr=False)
        st, _ = daemon.api("POST", f"/exec/{eid}/start", {"Detach": True})
        assert st == 200
        st, info = daemon.api("GET", f"/exec/{eid}/json")
        assert info["Running"] is True
        for _ in range(50):
            st, info = daemon.api("GET", f"/exec/{eid}/json")
            if not info["Running"]:
                break
            time.sleep(0.1)
        assert info["ExitCode"] == 0
        # resize a running tty exec
        eid = exec_create(daemon, cid, Cmd=["sh", "-c", "sleep 0.5; stty size"], Tty=True)
        st, hdrs, s, rest = daemon.hijack(f"/exec/{eid}/start", {"Detach": False, "Tty": True})
        time.sleep(0.2)
        st, _ = daemon.api("POST", f"/exec/{eid}/resize?h=40&w=100")
        assert st == 200
        assert b"40 100" in read_all(s, rest)
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")


def test_exec_errors(daemon: TestDaemon) -> None:
    cid = started(daemon)
    try:
        eid = exec_create(daemon, cid, Cmd=["nonexistent-cmd"])
        st, hdrs, s, rest = daemon.hijack(f"/exec/{eid}/start", {})
        out = demux(read_all(s, rest))[1]
        assert b"OCI runtime exec failed" in out and b"executable file not found" in out
        st, info = daemon.api("GET", f"/exec/{eid}/json")
        assert info["ExitCode"] == 126
        st, r = daemon.api("POST", f"/containers/{cid}/exec", {"Cmd": []})
        assert st == 400 and r["message"] == "No exec command specified"
        st, r = daemon.api("POST", "/exec/nope/start", {})
        assert st == 404 and r["message"] == "No such exec instance: nope"
        st, r = daemon.api("GET", "/exec/nope/json")
        assert st == 404
        daemon.api("POST", f"/containers/{cid}/pause")
        st, r = daemon.api("POST", f"/containers/{cid}/exec", {"Cmd": ["true"]})
        assert st == 409 and r["message"] == f"Container {cid} is paused, unpause the container before exec"
        st, r = daemon.api("POST", f"/containers/{cid[:12]}/exec", {"Cmd": ["true"]})  # named as the client did
        assert st == 409 and r["message"] == f"Container {cid[:12]} is paused, unpause the container before exec"
        daemon.api("POST", f"/containers/{cid}/unpause")
        daemon.api("POST", f"/containers/{cid}/kill")
        daemon.api("POST", f"/containers/{cid}/wait")
        st, r = daemon.api("POST", f"/containers/{cid}/exec", {"Cmd": ["true"]})
        assert st == 409 and r["message"] == f"Container {cid} is not running"
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")
