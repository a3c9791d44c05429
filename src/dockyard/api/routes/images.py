"""Image routes: /images/* (list, create = pull or import, inspect, history, push, tag, remove,
get = save, load, prune), /commit, /distribution/{name}/json and /auth.

Streamed routes (pull, import, push, load) send Docker's newline-delimited JSON messages
through api/streams.py (`stream_json`, `BodyReader`); the blocking work (network, extraction,
hashing, fsync) runs in worker threads.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from dockyard.api.common import api_version, backend, json_response, qbool, qfilters, read_json
from dockyard.api.streams import BodyReader, stream_json
from dockyard.api.streams import Emit as Progress
from dockyard.errors import InvalidParameter, NotFound, Unauthorized
from dockyard.image import auth as authmod
from dockyard.image import reference


def _svc(request: web.Request) -> Any:
    svc = backend(request, "images")
    if svc is None:
        raise NotFound("image service not available")
    return svc


def _event(request: web.Request, action: str, actor: str, attrs: dict[str, str] | None = None) -> None:
    try:
        events = getattr(backend(request, "daemon"), "events", None)
    except KeyError:
        return
    if events is not None:
        events.publish("image", action, actor, attrs or {})


def _auth(request: web.Request) -> dict | None:
    return authmod.decode_header(request.headers.get("X-Registry-Auth"))


# --- list, inspect, history ------------------------------------------------------------------------
async def list_(request: web.Request) -> web.Response:
    svc = _svc(request)
    filters = qfilters(request)
    for key in filters:
        if key not in ("dangling", "label", "before", "since", "reference", "until"):
            raise InvalidParameter(f"invalid filter '{key}'")
    out = await asyncio.to_thread(svc.list, qbool(request, "all"), filters, api_version(request))
    if qbool(request, "shared-size"):
        images, _ = await asyncio.to_thread(svc.disk_usage)
        shared = {i["Id"]: i["SharedSize"] for i in images}
        for s in out:
            s["SharedSize"] = shared.get(s["Id"], -1)
    return json_response(out)


async def inspect(request: web.Request) -> web.Response:
    return json_response(await asyncio.to_thread(_svc(request).inspect, request.match_info["name"], api_version(request)))


async def history(request: web.Request) -> web.Response:
    return json_response(await asyncio.to_thread(_svc(request).history, request.match_info["name"]))


# --- create: pull or import -------------------------------------------------------------------------
async def create(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    q = request.query
    from_image, from_src = q.get("fromImage"), q.get("fromSrc")
    tag = q.get("tag", "")
    if from_image:
        ref_str = from_image
        if tag:
            ref_str += ("@" if tag.startswith("sha256:") else ":") + tag
        ref = reference.parse_normalized(ref_str)  # a bad reference is a 400 before streaming
        auth = _auth(request)
        platform = q.get("platform") or None

        async def job(progress: Progress) -> None:
            await svc.pull(str(ref) if not ref.digest else ref_str, auth, progress, platform)
            _event(request, "pull", ref.familiar())

        return await stream_json(request, job)
    if from_src:
        repo = q.get("repo", "")
        repo_tag = None
        if repo:
            repo_tag = f"{repo}:{tag}" if tag else repo
            reference.parse_normalized(repo_tag)
        changes = q.getall("changes", [])
        message = q.get("message") or None
        loop = asyncio.get_running_loop()

        def run(progress: Progress) -> str:
            if from_src == "-":
                image_id = svc.import_(BodyReader(request, loop), repo_tag, changes=changes, message=message, src="-")
            else:
                image_id = import_from_url(svc, from_src, repo_tag, changes, message, progress)
            progress({"status": image_id})
            return image_id

        async def job(progress: Progress) -> None:
            image_id = await asyncio.to_thread(run, progress)
            _event(request, "import", image_id)

        return await stream_json(request, job)
    raise InvalidParameter("fromImage or fromSrc must be specified")


def import_from_url(svc: Any, src: str, repo_tag: str | None, changes: list[str], message: str | None,
                    progress: Progress) -> str:  # fmt: skip
    """`docker import URL` (blocking): http:// is assumed without a scheme; the history comment
    names the URL as fetched; a failed GET is an error in dockerd's words."""
    import urllib.error
    import urllib.request

    url = src if "://" in src else "http://" + src
    try:
        resp = urllib.request.urlopen(url, timeout=60)  # noqa: S310 - what docker import URL does
    except urllib.error.HTTPError as e:
        raise InvalidParameter(f"failed to GET {url} with status {e.code} {e.reason}: {e.read()[:200].decode(errors='replace')}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise InvalidParameter(f'Get "{url}": {getattr(e, "reason", None) or e}') from None
    progress({"status": f"Downloading from {url}"})
    with resp:
        return svc.import_(resp, repo_tag, changes=changes, message=message, src=url)


# --- push, tag, remove --------------------------------------------------------------------------------
async def push(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    name = request.match_info["name"]
    tag = request.query.get("tag", "")
    ref_str = f"{name}:{tag}" if tag else name
    reference.parse(ref_str)
    auth = _auth(request)

    async def job(progress: Progress) -> None:
        await svc.push(ref_str, auth, progress)
        _event(request, "push", ref_str)

    return await stream_json(request, job)


async def tag(request: web.Request) -> web.Response:
    svc = _svc(request)
    repo = request.query.get("repo", "")
    if not repo:
        raise InvalidParameter("repository name must have at least one component")
    name = request.match_info["name"]
    image_id = await asyncio.to_thread(svc.resolve, name)
    new = await asyncio.to_thread(svc.tag, name, repo, request.query.get("tag", ""))
    _event(request, "tag", image_id, {"name": new})
    return web.Response(status=201)


async def remove(request: web.Request) -> web.Response:
    svc = _svc(request)
    name = request.match_info["name"]
    image_id = await asyncio.to_thread(svc.resolve, name)
    records = await asyncio.to_thread(svc.remove, name, qbool(request, "force"), not qbool(request, "noprune"))
    for r in records:
        if "Untagged" in r:
            _event(request, "untag", image_id, {"name": r["Untagged"]})
        elif r.get("Deleted") == image_id:
            _event(request, "delete", image_id)
    return json_response(records)


async def prune(request: web.Request) -> web.Response:
    svc = _svc(request)
    filters = qfilters(request)
    for key in filters:
        if key not in ("dangling", "until", "label", "label!"):
            raise InvalidParameter(f"invalid filter '{key}'")
    dangling = filters.pop("dangling", ["true"])
    only_dangling = str(dangling[0]).lower() in ("true", "1")
    result = await asyncio.to_thread(svc.prune, only_dangling, filters)
    _event(request, "prune", "", {"reclaimed": str(result["SpaceReclaimed"])})
    return json_response(result)


# --- save, load -----------------------------------------------------------------------------------
class _RespWriter:
    """A blocking write() into a StreamResponse, from a worker thread."""

    def __init__(self, resp: web.StreamResponse, loop: asyncio.AbstractEventLoop) -> None:
        self.resp, self.loop = resp, loop

    def write(self, data: bytes) -> int:
        asyncio.run_coroutine_threadsafe(self.resp.write(bytes(data)), self.loop).result()
        return len(data)

    def flush(self) -> None:
        pass


async def _save(request: web.Request, names: list[str]) -> web.StreamResponse:
    svc = _svc(request)
    if not names:
        raise InvalidParameter("no images named")
    for n in names:
        await asyncio.to_thread(svc.resolve, n)  # 404 before any byte is sent
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/x-tar"})
    await resp.prepare(request)
    loop = asyncio.get_running_loop()
    await asyncio.to_thread(svc.save, names, _RespWriter(resp, loop))
    for n in names:
        _event(request, "save", n)
    await resp.write_eof()
    return resp


async def get_one(request: web.Request) -> web.StreamResponse:
    return await _save(request, [request.match_info["name"]])


async def get_many(request: web.Request) -> web.StreamResponse:
    return await _save(request, request.query.getall("names", []))


async def load(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    loop = asyncio.get_running_loop()
    quiet = qbool(request, "quiet")

    async def job(progress: Progress) -> None:
        def run() -> list[str]:
            def p(msg: dict) -> None:
                if not quiet or "stream" in msg:
                    progress(msg)

            return svc.load(BodyReader(request, loop), p)

        lines = await asyncio.to_thread(run)
        for line in lines:
            _event(request, "load", line.split(": ", 1)[-1])

    return await stream_json(request, job)


# --- commit ---------------------------------------------------------------------------------------
async def commit(request: web.Request) -> web.Response:
    svc = _svc(request)
    q = request.query
    cname = q.get("container", "")
    if not cname:
        raise InvalidParameter("No container name or ID supplied")
    cb = backend(request, "containers")
    c = cb.get(cname)
    body = await read_json(request)
    repo, tag_ = q.get("repo", ""), q.get("tag", "")
    repo_tag = (f"{repo}:{tag_}" if tag_ else repo) if repo else None
    if repo_tag:
        ref = reference.parse_normalized(repo_tag)
        if ref.digest:
            raise InvalidParameter("cannot commit to digest reference")
    config = dict(c.config)
    if isinstance(body, dict):
        for k, v in body.items():
            if v not in (None, "", [], {}):
                config[k] = v
    pause = qbool(request, "pause", True)
    paused_here = False
    if pause and c.state.running and not c.state.paused:
        await cb.pause(c.id)
        paused_here = True
    try:
        image_id = await asyncio.to_thread(
            svc.commit,
            c.id,
            c.image_id or None,
            repo_tag,
            config,
            q.getall("changes", []),
            q.get("author", ""),
            q.get("comment", ""),
            c.config,
        )
    finally:
        if paused_here:
            await cb.unpause(c.id)
    try:
        daemon = backend(request, "daemon")
        daemon.events.publish("container", "commit", c.id, {"comment": q.get("comment", ""), "imageID": image_id})
    except (KeyError, AttributeError):
        pass
    return json_response({"Id": image_id}, 201)


# --- distribution and auth ------------------------------------------------------------------------
async def distribution(request: web.Request) -> web.Response:
    from dockyard.image import manifest as mf
    from dockyard.image.registry import Registry, RegistryConfig

    svc = _svc(request)
    ref = reference.parse_normalized(request.match_info["name"])
    header_auth = _auth(request)
    cfg = svc.registry_config if isinstance(svc.registry_config, RegistryConfig) else RegistryConfig.from_options(svc.registry_config)

    def run() -> dict:
        reg = Registry(ref.domain, header_auth or authmod.lookup(ref.domain), cfg)
        try:
            body, media, digest = reg.get_manifest(ref.path, ref.digest or ref.tag or "latest")
        except Unauthorized:
            raise Unauthorized(f"pull access denied for {ref.familiar_name}, repository does not exist or may require 'docker login'") from None
        man = mf.parse(body, media)
        platforms = []
        if isinstance(man, mf.Index):
            for d in man.manifests:
                p = d.platform or {}
                platforms.append({k: v for k, v in {"architecture": p.get("architecture", ""), "os": p.get("os", ""),
                                                    "os.version": p.get("os.version"), "variant": p.get("variant")}.items() if v})
        else:
            with reg.open_blob(ref.path, man.config.digest) as resp:
                cfg_doc = json.loads(resp.read())
            platforms.append({k: v for k, v in {"architecture": cfg_doc.get("architecture", ""), "os": cfg_doc.get("os", ""),
                                                "variant": cfg_doc.get("variant")}.items() if v})
        return {"Descriptor": {"mediaType": media or man.media_type, "digest": digest, "size": len(body)}, "Platforms": platforms}

    return json_response(await asyncio.to_thread(run))


async def auth(request: web.Request) -> web.Response:
    from dockyard.image.registry import Registry, RegistryConfig

    svc = _svc(request)
    body = await read_json(request, required=True)
    if not isinstance(body, dict):
        raise InvalidParameter("invalid auth configuration")
    server = body.get("serveraddress") or authmod.DOCKER_HUB_KEY
    domain = server
    for prefix in ("https://", "http://"):
        if domain.startswith(prefix):
            domain = domain[len(prefix):]
    domain = domain.split("/", 1)[0]
    if domain in ("index.docker.io", "registry-1.docker.io"):
        domain = "docker.io"
    cfg = svc.registry_config if isinstance(svc.registry_config, RegistryConfig) else RegistryConfig.from_options(svc.registry_config)
    creds = {k: body[k] for k in ("username", "password", "identitytoken", "registrytoken") if body.get(k)}

    def run() -> None:
        reg = Registry(domain, creds, cfg)
        try:
            reg.ping()
            if reg._challenge and reg._challenge[0] == "bearer":  # noqa: SLF001 - a token proves the credentials
                reg._token(reg._challenge[1], [])  # noqa: SLF001
        except Unauthorized as e:
            raise Unauthorized(f'Get "{reg.base}/v2/": {e.message}') from None

    await asyncio.to_thread(run)
    return json_response({"Status": "Login Succeeded", "IdentityToken": ""})


ROUTES = [
    ("GET", "/images/json", list_),
    ("POST", "/images/create", create),
    ("GET", "/images/get", get_many),
    ("POST", "/images/load", load),
    ("POST", "/images/prune", prune),
    ("GET", "/images/{name:.+}/json", inspect),
    ("GET", "/images/{name:.+}/history", history),
    ("GET", "/images/{name:.+}/get", get_one),
    ("POST", "/images/{name:.+}/push", push),
    ("POST", "/images/{name:.+}/tag", tag),
    ("DELETE", "/images/{name:.+}", remove),
    ("POST", "/commit", commit),
    ("GET", "/distribution/{name:.+}/json", distribution),
    ("POST", "/auth", auth),
]
