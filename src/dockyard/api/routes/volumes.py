"""Volume routes: /volumes (list), /volumes/create, /volumes/{name} (inspect, remove), /volumes/prune."""

from __future__ import annotations

from aiohttp import web

from dockyard.api.common import backend, json_response, no_content, qbool, qfilters, read_json
from dockyard.errors import InvalidParameter


async def list_(request: web.Request) -> web.Response:
    return json_response(await backend(request, "volumes").list(qfilters(request)))


async def create(request: web.Request) -> web.Response:
    body = await read_json(request) or {}
    if not isinstance(body, dict):
        raise InvalidParameter("invalid volume create body")
    for key in ("DriverOpts", "Labels"):
        if body.get(key) is not None and not isinstance(body[key], dict):
            raise InvalidParameter(f"invalid {key}: must be an object")
    return json_response(await backend(request, "volumes").create(body), 201)


async def inspect(request: web.Request) -> web.Response:
    return json_response(await backend(request, "volumes").inspect(request.match_info["name"]))


async def remove(request: web.Request) -> web.Response:
    await backend(request, "volumes").remove(request.match_info["name"], qbool(request, "force"))
    return no_content()


async def prune(request: web.Request) -> web.Response:
    return json_response(await backend(request, "volumes").prune(qfilters(request)))


ROUTES = [
    ("GET", "/volumes", list_),
    ("POST", "/volumes/create", create),
    ("POST", "/volumes/prune", prune),
    ("GET", "/volumes/{name}", inspect),
    ("DELETE", "/volumes/{name}", remove),
]
