"""The Engine API application: route tables from api/routes/, served at `/path` and
`/v{version}/path`, Docker's error bodies and status codes, API version checks, and the listeners
(unix sockets with mode 0660, TCP with optional TLS).
"""

from __future__ import annotations

import errno
import grp
import logging
import os
import re
import socket
import ssl
from typing import Any
from urllib.parse import urlparse

from aiohttp import web

from dockyard.api import routes
from dockyard.api.common import BACKENDS, MAX_JSON_BODY, json_response, version_lt
from dockyard.daemon.system import API_VERSION, MIN_API_VERSION
from dockyard.errors import DockyardError, NotModified

log = logging.getLogger("dockyard.api")

_VERSIONED = re.compile(r"^/v([0-9]+(?:\.[0-9]+)?)(/.*)$")


@web.middleware
async def _middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    m = _VERSIONED.match(request.path)
    if m:
        version = m.group(1)
        if version_lt(API_VERSION, version):
            return json_response({"message": f"client version {version} is too new. Maximum supported API version is {API_VERSION}"}, 400)
        if version_lt(version, MIN_API_VERSION):
            return json_response({"message": f"client version {version} is too old. Minimum supported API version is "
                                  f"{MIN_API_VERSION}, please upgrade your client to a newer version"}, 400)  # fmt: skip
        request["api_version"] = version
    else:
        request["api_version"] = API_VERSION
    try:
        resp = await handler(request)
    except NotModified:
        return web.Response(status=304)
    except DockyardError as e:
        log.debug("%s %s -> %s %s", request.method, request.path_qs, e.status, e.message)
        return json_response({"message": e.message}, e.status)
    except web.HTTPRequestEntityTooLarge as e:
        return json_response({"message": e.text or "request body too large"}, 413)
    except web.HTTPNotFound:
        return json_response({"message": "page not found"}, 404)
    except web.HTTPMethodNotAllowed:
        return json_response({"message": "page not found"}, 404)
    except web.HTTPException as e:
        if e.status >= 400:
            return json_response({"message": e.text or e.reason}, e.status)
        raise
    except (ConnectionResetError, BrokenPipeError):
        raise
    except Exception as e:  # noqa: BLE001 - a bug: report it like dockerd does, as a 500
        log.exception("%s %s failed", request.method, request.path)
        return json_response({"message": str(e) or e.__class__.__name__}, 500)
    if log.isEnabledFor(logging.DEBUG):
        log.debug("%s %s -> %s", request.method, request.path_qs, resp.status)
    resp.headers.setdefault("Api-Version", API_VERSION)
    resp.headers.setdefault("Docker-Experimental", "false")
    resp.headers.setdefault("Ostype", "linux")
    resp.headers.setdefault("Server", "Docker/dockyard (linux)")
    return resp


def build_app(backends: dict[str, Any]) -> web.Application:
    app = web.Application(middlewares=[_middleware], client_max_size=MAX_JSON_BODY, handler_args={"max_field_size": 65536})
    app[BACKENDS] = backends
    for method, path, handler in routes.all_routes():
        app.router.add_route(method, path, handler)
        app.router.add_route(method, r"/v{version:[0-9]+(?:\.[0-9]+)?}" + path, handler)
    return app


def _tls_context(cfg: Any) -> ssl.SSLContext | None:
    if not cfg.tls:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if not cfg.tlscert or not cfg.tlskey:
        raise SystemExit("--tls needs --tlscert and --tlskey")
    ctx.load_cert_chain(cfg.tlscert, cfg.tlskey)
    if cfg.tlsverify:
        if not cfg.tlscacert:
            raise SystemExit("--tlsverify needs --tlscacert")
        ctx.load_verify_locations(cfg.tlscacert)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _prepare_unix_path(path: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
    if os.path.exists(path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        except OSError as e:
            if e.errno in (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTSOCK):
                os.unlink(path)
            else:
                raise
        else:
            raise SystemExit(f"another daemon is listening on {path}")
        finally:
            s.close()


async def start_listeners(runner: web.AppRunner, cfg: Any) -> list[str]:
    """Bind every -H address; returns the unix socket paths (removed at shutdown)."""
    sockets = []
    for host in cfg.hosts:
        if host.startswith("unix://") or host.startswith("/"):
            path = host[len("unix://"):] if host.startswith("unix://") else host
            _prepare_unix_path(path)
            site = web.UnixSite(runner, path)
            await site.start()
            os.chmod(path, 0o660)
            try:
                gid = grp.getgrnam(cfg.socket_group).gr_gid
                os.chown(path, 0, gid)
            except (KeyError, PermissionError):
                pass
            sockets.append(path)
            log.info("API listen on %s", path)
        elif host.startswith("tcp://"):
            u = urlparse(host)
            ctx = _tls_context(cfg)
            port = u.port or (2376 if ctx else 2375)
            if ctx is None:
                log.warning("binding to %s without TLS: anyone who can reach it controls the host", host)
            site = web.TCPSite(runner, u.hostname or "0.0.0.0", port, ssl_context=ctx)  # type: ignore[assignment]
            await site.start()
            log.info("API listen on %s:%d", u.hostname, port)
        else:
            raise SystemExit(f"unsupported host: {host} (use unix:///path or tcp://addr:port)")
    return sockets
