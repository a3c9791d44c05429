"""Network routes: /networks (list), /networks/{id} (inspect, remove), /networks/create,
/networks/{id}/connect, /networks/{id}/disconnect, /networks/prune.

Thin: parse and check the request, resolve container names through the daemon's store, call
NetworkService (backend "networks"), answer in Docker's shapes.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dockyard.api.common import backend, json_response, no_content, qbool, qfilters, read_json
from dockyard.errors import InvalidParameter, NotFound, Unavailable


def _svc(request: web.Request) -> Any:
    svc = backend(request, "networks")
    if svc is None:
        raise Unavailable("networking is not available on this daemon")
    return svc


def _container(request: web.Request, ref: str) -> Any:
    """The daemon's container for a name or (partial) id; Docker's 404 otherwise."""
    if not ref:
        raise InvalidParameter("container is required")
    daemon = backend(request, "daemon")
    store = getattr(daemon, "store", None)
    if store is None:
        return ref
    c = store.find(ref)
    if c is None:
        raise NotFound(f"No such container: {ref}")
    return c


async def _body(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidParameter("invalid JSON: the body must be an object")
    return body


async def list_(request: web.Request) -> web.Response:
    return json_response(_svc(request).list_networks(qfilters(request)))


async def inspect(request: web.Request) -> web.Response:
    scope = request.query.get("scope", "")
    info = _svc(request).inspect_network(request.match_info["id"], qbool(request, "verbose"))
    if scope and scope != info.get("Scope"):
        raise NotFound(f"network {request.match_info['id']} not found")
    return json_response(info)


async def create(request: web.Request) -> web.Response:
    body = await _body(request)
    for key in ("Labels", "Options"):
        if body.get(key) is not None and not isinstance(body[key], dict):
            raise InvalidParameter(f"invalid {key}: must be an object")
    if body.get("IPAM") is not None and not isinstance(body["IPAM"], dict):
        raise InvalidParameter("invalid IPAM: must be an object")
    result = await _svc(request).create_network(body)
    _event(request, "create", result["Id"], body.get("Name", ""), body.get("Driver") or "bridge")
    return json_response(result, 201)


async def remove(request: web.Request) -> web.Response:
    svc = _svc(request)
    net = svc.find_network(request.match_info["id"])
    await svc.remove_network(net.id)
    _event(request, "destroy", net.id, net.name, net.driver)
    return no_content()


async def connect(request: web.Request) -> web.Response:
    body = await _body(request)
    ec = body.get("EndpointConfig")
    if ec is not None and not isinstance(ec, dict):
        raise InvalidParameter("invalid EndpointConfig: must be an object")
    svc = _svc(request)
    net = svc.find_network(request.match_info["id"])
    c = _container(request, body.get("Container") or "")
    live = await svc.connect(net.id, c, ec or {})
    if live is not False:  # a stopped container's connect event comes when it starts
        _event(request, "connect", net.id, net.name, net.driver, getattr(c, "id", c))
    return web.Response(status=200)


async def disconnect(request: web.Request) -> web.Response:
    body = await _body(request)
    svc = _svc(request)
    force = bool(body.get("Force"))
    net = svc.find_network(request.match_info["id"])
    ref = body.get("Container") or ""
    try:
        c = _container(request, ref)
    except NotFound:
        if not force:
            raise
        c = ref
    cid = getattr(c, "id", c)
    await svc.disconnect(net.id, cid, force)
    _event(request, "disconnect", net.id, net.name, net.driver, cid)
    return web.Response(status=200)


async def prune(request: web.Request) -> web.Response:
    gone = await _svc(request).prune_networks(qfilters(request))
    return json_response({"NetworksDeleted": gone or None})


def _event(request: web.Request, action: str, nid: str, name: str, driver: str, container: str = "") -> None:
    """Docker's network events, if the daemon has an event bus."""
    daemon = backend(request, "daemon")
    publish = getattr(getattr(daemon, "events", None), "publish", None)
    if publish is None:
        return
    attrs = {"name": name, "type": driver}
    if container:
        attrs["container"] = container
    publish("network", action, nid, attrs)


ROUTES = [
    ("GET", "/networks", list_),
    ("POST", "/networks/create", create),
    ("POST", "/networks/prune", prune),
    ("GET", "/networks/{id}", inspect),
    ("DELETE", "/networks/{id}", remove),
    ("POST", "/networks/{id}/connect", connect),
    ("POST", "/networks/{id}/disconnect", disconnect),
]
