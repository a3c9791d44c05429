"""A real registry for tests and benchmarks: Debian's `docker-registry` (CNCF distribution 2.8)
on 127.0.0.1:<free port> (or another address, optionally inside a network namespace the test made), anonymous, with htpasswd basic auth, or with bearer tokens issued by a
tiny token endpoint written here (JWTs signed RS256 with a throwaway key, via the openssl CLI).
Started and stopped by PID; everything lives under the given temp dir.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """Issues registry tokens for `repository:<name>:<actions>` scopes to known users."""

    def __init__(self, workdir: str, users: dict[str, str], service: str = "dyt-registry") -> None:
        self.workdir, self.users, self.service = workdir, users, service
        self.key = os.path.join(workdir, "token.key")
        self.cert = os.path.join(workdir, "token.crt")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key, "-out", self.cert,
             "-days", "2", "-subj", "/CN=dyt-token-issuer"],
            check=True, capture_output=True,
        )
        der = subprocess.run(["openssl", "x509", "-in", self.cert, "-outform", "DER"], check=True, capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.requests: list[dict] = []
        self.port = free_port()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                from urllib.parse import parse_qs, urlsplit

                q = parse_qs(urlsplit(self.path).query)
                user = None
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                    if server.users.get(u) != p:
                        self.send_response(401)
                        self.send_header("Content-Type", "application/json")
                        self.end_headers()
                        self.wfile.write(b'{"errors":[{"code":"UNAUTHORIZED","message":"incorrect username or password"}]}')
                        return
                    user = u
                scopes = q.get("scope", [])
                server.requests.append({"user": user, "scopes": scopes})
                token = server.sign(user, scopes)
                body = json.dumps({"token": token, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def sign(self, user: str | None, scopes: list[str]) -> str:
        access = []
        for s in scopes:
            parts = s.split(":")
            if len(parts) < 3:
                continue
            actions = parts[-1].split(",")
            if user is None:
                actions = [a for a in actions if a == "pull"]  # anonymous: read only
            access.append({"type": parts[0], "name": ":".join(parts[1:-1]), "actions": actions})
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "x5c": [self.x5c]}
        claims = {"iss": "dyt-issuer", "sub": user or "", "aud": self.service, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key], input=signing_input.encode(),
                             check=True, capture_output=True).stdout
        return f"{signing_input}.{_b64(sig)}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class RegistryServer:
    """`docker-registry serve` on 127.0.0.1:<port>; auth is None, "basic" or "token"."""

    def __init__(self, workdir: str, auth: str | None = None, users: dict[str, str] | None = None, tls: bool = False,
                 host: str = "127.0.0.1", netns: str | None = None, port: int | None = None) -> None:  # fmt: skip
        self.workdir = workdir
        self.auth = auth
        self.tls = tls
        self.ca_cert: str | None = None
        self.users = users or {"dyt": "s3cret"}
        self.host, self.netns = host, netns  # netns: serve inside this network namespace (ip netns exec)
        self.port = port or free_port()
        self.addr = f"{host}:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.token: TokenServer | None = None

    def start(self) -> RegistryServer:
        os.makedirs(self.workdir, exist_ok=True)
        storage = os.path.join(self.workdir, "storage")
        lines = [
            "version: 0.1",
            "log:\n  level: error\n  accesslog:\n    disabled: true",
            f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true",
            f"http:\n  addr: {self.addr}\n  secret: dyt-test-secret",
        ]
        if self.tls:
            key, cert = os.path.join(self.workdir, "tls.key"), os.path.join(self.workdir, "tls.crt")
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                 "-subj", f"/CN={self.host}", "-addext", f"subjectAltName=IP:{self.host}"],
                check=True, capture_output=True,
            )
            self.ca_cert = cert
            lines[-1] += f"\n  tls:\n    certificate: {cert}\n    key: {key}"
        if self.auth == "basic":
            htpasswd = os.path.join(self.workdir, "htpasswd")
            for i, (u, p) in enumerate(self.users.items()):
                subprocess.run(["htpasswd", "-B", "-b"] + (["-c"] if i == 0 else []) + [htpasswd, u, p], check=True, capture_output=True)
            lines.append(f"auth:\n  htpasswd:\n    realm: dyt-realm\n    path: {htpasswd}")
        elif self.auth == "token":
            self.token = TokenServer(self.workdir, self.users)
            lines.append(
                f"auth:\n  token:\n    realm: {self.token.realm}\n    service: {self.token.service}\n"
                f"    issuer: dyt-issuer\n    rootcertbundle: {self.token.cert}"
            )
        cfg = os.path.join(self.workdir, "config.yml")
        with open(cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log = open(os.path.join(self.workdir, "registry.log"), "wb")  # noqa: SIM115 - closed in stop()
        argv = ["docker-registry", "serve", cfg]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]  # ip execs the registry: same pid
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        import ssl

        ctx = ssl.create_default_context(cafile=self.ca_cert) if self.tls else None
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{'https' if self.tls else 'http'}://{self.addr}/v2/", timeout=1, context=ctx)
                return self
            except urllib.error.HTTPError:
                return self  # 401 with auth on: it is up
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        with open(os.path.join(self.workdir, "registry.log")) as f:
            raise RuntimeError(f"docker-registry did not start: {f.read()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.token is not None:
            self.token.stop()
            self.token = None
        if getattr(self, "log", None):
            self.log.close()

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
