"""Container routes: /containers/... (create, lifecycle, wait, attach, logs, list, inspect, top,
stats, changes, export, archive, resize, rename, update, prune, delete)."""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import web

from dockyard.api import hijack
from dockyard.api.common import (
    api_version,
    backend,
    json_response,
    no_content,
    qbool,
    qfilters,
    qint,
    read_json,
    version_lt,
)
from dockyard.daemon import archive as archive_mod
from dockyard.daemon import attach, lifecycle, logs, timeutil
from dockyard.errors import InvalidParameter


def _cb(request: web.Request):  # noqa: ANN202
    return backend(request, "containers")


async def list_(request: web.Request) -> web.Response:
    out = await _cb(request).list(
        all_=qbool(request, "all"),
        limit=qint(request, "limit", -1) or -1,
        size=qbool(request, "size"),
        latest=qbool(request, "latest"),
        filters=qfilters(request),
    )
    return json_response(out)


async def create(request: web.Request) -> web.Response:
    body = await read_json(request, required=True)
    if not isinstance(body, dict):
        raise InvalidParameter("config cannot be empty in order to create a container")
    platform = request.query.get("platform", "")
    if platform and platform.split("/")[0] != "linux":
        raise InvalidParameter(f'"{platform}": unknown operating system or architecture: invalid argument')
    cid, warnings = await _cb(request).create(request.query.get("name") or None, body)
    return json_response({"Id": cid, "Warnings": warnings}, 201)


async def inspect(request: web.Request) -> web.Response:
    return json_response(await _cb(request).inspect(request.match_info["id"], qbool(request, "size")))


async def start(request: web.Request) -> web.Response:
    body = await read_json(request)
    if body and isinstance(body, dict) and any(body.values()) and not version_lt(api_version(request), "1.24"):
        raise InvalidParameter("starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24")
    await _cb(request).start(request.match_info["id"])
    return no_content()


def _timeout(request: web.Request) -> int | None:
    return qint(request, "t", None)


async def stop(request: web.Request) -> web.Response:
    await _cb(request).stop(request.match_info["id"], _timeout(request), request.query.get("signal") or None)
    return no_content()


async def restart(request: web.Request) -> web.Response:
    await _cb(request).restart(request.match_info["id"], _timeout(request), request.query.get("signal") or None)
    return no_content()


async def kill(request: web.Request) -> web.Response:
    await _cb(request).kill(request.match_info["id"], request.query.get("signal") or None)
    return no_content()


async def pause(request: web.Request) -> web.Response:
    await _cb(request).pause(request.match_info["id"])
    return no_content()


async def unpause(request: web.Request) -> web.Response:
    await _cb(request).unpause(request.match_info["id"])
    return no_content()


async def wait(request: web.Request) -> web.StreamResponse:
    """Headers go out at once (the CLI sends wait before start and waits for them); the body
    when the condition is met."""
    cb = _cb(request)
    c = cb.get(request.match_info["id"])
    condition = lifecycle.check_wait_condition(request.query.get("condition"))
    fut = asyncio.ensure_future(cb.wait(c, condition))
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    try:
        code = await fut
    except asyncio.CancelledError:
        fut.cancel()
        raise
    with contextlib.suppress(ConnectionResetError):
        await resp.write((json.dumps({"StatusCode": code, "Error": None}) + "\n").encode())
        await resp.write_eof()
    return resp


async def remove(request: web.Request) -> web.Response:
    await _cb(request).remove(request.match_info["id"], qbool(request, "force"), qbool(request, "v"), qbool(request, "link"))
    return no_content()


async def prune(request: web.Request) -> web.Response:
    return json_response(await _cb(request).prune(qfilters(request)))


async def rename(request: web.Request) -> web.Response:
    await _cb(request).rename(request.match_info["id"], request.query.get("name", ""))
    return no_content()


async def update(request: web.Request) -> web.Response:
    body = await read_json(request) or {}
    warnings = await _cb(request).update(request.match_info["id"], body)
    return json_response({"Warnings": warnings or None})  # dockerd: null when there are none


def _hw(request: web.Request) -> tuple[int, int]:
    h, w = qint(request, "h", 0), qint(request, "w", 0)
    if h is None or w is None or h < 0 or w < 0:
        raise InvalidParameter("invalid resize parameters")
    return h, w


