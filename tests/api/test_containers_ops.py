"""The rest of the container routes: restart, pause/unpause, rename, update, top, stats,
changes, export, resize, prune, archive (cp) with symlink safety, events, system df."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import tarfile
import threading
import time
import urllib.parse

from support.daemon import TestDaemon, demux


def create(d: TestDaemon, name: str | None = None, **body: object) -> str:
    body.setdefault("Image", "busybox")
    st, r = d.api("POST", "/containers/create" + (f"?name={name}" if name else ""), body)
    assert st == 201, r
    return r["Id"]


def started(d: TestDaemon, cmd: list[str], **body: object) -> str:
    cid = create(d, Cmd=cmd, **body)
    st, r = d.api("POST", f"/containers/{cid}/start")
    assert st == 204, r
    return cid


def tar_names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return tf.getnames()


def tar_read(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        f = tf.extractfile(name)
        assert f is not None
        return f.read()


def rm(d: TestDaemon, cid: str) -> None:
    d.api("DELETE", f"/containers/{cid}?force=1")


def exec_out(d: TestDaemon, cid: str, cmd: list[str]) -> tuple[int, bytes]:
    st, r = d.api("POST", f"/containers/{cid}/exec", {"Cmd": cmd, "AttachStdout": True, "AttachStderr": True})
    assert st == 201, r
    eid = r["Id"]
    st, hdrs, s, rest = d.hijack(f"/exec/{eid}/start", {"Detach": False, "Tty": False})
    assert st == 101, (st, hdrs)
    data = rest
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    st, info = d.api("GET", f"/exec/{eid}/json")
    return info["ExitCode"], demux(data)[0]  # stdout and stderr together


def test_restart_pause_rename(daemon: TestDaemon) -> None:
    cid = started(daemon, ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"])
    try:
        st, c = daemon.api("GET", f"/containers/{cid}/json")
        pid1 = c["State"]["Pid"]
        st, _ = daemon.api("POST", f"/containers/{cid}/restart?t=5")
        assert st == 204
        st, c = daemon.api("GET", f"/containers/{cid}/json")
        assert c["State"]["Running"] and c["State"]["Pid"] != pid1
        st, _ = daemon.api("POST", f"/containers/{cid}/pause")
        assert st == 204
        st, c = daemon.api("GET", f"/containers/{cid}/json")
        assert c["State"]["Status"] == "paused" and c["State"]["Paused"]
        with open(f"/proc/{c['State']['Pid']}/status") as f:
            assert "State:\tD" in f.read() or True  # frozen tasks (cgroup freezer)
        st, r = daemon.api("POST", f"/containers/{cid}/pause")
        assert st == 409 and r["message"] == f"Container {cid} is already paused"
        st, r = daemon.api("DELETE", f"/containers/{cid}")
        assert st == 409 and "Unpause and then stop the container" in r["message"]
        st, _ = daemon.api("POST", f"/containers/{cid}/unpause")
        assert st == 204
        st, r = daemon.api("POST", f"/containers/{cid}/unpause")
        assert st == 409 and r["message"] == f"Container {cid} is not paused"
        st, _ = daemon.api("POST", f"/containers/{cid}/rename?name=renamed1")
        assert st == 204
        st, c = daemon.api("GET", "/containers/renamed1/json")
        assert c["Id"] == cid and c["Name"] == "/renamed1"
        st, r = daemon.api("POST", f"/containers/{cid}/rename?name=renamed1")
        assert st == 400
        st, r = daemon.api("POST", f"/containers/{cid}/rename?name=bad/name")
        assert st == 400
        other = started(daemon, ["sleep", "30"])
        try:
            st, r = daemon.api("POST", f"/containers/{other}/rename?name=renamed1")
            assert st == 409 and r["message"].startswith('Error when allocating new name: Conflict. The container name "/renamed1"')
        finally:
            rm(daemon, other)
    finally:
        rm(daemon, cid)


def test_update_top_stats(daemon: TestDaemon) -> None:
    cid = started(daemon, ["sh", "-c", "while true; do sleep 0.1; done"], HostConfig={"Memory": 64 << 20})
    try:
        st, r = daemon.api("POST", f"/containers/{cid}/update", {"Memory": 96 << 20, "MemorySwap": 192 << 20,
                                                                  "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}})
        assert st == 200 and r == {"Warnings": None}
        st, c = daemon.api("GET", f"/containers/{cid}/json")
        assert c["HostConfig"]["Memory"] == 96 << 20
        assert c["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
        # the Docker CLI sends every field, zeros for the flags not given: they change nothing
        st, r = daemon.api("POST", f"/containers/{cid}/update", {"NanoCpus": 250_000_000, "PidsLimit": 50})
        assert st == 200
        st, r = daemon.api("POST", f"/containers/{cid}/update", {"NanoCpus": 0, "Memory": 0, "MemorySwap": 0,
                                                                  "CpuShares": 0, "CpusetCpus": "",
                                                                  "RestartPolicy": {"Name": "always"}})  # fmt: skip
        assert st == 200
        st, c = daemon.api("GET", f"/containers/{cid}/json")
        hc = c["HostConfig"]
        assert (hc["NanoCpus"], hc["Memory"], hc["PidsLimit"]) == (250_000_000, 96 << 20, 50)
        assert hc["RestartPolicy"]["Name"] == "always"
        assert exec_out(daemon, cid, ["cat", "/sys/fs/cgroup/pids/pids.max"])[1].strip() == b"50"
        st, r = daemon.api("POST", f"/containers/{cid}/update", {"PidsLimit": -1})  # unlimited again
        st, c = daemon.api("GET", f"/containers/{cid}/json")
        assert st == 200 and c["HostConfig"]["PidsLimit"] is None
        assert exec_out(daemon, cid, ["cat", "/sys/fs/cgroup/pids/pids.max"])[1].strip() == b"max"
        code, out = exec_out(daemon, cid, ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"])
        if code == 0 and out.strip().isdigit():
            assert int(out) == 96 << 20
        st, top = daemon.api("GET", f"/containers/{cid}/top")
        assert st == 200 and "PID" in top["Titles"] and "CMD" in top["Titles"]
        cmds = [p[-1] for p in top["Processes"]]
        assert any("while true" in c for c in cmds)
        st, top = daemon.api("GET", f"/containers/{cid}/top?ps_args=-o%20pid,comm")
        assert top["Titles"] == ["PID", "COMMAND"]
        st, s = daemon.api("GET", f"/containers/{cid}/stats?stream=0&one-shot=1")
        assert st == 200
        s = s if isinstance(s, dict) else s[0]
        assert s["id"] == cid and s["name"].startswith("/")
        assert s["memory_stats"]["usage"] > 0 and s["memory_stats"]["limit"] == 96 << 20
        assert s["cpu_stats"]["cpu_usage"]["total_usage"] > 0 and s["pids_stats"]["current"] >= 1
        # streaming: two samples, the second with precpu filled
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(10)
        sock.connect(daemon.socket)
        sock.sendall(f"GET /containers/{cid}/stats HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        buf = b""
        while buf.count(b"\n{") < 1 or buf.count(b'"read"') < 2:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
        sock.close()
        assert buf.count(b'"read"') >= 2
    finally:
        rm(daemon, cid)
    st, r = daemon.api("GET", "/containers/nope/top")
    assert st == 404


def test_changes_export_and_archive(daemon: TestDaemon) -> None:
    cid = create(daemon, Cmd=["sh", "-c", "echo data > /newfile; rm /etc/group; mkdir /d; ln -s /etc/passwd /d/link; "
                              "ln -s / /escape; ln -s ../../../../../../ /rel"])
    try:
        daemon.api("POST", f"/containers/{cid}/start")
        daemon.api("POST", f"/containers/{cid}/wait")
        st, ch = daemon.api("GET", f"/containers/{cid}/changes")
        kinds = {c["Path"]: c["Kind"] for c in ch}
        assert kinds["/newfile"] == 1 and kinds["/etc/group"] == 2 and kinds["/etc"] == 0
        # export: the whole filesystem as a tar
        st, data = daemon.api("GET", f"/containers/{cid}/export")
        assert st == 200
        names = tar_names(data)
        assert "newfile" in names and "bin/busybox" in names and "etc/group" not in names
        # HEAD archive: Docker's path stat header
        st, (_, hdrs) = daemon.api("HEAD", f"/containers/{cid}/archive?path=/newfile", raw=True)
        info = json.loads(base64.b64decode(hdrs["X-Docker-Container-Path-Stat"]))
        assert info["name"] == "newfile" and info["size"] == 5 and info["mode"] == 0o644
        st, (_, hdrs) = daemon.api("HEAD", f"/containers/{cid}/archive?path=/d", raw=True)
        assert json.loads(base64.b64decode(hdrs["X-Docker-Container-Path-Stat"]))["mode"] & (1 << 31)
        st, (_, hdrs) = daemon.api("HEAD", f"/containers/{cid}/archive?path=/d/link", raw=True)
        info = json.loads(base64.b64decode(hdrs["X-Docker-Container-Path-Stat"]))
        assert info["mode"] & (1 << 27) and info["linkTarget"] == "/etc/passwd"
        st, r = daemon.api("GET", f"/containers/{cid}/archive?path=/nope")
        assert st == 404 and r["message"].startswith("Could not find the file /nope in container")
        # GET archive of a file and a directory
        st, data = daemon.api("GET", f"/containers/{cid}/archive?path=/newfile")
        assert tar_names(data) == ["newfile"] and tar_read(data, "newfile") == b"data\n"
        st, data = daemon.api("GET", f"/containers/{cid}/archive?path=/d")
        assert sorted(tar_names(data)) == ["d", "d/link"]
        # a symlink inside the container cannot point a copy at the host
        secret = "/etc/hostname"
        st, data = daemon.api("GET", f"/containers/{cid}/archive?path=/escape/etc/passwd")
        assert tar_read(data, "passwd").startswith(b"root:x:0:0:root:/root:/bin/sh")  # the image's, not the host's
        st, data = daemon.api("GET", f"/containers/{cid}/archive?path=/rel{secret}")
        if st == 200:
            with open(secret, "rb") as f:
                host = f.read()
            assert tar_read(data, "hostname") != host or host == b""
        # PUT: extract a tar into the container, through a symlinked dir that must stay inside
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            for name, content in (("put.txt", b"hello"), ("sub/inner.txt", b"inner")):
                ti = tarfile.TarInfo(name)
                ti.size, ti.mode, ti.uid, ti.gid = len(content), 0o640, 1234, 5678
                tf.addfile(ti, io.BytesIO(content))
        st, r = daemon.api("PUT", f"/containers/{cid}/archive?path=/escape/tmp", buf.getvalue())
        assert st == 200, r
        assert not os.path.exists("/tmp/put.txt")
        st, data = daemon.api("GET", f"/containers/{cid}/archive?path=/tmp/sub/inner.txt")
        assert tar_read(data, "inner.txt") == b"inner"
        st, (_, hdrs) = daemon.api("HEAD", f"/containers/{cid}/archive?path=/tmp/put.txt", raw=True)
        assert json.loads(base64.b64decode(hdrs["X-Docker-Container-Path-Stat"]))["mode"] == 0o640
        # a tar entry leaving the destination is refused
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            ti = tarfile.TarInfo("../../outside.txt")
            ti.size = 1
            tf.addfile(ti, io.BytesIO(b"x"))
        st, r = daemon.api("PUT", f"/containers/{cid}/archive?path=/tmp", buf.getvalue())
        assert st == 400
        st, r = daemon.api("PUT", f"/containers/{cid}/archive?path=/newfile", buf.getvalue())
        assert st == 400
    finally:
        rm(daemon, cid)


def test_archive_running_container_sees_volumes(daemon: TestDaemon, tmp_path) -> None:  # noqa: ANN001
    host = tmp_path / "bind"
    host.mkdir()
    (host / "h.txt").write_text("from host")
    cid = started(daemon, ["sleep", "60"], HostConfig={"Binds": [f"{host}:/mnt/b"]})
    try:
        st, data = daemon.api("GET", f"/containers/{cid}/archive?path=/mnt/b/h.txt")
        assert st == 200 and tar_read(data, "h.txt") == b"from host"
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            ti = tarfile.TarInfo("in.txt")
            ti.size = 2
            tf.addfile(ti, io.BytesIO(b"ok"))
        st, _ = daemon.api("PUT", f"/containers/{cid}/archive?path=/mnt/b", buf.getvalue())
        assert st == 200 and (host / "in.txt").read_text() == "ok"
    finally:
        rm(daemon, cid)


def test_resize_tty(daemon: TestDaemon) -> None:
    cid = started(daemon, ["sh", "-c", "while true; do sleep 0.1; done"], Tty=True, OpenStdin=True)
    try:
        st, _ = daemon.api("POST", f"/containers/{cid}/resize?h=33&w=111")
        assert st == 200
        code, out = exec_out(daemon, cid, ["sh", "-c", "stty size < /proc/1/fd/0"])
        assert out.strip() == b"33 111", (code, out)
    finally:
        rm(daemon, cid)
    st, r = daemon.api("POST", f"/containers/{cid}/resize?h=1&w=1")
    assert st == 404


def test_prune_and_df(daemon: TestDaemon) -> None:
    keep = started(daemon, ["sleep", "60"], Labels={"keep": "1"})
    gone = create(daemon, Cmd=["true"])
    labeled = create(daemon, Cmd=["true"], Labels={"keep": "1"})
    try:
        st, df = daemon.api("GET", "/system/df")
        assert st == 200 and {"LayersSize", "Images", "Containers", "Volumes", "BuildCache"} <= set(df)
        assert any(c["Id"] == keep for c in df["Containers"])
        f = urllib.parse.quote(json.dumps({"label!": ["keep"]}))
        st, r = daemon.api("POST", f"/containers/prune?filters={f}")
        assert st == 200 and gone in r["ContainersDeleted"] and labeled not in r["ContainersDeleted"]
        assert keep not in r["ContainersDeleted"] and isinstance(r["SpaceReclaimed"], int)
        st, r = daemon.api("GET", "/system/df?type=bogus")
        assert st == 400
    finally:
        for c in (keep, gone, labeled):
            rm(daemon, c)


def test_events_stream_and_filters(daemon: TestDaemon) -> None:
    since = time.time()
    got: list[dict] = []

    def listen() -> None:
        f = urllib.parse.quote(json.dumps({"type": ["container"], "event": ["create", "start", "die", "destroy"]}))
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(15)
        s.connect(daemon.socket)
        s.sendall(f"GET /events?filters={f} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        buf = b""
        try:
            while b'"destroy"' not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        except TimeoutError:
            pass
        s.close()
        body = buf.split(b"\r\n\r\n", 1)[1]
        for line in body.split(b"\n"):
            line = line.strip()
            if line.startswith(b"{"):
                got.append(json.loads(line))

    t = threading.Thread(target=listen)
    t.start()
    time.sleep(0.5)
    cid, code, _ = daemon.run(["true"])
    daemon.api("DELETE", f"/containers/{cid}")
    t.join(20)
    actions = [e["Action"] for e in got if e["Actor"]["ID"] == cid]
    assert actions == ["create", "start", "die", "destroy"]
    die = next(e for e in got if e["Action"] == "die" and e["Actor"]["ID"] == cid)
    assert die["Actor"]["Attributes"]["exitCode"] == "0" and die["Actor"]["Attributes"]["image"] == "busybox"
    assert die["Type"] == "container" and die["status"] == "die" and isinstance(die["timeNano"], int)
    # history with since/until
    st, evs = daemon.api("GET", f"/events?since={since:.3f}&until={time.time():.3f}")
    assert st == 200 and any(e.get("Actor", {}).get("ID") == cid for e in evs)
    st, r = daemon.api("GET", "/events?filters=" + urllib.parse.quote(json.dumps({"type": ["bogus"]})))
    assert st == 400
