"""A client for the OCI distribution / Docker Registry HTTP API v2 (blocking; run in threads).

    reg = Registry("127.0.0.1:5000", auth={"username": ..., "password": ...}, config=RegistryConfig())
    reg.ping()                                      GET /v2/
    reg.get_manifest(repo, ref) -> (body, media type, digest)
    reg.open_blob(repo, digest) -> Response          streaming, redirects followed
    reg.blob_exists(repo, digest) -> size | None     HEAD
    reg.mount_blob(repo, digest, from_repo) -> bool  cross-repository mount
    reg.upload_blob(repo, digest, size, reader, chunk_size=None, progress=None)
    reg.put_manifest(repo, ref, body, media_type) -> digest

Transport, as Docker chooses it: a registry in `insecure-registries` (its `host:port` as written
in references, or a CIDR holding one of the addresses its host resolves to) is tried over HTTPS
accepting any certificate, then over plain HTTP; loopback registries (127.0.0.0/8, ::1,
`localhost`) are insecure by default and tried over plain HTTP first, then HTTPS (any
certificate). Every other registry is HTTPS only, trusting `/etc/dockyard/certs.d/<host>/*.crt`
besides the system CAs (and presenting `client.cert`/`client.key` from there when present). The
first request of a Registry pings `GET /v2/` on each transport in turn (as Docker pings before a
pull or push) and keeps the first that answers. Docker Hub (`docker.io`) is reached at registry-1.docker.io; `registry-mirrors` are
tried first for pulls.

Auth: anonymous, basic (`WWW-Authenticate: Basic`), and bearer tokens (`WWW-Authenticate:
Bearer realm=...,service=...,scope=...`) fetched with the credentials if any and cached per
(realm, service, scope) until they expire.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import os
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

from dockyard.errors import DockyardError, InvalidParameter, NotFound, Unauthorized

ACCEPT_MANIFESTS = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)
USER_AGENT = "dockyard/0.1 (docker-compatible)"
MAX_REDIRECTS = 5


class RegistryError(DockyardError):
    status = 500


DEFAULT_INSECURE_CIDRS = ("::1/128", "127.0.0.0/8")  # Docker's: local registries are insecure


def _split_host(host: str) -> str:
    """The host part of `host[:port]` (IPv6 literals in brackets)."""
    if host.startswith("["):
        return host[1 : host.index("]")] if "]" in host else host[1:]
    if host.count(":") == 1:
        return host.rsplit(":", 1)[0]
    return host


def parse_insecure(entries: list[str]) -> tuple[list[str], list[str]]:
    """Validate `insecure-registries` as dockerd does: (CIDRs, index names). Raises
    InvalidParameter with Docker's words for an entry it would refuse at start-up."""
    cidrs: list[str] = []
    names: list[str] = []
    for raw in [*entries, *DEFAULT_INSECURE_CIDRS]:
        r = str(raw).strip()
        low = r.lower()
        if low.startswith("http://"):
            r = r[7:]
        elif low.startswith("https://"):
            r = r[8:]
        elif "://" in r:
            raise InvalidParameter(f"insecure registry {r} should not contain '://'")
        if "/" in r:
            try:
                net = ipaddress.ip_network(r, strict=False)
            except ValueError:
                raise InvalidParameter(f"insecure registry {r} is not valid: invalid CIDR or host") from None
            if str(net) not in cidrs:
                cidrs.append(str(net))
            continue
        host, _, port = r.rpartition(":") if r.count(":") == 1 else (r, "", "")
        if not host or (port and not (port.isdigit() and 0 < int(port) < 65536)):
            raise InvalidParameter(f"insecure registry {r} is not valid: invalid host {r!r}")
        if r not in names:
            names.append(r)
    return cidrs, names


