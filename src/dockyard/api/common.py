"""Helpers every route module uses: the app keys that carry the backends, Docker-style query
parsing (booleans, ints, filters), JSON bodies with Docker's errors, and JSON responses.

A route module is any module in dockyard/api/routes/ with a `ROUTES` list of
`(method, path, handler)`; api/server.py serves each path both as `/path` and `/v{version}/path`.
Handlers reach the daemon through `backend(request, "<name>")`: "containers", "exec",
"volumes", "system" (daemon/backend.py), "images" (ImageService), "networks" (NetworkService or
None), and "daemon" (the Daemon object, for anything else).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from dockyard.errors import InvalidParameter

BACKENDS: web.AppKey[dict[str, Any]] = web.AppKey("backends", dict)
MAX_JSON_BODY = 16 * 1024 * 1024

TRUE = {"1", "true", "True", "TRUE", "yes", "on"}
FALSE = {"0", "false", "False", "FALSE", "no", "off", ""}


def backend(request: web.Request, name: str) -> Any:
    return request.app[BACKENDS][name]


def api_version(request: web.Request) -> str:
    return request.get("api_version") or "1.43"


def version_lt(a: str, b: str) -> bool:
    def parts(v: str) -> tuple[int, ...]:
        try:
            return tuple(int(x) for x in v.split("."))
        except ValueError:
            return (0,)

    return parts(a) < parts(b)


def qbool(request: web.Request, name: str, default: bool = False) -> bool:
    """Docker's boolValue: absent -> default; '', '0', 'false', 'no', 'none' -> False; anything else True."""
    if name not in request.query:
        return default
    v = request.query.get(name, "").strip().lower()
    return v not in ("", "0", "false", "no", "off", "none")


def qbool_strict(request: web.Request, name: str, default: bool = False) -> bool:
    if name not in request.query:
        return default
    v = request.query.get(name, "")
    if v in TRUE:
        return True
    if v in FALSE:
        return False
    raise InvalidParameter(f'invalid value for {name}: "{v}"')


def qint(request: web.Request, name: str, default: int | None = None) -> int | None:
    v = request.query.get(name)
    if v is None or v == "":
        return default
    try:
        return int(v)
    except ValueError:
        raise InvalidParameter(f'strconv.Atoi: parsing "{v}": invalid syntax') from None


def qfilters(request: web.Request) -> dict[str, list[str]]:
    from dockyard.daemon import filters

    return filters.parse(request.query.get("filters"))


async def read_json(request: web.Request, required: bool = False) -> Any:
    """The JSON body, with Docker's checks: Content-Type must be JSON when a body is sent."""
    raw = await request.read()
    if not raw.strip():
        if required:
            raise InvalidParameter("invalid JSON: body is empty")
        return None
    ctype = request.headers.get("Content-Type", "")
    if ctype and not ctype.split(";")[0].strip().lower().endswith("json"):
        raise InvalidParameter(f"unsupported Content-Type header ({ctype}): must be 'application/json'")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidParameter(f"invalid JSON: {e}") from None


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    body = (json.dumps(data, separators=(",", ":")) + "\n").encode()
    hdrs = {"Content-Type": "application/json"}  # exactly: the Docker CLI compares it as a string
    hdrs.update(headers or {})
    return web.Response(status=status, body=body, headers=hdrs)


def no_content() -> web.Response:
    return web.Response(status=204)
