"""The CLI's HTTP/1.1 client and API client against a scripted peer on a real unix socket.

The peer is a few lines of socket code in a thread: it records each request and answers with
the bytes the test scripts (chunked bodies, keep-alive, a 101 upgrade followed by a raw stream),
which is what the Engine API does on the wire.
"""

from __future__ import annotations

import io
import os

import pytest
from cliutil import Peer, chunked, ok

from dockyard.cli.attach import Demuxer, EscapeProxy
from dockyard.cli.client import APIError, Client, DaemonUnreachable
from dockyard.cli.http import encode_query, parse_host, quote
from dockyard.cli.progress import ProgressPrinter, StreamError, progress_string


@pytest.fixture
def sockpath(tmp_path) -> str:  # noqa: ANN001
    return str(tmp_path / "api.sock")


def handler(method, target, headers, body, conn, f):  # noqa: ANN001, ANN201
    if target == "/_ping":
        conn.sendall(b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\n" + (b"" if method == "HEAD" else b"OK"))
    elif target.startswith("/v1.41/containers/json"):
        ok(conn, b'[{"Id": "abc"}]')
    elif target.startswith("/v1.41/events"):
        chunked(conn, [b'{"a":', b'1}\n{"b":2}\n'])
    elif target.startswith("/v1.41/containers/nope/json"):
        body = b'{"message": "No such container: nope"}'
        conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    elif target.startswith("/v1.41/containers/c1/attach"):
        assert headers.get("upgrade") == "tcp"
        conn.sendall(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                     b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n\x01\x00\x00\x00\x00\x00\x00\x03hi\n")
        data = conn.recv(100)
        conn.sendall(b"\x02\x00\x00\x00\x00\x00\x00" + bytes([len(data)]) + data)
        return "close"
    elif target.startswith("/v1.41/upload"):
        ok(conn, b'{"got": %d}' % len(body))
    else:
        conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops")
    return None


def test_negotiation_keepalive_and_json(sockpath: str) -> None:
    peer = Peer(sockpath, handler)
    try:
        c = Client(f"unix://{sockpath}", explicit=True)
        assert c.get("/containers/json") == [{"Id": "abc"}]
        assert c.version == "1.41"
        assert c.get("/containers/json", {"all": True}) == [{"Id": "abc"}]
        assert peer.requests[0][0] == "HEAD" and peer.requests[0][1] == "/_ping"
        assert peer.requests[2][1] == "/v1.41/containers/json?all=1"
        assert peer.connections == 1  # one keep-alive connection for ping + two requests
    finally:
        peer.close()


def test_errors_and_chunked_streams(sockpath: str) -> None:
    peer = Peer(sockpath, handler)
    try:
        c = Client(f"unix://{sockpath}", explicit=True)
        with pytest.raises(APIError) as e:
            c.get("/containers/nope/json")
        assert str(e.value) == "Error response from daemon: No such container: nope" and e.value.status == 404
        resp = c.stream("GET", "/events")
        assert list(resp.iter_lines()) == [b'{"a":1}', b'{"b":2}']
        with pytest.raises(APIError, match="oops"):
            c.get("/whatever")
        assert c.post("/upload", body=io.BytesIO(b"x" * 200000)) == {"got": 200000}
        assert peer.requests[-1][2].get("transfer-encoding") == "chunked"
    finally:
        peer.close()


def test_hijack_returns_buffered_stream(sockpath: str) -> None:
    peer = Peer(sockpath, handler)
    try:
        c = Client(f"unix://{sockpath}", explicit=True)
        conn, resp = c.hijack("/containers/c1/attach", {"stream": 1})
        assert resp.status == 101
        r, w = os.pipe()
        demux = Demuxer(w, w)
        demux.feed(conn.buf)
        conn.sendall(b"ping")
        demux.feed(conn.sock.recv(100))
        os.close(w)
        assert os.read(r, 100) == b"hi\nping"
        os.close(r)
        conn.close()
    finally:
        peer.close()


def test_unreachable(tmp_path) -> None:  # noqa: ANN001
    c = Client(f"unix://{tmp_path}/none.sock", explicit=True)
    with pytest.raises(DaemonUnreachable) as e:
        c.get("/info")
    assert str(e.value).startswith(f"Cannot connect to the Dockyard daemon at unix://{tmp_path}/none.sock.")


def test_hosts_and_queries() -> None:
    assert parse_host("unix:///run/x.sock") == ("unix", "/run/x.sock")
    assert parse_host("tcp://127.0.0.1:2375") == ("tcp", ("127.0.0.1", 2375))
    assert parse_host("tcp://[::1]:1") == ("tcp", ("::1", 1))
    assert encode_query({"a": "x y", "b": None, "c": True, "d": ["1", "2"]}) == "?a=x%20y&c=1&d=1&d=2"
    assert quote("a/b:c", safe="/:") == "a/b:c"


def test_escape_proxy_detach_keys() -> None:
    p = EscapeProxy(b"\x10\x11")
    assert p.filter(b"ab\x10") == (b"ab", False)
    assert p.filter(b"c") == (b"\x10c", False)
    assert p.filter(b"x\x10\x11rest") == (b"x", True)


def test_progress_plain_and_terminal() -> None:
    out = io.StringIO()
    pp = ProgressPrinter(out, is_terminal=False)
    for jm in [{"status": "Pulling from library/busybox", "id": "latest"},
               {"status": "Pulling fs layer", "progressDetail": {}, "id": "aaa"},
               {"status": "Downloading", "progressDetail": {"current": 10, "total": 100}, "id": "aaa"},
               {"status": "Pull complete", "progressDetail": {}, "id": "aaa"},
               {"status": "Digest: sha256:x"}]:
        pp.feed(jm)
    assert out.getvalue() == "latest: Pulling from library/busybox\naaa: Pulling fs layer\naaa: Pull complete\nDigest: sha256:x\n"
    out = io.StringIO()
    pp = ProgressPrinter(out, is_terminal=True, width=120)
    pp.feed({"status": "Downloading", "progressDetail": {"current": 36450, "total": 1072000}, "id": "bbb"})
    assert out.getvalue() == ("\n\x1b[1A\x1b[2K\rbbb: Downloading [=>" + " " * 49 + "]  36.45kB/1.072MB\r\x1b[1B")
    with pytest.raises(StreamError, match="boom"):
        pp.feed({"errorDetail": {"message": "boom"}, "error": "boom"})
    assert progress_string({"current": 5, "total": 10}, 80) == "      5B/10B"
