"""Pull: manifest → platform → config → layers (3 at a time, each decompressed and extracted as
its bytes arrive, compressed digest and diff id both verified) → image, tag and repo digest.

`await pull(svc, ref, auth=None, progress=None, platform=None) -> image id`. The work runs in
worker threads; `progress` receives Docker's JSON messages and may be called from any thread.
A failure leaves nothing half-written: blobs are published only once verified, extracted
layers only once their diff id matches the config, the image only once every layer is in.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from dockyard.errors import DockyardError, InvalidParameter, NotFound, Unauthorized
from dockyard.image import auth as authmod
from dockyard.image import manifest as mf
from dockyard.image import reference
from dockyard.image.content import Tee
from dockyard.image.progress import Progress, Throttle, bar, detail, status
from dockyard.image.registry import Registry, RegistryConfig, RegistryError
from dockyard.storage.layers import Staged, chain_id

if TYPE_CHECKING:
    from dockyard.image.service import ImageService, Lease

MAX_CONCURRENT_DOWNLOADS = 3


class _Counting:
    """Reads the HTTP body, reporting progress and turning short bodies into clear errors."""

    def __init__(self, resp, on_progress, expected: int, digest: str, cancelled: threading.Event) -> None:  # noqa: ANN001
        self.resp, self.on_progress, self.expected, self.digest = resp, on_progress, expected, digest
        self.done = 0
        self.cancelled = cancelled

    def read(self, n: int = -1) -> bytes:
        if self.cancelled.is_set():
            raise InvalidParameter("pull cancelled")
        try:
            data = self.resp.read(n if n > 0 else 1 << 20)
        except http.client.IncompleteRead as e:
            data = e.partial
        except OSError as e:
            raise RegistryError(f"reading blob {self.digest}: {e}") from None
        self.done += len(data)
        if data:
            self.on_progress(self.done)
        elif self.done < self.expected:
            raise InvalidParameter(f"unexpected EOF: blob {self.digest} is truncated ({self.done} of {self.expected} bytes)")
        return data


def _emit(progress: Progress | None):  # noqa: ANN202
    lock = threading.Lock()

    def emit(msg: dict) -> None:
        if progress is not None:
            with lock:
                progress(msg)

    return emit


def _endpoints(ref: reference.Reference, auth: dict | None, config: RegistryConfig) -> list[Registry]:
    out = [Registry(ref.domain, None, config, mirror=m) for m in config.mirrors.get(ref.domain, [])]
    out.append(Registry(ref.domain, auth, config))
    return out


def _fetch_manifest(reg: Registry, ref: reference.Reference) -> tuple[bytes, str, str]:
    want = ref.digest or ref.tag or "latest"
    try:
        body, media, digest = reg.get_manifest(ref.path, want)
    except NotFound as e:
        if ref.digest:
            raise NotFound(f"manifest for {ref.familiar()} not found: {e.message}") from None
        raise NotFound(f"manifest for {ref.familiar()} not found: {e.message}") from None
    except Unauthorized as e:
        raise Unauthorized(
            f"pull access denied for {ref.familiar_name}, repository does not exist or may require 'docker login': {e.message}"
        ) from None
    if ref.digest and digest != ref.digest:
        raise InvalidParameter(f"manifest verification failed for digest {ref.digest}")
    return body, media, digest


def pull_sync(svc: ImageService, ref_str: str, auth: dict | None = None, progress: Progress | None = None, platform: str | None = None) -> str:
    ref = reference.parse_normalized(ref_str)
    emit = _emit(progress)
    config = svc.registry_config if isinstance(svc.registry_config, RegistryConfig) else RegistryConfig.from_options(svc.registry_config)
    if auth is None:
        auth = authmod.lookup(ref.domain)
    endpoints = _endpoints(ref, auth, config)
    with svc._collect_on_failure(), svc.lease() as lease:  # noqa: SLF001 - the service's own helper
        for n, reg in enumerate(endpoints):
            try:
                return _pull_from(svc, reg, ref, emit, mf.parse_platform(platform), lease)
            except (RegistryError, NotFound, Unauthorized):
                if n == len(endpoints) - 1:
                    raise
                # a mirror failed: fall back to the next endpoint
    raise AssertionError("unreachable")


def _pull_from(svc: ImageService, reg: Registry, ref: reference.Reference, emit, want_platform, lease: Lease) -> str:  # noqa: ANN001
    repo = ref.path
    body, media, top_digest = _fetch_manifest(reg, ref)
    # the first message goes out once the image is known to exist: errors before it can still be
    # answered with an HTTP status, as Docker does
    emit(status(f"Pulling from {repo}", ref.tag or ref.digest))
    man = mf.parse(body, media)
    if isinstance(man, mf.Index):
        desc = mf.select_platform(man, want_platform)
        body, media, digest = reg.get_manifest(repo, desc.digest)
        if digest != desc.digest:
            raise InvalidParameter(f"manifest verification failed for digest {desc.digest}")
        man = mf.parse(body, media)
        if isinstance(man, mf.Index):
            raise InvalidParameter("invalid manifest: an index inside an index")
    svc.content.put(body, top_digest if top_digest == _sha(body) else None)

    # the config: small, verified, kept as a blob
    with reg.open_blob(repo, man.config.digest) as resp:
        cw = svc.content.writer(man.config.digest, man.config.size)
        try:
            body_reader = _Counting(resp, lambda _n: None, man.config.size, man.config.digest, threading.Event())
            while True:
                chunk = body_reader.read(1 << 20)
                if not chunk:
                    break
                cw.write(chunk)
            cw.commit()
        except BaseException:
            cw.abort()
            raise
    raw_config = svc.content.get(man.config.digest)
    try:
        cfg = json.loads(raw_config)
        diff_ids = list(cfg["rootfs"]["diff_ids"])
    except (ValueError, KeyError, TypeError):
        raise InvalidParameter(f"invalid image config {man.config.digest}") from None
    if len(diff_ids) != len(man.layers):
        raise InvalidParameter(f"invalid image config: {len(man.layers)} layers in the manifest but {len(diff_ids)} diff ids")

    chains: list[str] = []
    cid = None
    for d in diff_ids:
        cid = chain_id(cid, d)
        chains.append(cid)
    held: list[str] = []  # references we take while building, dropped at the end
    # the deepest layer already present, with a reference taken at once (its parents are held
    # through it): a concurrent rmi of the image that brought them cannot remove them now
    first_missing = 0
    for k in range(len(chains), 0, -1):
        try:
            svc.layers.get(chains[k - 1])
        except NotFound:
            continue
        held.append(chains[k - 1])
        first_missing = k
        break
    for i, desc in enumerate(man.layers):
        short = desc.digest[7:19]
        if i < first_missing:
            emit(detail("Already exists", short))
        else:
            emit(detail("Pulling fs layer", short))

    committed: set[int] = set()
    cancelled = threading.Event()
    futures: dict[int, Future] = {}
    try:
        with ThreadPoolExecutor(max_workers=MAX_CONCURRENT_DOWNLOADS, thread_name_prefix="dockyard-pull") as pool:
            for i in range(first_missing, len(man.layers)):
                desc = man.layers[i]
                if i - first_missing >= MAX_CONCURRENT_DOWNLOADS:
                    emit(detail("Waiting", desc.digest[7:19]))
                futures[i] = pool.submit(_download_layer, svc, reg, repo, desc, diff_ids[i], emit, cancelled)
            parent = chains[first_missing - 1] if first_missing else None
            try:
                for i in range(first_missing, len(man.layers)):
                    st = futures[i].result()
                    committed.add(i)
                    layer = svc.layers.commit(st, parent)
                    held.append(layer.chain_id)
                    svc.store.add_blob_mapping(man.layers[i].digest, st.diff_id, ref.name, man.layers[i].media_type)
                    emit(detail("Pull complete", man.layers[i].digest[7:19]))
                    parent = layer.chain_id
            except BaseException:
                cancelled.set()
                for i, fut in futures.items():
                    if i in committed:
                        continue
                    try:
                        st = fut.result()
                    except BaseException:  # its own error; the first failure is the one reported
                        continue
                    svc.layers.discard(st)
                raise
        top = chains[-1] if chains else None
        if top is not None:
            svc.layers.get(top)
        image_id = svc.add_image(raw_config, top, lease=lease)
    finally:
        for c in reversed(held):
            svc.layers.release(c)

    emit(status(f"Digest: {top_digest}"))
    repo_ref = ref.repo_only()
    svc.store.set_ref(repo_ref.familiar_name, repo_ref.with_digest(top_digest).familiar(), image_id)
    if ref.tag:
        before = svc.store.lookup_ref(ref.familiar_name, ref.familiar())
        svc.tag_ref(image_id, ref)
        if before == image_id:
            emit(status(f"Status: Image is up to date for {ref.familiar()}"))
        else:
            emit(status(f"Status: Downloaded newer image for {ref.familiar()}"))
    else:
        emit(status(f"Status: Downloaded newer image for {ref.familiar()}"))
    return image_id


def _sha(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def _download_layer(svc: ImageService, reg: Registry, repo: str, desc: mf.Descriptor, diff_id: str, emit, cancelled) -> Staged:  # noqa: ANN001
    short = desc.digest[7:19]
    compression = mf.LAYER_MEDIA[desc.media_type]
    throttle = Throttle(emit, "Downloading", short, desc.size)
    resp = reg.open_blob(repo, desc.digest)
    writer = svc.content.writer(desc.digest, desc.size)
    st: Staged | None = None
    try:
        with resp:
            body = _Counting(resp, throttle, desc.size, desc.digest, cancelled)
            try:
                st = svc.layers.stage(Tee(body, writer), compression)
            except InvalidParameter as e:
                if e.message.startswith("invalid gzip") or e.message.startswith("invalid zstd"):
                    raise InvalidParameter(f"layer {desc.digest}: {e.message}") from None
                raise
        emit(detail("Verifying Checksum", short))
        writer.commit()
    except BaseException:
        writer.abort()
        if st is not None:
            svc.layers.discard(st)
        raise
    emit(detail("Download complete", short))
    if st.diff_id != diff_id:
        svc.layers.discard(st)
        raise InvalidParameter(f"layer {desc.digest}: diff id {st.diff_id} does not match the image config's {diff_id}")
    emit(bar("Extracting", short, desc.size, desc.size))
    return st


async def pull(svc: ImageService, ref: str, auth: dict | None = None, progress: Progress | None = None, platform: str | None = None) -> str:
    """Pull `ref` into `svc`; the blocking work runs in worker threads."""
    try:
        return await asyncio.to_thread(pull_sync, svc, ref, auth, progress, platform)
    except DockyardError:
        raise
