"""The vertical slice over the real socket: ping/version/info, create, start, wait, logs,
attach, list, inspect, stop, kill, delete, with Docker's shapes, status codes and messages."""

from __future__ import annotations

import json
import os
import platform
import socket
import time
import urllib.parse

import pytest

from support.daemon import TestDaemon, demux


def create(d: TestDaemon, name: str | None = None, **body: object) -> str:
    body.setdefault("Image", "busybox")
    path = "/containers/create" + (f"?name={name}" if name else "")
    st, r = d.api("POST", path, body)
    assert st == 201, r
    assert set(r) == {"Id", "Warnings"}
    return r["Id"]


def rm(d: TestDaemon, cid: str) -> None:
    d.api("DELETE", f"/containers/{cid}?force=1")


def test_ping_and_version_headers(daemon: TestDaemon) -> None:
    for path in ("/_ping", "/v1.43/_ping", "/v1.24/_ping"):
        st, (body, hdrs) = daemon.api("GET", path, raw=True)
        assert st == 200 and body == b"OK"
        assert hdrs["API-Version"] == "1.43"
        assert hdrs["Ostype"] == "linux"
        assert hdrs["Docker-Experimental"] == "false"
    st, (body, hdrs) = daemon.api("HEAD", "/_ping", raw=True)
    assert st == 200 and body == b"" and hdrs["API-Version"] == "1.43"
    st, r = daemon.api("GET", "/v1.99/version")
    assert st == 400 and r["message"] == "client version 1.99 is too new. Maximum supported API version is 1.43"
    st, r = daemon.api("GET", "/v1.12/version")
    assert st == 400 and "is too old. Minimum supported API version is 1.24" in r["message"]
    st, v = daemon.api("GET", "/version")
    assert v["ApiVersion"] == "1.43" and v["MinAPIVersion"] == "1.24" and v["Os"] == "linux"
    assert v["KernelVersion"] == platform.release()
    st, info = daemon.api("GET", "/info")
    assert st == 200 and info["Driver"] == "overlay2" and info["DockerRootDir"] == daemon.data_root
    assert info["Images"] >= 1 and info["OSType"] == "linux"
    st, r = daemon.api("GET", "/nope")
    assert st == 404 and r == {"message": "page not found"}


