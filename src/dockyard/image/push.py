"""Push: for each layer, HEAD the blob (skip if present), mount it from another repository of the
same registry when we know one that has it, else upload it (monolithic, or chunked when a chunk
size is set); then the config and a Docker schema 2 manifest. Prints the digest line as Docker.

`await push(svc, ref, auth=None, progress=None, chunk_size=None) -> manifest digest` (of the
last tag pushed). A ref without a tag pushes every tag of the repository, as Docker does.
"""

from __future__ import annotations

import asyncio
import hashlib
import zlib
from typing import TYPE_CHECKING

from dockyard.errors import NotFound, Unauthorized
from dockyard.image import auth as authmod
from dockyard.image import manifest as mf
from dockyard.image import reference
from dockyard.image.progress import Progress, Throttle, detail, status
from dockyard.image.registry import Registry, RegistryConfig

if TYPE_CHECKING:
    from dockyard.image.service import Image, ImageService

MEDIA_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MEDIA_TAR = "application/vnd.docker.image.rootfs.diff.tar"


def _gzip_blob(svc: ImageService, reader, diff_id: str | None) -> tuple[str, int]:  # noqa: ANN001
    """Compress an uncompressed layer tar into the content store; checks its diff id."""
    w = svc.content.writer()
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)
    h = hashlib.sha256()
    try:
        while True:
            chunk = reader.read(1 << 20)
            if not chunk:
                break
            h.update(chunk)
            w.write(comp.compress(chunk))
        w.write(comp.flush())
        if diff_id is not None and "sha256:" + h.hexdigest() != diff_id:
            raise NotFound(f"layer {diff_id} cannot be reproduced for push: its original content is missing")
        size = w.size
        return w.commit(), size
    except BaseException:
        w.abort()
        raise


def layer_blob(svc: ImageService, diff_id: str, chain: str) -> tuple[mf.Descriptor, list[str]]:
    """A pushable (compressed) blob for the layer, and the repositories known to hold it."""
    entries = svc.store.blobs_for_diff(diff_id)
    for e in entries:
        if e.get("MediaType") != MEDIA_TAR and svc.content.exists(e["Digest"]):
            repos = [x.get("SourceRepository", "") for x in entries if x["Digest"] == e["Digest"]]
            return mf.Descriptor(e["MediaType"], e["Digest"], svc.content.size(e["Digest"])), [r for r in repos if r]
    source = None
    for e in entries:
        if e.get("MediaType") == MEDIA_TAR and svc.content.exists(e["Digest"]):
            source = e["Digest"]
    if source is not None:
        with svc.content.open(source) as f:
            digest, size = _gzip_blob(svc, f, diff_id)
    else:
        import tempfile

        with tempfile.TemporaryFile(dir=svc.content.ingest) as tmp:
            svc.layers.layer_tar(chain, tmp)
            tmp.seek(0)
            digest, size = _gzip_blob(svc, tmp, diff_id)
    svc.store.add_blob_mapping(digest, diff_id, "", MEDIA_GZIP)
    return mf.Descriptor(MEDIA_GZIP, digest, size), []


def _push_blob(svc: ImageService, reg: Registry, repo_name: str, path: str, desc: mf.Descriptor, sources: list[str], emit, short: str, chunk_size: int | None) -> None:  # noqa: ANN001
    if reg.blob_exists(path, desc.digest) is not None:
        emit(detail("Layer already exists", short))
        return
    domain = repo_name.split("/", 1)[0]
    for src in sources:
        sdomain, _, spath = src.partition("/")
        if sdomain == domain and spath != path and reg.mount_blob(path, desc.digest, spath):
            emit(detail(f"Mounted from {spath}", short))
            return
    with svc.content.open(desc.digest) as f:
        reg.upload_blob(path, desc.digest, desc.size, f, chunk_size, Throttle(emit, "Pushing", short, desc.size))
    emit(detail("Pushed", short))


def push_sync(svc: ImageService, ref_str: str, auth: dict | None = None, progress: Progress | None = None, chunk_size: int | None = None) -> str:
    import threading

    lock = threading.Lock()

    def emit(msg: dict) -> None:
        if progress is not None:
            with lock:
                progress(msg)

    ref = reference.parse(ref_str)
    if ref.digest:
        raise NotFound("cannot push a digest reference")
    repo = ref.repo_only()
    if ref.tag:
        tags = [ref.tag]
    else:
        tags = sorted(
            k.rsplit(":", 1)[1] for k in (svc.store.repositories.get(repo.familiar_name) or {}) if "@" not in k
        )
    if not tags or not svc.exists(repo.with_tag(tags[0]).familiar()):
        raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_name}")
    config = svc.registry_config if isinstance(svc.registry_config, RegistryConfig) else RegistryConfig.from_options(svc.registry_config)
    if auth is None:
        auth = authmod.lookup(ref.domain)
    reg = Registry(ref.domain, auth, config)
    emit(status(f"The push refers to repository [{repo.familiar_name if ref.domain != 'docker.io' else repo.name}]"))
    digest = ""
    with svc.lease():  # the blobs it compresses and the manifests it stores outlive a concurrent GC
        for tag in tags:
            img = svc.get(repo.with_tag(tag).familiar())
            try:
                digest = _push_image(svc, reg, repo, img, tag, emit, chunk_size)
            except Unauthorized as e:
                raise Unauthorized(f"denied: requested access to the resource is denied ({e.message})") from None
    return digest


def _push_image(svc: ImageService, reg: Registry, repo: reference.Reference, img: Image, tag: str, emit, chunk_size: int | None) -> str:  # noqa: ANN001
    chain = svc.layers.chain(img.top_layer) if img.top_layer else []
    descs: list[mf.Descriptor] = []
    for layer in reversed(chain):  # Docker lists the top layer first
        emit(detail("Preparing", layer.diff_id[7:19]))
    for layer in chain:
        desc, sources = layer_blob(svc, layer.diff_id, layer.chain_id)
        _push_blob(svc, reg, repo.name, repo.path, desc, sources, emit, layer.diff_id[7:19], chunk_size)
        svc.store.add_blob_mapping(desc.digest, layer.diff_id, repo.name, desc.media_type)
        descs.append(desc)
    # the config, byte for byte (its digest is the image id)
    if not svc.content.exists(img.id):
        svc.content.put(img.raw, img.id)
    config_desc = mf.Descriptor(mf.DOCKER_CONFIG, img.id, len(img.raw))
    if reg.blob_exists(repo.path, img.id) is None:
        with svc.content.open(img.id) as f:
            reg.upload_blob(repo.path, img.id, len(img.raw), f, chunk_size)
    body, media = mf.build_schema2(config_desc, descs)
    digest = reg.put_manifest(repo.path, tag, body, media)
    svc.content.put(body)
    svc.store.set_ref(repo.familiar_name, repo.with_digest(digest).familiar(), img.id)
    emit(status(f"{tag}: digest: {digest} size: {len(body)}"))
    emit({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": len(body)}})
    return digest


async def push(svc: ImageService, ref: str, auth: dict | None = None, progress: Progress | None = None, chunk_size: int | None = None) -> str:
    return await asyncio.to_thread(push_sync, svc, ref, auth, progress, chunk_size)
