"""The CLI's start-up budget: common commands import only light standard-library modules.

Each command runs in a fresh `python -S` (as the launcher does) against a scripted Engine API peer
on a unix socket; afterwards the process lists the heavy modules it loaded. None may appear:
argparse, http.client, json, re, socket, enum, typing, subprocess, dataclasses, asyncio, aiohttp,
or anything from the daemon.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from cliutil import PYTHON, REPO, Peer, ok

HEAVY = {"argparse", "http.client", "json", "re", "socket", "enum", "typing", "subprocess", "dataclasses",
         "asyncio", "aiohttp", "dockyard.daemon", "dockyard.api", "urllib.parse", "tarfile", "signal"}

CONTAINER = {"Id": "c" * 64, "Names": ["/x"], "Image": "busybox", "ImageID": "sha256:" + "i" * 64, "Command": "sh",
             "Created": 1700000000, "State": "running", "Status": "Up 2 seconds", "Ports": [], "Labels": {},
             "Mounts": [], "NetworkSettings": {"Networks": {"bridge": {}}}}
INSPECT = {"Id": "c" * 64, "Name": "/x", "State": {"Running": True}, "Config": {"Tty": False}}


def handler(method, target, headers, body, conn, f):  # noqa: ANN001, ANN201
    if target == "/_ping":
        conn.sendall(b"HTTP/1.1 200 OK\r\nApi-Version: 1.43\r\nContent-Length: 0\r\n\r\n")
    elif "/containers/json" in target:
        ok(conn, json.dumps([CONTAINER]).encode())
    elif target.startswith("/v1.43/images/json"):
        ok(conn, json.dumps([{"Id": "sha256:" + "i" * 64, "RepoTags": ["busybox:latest"], "Created": 0, "Size": 1}]).encode())
    elif target.startswith("/v1.43/containers/x/json"):
        ok(conn, json.dumps(INSPECT).encode())
    elif "/logs?" in target:
        ok(conn, b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n", ctype="application/vnd.docker.multiplexed-stream")
    elif target.startswith("/v1.43/version"):
        ok(conn, json.dumps({"Version": "0.1.0", "ApiVersion": "1.43", "MinAPIVersion": "1.24", "Os": "linux",
                             "Arch": "amd64"}).encode())
    elif method in ("POST", "DELETE"):
        conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
    else:
        conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 17\r\n\r\n{\"message\":\"no\"}\n")
    return None


@pytest.mark.parametrize("args", [["ps"], ["ps", "-a", "--format", "{{json .}}"], ["images"], ["inspect", "x"],
                                  ["logs", "x"], ["stop", "x"], ["rm", "-f", "x"], ["start", "x"], ["version"]])
def test_common_commands_stay_light(tmp_path, args: list[str]) -> None:  # noqa: ANN001
    sock = str(tmp_path / "api.sock")
    peer = Peer(sock, handler)
    try:
        code = ("import sys\n"
                f"sys.path.insert(0, {os.path.join(REPO, 'src')!r})\n"
                "from dockyard.cli.main import main\n"
                f"rc = main(['-H', 'unix://{sock}', *{args!r}])\n"
                "sys.stdout.flush()\n"
                f"sys.stderr.write('LOADED ' + ' '.join(sorted(m for m in sys.modules if m in {sorted(HEAVY)!r} "
                "or m.startswith(('dockyard.daemon', 'dockyard.api')))) + '\\n')\n"
                "sys.exit(rc)\n")
        cp = subprocess.run([PYTHON, "-S", "-c", code], capture_output=True, text=True, timeout=30,
                            env=dict(os.environ, DOCKYARD_CONFIG=str(tmp_path)))
        assert cp.returncode == 0, cp.stderr
        loaded = cp.stderr.rsplit("LOADED ", 1)[1].split()
        assert loaded == [], f"dockyard {' '.join(args)} imported {loaded}"
    finally:
        peer.close()
