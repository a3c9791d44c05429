"""The seed's walkthrough at the API level: `run -it --name demo busybox sh` as the CLI drives it
(create, attach with a tty, start), then `uname -r`, `ps -ef`, `hostname`, `exit`; `ps -a` shows
it Exited; `start -ai demo` runs it again; `rm demo` removes it and its layer directories."""

from __future__ import annotations

import os
import platform
import socket
import time

from support.daemon import TestDaemon


def read_until(s: socket.socket, buf: bytes, token: bytes, timeout: float = 10) -> bytes:
    end = time.time() + timeout
    while token not in buf:
        s.settimeout(max(0.1, end - time.time()))
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    assert token in buf, buf
    return buf


def test_walkthrough(daemon: TestDaemon) -> None:
    st, r = daemon.api("POST", "/containers/create?name=demo", {
        "Image": "busybox", "Cmd": ["sh"], "Tty": True, "OpenStdin": True, "StdinOnce": True,
        "AttachStdin": True, "AttachStdout": True, "AttachStderr": True})  # fmt: skip
    assert st == 201
    cid = r["Id"]
    st, hdrs, s, buf = daemon.hijack("/containers/demo/attach?stream=1&stdin=1&stdout=1&stderr=1")
    assert st == 101
    assert daemon.api("POST", "/containers/demo/start")[0] == 204
    assert daemon.api("POST", "/containers/demo/resize?h=24&w=80")[0] == 200
    s.sendall(b"uname -r\n")
    buf = read_until(s, buf, platform.release().encode())
    s.sendall(b"ps -ef | head -2 | tail -1; echo MARK$((6*7))\n")  # the tty echoes input: wait for output only
    buf = read_until(s, buf, b"MARK42")
    line = [x for x in buf.split(b"\r\n") if x.strip().startswith(b"1 ")][-1]
    assert line.split()[-1] == b"sh"
    s.sendall(b"hostname\n")
    buf = read_until(s, buf, cid[:12].encode() + b"\r\n")
    s.sendall(b"exit\n")
    while s.recv(65536):
        pass
    s.close()
    assert daemon.api("POST", "/containers/demo/wait")[1]["StatusCode"] == 0
    st, lst = daemon.api("GET", "/containers/json?all=1")
    entry = next(c for c in lst if c["Id"] == cid)
    assert entry["Status"].startswith("Exited (0)") and entry["State"] == "exited"
    # start -ai: attach first, then start, and the shell answers again
    st, hdrs, s, buf = daemon.hijack("/containers/demo/attach?stream=1&stdin=1&stdout=1&stderr=1")
    assert daemon.api("POST", "/containers/demo/start")[0] == 204
    s.sendall(b"echo again-$((20+22))\n")
    read_until(s, buf, b"again-42")
    s.sendall(b"exit 3\n")
    while s.recv(65536):
        pass
    s.close()
    assert daemon.api("POST", "/containers/demo/wait")[1]["StatusCode"] == 3
    st, c = daemon.api("GET", "/containers/demo/json")
    upper = os.path.dirname(c["GraphDriver"]["Data"]["UpperDir"])
    init = c["GraphDriver"]["Data"]["LowerDir"].split(":")[0]
    assert os.path.isdir(upper) and os.path.isdir(init)
    assert daemon.api("DELETE", "/containers/demo")[0] == 204
    assert not os.path.exists(upper) and not os.path.exists(os.path.dirname(init))
    assert not os.path.exists(os.path.join(daemon.data_root, "containers", cid))