@dataclass
class RegistryConfig:
    insecure_registries: list[str] = field(default_factory=list)
    mirrors: dict[str, list[str]] = field(default_factory=dict)  # domain -> mirror URLs
    certs_dir: str = "/etc/dockyard/certs.d"
    timeout: float = 60.0

    def __post_init__(self) -> None:
        self.insecure_cidrs, self.insecure_names = parse_insecure(self.insecure_registries)
        self._nets = [ipaddress.ip_network(c) for c in self.insecure_cidrs]
        self._resolved: dict[str, list[ipaddress.IPv4Address | ipaddress.IPv6Address]] = {}

    @classmethod
    def from_options(cls, opts: dict | RegistryConfig | None) -> RegistryConfig:
        """From daemon.json-style options: insecure-registries, registry-mirrors, mirrors."""
        if isinstance(opts, RegistryConfig):
            return opts
        opts = opts or {}
        mirrors = dict(opts.get("mirrors") or {})
        if opts.get("registry-mirrors"):
            mirrors.setdefault("docker.io", list(opts["registry-mirrors"]))
        return cls(
            insecure_registries=list(opts.get("insecure-registries") or opts.get("insecure_registries") or []),
            mirrors=mirrors,
            certs_dir=opts.get("certs-dir", "/etc/dockyard/certs.d"),
        )

    def info(self) -> dict:
        """Docker's `RegistryConfig` of GET /info (`docker info` prints "Insecure Registries")."""
        hub = list(self.mirrors.get("docker.io") or [])
        index = {"docker.io": {"Name": "docker.io", "Mirrors": hub, "Secure": True, "Official": True}}
        for name in self.insecure_names:
            index[name] = {"Name": name, "Mirrors": [], "Secure": False, "Official": False}
        return {
            "AllowNondistributableArtifactsCIDRs": None,
            "AllowNondistributableArtifactsHostnames": None,
            "InsecureRegistryCIDRs": list(self.insecure_cidrs),
            "IndexConfigs": index,
            "Mirrors": hub,
        }

    def _addresses(self, name: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        try:
            return [ipaddress.ip_address(name)]
        except ValueError:
            pass
        if name not in self._resolved:
            import socket

            try:
                infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
                self._resolved[name] = [ipaddress.ip_address(i[4][0].split("%")[0]) for i in infos]
            except (OSError, ValueError):
                self._resolved[name] = []  # unresolvable: neither insecure nor an error (as dockerd)
        return self._resolved[name]

    def is_loopback(self, host: str) -> bool:
        name = _split_host(host)
        if name == "localhost" or name.endswith(".localhost"):
            return True
        addrs = self._addresses(name)
        return bool(addrs) and all(a.is_loopback for a in addrs)

    def is_insecure(self, host: str) -> bool:
        """Whether the registry at `host[:port]` may be reached without verified TLS."""
        name = _split_host(host)
        if host in self.insecure_names or self.is_loopback(host):
            return True
        return any(a in net for a in self._addresses(name) for net in self._nets if a.version == net.version)

    def transports(self, host: str) -> list[tuple[str, bool]]:
        """(scheme, verify certificates) to try in order for the registry at `host`."""
        if self.is_loopback(host):
            return [("http", False), ("https", False)]
        if self.is_insecure(host):
            return [("https", False), ("http", False)]
        return [("https", True)]


class Response:
    """A streaming HTTP response that owns its connection."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse, url: str) -> None:
        self.conn, self.resp, self.url = conn, resp, url
        self.status = resp.status
        self.headers = resp.headers

    def read(self, n: int = -1) -> bytes:
        return self.resp.read(n) if n >= 0 else self.resp.read()

    def close(self) -> None:
        try:
            self.resp.close()
        finally:
            self.conn.close()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    i = 0
    while i < len(rest):
        while i < len(rest) and rest[i] in ", ":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().lower()
        i = eq + 1
        if i < len(rest) and rest[i] == '"':
            end = rest.find('"', i + 1)
            end = len(rest) if end < 0 else end
            params[key] = rest[i + 1 : end]
            i = end + 1
        else:
            end = rest.find(",", i)
            end = len(rest) if end < 0 else end
            params[key] = rest[i:end].strip()
            i = end
    return scheme.lower(), params


_TOKEN_CACHE: dict[tuple[str, str, str, str], tuple[str, float]] = {}
_TOKEN_LOCK = threading.Lock()


class Registry:
    def __init__(self, domain: str, auth: dict | None = None, config: RegistryConfig | None = None, mirror: str | None = None) -> None:
        self.config = config or RegistryConfig()
        self.domain = domain
        if mirror:
            u = urllib.parse.urlsplit(mirror if "://" in mirror else "https://" + mirror)
            self.host = u.netloc
            self._transports = [(u.scheme, not self.config.is_insecure(self.host))]
        else:
            self.host = "registry-1.docker.io" if domain in ("docker.io", "index.docker.io") else domain
            self._transports = self.config.transports(self.host)
        self.scheme, self.verify = self._transports[0]
        self._settled = False  # the first request pings /v2/ first, as Docker does
        self.auth = auth or {}
        self._challenge: tuple[str, dict[str, str]] | None = None
        self._ssl: ssl.SSLContext | None = None

    # --- transport --------------------------------------------------------------------------------
    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.host}"

    def _settle(self) -> None:
        """Pick the transport: ping `GET /v2/` over each in turn (Docker's order, see
        RegistryConfig.transports) and keep the first that answers as a registry would."""
        first: RegistryError | None = None
        for scheme, verify in self._transports:
            self.scheme, self.verify, self._ssl = scheme, verify, None
            try:
                resp = self._raw("GET", f"{self.base}/v2/", {})
            except RegistryError as e:
                first = first or e
                continue
            with resp:
                body = resp.read(4096)
            if resp.status == 400 and b"HTTP request to an HTTPS server" in body:
                first = first or RegistryError(
                    f'Get "{self.base}/v2/": server answered a plain HTTP request with a TLS-only error'
                )
                continue
            self._settled = True
            return
        assert first is not None
        self.scheme, self.verify, self._ssl = (*self._transports[0], None)
        raise first

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            ctx = ssl.create_default_context()
            if not self.verify:  # an insecure registry: any certificate is accepted
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            d = os.path.join(self.config.certs_dir, self.host)
            if os.path.isdir(d):
                for name in sorted(os.listdir(d)):
                    if name.endswith(".crt") and not name.endswith(".cert"):
                        ctx.load_verify_locations(os.path.join(d, name))
                cert, key = os.path.join(d, "client.cert"), os.path.join(d, "client.key")
                if os.path.exists(cert) and os.path.exists(key):
                    ctx.load_cert_chain(cert, key)
            self._ssl = ctx
        return self._ssl

    def _connect(self, url: str) -> tuple[http.client.HTTPConnection, str]:
        u = urllib.parse.urlsplit(url)
        path = u.path or "/"
        if u.query:
            path += "?" + u.query
        if u.scheme == "https":
            ctx = self._ssl_context() if u.netloc == self.host else ssl.create_default_context()
            return http.client.HTTPSConnection(u.netloc, timeout=self.config.timeout, context=ctx, blocksize=1 << 20), path
        return http.client.HTTPConnection(u.netloc, timeout=self.config.timeout, blocksize=1 << 20), path

    def _raw(self, method: str, url: str, headers: dict[str, str], body=None) -> Response:  # noqa: ANN001
        for _ in range(MAX_REDIRECTS):
            conn, path = self._connect(url)
            try:
                conn.request(method, path, body=body, headers={"User-Agent": USER_AGENT, **headers})
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                raise RegistryError(f'{method.capitalize()} "{url}": {_transport_error(e, url)}') from None
            if resp.status in (301, 302, 303, 307, 308) and resp.headers.get("Location") and method in ("GET", "HEAD"):
                loc = urllib.parse.urljoin(url, resp.headers["Location"])
                resp.read()
                conn.close()
                if urllib.parse.urlsplit(loc).netloc != urllib.parse.urlsplit(url).netloc:
                    headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                url = loc
                continue
            return Response(conn, resp, url)
        raise RegistryError(f"{method} {url}: stopped after {MAX_REDIRECTS} redirects")

    # --- auth -------------------------------------------------------------------------------------
    def _basic(self) -> str | None:
        user, pw = self.auth.get("username"), self.auth.get("password")
        if user is None and pw is None:
            return None
        return "Basic " + base64.b64encode(f"{user or ''}:{pw or ''}".encode()).decode()

    def _token(self, params: dict[str, str], scopes: list[str]) -> str:
        if self.auth.get("registrytoken"):
            return self.auth["registrytoken"]
        realm, service = params.get("realm", ""), params.get("service", "")
        if not realm:
            raise RegistryError("bearer challenge without a realm")
        who = self.auth.get("username") or ""
        key = (realm, service, " ".join(sorted(scopes)), who)
        with _TOKEN_LOCK:
            cached = _TOKEN_CACHE.get(key)
            if cached and cached[1] > time.time() + 5:
                return cached[0]
        query = [("service", service)] if service else []
        query += [("scope", s) for s in scopes]
        if self.auth.get("identitytoken"):
            # OAuth2 refresh token (Docker Hub's identity token)
            body = urllib.parse.urlencode(
                [("grant_type", "refresh_token"), ("refresh_token", self.auth["identitytoken"]), ("client_id", "dockyard"), *query]
            )
            resp = self._raw("POST", realm, {"Content-Type": "application/x-www-form-urlencoded"}, body)
        else:
            url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
            headers = {}
            basic = self._basic()
            if basic:
                headers["Authorization"] = basic
            resp = self._raw("GET", url, headers)
        with resp:
            data = resp.read()
            if resp.status == 401:
                raise Unauthorized(_error_text(data) or "unauthorized: incorrect username or password")
            if resp.status != 200:
                raise RegistryError(f"token endpoint {realm} answered {resp.status}: {_error_text(data) or data[:200]!r}")
        try:
            doc = json.loads(data)
        except ValueError:
            raise RegistryError(f"token endpoint {realm} sent invalid JSON") from None
        token = doc.get("token") or doc.get("access_token")
        if not token:
            raise RegistryError(f"token endpoint {realm} sent no token")
        expires = time.time() + max(60, int(doc.get("expires_in") or 60))
        with _TOKEN_LOCK:
            _TOKEN_CACHE[key] = (token, expires)
        return token

    def _authorization(self, scopes: list[str]) -> str | None:
        if self._challenge is None:
            return None
        scheme, params = self._challenge
        if scheme == "basic":
            return self._basic()
        if scheme == "bearer":
            return "Bearer " + self._token(params, scopes)
        return None

    def request(
        self, method: str, path: str, scopes: list[str], headers: dict[str, str] | None = None, body=None  # noqa: ANN001
    ) -> Response:
        """A request to the registry (path relative to the base, or an absolute URL), answering
        an auth challenge once."""
        if "://" not in path and not self._settled:
            self._settle()
        url = path if "://" in path else self.base + path
        headers = dict(headers or {})
        for attempt in (0, 1):
            auth = self._authorization(scopes)
            h = dict(headers)
            if auth:
                h["Authorization"] = auth
            if hasattr(body, "seek") and attempt:
                body.seek(0)
            resp = self._raw(method, url, h, body)
            if resp.status == 401 and attempt == 0 and resp.headers.get("WWW-Authenticate"):
                challenge = _parse_challenge(resp.headers["WWW-Authenticate"])
                resp.read()
                resp.close()
                if challenge[0] == "bearer" and self._challenge and self._challenge[0] == "bearer":
                    # a fresh token for new scopes
                    _, params = challenge
                    if "scope" in params:
                        scopes = list(dict.fromkeys(scopes + params["scope"].split(" ")))
                self._challenge = challenge
                if challenge[0] == "basic" and self._basic() is None:
                    return self._raw(method, url, headers, body)
                continue
            return resp
        return resp

    # --- API --------------------------------------------------------------------------------------
    def ping(self) -> None:
        resp = self.request("GET", "/v2/", [])
        with resp:
            data = resp.read()
            if resp.status == 401:
                raise Unauthorized(_error_text(data) or "unauthorized: authentication required")
            if resp.status >= 400:
                raise RegistryError(f"registry {self.host} answered {resp.status} to GET /v2/")

    def get_manifest(self, repo: str, ref: str) -> tuple[bytes, str, str]:
        scopes = [f"repository:{repo}:pull"]
        resp = self.request("GET", f"/v2/{repo}/manifests/{ref}", scopes, {"Accept": ACCEPT_MANIFESTS})
        with resp:
            data = resp.read()
            if resp.status in (401, 403):
                raise Unauthorized(_error_text(data) or "denied: requested access to the resource is denied")
            if resp.status == 404:
                raise NotFound(_error_text(data) or "manifest unknown")
            if resp.status != 200:
                raise RegistryError(f"GET manifest {repo}:{ref}: {resp.status} {_error_text(data)}")
            media = (resp.headers.get("Content-Type") or "").split(";")[0].strip()
            import hashlib

            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            return data, media, digest

    def open_blob(self, repo: str, digest: str) -> Response:
        resp = self.request("GET", f"/v2/{repo}/blobs/{digest}", [f"repository:{repo}:pull"])
        if resp.status != 200:
            data = resp.read()
            resp.close()
            if resp.status in (401, 403):
                raise Unauthorized(_error_text(data) or "denied")
            if resp.status == 404:
                raise NotFound(f"blob {digest} not found in {repo}: {_error_text(data) or 'blob unknown'}")
            raise RegistryError(f"GET blob {digest}: {resp.status} {_error_text(data)}")
        return resp

    def blob_exists(self, repo: str, digest: str, push: bool = True) -> int | None:
        scopes = [f"repository:{repo}:pull,push" if push else f"repository:{repo}:pull"]
        resp = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scopes)
        with resp:
            resp.read()
            if resp.status == 200:
                return int(resp.headers.get("Content-Length") or 0)
            return None

    def _push_scopes(self, repo: str, extra: list[str] | None = None) -> list[str]:
        return [f"repository:{repo}:pull,push", *(extra or [])]

    def mount_blob(self, repo: str, digest: str, from_repo: str) -> bool:
        q = urllib.parse.urlencode({"mount": digest, "from": from_repo})
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/?{q}", self._push_scopes(repo, [f"repository:{from_repo}:pull"]), {"Content-Length": "0"}, b"")
        with resp:
            resp.read()
            if resp.status == 201:
                return True
            if resp.status == 202:  # mount refused, an upload session was opened: cancel it
                loc = resp.headers.get("Location")
                if loc:
                    self.request("DELETE", urllib.parse.urljoin(self.base + "/", loc), self._push_scopes(repo)).close()
            return False

    def upload_blob(self, repo: str, digest: str, size: int, reader, chunk_size: int | None = None, progress=None) -> None:  # noqa: ANN001
        """Upload a blob monolithically (one PUT) or in chunks (PATCH each, then PUT)."""
        scopes = self._push_scopes(repo)
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/", scopes, {"Content-Length": "0"}, b"")
        with resp:
            data = resp.read()
            if resp.status in (401, 403):
                raise Unauthorized(_error_text(data) or "denied: requested access to the resource is denied")
            if resp.status != 202:
                raise RegistryError(f"starting upload to {repo}: {resp.status} {_error_text(data)}")
            location = urllib.parse.urljoin(resp.url, resp.headers["Location"])
        done = 0

        def put_url(loc: str) -> str:
            return loc + ("&" if "?" in loc else "?") + urllib.parse.urlencode({"digest": digest})

        if chunk_size is None:
            body = _ProgressReader(reader, progress)
            resp = self.request(
                "PUT", put_url(location), scopes, {"Content-Type": "application/octet-stream", "Content-Length": str(size)}, body
            )
        else:
            while done < size:
                chunk = reader.read(min(chunk_size, size - done))
                if not chunk:
                    raise RegistryError(f"blob {digest} ended early at {done} of {size} bytes")
                resp = self.request(
                    "PATCH",
                    location,
                    scopes,
                    {
                        "Content-Type": "application/octet-stream",
                        "Content-Length": str(len(chunk)),
                        "Content-Range": f"{done}-{done + len(chunk) - 1}",
                    },
                    chunk,
                )
                with resp:
                    data = resp.read()
                    if resp.status != 202:
                        raise RegistryError(f"uploading a chunk of {digest}: {resp.status} {_error_text(data)}")
                    location = urllib.parse.urljoin(resp.url, resp.headers["Location"])
                done += len(chunk)
                if progress:
                    progress(done)
            resp = self.request("PUT", put_url(location), scopes, {"Content-Length": "0"}, b"")
        with resp:
            data = resp.read()
            if resp.status != 201:
                raise RegistryError(f"completing upload of {digest}: {resp.status} {_error_text(data)}")

    def put_manifest(self, repo: str, ref: str, body: bytes, media_type: str) -> str:
        resp = self.request(
            "PUT", f"/v2/{repo}/manifests/{ref}", self._push_scopes(repo), {"Content-Type": media_type, "Content-Length": str(len(body))}, body
        )
        with resp:
            data = resp.read()
            if resp.status in (401, 403):
                raise Unauthorized(_error_text(data) or "denied: requested access to the resource is denied")
            if resp.status != 201:
                raise InvalidParameter(f"manifest rejected by {self.host}: {resp.status} {_error_text(data)}")
            import hashlib

            return resp.headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(body).hexdigest()


class _ProgressReader:
    def __init__(self, raw, progress) -> None:  # noqa: ANN001
        self.raw, self.progress, self.done = raw, progress, 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n if n and n > 0 else 1 << 20)
        self.done += len(data)
        if self.progress and data:
            self.progress(self.done)
        return data


def _transport_error(e: BaseException, url: str) -> str:
    """A connection-level failure in the words Go's HTTP client (so Docker) uses."""
    netloc = urllib.parse.urlsplit(url).netloc
    if isinstance(e, ssl.SSLCertVerificationError):
        msg = str(getattr(e, "verify_message", "") or e)
        if "self-signed" in msg or "self signed" in msg or "local issuer" in msg or "unknown ca" in msg:
            return "tls: failed to verify certificate: x509: certificate signed by unknown authority"
        if "Hostname mismatch" in msg or "IP address mismatch" in msg:
            return f"tls: failed to verify certificate: x509: certificate is not valid for {netloc}"
        if "expired" in msg:
            return "tls: failed to verify certificate: x509: certificate has expired or is not yet valid"
        return f"tls: failed to verify certificate: x509: {msg}"
    if isinstance(e, ssl.SSLError):
        if getattr(e, "reason", "") in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"):
            return "http: server gave HTTP response to HTTPS client"
        return f"tls: {getattr(e, 'reason', None) or e}"
    if isinstance(e, ConnectionRefusedError):
        return f"dial tcp {netloc}: connect: connection refused"
    if isinstance(e, TimeoutError):
        return f"dial tcp {netloc}: i/o timeout"
    reason = getattr(e, "strerror", None) or str(e) or e.__class__.__name__
    return f"dial tcp {netloc}: {reason}"


def _error_text(data: bytes) -> str:
    """The registry's error list as Docker prints it: `code: message`."""
    try:
        doc = json.loads(data)
    except (ValueError, TypeError):
        return ""
    errs = doc.get("errors") if isinstance(doc, dict) else None
    if not errs:
        return ""
    parts = []
    for e in errs:
        code = str(e.get("code", "")).lower()
        msg = e.get("message", "")
        parts.append(f"{code}: {msg}" if code else msg)
    return "; ".join(parts)
