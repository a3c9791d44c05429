"""The CLI's Engine API client: which daemon, which API version, requests and their errors.

Owns: daemon discovery (`-H/--host`, then `DOCKYARD_HOST`, then the default socket), starting a
daemon in the background when none answers on the default socket, API version negotiation via
`/_ping` (as Docker's client does: the lower of the server's `API-Version` and ours), JSON and
streaming requests, hijacked connections for attach/exec, and turning error responses into
`APIError` (printed as `Error response from daemon: <message>`).
"""

from __future__ import annotations

import os
import sys

from dockyard.cli import http
from dockyard.cli.jsonfast import dumps, loads

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

DEFAULT_HOST = "unix:///run/dockyard/dockyard.sock"
MAX_API_VERSION = "1.43"
MIN_API_VERSION = "1.24"
DAEMON_LOG = "/var/log/dockyard.log"


class APIError(Exception):
    """An error answer from the daemon (status >= 400)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return f"Error response from daemon: {self.message}"


class DaemonUnreachable(Exception):
    """Nothing answered at `host`. `detail` is shown with -D, or always when `show` is set."""

    def __init__(self, host: str, detail: str = "", show: bool = False) -> None:
        super().__init__(host)
        self.host = host
        self.detail = detail
        self.show = show

    def __str__(self) -> str:
        return f"Cannot connect to the Dockyard daemon at {self.host}. Is the dockyard daemon running?"


def _version_tuple(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in v.split("."))
    except ValueError:
        return (0,)


def resolve_host(flag_hosts: list[str] | None) -> tuple[str, bool]:
    """(host, explicit): -H wins, then DOCKYARD_HOST, then the default socket."""
    if flag_hosts:
        if len(flag_hosts) > 1:
            raise ValueError("Specify only one -H")
        return flag_hosts[0], True
    env = os.environ.get("DOCKYARD_HOST")
    if env:
        return env, True
    # DOCKYARD_DEFAULT_HOST moves the default socket (tests use it to exercise the autostart
    # without touching /run/dockyard); the daemon started for it listens there
    return os.environ.get("DOCKYARD_DEFAULT_HOST") or DEFAULT_HOST, False


def _tls_context(tls: dict[str, Any]) -> Any:
    import ssl

    verify = tls.get("verify")
    ctx = ssl.create_default_context(cafile=tls.get("cacert") if verify else None)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if tls.get("cert") and tls.get("key"):
        ctx.load_cert_chain(tls["cert"], tls["key"])
    return ctx


class Client:
    """One daemon endpoint. Methods take API paths without the `/vX.Y` prefix."""

    def __init__(self, host: str | None = None, explicit: bool = True, tls: dict[str, Any] | None = None,
                 version: str | None = None) -> None:
        host, explicit = (host, explicit) if host else resolve_host(None)
        self.host = host
        self.explicit = explicit
        self.kind, self.addr = http.parse_host(host)
        self.host_header = "api.moby.localhost" if self.kind == "unix" else f"{self.addr[0]}:{self.addr[1]}"  # type: ignore[index]
        self._tls = tls
        self._tls_ctx: Any = None
        self._idle: http.Sock | None = None
        self.version = version or os.environ.get("DOCKYARD_API_VERSION") or ""
        self.negotiated = bool(self.version)
        self.server_headers: dict[str, str] = {}

    # ---- connections -------------------------------------------------------------------

    def _connect(self, timeout: float | None = None) -> http.Sock:
        if self._tls and self.kind == "tcp" and self._tls_ctx is None:
            self._tls_ctx = _tls_context(self._tls)
        try:
            return http.connect(self.kind, self.addr, timeout, self._tls_ctx)
        except http.ConnectError as e:
            raise DaemonUnreachable(self.host, str(e)) from None

    def _send(self, method: str, target: str, body: Any, headers: dict[str, str] | None,
              timeout: float | None = None) -> http.Response:
        chunked = False
        data: bytes | None = None
        if body is None:
            body_len = 0 if method in ("POST", "PUT") else None
        elif isinstance(body, bytes | bytearray):
            data, body_len = bytes(body), len(body)
        else:
            chunked, body_len = True, None
        head = http.build_request(method, target, self.host_header, headers, body_len, chunked)
        for attempt in (0, 1):
            conn, reused = (self._idle, True) if self._idle is not None else (self._connect(timeout), False)
            self._idle = None
            try:
                if data is not None and len(data) < 65536:
                    conn.sendall(head + data)
                else:
                    conn.sendall(head)
                    if data is not None:
                        conn.sendall(data)
                    elif chunked:
                        self._send_chunked(conn, body)
                return http.Response(conn, method)
            except (http.ProtocolError, BrokenPipeError, ConnectionResetError):
                conn.close()
                if not reused or attempt:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _send_chunked(conn: http.Sock, body: Any) -> None:
        if hasattr(body, "read"):
            def pieces() -> Iterable[bytes]:
                while True:
                    block = body.read(1 << 20)
                    if not block:
                        return
                    yield block
            it: Iterable[bytes] = pieces()
        else:
            it = body
        for block in it:
            if block:
                conn.sendall(b"%x\r\n" % len(block) + block + b"\r\n")
        conn.sendall(b"0\r\n\r\n")

    def _release(self, resp: http.Response) -> None:
        if resp.reusable and self._idle is None:
            self._idle = resp.conn
        else:
            resp.conn.close()

    # ---- version negotiation ------------------------------------------------------------

    def ping(self) -> dict[str, str]:
        """HEAD /_ping (GET if HEAD is refused): the server's headers, for negotiation."""
        resp = self._send("HEAD", "/_ping", None, None, timeout=None)
        resp.read()
        if resp.status in (404, 405):
            self._release(resp)
            resp = self._send("GET", "/_ping", None, None)
            resp.read()
        self._release(resp)
        if resp.status >= 500 and "api-version" not in resp.headers:
            raise APIError(resp.status, f"ping failed: {resp.status} {resp.reason}")
        self.server_headers = resp.headers
        return resp.headers

    def negotiate(self) -> str:
        if self.negotiated:
            return self.version
        try:
            headers = self.ping()
        except DaemonUnreachable:
            if self.explicit:
                raise
            self.start_daemon()
            headers = self.ping()
        server = headers.get("api-version", "")
        if server and _version_tuple(server) < _version_tuple(MAX_API_VERSION):
            self.version = server
        else:
            self.version = MAX_API_VERSION
        self.negotiated = True
        return self.version

    def start_daemon(self) -> None:
        """No daemon on the default socket: start one in the background and wait for /_ping."""
        import time

        if os.geteuid() != 0:
            raise DaemonUnreachable(self.host)
        import subprocess

        import dockyard

        src = os.path.dirname(os.path.dirname(os.path.abspath(dockyard.__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        logpath = os.environ.get("DOCKYARD_DAEMON_LOG") or DAEMON_LOG
        try:
            log = open(logpath, "ab")  # noqa: SIM115 - handed to the child
        except OSError:
            log = open(os.devnull, "ab")  # noqa: SIM115
        argv = [sys.executable, "-m", "dockyard.daemon"]
        if os.environ.get("DOCKYARD_DAEMON_ARGS"):
            import shlex

            argv += shlex.split(os.environ["DOCKYARD_DAEMON_ARGS"])
        if self.host != DEFAULT_HOST:
            argv += ["-H", self.host]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                start_new_session=True, close_fds=True)
        log.close()
        sys.stderr.write(f"dockyard: no daemon answered at {self.host}; started one in the background "
                         f"(pid {proc.pid}, log {logpath})\n")
        sys.stderr.flush()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DaemonUnreachable(self.host, f"the daemon exited with status {proc.returncode}; see {logpath}", show=True)
            try:
                self.ping()
                return
            except (DaemonUnreachable, http.ProtocolError, OSError):
                time.sleep(0.05)
        raise DaemonUnreachable(self.host, f"the daemon did not answer within 60 seconds; see {logpath}", show=True)

    # ---- requests -------------------------------------------------------------------------

    def url(self, path: str, query: dict[str, Any] | None = None) -> str:
        return f"/v{self.negotiate()}{path}{http.encode_query(query)}"

    def request(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None,
                headers: dict[str, str] | None = None) -> http.Response:
        """Send a request and return the response with its body unread. Raises APIError >= 400."""
        if isinstance(body, dict | list):
            body = dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        resp = self._send(method, self.url(path, query), body, headers)
        if resp.status >= 400:
            raise self._error(resp)
        return resp

    def _error(self, resp: http.Response) -> APIError:
        raw = resp.read()
        self._release(resp)
        message = ""
        try:
            doc = loads(raw)
            if isinstance(doc, dict):
                message = doc.get("message") or ""
        except ValueError:
            message = raw.decode("utf-8", "replace").strip()
        if not message:
            message = raw.decode("utf-8", "replace").strip() or f"{resp.status} {resp.reason}"
        return APIError(resp.status, message)

    def call(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None,
             headers: dict[str, str] | None = None) -> Any:
        """A request whose answer is JSON (or empty): the decoded body, or None."""
        resp = self.request(method, path, query, body, headers)
        raw = resp.read()
        self._release(resp)
        if not raw.strip():
            return None
        ctype = resp.headers.get("content-type", "")
        if "json" in ctype or raw[:1] in (b"{", b"["):
            return loads(raw)
        return raw.decode("utf-8", "replace")

    def get(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return self.call("GET", path, query)

    def post(self, path: str, query: dict[str, Any] | None = None, body: Any = None,
             headers: dict[str, str] | None = None) -> Any:
        return self.call("POST", path, query, body, headers)

    def delete(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return self.call("DELETE", path, query)

    def stream(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None,
               headers: dict[str, str] | None = None) -> http.Response:
        """A streamed answer (logs, events, progress): read it with iter_chunks/iter_lines."""
        return self.request(method, path, query, body, headers)

    def hijack(self, path: str, query: dict[str, Any] | None = None, body: Any = None) -> tuple[http.Sock, http.Response]:
        """POST with `Upgrade: tcp`; on 101 (or 200 from older daemons) the raw connection.

        The returned Sock's buffer already holds any stream bytes read with the headers.
        """
        headers = {"Connection": "Upgrade", "Upgrade": "tcp"}
        if body is not None:
            body = dumps(body).encode()
            headers["Content-Type"] = "application/json"
        saved, self._idle = self._idle, None
        resp = self._send("POST", self.url(path, query), body, headers)
        self._idle = saved
        if resp.status >= 400:
            raise self._error(resp)
        if resp.status not in (101, 200):
            resp.conn.close()
            raise APIError(resp.status, f"unexpected status {resp.status} to a hijack request")
        return resp.conn, resp

    def close(self) -> None:
        if self._idle is not None:
            self._idle.close()
            self._idle = None
