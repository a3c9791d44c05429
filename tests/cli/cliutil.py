"""Helpers for CLI tests: the real `dockyard` launcher, run against a test daemon."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PYTHON = os.path.join(REPO, ".venv", "bin", "python")


def launcher() -> list[str]:
    """The installed launcher if it runs this tree's code, else the same thing spelled out."""
    path = shutil.which("dockyard")
    if path:
        try:
            with open(path) as f:
                if os.path.join(REPO, "src") in f.read():
                    return [path]
        except OSError:
            pass
    code = f"import sys; sys.path.insert(0, {os.path.join(REPO, 'src')!r}); from dockyard.cli.main import main; sys.exit(main())"
    return [PYTHON if os.path.exists(PYTHON) else sys.executable, "-S", "-c", code]


class CLI:
    """Runs `dockyard -H <daemon> ...` and returns the CompletedProcess (text mode)."""

    def __init__(self, host: str, config_dir: str) -> None:
        self.host = host
        self.base = launcher()
        self.env = dict(os.environ, DOCKYARD_CONFIG=config_dir)
        self.env.pop("DOCKYARD_HOST", None)

    def argv(self, *args: str) -> list[str]:
        return [*self.base, "-H", self.host, *args]

    def __call__(self, *args: str, input: str | bytes | None = None, timeout: float = 120,
                 check: bool = False) -> subprocess.CompletedProcess:
        text = not isinstance(input, bytes)
        cp = subprocess.run(self.argv(*args), input=input, capture_output=True, text=text, timeout=timeout,
                            env=self.env)
        if check and cp.returncode != 0:
            raise AssertionError(f"dockyard {' '.join(args)} -> {cp.returncode}\n{cp.stdout}\n{cp.stderr}")
        return cp

    def ok(self, *args: str, input: str | None = None, timeout: float = 120) -> str:
        return self(*args, input=input, timeout=timeout, check=True).stdout


class Peer:
    """Accepts connections; for each request calls handler(method, target, headers, body, conn)."""

    def __init__(self, path: str, handler) -> None:  # noqa: ANN001
        self.path = path
        self.handler = handler
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.connections = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn: socket.socket) -> None:
        f = conn.makefile("rb")
        try:
            while True:
                line = f.readline()
                if not line:
                    return
                method, target, _v = line.decode().split(" ", 2)
                headers = {}
                while True:
                    h = f.readline().decode()
                    if h in ("\r\n", ""):
                        break
                    k, _, v = h.partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = b""
                if "content-length" in headers:
                    body = f.read(int(headers["content-length"]))
                elif headers.get("transfer-encoding") == "chunked":
                    while True:
                        size = int(f.readline().strip(), 16)
                        if size == 0:
                            f.readline()
                            break
                        body += f.read(size)
                        f.readline()
                self.requests.append((method, target, headers, body))
                if self.handler(method, target, headers, body, conn, f) == "close":
                    return
        finally:
            conn.close()

    def close(self) -> None:
        self.sock.close()


def ok(conn: socket.socket, body: bytes, ctype: str = "application/json", extra: str = "") -> None:
    conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body)


def chunked(conn: socket.socket, pieces: list[bytes]) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    for p in pieces:
        conn.sendall(b"%x\r\n%s\r\n" % (len(p), p))
    conn.sendall(b"0\r\n\r\n")
