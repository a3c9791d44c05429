"""Exec routes: POST /containers/{id}/exec, /exec/{id}/start, /exec/{id}/resize, GET /exec/{id}/json."""

from __future__ import annotations

from aiohttp import web

from dockyard.api import hijack
from dockyard.api.common import api_version, backend, json_response, qint, read_json, version_lt
from dockyard.errors import InvalidParameter


async def create(request: web.Request) -> web.Response:
    body = await read_json(request, required=True)
    if not isinstance(body, dict):
        raise InvalidParameter("config cannot be empty in order to create an exec")
    eid = await backend(request, "exec").create(request.match_info["id"], body)
    return json_response({"Id": eid}, 201)


async def start(request: web.Request) -> web.StreamResponse:
    eb = backend(request, "exec")
    body = await read_json(request) or {}
    if not isinstance(body, dict):
        raise InvalidParameter("invalid exec start body")
    ex = eb.get(request.match_info["id"])
    detach = bool(body.get("Detach"))
    tty = body.get("Tty")
    console = body.get("ConsoleSize")
    if detach:
        await eb.start(ex, None, True, tty, console)
        return web.Response(status=200)
    use_tty = bool(tty) or ex.tty
    ctype = hijack.RAW if use_tty or version_lt(api_version(request), "1.42") else hijack.MULTIPLEXED
    # errors before the process starts (not running, already started) are plain HTTP errors
    eb.check_startable(ex)
    resp, stream = await hijack.hijack(request, ctype)
    try:
        await eb.start(ex, stream, False, tty, console)
    finally:
        await stream.close()
    return resp


async def resize(request: web.Request) -> web.Response:
    h, w = qint(request, "h", 0), qint(request, "w", 0)
    if h is None or w is None or h < 0 or w < 0:
        raise InvalidParameter("invalid resize parameters")
    await backend(request, "exec").resize(request.match_info["id"], h, w)
    return web.Response(status=200)


async def inspect(request: web.Request) -> web.Response:
    return json_response(backend(request, "exec").inspect(request.match_info["id"]))


ROUTES = [
    ("POST", "/containers/{id}/exec", create),
    ("POST", "/exec/{id}/start", start),
    ("POST", "/exec/{id}/resize", resize),
    ("GET", "/exec/{id}/json", inspect),
]
