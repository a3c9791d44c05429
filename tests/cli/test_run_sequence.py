"""`dockyard run` follows Docker's request sequence, checked on the wire against a scripted peer:
HEAD /_ping, POST /containers/create (a 404 "No such image" pulls with POST /images/create and
creates again), POST /containers/{id}/attach with Upgrade: tcp, POST /containers/{id}/wait before
POST /containers/{id}/start; the exit code comes from the wait answer."""

from __future__ import annotations

import json
import os
import subprocess
import threading

from cliutil import PYTHON, REPO, Peer, ok

CID = "f" * 64


class Script:
    def __init__(self, missing_image: bool) -> None:
        self.missing = missing_image
        self.started = threading.Event()
        self.log: list[str] = []

    def __call__(self, method, target, headers, body, conn, f):  # noqa: ANN001, ANN204
        path = target.split("?", 1)[0].replace("/v1.43", "")
        self.log.append(f"{method} {path}")
        if path == "/_ping":
            conn.sendall(b"HTTP/1.1 200 OK\r\nApi-Version: 1.43\r\nContent-Length: 0\r\n\r\n")
        elif path == "/containers/create":
            if self.missing:
                self.missing = False
                msg = b'{"message":"No such image: busybox:latest"}'
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(msg), msg))
            else:
                self.create_body = json.loads(body)
                self.create_query = target
                body = json.dumps({"Id": CID, "Warnings": []}).encode()
                conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        elif path == "/images/create":
            lines = [{"status": "Pulling from library/busybox", "id": "latest"},
                     {"status": "Pull complete", "progressDetail": {}, "id": "abc"},
                     {"status": "Status: Downloaded newer image for busybox:latest"}]
            ok(conn, b"".join(json.dumps(x).encode() + b"\n" for x in lines))
        elif path.endswith("/attach"):
            assert headers.get("upgrade") == "tcp"
            conn.sendall(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
            self.started.wait(10)
            conn.sendall(b"\x01\x00\x00\x00\x00\x00\x00\x06hello\n")
            return "close"
        elif path.endswith("/wait"):
            self.wait_query = target
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            self.started.wait(10)
            body = b'{"StatusCode":42,"Error":null}'
            conn.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        elif path.endswith("/start"):
            conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
            self.started.set()
        else:
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        return None


def run(tmp_path, script: Script, *args: str) -> subprocess.CompletedProcess:  # noqa: ANN001
    sock = str(tmp_path / "api.sock")
    peer = Peer(sock, script)
    try:
        code = (f"import sys; sys.path.insert(0, {os.path.join(REPO, 'src')!r}); "
                "from dockyard.cli.main import main; sys.exit(main())")
        return subprocess.run([PYTHON, "-S", "-c", code, "-H", f"unix://{sock}", *args], capture_output=True, text=True,
                              timeout=30, env=dict(os.environ, DOCKYARD_CONFIG=str(tmp_path)), stdin=subprocess.DEVNULL)
    finally:
        peer.close()


def test_run_sequence_and_exit_code(tmp_path) -> None:  # noqa: ANN001
    script = Script(missing_image=False)
    cp = run(tmp_path, script, "run", "--name", "seq", "busybox", "echo", "hi")
    assert (cp.returncode, cp.stdout) == (42, "hello\n"), cp.stderr
    assert script.log == ["HEAD /_ping", "POST /containers/create", f"POST /containers/{CID}/attach",
                          f"POST /containers/{CID}/wait", f"POST /containers/{CID}/start"]
    assert "name=seq" in script.create_query and "condition=next-exit" in script.wait_query
    body = script.create_body
    assert body["Image"] == "busybox" and body["Cmd"] == ["echo", "hi"] and body["HostConfig"]["AutoRemove"] is False


def test_run_pulls_on_missing_image_and_waits_for_removal(tmp_path) -> None:  # noqa: ANN001
    script = Script(missing_image=True)
    cp = run(tmp_path, script, "run", "--rm", "busybox")
    assert cp.returncode == 42
    assert cp.stderr.startswith("Unable to find image 'busybox:latest' locally\nlatest: Pulling from library/busybox\n")
    assert "Status: Downloaded newer image for busybox:latest" in cp.stderr
    assert script.log[:5] == ["HEAD /_ping", "POST /containers/create", "POST /images/create",
                              "POST /containers/create", f"POST /containers/{CID}/attach"]
    assert "condition=removed" in script.wait_query