async def resize(request: web.Request) -> web.Response:
    h, w = _hw(request)
    await _cb(request).resize(request.match_info["id"], h, w)
    return web.Response(status=200, text="", content_type="text/plain")


async def top(request: web.Request) -> web.Response:
    return json_response(await _cb(request).top(request.match_info["id"], request.query.get("ps_args")))


async def changes(request: web.Request) -> web.Response:
    return json_response(await _cb(request).changes(request.match_info["id"]))


async def export(request: web.Request) -> web.StreamResponse:
    cb = _cb(request)
    c = cb.get(request.match_info["id"])
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/x-tar"})
    gen = cb.export(c)
    first = await gen.__anext__()  # errors before any header goes out
    await resp.prepare(request)
    await resp.write(first)
    async for chunk in gen:
        await resp.write(chunk)
    await resp.write_eof()
    return resp


def _log_options(request: web.Request, follow_default: bool = False) -> logs.LogOptions:
    stdout, stderr = qbool(request, "stdout"), qbool(request, "stderr")
    tail_raw = request.query.get("tail", "all")
    if tail_raw in ("", "all"):
        tail = -1
    else:
        try:
            tail = int(tail_raw)
        except ValueError:
            tail = -1
    since = request.query.get("since")
    until = request.query.get("until")
    try:
        since_ns = timeutil.parse_api_time(since) if since and since != "0" else 0
        until_ns = timeutil.parse_api_time(until) if until and until != "0" else 0
    except ValueError as e:
        raise InvalidParameter(str(e)) from None
    return logs.LogOptions(stdout=stdout, stderr=stderr, since_ns=since_ns, until_ns=until_ns, tail=tail,
                           timestamps=qbool(request, "timestamps"), follow=qbool(request, "follow", follow_default))  # fmt: skip


async def get_logs(request: web.Request) -> web.StreamResponse:
    cb = _cb(request)
    c = cb.get(request.match_info["id"])
    o = _log_options(request)
    if not o.stdout and not o.stderr:
        raise InvalidParameter("Bad parameters: you must choose at least one stream")
    tty = bool(c.config.get("Tty"))
    gen = cb.logs(c, o)
    ctype = hijack.RAW if tty or version_lt(api_version(request), "1.42") else hijack.MULTIPLEXED
    resp = web.StreamResponse(status=200, headers={"Content-Type": ctype})
    await resp.prepare(request)
    try:
        async for e in gen:
            await resp.write(logs.frame(e, tty, o.timestamps))
        await resp.write_eof()
    except ConnectionResetError:
        pass
    return resp


async def attach_(request: web.Request) -> web.StreamResponse:
    cb = _cb(request)
    c = cb.get(request.match_info["id"])
    keys = attach.parse_detach_keys(request.query.get("detachKeys"))
    tty = bool(c.config.get("Tty"))
    ctype = hijack.RAW if tty or version_lt(api_version(request), "1.42") else hijack.MULTIPLEXED
    hijacked: list = []

    async def do_hijack():  # noqa: ANN202
        resp, stream = await hijack.hijack(request, ctype)
        hijacked.append((resp, stream))
        return stream

    try:
        await cb.attach(c, do_hijack, stdin=qbool(request, "stdin"), stdout=qbool(request, "stdout"),
                        stderr=qbool(request, "stderr"), stream=qbool(request, "stream"),
                        replay_logs=qbool(request, "logs"), detach_keys=keys)  # fmt: skip
    finally:
        if hijacked:
            await hijacked[0][1].close()
    return hijacked[0][0]


async def attach_ws(request: web.Request) -> web.StreamResponse:
    """GET /containers/{id}/attach/ws: attach over a websocket, output never multiplexed. Before
    API 1.42 the stdin/stdout/stderr parameters are ignored (all three), as in dockerd; `stream`
    and `logs` default to false."""
    cb = _cb(request)
    c = cb.get(request.match_info["id"])
    keys = attach.parse_detach_keys(request.query.get("detachKeys"))
    version = api_version(request)
    if version_lt(version, "1.42"):
        want = {"stdin": True, "stdout": True, "stderr": True}
    else:
        want = {name: qbool(request, name) for name in ("stdin", "stdout", "stderr")}
    ws = web.WebSocketResponse()
    if not ws.can_prepare(request).ok:
        raise InvalidParameter("this endpoint expects a websocket upgrade (Upgrade: websocket)")
    client = hijack.WebSocketStream(ws, binary=not version_lt(version, "1.28"))

    async def do_upgrade() -> hijack.WebSocketStream:
        await ws.prepare(request)
        return client

    try:
        await cb.attach(c, do_upgrade, **want, stream=qbool(request, "stream"), replay_logs=qbool(request, "logs"),
                        detach_keys=keys, multiplex=False)  # fmt: skip
    finally:
        if ws.prepared:
            await ws.close()
    return ws