def test_create_inspect_shape(daemon: TestDaemon) -> None:
    cid = create(daemon, "shape1", Cmd=["true"], Labels={"a": "b"})
    try:
        st, c = daemon.api("GET", f"/containers/{cid}/json")
        assert st == 200
        assert c["Id"] == cid and c["Name"] == "/shape1"
        assert c["State"]["Status"] == "created" and c["State"]["Running"] is False
        assert c["State"]["StartedAt"] == "0001-01-01T00:00:00Z"
        assert c["Config"]["Hostname"] == cid[:12]
        assert c["Config"]["Image"] == "busybox" and c["Config"]["Labels"] == {"a": "b"}
        assert c["Path"] == "true" and c["Args"] == []
        assert c["Image"].startswith("sha256:")
        assert c["HostConfig"]["NetworkMode"] == "default"
        assert c["HostConfig"]["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
        assert c["HostConfig"]["LogConfig"]["Type"] == "json-file"
        assert c["GraphDriver"]["Name"] == "overlay2"
        assert c["LogPath"].endswith(f"{cid}-json.log")
        # lookups by name, short id and /name
        for ref in ("shape1", cid[:12], "%2Fshape1"):
            st, c2 = daemon.api("GET", f"/containers/{ref}/json")
            assert st == 200 and c2["Id"] == cid
        # the image's Cmd applies when none is given
        cid2 = create(daemon)
        st, c2 = daemon.api("GET", f"/containers/{cid2}/json")
        assert c2["Path"] == "sh" and c2["Config"]["Cmd"] == ["sh"]
        rm(daemon, cid2)
    finally:
        rm(daemon, cid)


def test_create_errors(daemon: TestDaemon) -> None:
    cid = create(daemon, "dup1", Cmd=["true"])
    try:
        st, r = daemon.api("POST", "/containers/create?name=dup1", {"Image": "busybox"})
        assert st == 409
        assert r["message"] == (f'Conflict. The container name "/dup1" is already in use by container "{cid}". '
                                "You have to remove (or rename) that container to be able to reuse that name.")
    finally:
        rm(daemon, cid)
    for bad in ("../x", "a/b", "-x", "x"):
        st, r = daemon.api("POST", f"/containers/create?name={bad}", {"Image": "busybox"})
        assert st == 400, bad
        assert r["message"] == f"Invalid container name ({bad}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
    st, r = daemon.api("POST", "/containers/create", {"Image": "nosuchimage:7"})
    assert st == 404 and r["message"] == "No such image: nosuchimage:7"
    st, r = daemon.api("POST", "/containers/create", b"{not json", headers={"Content-Type": "application/json"})
    assert st == 400 and r["message"].startswith("invalid JSON")
    st, r = daemon.api("POST", "/containers/create", {"Image": "busybox", "WorkingDir": "rel"})
    assert st == 400 and r["message"] == "the working directory 'rel' is invalid, it needs to be an absolute path"
    st, r = daemon.api("POST", "/containers/create", {"Image": "busybox", "HostConfig": {"Memory": 1024}})
    assert st == 400 and r["message"] == "Minimum memory limit allowed is 6MB"
    st, r = daemon.api("POST", "/containers/create", {"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}})
    assert st == 400 and "invalid restart policy" in r["message"]
    # unknown fields are ignored, as Docker (Go's JSON decoder) does
    st, r = daemon.api("POST", "/containers/create", {"Image": "busybox", "NoSuchField": 1, "HostConfig": {"Bogus": True}})
    assert st == 201
    rm(daemon, r["Id"])
    # a huge body is refused, not buffered forever
    st, r = daemon.api("POST", "/containers/create", b"{" + b" " * (17 * 1024 * 1024) + b"}",
                       headers={"Content-Type": "application/json"})
    assert st == 413
    for method, path in (("GET", "/containers/nope/json"), ("POST", "/containers/nope/start"),
                         ("POST", "/containers/nope/stop"), ("POST", "/containers/nope/kill"),
                         ("DELETE", "/containers/nope"), ("POST", "/containers/nope/wait"),
                         ("GET", "/containers/nope/logs?stdout=1")):
        st, r = daemon.api(method, path)
        assert st == 404 and r["message"] == "No such container: nope", (method, path)


def test_run_logs_and_exit_code(daemon: TestDaemon) -> None:
    cid, code, out = daemon.run(["sh", "-c", "echo out1; echo err1 >&2; echo out2; exit 3"])
    try:
        assert code == 3
        st, raw = daemon.api("GET", f"/containers/{cid}/logs?stdout=1&stderr=1")
        _, o, e = demux(raw)
        assert o == b"out1\nout2\n" and e == b"err1\n"
        st, raw = daemon.api("GET", f"/containers/{cid}/logs?stdout=1")
        assert demux(raw)[0] == b"out1\nout2\n"
        st, raw = daemon.api("GET", f"/containers/{cid}/logs?stdout=1&tail=1")
        assert demux(raw)[0] == b"out2\n"
        st, raw = daemon.api("GET", f"/containers/{cid}/logs?stdout=1&timestamps=1")
        line = demux(raw)[0].split(b"\n")[0]
        ts, _, text = line.partition(b" ")
        assert ts.endswith(b"Z") and b"T" in ts and text == b"out1"
        st, r = daemon.api("GET", f"/containers/{cid}/logs")
        assert st == 400 and r["message"] == "Bad parameters: you must choose at least one stream"
        st, c = daemon.api("GET", f"/containers/{cid}/json")
        assert c["State"]["Status"] == "exited" and c["State"]["ExitCode"] == 3
        assert c["State"]["FinishedAt"] >= c["State"]["StartedAt"]
        # the json-file on disk is Docker's format
        with open(c["LogPath"]) as f:
            first = json.loads(f.readline())
        assert set(first) == {"log", "stream", "time"}
    finally:
        rm(daemon, cid)


def test_isolation_basics(daemon: TestDaemon) -> None:
    cid, code, out = daemon.run(["sh", "-c", "echo $$; hostname; uname -r; cat /proc/1/cmdline | tr '\\0' ' '"])
    try:
        pid1, hostname, kernel, cmdline = out.decode().splitlines()[:4]
        assert code == 0
        assert pid1 == "1"
        assert hostname == cid[:12]
        assert kernel == platform.release()
        assert cmdline.startswith("sh -c")
    finally:
        rm(daemon, cid)


def test_docker_cli_unset_values_inspect_as_null(daemon: TestDaemon) -> None:
    """The Docker CLI sends Volumes {}, MemorySwappiness -1 and PidsLimit 0 for flags not given;
    dockerd shows them as null (captured from docker 28 against dockerd 20.10)."""
    st, r = daemon.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"], "Volumes": {},
                                                      "HostConfig": {"MemorySwappiness": -1, "PidsLimit": 0}})  # fmt: skip
    assert st == 201, r
    try:
        st, info = daemon.api("GET", f"/containers/{r['Id']}/json")
        assert info["Config"]["Volumes"] is None
        assert info["HostConfig"]["MemorySwappiness"] is None and info["HostConfig"]["PidsLimit"] is None
    finally:
        rm(daemon, r["Id"])


def test_supplementary_groups_as_dockerd_sets_them(daemon: TestDaemon) -> None:
    """The primary gid is also a supplementary group (dockerd: `id` shows groups=0(root)), then
    the user's memberships from the image's /etc/group, then --group-add."""
    for user, group_add, want in (("", None, "0"), ("1000:1000", None, "1000"), ("1000", ["10"], "0 10"),
                                  ("nobody", None, "65534")):  # fmt: skip
        cid, code, out = daemon.run(["sh", "-c", "grep Groups /proc/self/status"], User=user,
                                    HostConfig={"GroupAdd": group_add})  # fmt: skip
        try:
            assert code == 0 and out.decode().split()[1:] == want.split(), (user, out)
        finally:
            rm(daemon, cid)


def _read_frames(s: socket.socket, rest: bytes, until: float) -> bytes:
    data = rest
    s.settimeout(max(0.1, until - time.time()))
    while True:
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return data


def test_wait_removed_before_start_and_attach(daemon: TestDaemon) -> None:
    cid = create(daemon, Cmd=["sh", "-c", "echo hello; echo oops >&2; exit 5"], HostConfig={"AutoRemove": True},
                 AttachStdout=True, AttachStderr=True)
    # attach first (101 at once), then wait (headers at once), then start: docker run's order
    st, hdrs, asock, arest = daemon.hijack(f"/containers/{cid}/attach?stream=1&stdout=1&stderr=1")
    assert st == 101 and hdrs["upgrade"] == "tcp"
    assert hdrs["content-type"] == "application/vnd.docker.multiplexed-stream"
    wsock = socket.socket(socket.AF_UNIX)
    wsock.settimeout(10)
    wsock.connect(daemon.socket)
    wsock.sendall(f"POST /containers/{cid}/wait?condition=removed HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
    head = wsock.recv(4096)
    assert head.startswith(b"HTTP/1.1 200"), head  # before start
    st, r = daemon.api("POST", f"/containers/{cid}/start")
    assert st == 204, r
    data = _read_frames(asock, arest, time.time() + 10)
    _, out, err = demux(data)
    assert out == b"hello\n" and err == b"oops\n"
    body = head
    wsock.settimeout(15)
    while b"StatusCode" not in body:
        chunk = wsock.recv(4096)
        if not chunk:
            break
        body += chunk
    assert b'"StatusCode":5' in body.replace(b" ", b"")
    st, r = daemon.api("GET", f"/containers/{cid}/json")
    assert st == 404  # --rm removed it
    asock.close()
    wsock.close()


def test_attach_tty_and_stdin(daemon: TestDaemon) -> None:
    cid = create(daemon, Cmd=["cat"], OpenStdin=True, StdinOnce=True, AttachStdin=True, AttachStdout=True)
    try:
        st, hdrs, s, rest = daemon.hijack(f"/containers/{cid}/attach?stream=1&stdin=1&stdout=1&stderr=1")
        assert st == 101
        st, _ = daemon.api("POST", f"/containers/{cid}/start")
        assert st == 204
        s.sendall(b"line one\n")
        s.shutdown(socket.SHUT_WR)  # stdin EOF: with StdinOnce cat's stdin closes and it exits
        data = _read_frames(s, rest, time.time() + 10)
        assert demux(data)[1] == b"line one\n"
        st, r = daemon.api("POST", f"/containers/{cid}/wait")
        assert r["StatusCode"] == 0
    finally:
        rm(daemon, cid)
    # with a tty the stream is raw
    cid = create(daemon, Cmd=["sh", "-c", "echo tty-out"], Tty=True)
    try:
        st, hdrs, s, rest = daemon.hijack(f"/containers/{cid}/attach?stream=1&stdout=1&stderr=1")
        assert st == 101 and hdrs["content-type"] == "application/vnd.docker.raw-stream"
        daemon.api("POST", f"/containers/{cid}/start")
        data = _read_frames(s, rest, time.time() + 10)
        assert data == b"tty-out\r\n"
    finally:
        rm(daemon, cid)


def test_list_and_filters(daemon: TestDaemon) -> None:
    a = create(daemon, "lista", Cmd=["sleep", "60"], Labels={"team": "x"})
    b = create(daemon, "listb", Cmd=["true"])
    try:
        daemon.api("POST", f"/containers/{a}/start")
        st, lst = daemon.api("GET", "/containers/json")
        ids = [c["Id"] for c in lst]
        assert a in ids and b not in ids
        st, lst = daemon.api("GET", "/containers/json?all=1")
        entry = next(c for c in lst if c["Id"] == a)
        assert entry["Names"] == ["/lista"] and entry["State"] == "running" and entry["Status"].startswith("Up ")
        assert entry["Command"] == "sleep 60" and entry["Image"] == "busybox" and isinstance(entry["Created"], int)
        assert next(c for c in lst if c["Id"] == b)["Status"] == "Created"
        q = urllib.parse.quote(json.dumps({"label": ["team=x"]}))
        st, lst = daemon.api("GET", f"/containers/json?all=1&filters={q}")
        assert [c["Id"] for c in lst] == [a]
        q = urllib.parse.quote(json.dumps({"status": ["created"], "name": ["listb"]}))
        st, lst = daemon.api("GET", f"/containers/json?filters={q}")
        assert [c["Id"] for c in lst] == [b]
        st, r = daemon.api("GET", "/containers/json?filters=" + urllib.parse.quote(json.dumps({"bogus": ["1"]})))
        assert st == 400 and r["message"] == "invalid filter 'bogus'"
        st, lst = daemon.api("GET", "/containers/json?all=1&limit=1")
        assert len(lst) == 1
    finally:
        rm(daemon, a)
        rm(daemon, b)


def test_stop_signal_then_kill(daemon: TestDaemon) -> None:
    # a process that handles SIGTERM exits at once with its own code
    cid = create(daemon, Cmd=["sh", "-c", "trap 'exit 42' TERM; while true; do sleep 0.1; done"])
    try:
        daemon.api("POST", f"/containers/{cid}/start")
        t = time.time()
        st, _ = daemon.api("POST", f"/containers/{cid}/stop?t=10")
        assert st == 204 and time.time() - t < 5
        st, c = daemon.api("GET", f"/containers/{cid}/json")
        assert c["State"]["ExitCode"] == 42
        st, _ = daemon.api("POST", f"/containers/{cid}/stop")
        assert st == 304  # already stopped
    finally:
        rm(daemon, cid)
    # one that ignores it is killed after the timeout: 137
    cid = create(daemon, Cmd=["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"], StopSignal="SIGTERM")
    try:
        daemon.api("POST", f"/containers/{cid}/start")
        t = time.time()
        st, _ = daemon.api("POST", f"/containers/{cid}/stop?t=1")
        assert st == 204 and 0.9 < time.time() - t < 10
        st, c = daemon.api("GET", f"/containers/{cid}/json")
        assert c["State"]["ExitCode"] == 137 and c["State"]["Running"] is False
    finally:
        rm(daemon, cid)


def test_kill_and_remove(daemon: TestDaemon) -> None:
    cid = create(daemon, Cmd=["sh", "-c", "trap 'exit 10' USR1; while true; do sleep 0.1; done"])
    daemon.api("POST", f"/containers/{cid}/start")
    st, r = daemon.api("POST", f"/containers/{cid}/kill?signal=NOPE")
    assert st == 400 and r["message"] == "Invalid signal: NOPE"
    st, r = daemon.api("DELETE", f"/containers/{cid}")
    assert st == 409
    assert r["message"] == (f"You cannot remove a running container {cid}. "
                            "Stop the container before attempting removal or force remove")
    st, _ = daemon.api("POST", f"/containers/{cid}/kill?signal=SIGUSR1")  # PID 1 has a handler for it
    assert st == 204
    st, r = daemon.api("POST", f"/containers/{cid}/wait")
    assert r["StatusCode"] == 10
    st, r = daemon.api("POST", f"/containers/{cid}/kill")
    assert st == 409 and r["message"] == f"Cannot kill container: {cid}: Container {cid} is not running"
    st, c = daemon.api("GET", f"/containers/{cid}/json")
    upper = c["GraphDriver"]["Data"]["UpperDir"]
    assert os.path.isdir(upper)
    st, _ = daemon.api("DELETE", f"/containers/{cid}")
    assert st == 204
    assert not os.path.exists(os.path.dirname(upper))  # its layer dirs are gone
    st, _ = daemon.api("GET", f"/containers/{cid}/json")
    assert st == 404


def test_force_remove_running(daemon: TestDaemon) -> None:
    cid = create(daemon, Cmd=["sleep", "60"])
    daemon.api("POST", f"/containers/{cid}/start")
    st, _ = daemon.api("DELETE", f"/containers/{cid}?force=1")
    assert st == 204
    st, lst = daemon.api("GET", "/containers/json?all=1")
    assert cid not in [c["Id"] for c in lst]


@pytest.mark.parametrize("condition", ["not-running", "next-exit"])
def test_wait_conditions(daemon: TestDaemon, condition: str) -> None:
    cid = create(daemon, Cmd=["sh", "-c", "sleep 0.3; exit 9"])
    try:
        daemon.api("POST", f"/containers/{cid}/start")
        st, r = daemon.api("POST", f"/containers/{cid}/wait?condition={condition}")
        assert st == 200 and r == {"StatusCode": 9, "Error": None}
        st, r = daemon.api("POST", f"/containers/{cid}/wait?condition=bogus")
        assert st == 400 and r["message"] == 'invalid condition: "bogus"'
    finally:
        rm(daemon, cid)
