"""A minimal HTTP/1.1 client over unix and TCP sockets, for the Docker Engine API.

Owns: connecting (`unix:///path`, `tcp://host:port`, optional TLS), sending a request, reading
the status line and headers, the body by Content-Length, chunked transfer coding or until close,
streaming it piece by piece, keep-alive reuse, and hijacking the connection after
`101 Switching Protocols` (attach/exec) so the caller gets the raw socket plus any bytes already
read. Uses `_socket` directly: `socket` imports enum and selectors (~13 ms).
"""

from __future__ import annotations

import _socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator


class ConnectError(OSError):
    """The daemon's socket could not be reached."""


class ProtocolError(OSError):
    """The peer did not speak HTTP/1.1 as expected."""


def parse_host(host: str) -> tuple[str, object]:
    """'unix:///run/x.sock' -> ('unix', path); 'tcp://h:p' -> ('tcp', (h, p))."""
    if host.startswith("unix://"):
        return "unix", host[7:]
    if host.startswith("tcp://") or host.startswith("http://") or host.startswith("https://"):
        rest = host.split("://", 1)[1].rstrip("/")
        rest = rest.split("/", 1)[0]
        if rest.startswith("["):
            h, _, p = rest[1:].partition("]")
            port = p.lstrip(":")
        else:
            h, _, port = rest.rpartition(":")
            if not h:
                h, port = rest, ""
        return "tcp", (h or "127.0.0.1", int(port) if port else 2375)
    if host.startswith("/"):
        return "unix", host
    if host.startswith("fd://") or host.startswith("ssh://") or host.startswith("npipe://"):
        raise ValueError(f"unsupported protocol in host: {host}")
    raise ValueError(f"Invalid bind address format: {host}")


class Sock:
    """A connected socket with a read buffer (the `_socket` object has no makefile())."""

    __slots__ = ("sock", "buf", "closed")

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.closed = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def readline(self, limit: int = 65536) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
                return line
            if len(self.buf) > limit:
                raise ProtocolError("header line too long")
            if not self._fill():
                line, self.buf = self.buf, b""
                return line

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ProtocolError("connection closed before the end of the body")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_some(self, n: int = 65536) -> bytes:
        if self.buf:
            data, self.buf = self.buf[:n], self.buf[n:]
            return data
        return self.sock.recv(n)

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass


def connect(kind: str, addr: object, timeout: float | None = None, tls: object = None) -> Sock:
    try:
        if kind == "unix":
            s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            if timeout is not None:
                s.settimeout(timeout)
            s.connect(addr)
        else:
            host, port = addr  # type: ignore[misc]
            last: OSError | None = None
            s = None
            for family, stype, proto, _cn, sa in _socket.getaddrinfo(host, port, 0, _socket.SOCK_STREAM):
                try:
                    s = _socket.socket(family, stype, proto)
                    if timeout is not None:
                        s.settimeout(timeout)
                    s.connect(sa)
                    s.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
                    break
                except OSError as e:
                    last = e
                    if s is not None:
                        s.close()
                    s = None
            if s is None:
                raise last or OSError("no address")
            if tls is not None:
                import socket as _pysocket  # ssl needs a socket.socket

                py = _pysocket.socket(fileno=s.detach())
                s = tls.wrap_socket(py, server_hostname=host)  # type: ignore[attr-defined]
        if timeout is not None:
            s.settimeout(None)
    except OSError as e:
        raise ConnectError(e.errno or 0, str(e)) from None
    return Sock(s)


class Response:
    """Status, headers (lower-case names) and a body reader for one HTTP response."""

    def __init__(self, conn: Sock, method: str) -> None:
        self.conn = conn
        line = conn.readline()
        if not line:
            raise ProtocolError("connection closed without a response")
        parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise ProtocolError(f"malformed HTTP response {line[:60]!r}")
        self.version = parts[0]
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        self.headers: dict[str, str] = {}
        while True:
            h = conn.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.decode("latin-1").partition(":")
            key = name.strip().lower()
            value = value.strip()
            if key in self.headers:
                self.headers[key] += ", " + value
            else:
                self.headers[key] = value
        self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        length = self.headers.get("content-length")
        self.remaining = int(length) if length is not None and not self.chunked else -1
        if method == "HEAD" or self.status in (204, 304) or 100 <= self.status < 200:
            self.remaining = 0
            self.chunked = False
        self.done = self.remaining == 0
        self._chunk_left = 0

    @property
    def reusable(self) -> bool:
        return (self.done and self.version == "HTTP/1.1"
                and self.headers.get("connection", "").lower() != "close")

    def read_chunk(self) -> bytes:
        """The next piece of the body as it arrives; b'' at the end."""
        if self.done:
            return b""
        c = self.conn
        if self.chunked:
            if self._chunk_left == 0:
                line = c.readline()
                if not line:
                    self.done = True
                    return b""
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while c.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    self.done = True
                    return b""
                self._chunk_left = size
            data = c.read_some(self._chunk_left)
            if not data:
                self.done = True
                return b""
            self._chunk_left -= len(data)
            if self._chunk_left == 0:
                c.read_exact(2)
            return data
        if self.remaining > 0:
            data = c.read_some(min(self.remaining, 65536))
            if not data:
                raise ProtocolError("connection closed before the end of the body")
            self.remaining -= len(data)
            if self.remaining == 0:
                self.done = True
            return data
        data = c.read_some()
        if not data:
            self.done = True
        return data

    def read(self) -> bytes:
        parts = []
        while True:
            data = self.read_chunk()
            if not data:
                return b"".join(parts)
            parts.append(data)

    def iter_chunks(self) -> Iterator[bytes]:
        while True:
            data = self.read_chunk()
            if not data:
                return
            yield data

    def iter_lines(self) -> Iterator[bytes]:
        """Newline-delimited records (JSON progress and event streams)."""
        pending = b""
        for data in self.iter_chunks():
            pending += data
            while True:
                i = pending.find(b"\n")
                if i < 0:
                    break
                line, pending = pending[:i], pending[i + 1:]
                if line.strip():
                    yield line
        if pending.strip():
            yield pending


def quote(s: str, safe: str = "") -> str:
    """Percent-encode for a query value or path segment (urllib.parse.quote without its imports)."""
    out = []
    ok = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~" + safe
    for ch in s:
        if ch in ok:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode())
    return "".join(out)


def encode_query(params: dict[str, object] | None) -> str:
    if not params:
        return ""
    items = []
    for k, value in params.items():
        for v in (value if isinstance(value, list | tuple) else (value,)):
            if v is None:
                continue
            if v is True:
                v = "1"
            elif v is False:
                v = "0"
            items.append(f"{quote(k)}={quote(str(v))}")
    return "?" + "&".join(items) if items else ""


def build_request(method: str, target: str, host_header: str, headers: dict[str, str] | None,
                  body_len: int | None, chunked: bool = False) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host_header}", "User-Agent: Docker-Client/dockyard"]
    if headers:
        lines.extend(f"{k}: {v}" for k, v in headers.items())
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    elif body_len is not None:
        lines.append(f"Content-Length: {body_len}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
