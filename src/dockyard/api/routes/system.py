"""System routes: /_ping (GET, HEAD), /version, /info, /system/df, /events."""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from dockyard.api.common import backend, json_response, qfilters
from dockyard.daemon import events as ev
from dockyard.daemon import timeutil
from dockyard.daemon.system import API_VERSION
from dockyard.errors import InvalidParameter


def _ping_headers() -> dict[str, str]:
    return {"API-Version": API_VERSION, "Docker-Experimental": "false", "Ostype": "linux", "Builder-Version": "1",
            "Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}  # fmt: skip


async def ping(request: web.Request) -> web.Response:
    body = "" if request.method == "HEAD" else "OK"
    resp = web.Response(text=body, content_type="text/plain", headers=_ping_headers())
    if request.method == "HEAD":
        resp.headers["Content-Length"] = "0"
    return resp


async def version(request: web.Request) -> web.Response:
    return json_response(backend(request, "system").version())


async def info(request: web.Request) -> web.Response:
    return json_response(await backend(request, "system").info())


async def df(request: web.Request) -> web.Response:
    types = set(request.query.getall("type", []))
    return json_response(await backend(request, "system").df(types))


def _parse_time(v: str | None) -> int | None:
    if not v:
        return None
    try:
        return timeutil.parse_api_time(v)
    except ValueError:
        raise InvalidParameter(f"invalid value for time: {v}") from None


async def events(request: web.Request) -> web.StreamResponse:
    sysb = backend(request, "system")
    filters = qfilters(request)
    since = _parse_time(request.query.get("since"))
    until = _parse_time(request.query.get("until"))
    q = sysb.events_subscribe(filters)  # validates filters before any header goes out
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    try:
        await resp.prepare(request)
        if since is not None:
            for e in sysb.events_history(since, until):
                if ev.matches(e, filters):
                    await resp.write((json.dumps(e) + "\n").encode())
        if until is not None and until <= time.time_ns():
            return resp
        while True:
            timeout = None if until is None else max(0.0, (until - time.time_ns()) / 1e9)
            try:
                e = await asyncio.wait_for(q.get(), timeout)
            except TimeoutError:
                break
            if since is not None and e["timeNano"] < since:
                continue
            if until is not None and e["timeNano"] > until:
                break
            if ev.matches(e, filters):
                await resp.write((json.dumps(e) + "\n").encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        sysb.events_unsubscribe(q)
    return resp


ROUTES = [
    ("GET", "/_ping", ping),
    ("HEAD", "/_ping", ping),
    ("GET", "/version", version),
    ("GET", "/info", info),
    ("GET", "/system/df", df),
    ("GET", "/events", events),
]
