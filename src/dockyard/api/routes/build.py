"""POST /build (the classic builder: a tar context in, Docker's JSON build messages out) and
POST /build/prune (the build cache: intermediate images the cache index points at).

An error before the first message is an HTTP error (a Dockerfile parse error is a 400, as
dockerd answers); after it, an `{"errorDetail": {"code": N, "message": ...}, "error": ...}` line.
The context is extracted in a worker thread while it is read from the request; the build itself
runs on the loop and puts its blocking work in threads (build/builder.py).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os

from aiohttp import web

from dockyard.api.common import backend, json_response, qbool, qfilters
from dockyard.api.streams import BodyReader, Emit, error_detail, stream_json
from dockyard.build.builder import Builder, BuildOptions, StepFailed
from dockyard.build.cache import CacheIndex
from dockyard.build.context import Context
from dockyard.build.instructions import check_platform
from dockyard.errors import DockyardError, InvalidParameter
from dockyard.image import reference


def _json_query(request: web.Request, name: str) -> dict:
    raw = request.query.get(name, "")
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise InvalidParameter(f"invalid {name} JSON: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidParameter(f"invalid {name} JSON")
    return doc


def _auth_configs(request: web.Request) -> dict[str, dict]:
    raw = request.headers.get("X-Registry-Config", "")
    if not raw:
        return {}
    try:
        pad = "=" * (-len(raw) % 4)
        doc = json.loads(base64.urlsafe_b64decode(raw + pad))
    except (ValueError, TypeError):
        return {}
    if not isinstance(doc, dict):
        return {}
    out: dict[str, dict] = {}
    for host, conf in doc.items():
        if isinstance(conf, dict):
            out[host.removeprefix("https://").removeprefix("http://").split("/")[0]] = conf
            out[host] = conf
    return out


def _host_config(request: web.Request) -> dict:
    """What the classic builder gives RUN containers: resources, ulimits, extra hosts."""
    q = request.query
    hc: dict = {}
    for name, key in (("cpushares", "CpuShares"), ("cpuquota", "CpuQuota"), ("cpuperiod", "CpuPeriod"),
                      ("memory", "Memory"), ("memswap", "MemorySwap"), ("shmsize", "ShmSize")):  # fmt: skip
        raw = q.get(name, "")
        if raw not in ("", "0"):
            try:
                hc[key] = int(raw)
            except ValueError:
                raise InvalidParameter(f"invalid {name}: {raw}") from None
    for name, key in (("cpusetcpus", "CpusetCpus"), ("cpusetmems", "CpusetMems"), ("cgroupparent", "CgroupParent")):
        if q.get(name):
            hc[key] = q[name]
    raw = q.get("ulimits", "")
    if raw and raw != "null":
        try:
            ulimits = json.loads(raw)
        except ValueError as e:
            raise InvalidParameter(f"invalid ulimits JSON: {e}") from None
        if ulimits:
            hc["Ulimits"] = ulimits
    hosts = q.getall("extrahosts", [])
    if len(hosts) == 1 and "," in hosts[0]:
        hosts = hosts[0].split(",")
    if [h for h in hosts if h]:
        hc["ExtraHosts"] = [h for h in hosts if h]
    return hc


def _options(request: web.Request) -> BuildOptions:
    q = request.query
    tags = q.getall("t", [])
    for t in tags:
        ref = reference.parse_normalized(t)
        if ref.digest:
            raise InvalidParameter(f"invalid reference format: {t}")
    build_args = {str(k): (None if v is None else str(v)) for k, v in _json_query(request, "buildargs").items()}
    labels = {str(k): str(v) for k, v in _json_query(request, "labels").items()}
    if q.get("version") == "2":
        raise InvalidParameter("BuildKit is not supported by this daemon: use the classic builder (DOCKER_BUILDKIT=0)")
    if q.get("remote"):
        raise InvalidParameter("remote build contexts are not supported by Dockyard")
    platform = q.get("platform", "")
    check_platform(platform)
    return BuildOptions(
        host_config=_host_config(request),
        tags=tags,
        dockerfile=q.get("dockerfile") or "Dockerfile",
        build_args=build_args,
        no_cache=qbool(request, "nocache"),
        quiet=qbool(request, "q"),
        rm=qbool(request, "rm", True),
        force_rm=qbool(request, "forcerm"),
        labels=labels,
        target=q.get("target", ""),
        pull=qbool(request, "pull"),
        platform=platform,
        network_mode=q.get("networkmode") or "default",
        auth_configs=_auth_configs(request),
    )


def _prepare_tmp(parent: str, started_at: float) -> None:
    """The directory for contexts; contexts a previous daemon left (it died mid-build) go."""
    import shutil

    os.makedirs(parent, 0o700, exist_ok=True)
    for name in os.listdir(parent):
        path = os.path.join(parent, name)
        try:
            if os.lstat(path).st_ctime < started_at:  # ctime: a tar cannot set it
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass


async def build(request: web.Request) -> web.StreamResponse:
    d = backend(request, "daemon")
    opts = _options(request)
    loop = asyncio.get_running_loop()
    tmp_parent = os.path.join(d.data_root, "builder", "tmp")
    await asyncio.to_thread(_prepare_tmp, tmp_parent, d.started_at)
    reader = BodyReader(request, loop)
    ctx = await asyncio.to_thread(Context.extract, reader, tmp_parent)

    async def job(emit: Emit) -> str:
        try:
            text = await asyncio.to_thread(ctx.read_dockerfile, opts.dockerfile)
            return await Builder(d, ctx, opts, emit).build(text)
        finally:
            await asyncio.to_thread(ctx.close)

    def failure(exc: BaseException) -> dict:
        return error_detail(exc, exc.code if isinstance(exc, StepFailed) else 1)

    return await stream_json(request, job, failure=failure, cancel_on_disconnect=True)


async def build_prune(request: web.Request) -> web.Response:
    """Remove the build cache: the cache index, and the intermediate images it names that are
    untagged and that no image or container depends on."""
    d = backend(request, "daemon")
    filters = qfilters(request)
    for key in filters:
        if key not in ("until", "id", "parent", "type", "description", "inuse", "shared", "private"):
            raise InvalidParameter(f"invalid filter '{key}'")
    idx = CacheIndex(d.data_root)
    svc = d.images

    def run() -> tuple[list[str], int]:
        entries = idx.entries()
        deleted: list[str] = []
        space = 0
        pending = set(entries.values())
        progress = True
        while progress:  # children first: a parent becomes removable once its child has gone
            progress = False
            for image_id in sorted(pending):
                if not svc.exists(image_id):
                    pending.discard(image_id)
                    continue
                img = svc.get(image_id)
                if img.repo_tags or svc._children().get(image_id) or svc.image_users(image_id):  # noqa: SLF001
                    continue
                size = svc.summary(img).get("Size", 0)
                try:
                    svc.remove(image_id, False, False)
                except DockyardError:
                    continue
                deleted.append(image_id)
                space += int(size or 0)
                pending.discard(image_id)
                progress = True
        idx.drop([k for k, v in entries.items() if v in deleted or not svc.exists(v)])
        return deleted, space

    deleted, space = await asyncio.to_thread(run)
    return json_response({"CachesDeleted": deleted or None, "SpaceReclaimed": space})


ROUTES = [
    ("POST", "/build", build),
    ("POST", "/build/prune", build_prune),
]