async def stats(request: web.Request) -> web.StreamResponse:
    cb = _cb(request)
    c = cb.get(request.match_info["id"])
    stream = qbool(request, "stream", True)
    one_shot = qbool(request, "one-shot")
    if one_shot and stream:
        raise InvalidParameter("cannot have stream=true and one-shot=true")
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    try:
        async for s in cb.stats(c, stream, one_shot):
            await resp.write((json.dumps(s) + "\n").encode())
        await resp.write_eof()
    except ConnectionResetError:
        pass
    return resp


def _path(request: web.Request) -> str:
    p = request.query.get("path")
    if p is None or p == "":
        raise InvalidParameter("path is required")
    return p


async def archive_head(request: web.Request) -> web.Response:
    cb = _cb(request)
    c = cb.get(request.match_info["id"])
    info = await cb.archive_stat(c, _path(request))
    return web.Response(status=200, headers={"X-Docker-Container-Path-Stat": archive_mod.stat_header(info)})


async def archive_get(request: web.Request) -> web.StreamResponse:
    cb = _cb(request)
    c = cb.get(request.match_info["id"])
    info, gen = await cb.archive_get(c, _path(request))
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/x-tar",
                                                   "X-Docker-Container-Path-Stat": archive_mod.stat_header(info)})  # fmt: skip
    await resp.prepare(request)
    try:
        async for chunk in gen:
            await resp.write(chunk)
        await resp.write_eof()
    except ConnectionResetError:
        pass
    finally:
        await gen.aclose()
    return resp


class _BodyReader:
    """A blocking file-like over the request body, for the extraction thread."""

    def __init__(self, request: web.Request, loop: asyncio.AbstractEventLoop) -> None:
        self.content = request.content
        self.loop = loop

    def read(self, n: int = -1) -> bytes:
        fut = asyncio.run_coroutine_threadsafe(self.content.read(n if n and n > 0 else 1 << 20), self.loop)
        return fut.result()


async def archive_put(request: web.Request) -> web.Response:
    cb = _cb(request)
    c = cb.get(request.match_info["id"])
    path = _path(request)
    body = _BodyReader(request, asyncio.get_running_loop())
    await cb.archive_put(c, path, body, qbool(request, "noOverwriteDirNonDir"), qbool(request, "copyUIDGID"))
    return web.Response(status=200)


ROUTES = [
    ("GET", "/containers/json", list_),
    ("POST", "/containers/create", create),
    ("POST", "/containers/prune", prune),
    ("GET", "/containers/{id}/json", inspect),
    ("GET", "/containers/{id}/top", top),
    ("GET", "/containers/{id}/logs", get_logs),
    ("GET", "/containers/{id}/changes", changes),
    ("GET", "/containers/{id}/export", export),
    ("GET", "/containers/{id}/stats", stats),
    ("POST", "/containers/{id}/resize", resize),
    ("POST", "/containers/{id}/start", start),
    ("POST", "/containers/{id}/stop", stop),
    ("POST", "/containers/{id}/restart", restart),
    ("POST", "/containers/{id}/kill", kill),
    ("POST", "/containers/{id}/update", update),
    ("POST", "/containers/{id}/rename", rename),
    ("POST", "/containers/{id}/pause", pause),
    ("POST", "/containers/{id}/unpause", unpause),
    ("POST", "/containers/{id}/attach", attach_),
    ("GET", "/containers/{id}/attach/ws", attach_ws),
    ("POST", "/containers/{id}/wait", wait),
    ("DELETE", "/containers/{id}", remove),
    ("HEAD", "/containers/{id}/archive", archive_head),
    ("GET", "/containers/{id}/archive", archive_get),
    ("PUT", "/containers/{id}/archive", archive_put),
]
