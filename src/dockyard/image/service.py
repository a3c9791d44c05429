"""ImageService: the daemon's one entry point to images (see docs/images.md).

    svc = ImageService(data_root, layer_store, registry_config=None)
    svc.get(ref_or_id) -> Image                       NotFound("No such image: <ref>")
    svc.import_(stream, repo_tag=None, changes=None, message=None, src="-") -> image id
    svc.commit(container_id, parent_image, repo_tag=None, config=None, changes=None,
               author="", comment="", container_config=None) -> image id
    svc.list(all_=False, filters=None, api_version="1.43") -> [ImageSummary dicts]
    svc.inspect(ref) -> dict (Docker's ImageInspect)   svc.history(ref) -> [dicts]
    svc.tag(source, repo, tag="latest")
    svc.remove(ref, force=False, prune=True) -> [{"Untagged": ...} | {"Deleted": ...}]
    svc.prune(dangling_only=True, filters=None) -> {"ImagesDeleted": [...], "SpaceReclaimed": n}
    async svc.pull(ref, auth=None, progress=None, platform=None)     (image/pull.py)
    async svc.push(ref, auth=None, progress=None)                    (image/push.py)
    svc.save(refs, out)  svc.load(stream, progress=None) -> [messages]   (image/archive.py)
    svc.disk_usage() -> (images list for /system/df, total layers size)

Blocking methods are plain functions: the daemon runs them in a worker thread. `image_users`
(set by the daemon) answers which containers use an image: callable(image_id) -> list of
(container_id, running) pairs; rmi consults it for Docker's conflict errors.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from dockyard.errors import Conflict, InvalidParameter, NotFound
from dockyard.image import reference
from dockyard.image.config import (
    DOCKER_VERSION,
    apply_changes,
    empty_container_config,
    go_arch,
    now_rfc3339,
    parse_time,
)
from dockyard.image.content import ContentStore, Tee
from dockyard.image.store import ImageStore
from dockyard.storage.archive import HashingReader
from dockyard.storage.compression import PeekReader, detect
from dockyard.storage.layers import Layer, LayerStore, chain_id

MEDIA_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
MEDIA_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MEDIA_OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MEDIA_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"

ProgressFn = Callable[[dict], None]


@dataclass
class Image:
    id: str
    config: dict
    raw: bytes
    top_layer: str | None
    repo_tags: list[str] = field(default_factory=list)
    repo_digests: list[str] = field(default_factory=list)

    @property
    def diff_ids(self) -> list[str]:
        return list((self.config.get("rootfs") or {}).get("diff_ids") or [])

    @property
    def container_config(self) -> dict:
        return self.config.get("config") or {}

    @property
    def short_id(self) -> str:
        return self.id[7:19]


@dataclass
class Lease:
    """What an operation in flight (pull, load, import, commit) protects from garbage collection:
    every blob written since it started, and the images it made before they are tagged."""

    started_ns: int
    images: set[str] = field(default_factory=set)


def top_chain(diff_ids: list[str]) -> str | None:
    cid = None
    for d in diff_ids:
        cid = chain_id(cid, d)
    return cid


class ImageService:
    def __init__(self, data_root: str, layer_store: LayerStore, registry_config: dict | None = None) -> None:
        self.data_root = data_root
        self.layers = layer_store
        from dockyard.image.registry import RegistryConfig

        # validated now, as dockerd refuses to start with a bad insecure-registries entry
        self.registry_config = RegistryConfig.from_options(registry_config)
        self.content = ContentStore(data_root)
        self.store = ImageStore(data_root)
        self.lock = threading.RLock()
        self.image_users: Callable[[str], list[tuple[str, bool]]] = lambda _id: []
        self._held: dict[str, str | None] = {}  # image id -> the top layer we hold a reference on
        self._leases: list[Lease] = []
        for image_id in self.store.ids():
            raw = self.store.get_config(image_id)
            try:
                cfg = json.loads(raw or b"")
            except ValueError:
                continue
            top = top_chain((cfg.get("rootfs") or {}).get("diff_ids") or [])
            if top is not None and self.layers.lookup(top) is None:
                continue  # layers lost (interrupted pull): the image is not usable
            if top is not None:
                self.layers.get(top)
            self._held[image_id] = top
        # anything not held now (left by an interrupted pull, load or import) is unreachable
        self.layers.gc()
        self.gc_content()

    # --- garbage collection -----------------------------------------------------------------------
    @contextlib.contextmanager
    def lease(self) -> Iterator[Lease]:
        """Protect an operation's blobs and new images from a concurrent rmi/prune until it ends."""
        lease = Lease(time.time_ns())
        with self.lock:
            self._leases.append(lease)
        try:
            yield lease
        finally:
            with self.lock:
                self._leases.remove(lease)

    def _leased(self, image_id: str) -> bool:
        return any(image_id in lease.images for lease in self._leases)

    def gc_content(self) -> list[str]:
        """Delete the content store's blobs nothing references: a blob stays while an image is its
        config, a repo digest names it (manifests), a layer in the store was pulled, imported or
        pushed as it (distribution metadata), or a lease in flight may still need it."""
        with self.lock:
            keep = set(self._held)
            for refs in list(self.store.repositories.values()):
                for ref, image_id in refs.items():
                    if "@" in ref and image_id in self._held:
                        keep.add(ref.rsplit("@", 1)[1])
            for layer in self.layers.layers():
                keep.update(e.get("Digest", "") for e in self.store.blobs_for_diff(layer.diff_id))
            cutoff = min((lease.started_ns for lease in self._leases), default=None)
            removed = []
            for digest in self.content.digests():
                if digest in keep:
                    continue
                if cutoff is not None:
                    try:
                        if os.stat(self.content.path(digest)).st_mtime_ns >= cutoff - 1_000_000_000:
                            continue  # written while an operation in flight may still use it
                    except (FileNotFoundError, InvalidParameter):
                        continue
                self.content.delete(digest)
                removed.append(digest)
            return removed

    # --- lookup -----------------------------------------------------------------------------------
    def _image(self, image_id: str) -> Image:
        raw = self.store.get_config(image_id)
        if raw is None or image_id not in self._held:
            raise NotFound(f"No such image: {image_id}")
        cfg = json.loads(raw)
        tags, digests = [], []
        for _repo, ref in self.store.refs_of(image_id):
            (digests if "@" in ref else tags).append(ref)
        return Image(image_id, cfg, raw, self._held[image_id], sorted(tags), sorted(digests))

    def resolve(self, ref_or_id: str) -> str:
        """The image id a reference, digest, id or id prefix names. Raises NotFound."""
        s = ref_or_id
        if s.startswith("sha256:") and len(s) == 71:
            if s in self._held:
                return s
            raise NotFound(f"No such image: {s}")
        if len(s) == 64 and reference.is_id_like(s):
            if "sha256:" + s in self._held:
                return "sha256:" + s
            raise NotFound(f"No such image: {s}")
        try:
            ref = reference.parse_normalized(s)
        except InvalidParameter:
            ref = None
        if ref is not None:
            image_id = self.store.lookup_ref(ref.familiar_name, ref.familiar())
            if image_id is None and ref.digest and ref.tag:
                image_id = self.store.lookup_ref(
                    ref.familiar_name, ref.repo_only().with_digest(ref.digest).familiar()
                )
            if image_id is not None and image_id in self._held:
                return image_id
        if reference.is_id_like(s):
            prefix = s if s.startswith("sha256:") else "sha256:" + s
            matches = [i for i in self._held if i.startswith(prefix)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise InvalidParameter(f"multiple IDs found with provided prefix: {s}")
        if ref is None:
            reference.parse(s)  # raise Docker's reference error text
        shown = ref.familiar() if ref is not None else s
        raise NotFound(f"No such image: {shown}")

    def get(self, ref_or_id: str) -> Image:
        return self._image(self.resolve(ref_or_id))

    def exists(self, ref_or_id: str) -> bool:
        try:
            self.resolve(ref_or_id)
            return True
        except (NotFound, InvalidParameter):
            return False

    def images(self) -> list[Image]:
        out = []
        for image_id in list(self._held):
            try:
                out.append(self._image(image_id))
            except (NotFound, ValueError):
                pass
        return out

    # --- creating images --------------------------------------------------------------------------
    def register_layer(self, stream, parent: str | None, repo: str = "") -> Layer:  # noqa: ANN001
        """Extract a (possibly compressed) layer tar, keeping its bytes as a verified blob."""
        peek = PeekReader(stream)
        kind = detect(peek.peek(6))
        writer = self.content.writer()
        try:
            staged = self.layers.stage(Tee(peek, writer))
            digest = writer.commit()
        except BaseException:
            writer.abort()
            raise
        media = {"gzip": MEDIA_LAYER_GZIP, "zstd": MEDIA_OCI_LAYER_ZSTD}.get(kind, MEDIA_LAYER_TAR)
        if kind not in ("gzip", "zstd", "none"):
            # bzip2/xz are not registry media types: keep the uncompressed tar instead
            self.content.delete(digest)
            digest, media = "", MEDIA_LAYER_TAR
        layer = self.layers.commit(staged, parent)
        if digest:
            self.store.add_blob_mapping(digest, staged.diff_id, repo, media)
        return layer

    def create_image(self, config: dict, top_layer: str | None, repo_tag: str | None = None) -> str:
        """Store a config (whose rootfs.diff_ids match `top_layer`'s chain); tag it if asked.

        The caller's reference on `top_layer` passes to the image (or is dropped if the image
        already existed)."""
        raw = json.dumps(config, separators=(",", ":")).encode()
        return self.add_image(raw, top_layer, repo_tag)

    def add_image(self, raw: bytes, top_layer: str | None, repo_tag: str | None = None, lease: Lease | None = None) -> str:
        with self.lock:
            image_id = self.store.put_config(raw)
            if lease is not None:
                lease.images.add(image_id)  # not prunable before its caller has tagged it
            if image_id in self._held:
                if top_layer is not None:
                    self.layers.release(top_layer)
            else:
                self._held[image_id] = top_layer
            self.store.set_meta(image_id, "lastUpdated", now_rfc3339())
            if repo_tag:
                self.tag_ref(image_id, reference.parse_normalized(repo_tag))
            return image_id

    def import_(
        self,
        stream,
        repo_tag: str | None = None,
        changes: list[str] | None = None,
        message: str | None = None,
        src: str = "-",
    ) -> str:  # noqa: ANN001
        """What `docker import` does: one layer from a rootfs tar, a fresh config. Returns the id."""
        if repo_tag:
            ref = reference.parse_normalized(repo_tag)
            if ref.digest:
                raise InvalidParameter("cannot import digest reference")
        with self._collect_on_failure(), self.lease():
            return self._import(stream, repo_tag, changes, message, src)

    @contextlib.contextmanager
    def _collect_on_failure(self) -> Iterator[None]:
        """A failed operation's blobs go at once (its lease must be closed first)."""
        try:
            yield
        except BaseException:
            self.gc_content()
            raise

    def _import(self, stream, repo_tag: str | None, changes: list[str] | None, message: str | None, src: str) -> str:  # noqa: ANN001
        layer = self.register_layer(stream, None)
        created = now_rfc3339()
        msg = message or f"Imported from {src}"
        cfg = apply_changes(empty_container_config(), changes)
        config = {
            "architecture": go_arch(),
            "comment": msg,
            "config": cfg,
            "created": created,
            "docker_version": DOCKER_VERSION,
            "history": [{"created": created, "comment": msg}],
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        }
        try:
            return self.create_image(config, layer.chain_id, repo_tag)
        except BaseException:
            self.layers.release(layer.chain_id)
            raise

    def commit(
        self,
        container_id: str,
        parent_image: str | None,
        repo_tag: str | None = None,
        config: dict | None = None,
        changes: list[str] | None = None,
        author: str = "",
        comment: str = "",
        container_config: dict | None = None,
    ) -> str:
        """An image from a container's rw layer over its image (what `docker commit` does)."""
        with self._collect_on_failure(), self.lease():
            return self._commit(container_id, parent_image, repo_tag, config, changes, author, comment, container_config)

    def _commit(
        self,
        container_id: str,
        parent_image: str | None,
        repo_tag: str | None,
        config: dict | None,
        changes: list[str] | None,
        author: str,
        comment: str,
        container_config: dict | None,
    ) -> str:
        import tempfile

        parent = self.get(parent_image) if parent_image else None
        with tempfile.TemporaryFile(dir=self.content.ingest) as tmp:
            self.layers.diff(container_id, tmp)
            tmp.seek(0)
            layer = self.register_layer(tmp, parent.top_layer if parent else None)
        base = json.loads(parent.raw) if parent else {}
        created = now_rfc3339()
        cfg = dict(config) if config is not None else dict(base.get("config") or empty_container_config())
        cfg = apply_changes(cfg, changes)
        history = list(base.get("history") or [])
        entry = {"created": created}
        if author:
            entry["author"] = author
        cmd = " ".join((container_config or {}).get("Cmd") or [])
        if cmd:
            entry["created_by"] = cmd
        if comment:
            entry["comment"] = comment
        history.append(entry)
        diff_ids = list((base.get("rootfs") or {}).get("diff_ids") or []) + [layer.diff_id]
        new = {
            "architecture": base.get("architecture", go_arch()),
            "author": author,
            "comment": comment,
            "config": cfg,
            "container": container_id,
            "container_config": container_config or empty_container_config(),
            "created": created,
            "docker_version": DOCKER_VERSION,
            "history": history,
            "os": base.get("os", "linux"),
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
        if not author:
            del new["author"]
        if parent is not None:
            new["parent"] = parent.id
        try:
            image_id = self.create_image(new, layer.chain_id, repo_tag)
        except BaseException:
            self.layers.release(layer.chain_id)
            raise
        if parent is not None:
            self.store.set_meta(image_id, "parent", parent.id)
        return image_id

    def create_child(self, parent_image: str | None, config: dict, created_by: str,
                     container_config: dict | None = None, author: str = "") -> str:  # fmt: skip
        """An image with the parent's layers and a new config (no new layer): what the classic
        builder makes for ENV, CMD, LABEL and the other metadata steps. Its history gains one
        `empty_layer` entry; the parent is recorded as the new image's parent."""
        parent = self.get(parent_image) if parent_image else None
        base = json.loads(parent.raw) if parent else {}
        created = now_rfc3339()
        history = list(base.get("history") or [])
        history.append({"created": created, "created_by": created_by, "empty_layer": True})
        new = {
            "architecture": base.get("architecture", go_arch()),
            "author": author,
            "config": config,
            "container_config": container_config or empty_container_config(),
            "created": created,
            "docker_version": DOCKER_VERSION,
            "history": history,
            "os": base.get("os", "linux"),
            "rootfs": {"type": "layers", "diff_ids": list((base.get("rootfs") or {}).get("diff_ids") or [])},
        }
        if not author:
            del new["author"]
        if parent is not None:
            new["parent"] = parent.id
        top = parent.top_layer if parent else None
        with self._collect_on_failure(), self.lease(), self.lock:
            if top is not None:
                self.layers.get(top)  # the new image's own reference
            try:
                image_id = self.create_image(new, top)
            except BaseException:
                if top is not None:
                    self.layers.release(top)
                raise
            if parent is not None:
                self.store.set_meta(image_id, "parent", parent.id)
        return image_id

    # --- tags -------------------------------------------------------------------------------------
    def tag_ref(self, image_id: str, ref: reference.Reference) -> None:
        with self.lock:
            self.store.set_ref(ref.familiar_name, ref.familiar(), image_id)
            self.store.set_meta(image_id, "lastTagTime", now_rfc3339())

    def tag(self, source: str, repo: str, tag: str = "") -> str:
        """`docker tag SOURCE REPO[:TAG]` (the API passes repo and tag apart). Returns the new ref."""
        if tag and not reference.valid_tag(tag):
            raise InvalidParameter(f"invalid tag format: {tag}")
        target = f"{repo}:{tag}" if tag else repo
        ref = reference.parse_normalized(target)  # the new name is checked first, as dockerd does
        if ref.digest:
            raise InvalidParameter("refusing to create a tag with a digest reference")
        if ref.familiar_name == "sha256":
            raise InvalidParameter("refusing to create an ambiguous tag using digest algorithm as name")
        image_id = self.resolve(source)
        self.tag_ref(image_id, ref)
        return ref.familiar()

    # --- listing ----------------------------------------------------------------------------------
    def _children(self) -> dict[str, list[str]]:
        kids: dict[str, list[str]] = {}
        for image_id in self._held:
            p = self.store.get_meta(image_id, "parent")
            if p:
                kids.setdefault(p, []).append(image_id)
        return kids

    def _size(self, img: Image) -> int:
        return self.layers.image_size(img.top_layer)

    def summary(self, img: Image, api_version: str = "1.43", tags: list[str] | None = None, digests: list[str] | None = None) -> dict:
        tags = img.repo_tags if tags is None else tags
        digests = img.repo_digests if digests is None else digests
        if _version_lt(api_version, "1.43"):
            if not tags:
                tags = ["<none>:<none>"]
            if not digests:
                digests = ["<none>@<none>"]
        size = self._size(img)
        out = {
            "Id": img.id,
            "ParentId": self.store.get_meta(img.id, "parent") or "",
            "RepoTags": tags,
            "RepoDigests": digests,
            "Created": int(parse_time(img.config.get("created"))),
            "Size": size,
            "SharedSize": -1,
            "Labels": img.container_config.get("Labels") or {},
            "Containers": -1,
        }
        if _version_lt(api_version, "1.44"):
            out["VirtualSize"] = size
        return out

    def list(self, all_: bool = False, filters: dict | None = None, api_version: str = "1.43") -> list[dict]:
        """GET /images/json, filtered as moby's daemon/images does: reference patterns (path.Match
        on the familiar string, then the familiar name) keep only the matching tags and digests;
        dangling means without tags; untagged images with children show only with `all`."""
        filters = filters or {}
        images = self.images()
        kids = self._children()
        out = []
        dangling_only: bool | None = None
        if filters.get("dangling"):
            value = str(filters["dangling"][-1])
            if value.lower() in ("true", "1", "t"):
                dangling_only = True
            elif value.lower() in ("false", "0", "f"):
                dangling_only = False
            else:
                raise InvalidParameter(f"invalid filter 'dangling={value}'")
        refs = filters.get("reference") or []
        labels = filters.get("label") or []
        by_id = {i.id: i for i in images}
        before = [self.resolve(x) for x in filters.get("before") or []][-1:]
        since = [self.resolve(x) for x in filters.get("since") or []][-1:]
        until = [_until(x) for x in filters.get("until") or []][-1:]
        for img in images:
            created = parse_time(img.config.get("created"))
            if before and not created < parse_time(by_id[before[0]].config.get("created")):
                continue
            if since and not created > parse_time(by_id[since[0]].config.get("created")):
                continue
            if until and not created < until[0]:
                continue
            if labels and not _labels_match(img.container_config.get("Labels") or {}, labels):
                continue
            tags, digests = img.repo_tags, img.repo_digests
            if refs:
                tags = [t for t in tags if any(_ref_matches(p, t) for p in refs)]
                digests = [d for d in digests if any(_ref_matches(p, d) for p in refs)]
            if not tags and not digests:
                if not all_ and img.id in kids:
                    continue  # an intermediate image
                if dangling_only is False or refs:
                    continue
            elif dangling_only and tags:
                continue
            s = self.summary(img, api_version, tags, digests)
            s["Containers"] = len(self.image_users(img.id)) if filters.get("_count_containers") else -1
            out.append(s)
        out.sort(key=lambda s: s["Created"], reverse=True)
        return out

    def inspect(self, ref_or_id: str, api_version: str = "1.43") -> dict:
        img = self.get(ref_or_id)
        cfg = img.config
        layer = self.layers.lookup(img.top_layer) if img.top_layer else None
        graph: dict = {"Data": None, "Name": self.layers.driver_name}
        if layer is not None:
            chain = self.layers.chain(img.top_layer)
            data = {
                "MergedDir": f"{self.layers.driver.dir(layer.cache_id)}/merged",
                "UpperDir": layer.path,
                "WorkDir": f"{self.layers.driver.dir(layer.cache_id)}/work",
            }
            if len(chain) > 1:
                data["LowerDir"] = ":".join(x.path for x in reversed(chain[:-1]))
            graph["Data"] = data
        size = self._size(img)
        out = {
            "Id": img.id,
            "RepoTags": img.repo_tags,
            "RepoDigests": img.repo_digests,
            "Parent": self.store.get_meta(img.id, "parent") or "",
            "Comment": cfg.get("comment", ""),
            "Created": cfg.get("created", "0001-01-01T00:00:00Z"),
            "Container": cfg.get("container", ""),
            "ContainerConfig": cfg.get("container_config") or empty_container_config(),
            "DockerVersion": cfg.get("docker_version", ""),
            "Author": cfg.get("author", ""),
            "Config": cfg.get("config") or empty_container_config(),
            "Architecture": cfg.get("architecture", ""),
            "Os": cfg.get("os", ""),
            "Size": size,
            "VirtualSize": size,
            "GraphDriver": graph,
            "RootFS": {"Type": "layers", "Layers": img.diff_ids},
            "Metadata": {"LastTagTime": self.store.get_meta(img.id, "lastTagTime") or "0001-01-01T00:00:00Z"},
        }
        if not _version_lt(api_version, "1.44"):
            del out["VirtualSize"]  # deprecated in 1.43, gone from 1.44 on
        if cfg.get("variant"):
            out["Variant"] = cfg["variant"]
        if cfg.get("os.version"):
            out["OsVersion"] = cfg["os.version"]
        return out

    def history(self, ref_or_id: str) -> list[dict]:
        img = self.get(ref_or_id)
        layers = self.layers.chain(img.top_layer) if img.top_layer else []
        hist = img.config.get("history") or []
        out = []
        li = 0
        for h in hist:
            size = 0
            if not h.get("empty_layer"):
                if li < len(layers):
                    size = layers[li].size
                li += 1
            out.append(
                {
                    "Id": "<missing>",
                    "Created": int(parse_time(h.get("created"))),
                    "CreatedBy": h.get("created_by", ""),
                    "Tags": None,
                    "Size": size,
                    "Comment": h.get("comment", ""),
                }
            )
        if not out:
            out.append(
                {
                    "Id": "<missing>",
                    "Created": int(parse_time(img.config.get("created"))),
                    "CreatedBy": "",
                    "Tags": None,
                    "Size": self._size(img),
                    "Comment": "",
                }
            )
        out.reverse()
        # as moby: the entries from the top take the ids (and tags) of the image, then of its
        # local parent, grandparent, ...; the rest stay <missing>
        cur: str | None = img.id
        for entry in out:
            if cur is None or cur not in self._held:
                break
            entry["Id"] = cur
            entry["Tags"] = sorted(k for _r, k in self.store.refs_of(cur) if "@" not in k) or None
            cur = self.store.get_meta(cur, "parent") or None
        return out

    # --- removal ----------------------------------------------------------------------------------
    def _untag(self, repo: str, ref: str) -> None:
        self.store.delete_ref(repo, ref)

    def _sorted_refs(self, image_id: str) -> list[tuple[str, str]]:
        """The image's (repo, familiar ref) pairs in moby's order (by the full reference)."""

        def full(pair: tuple[str, str]) -> str:
            try:
                return str(reference.parse(pair[1]))
            except InvalidParameter:
                return pair[1]

        return sorted(self.store.refs_of(image_id), key=full)

    def _delete_conflict(self, image_id: str, force: bool, check_refs: bool) -> tuple[Conflict, bool] | None:
        """moby's checkImageDeleteConflict: (error, image in use) or None. Hard conflicts
        (children, a running container) hold even with force; soft ones (a stopped container,
        several references) only without it."""
        short = image_id[7:19]

        def err(hard: bool, msg: str) -> Conflict:
            return Conflict(f"conflict: unable to delete {short} ({'cannot be forced' if hard else 'must be forced'}) - {msg}")

        if self._children().get(image_id):
            return err(True, "image has dependent child images"), False
        users = self.image_users(image_id)
        running = [c for c, r in users if r]
        if running:
            return err(True, f"image is being used by running container {running[0][:12]}"), True
        if not force:
            stopped = [c for c, r in users if not r]
            if stopped:
                return err(False, f"image is being used by stopped container {stopped[0][:12]}"), True
            if check_refs and len(self.store.refs_of(image_id)) > 1:
                return err(False, "image is referenced in multiple repositories"), False
        return None

    def remove(self, ref_or_id: str, force: bool = False, prune: bool = True) -> list[dict]:
        """`docker rmi`, as moby's ImageDelete: untag, and delete the image when nothing names it
        any more (then its untagged, unused parents too unless `prune` is False)."""
        with self.lock:
            image_id = self.resolve(ref_or_id)
            records: list[dict] = []
            repo_refs = self._sorted_refs(image_id)
            # one repository and at most one tag (digests of it aside): "a single reference"
            single = len({r for r, _ in repo_refs}) <= 1 and sum("@" not in k for _, k in repo_refs) <= 1
            by_id = reference.is_id_like(ref_or_id) and image_id.startswith(
                ref_or_id if ref_or_id.startswith("sha256:") else "sha256:" + ref_or_id
            )
            quiet = False
            if not by_id:
                ref = reference.parse_normalized(ref_or_id)
                users = self.image_users(image_id)
                if users and not force and single:
                    raise Conflict(
                        f'conflict: unable to remove repository reference "{ref_or_id}" (must force) - container {users[0][0][:12]} is using its referenced image {image_id[7:19]}'
                    )
                key = ref.familiar()
                if self.store.lookup_ref(ref.familiar_name, key) != image_id and ref.digest and ref.tag:
                    key = ref.repo_only().with_digest(ref.digest).familiar()
                self._untag(ref.familiar_name, key)
                records.append({"Untagged": key})
                remaining = self._sorted_refs(image_id)
                if not ref.digest and not any(r == ref.familiar_name and "@" not in k for r, k in remaining):
                    for r, k in remaining:  # the repository's digests go with its last tag
                        if r == ref.familiar_name and "@" in k:
                            self._untag(r, k)
                            records.append({"Untagged": k})
                if self.store.refs_of(image_id):
                    return records
                quiet = True  # the image goes only if nothing holds it; conflicts are not errors
            elif single:
                found = self._delete_conflict(image_id, force, check_refs=False)
                if found is not None:
                    raise found[0]
                for r, k in repo_refs:
                    self._untag(r, k)
                    records.append({"Untagged": k})
            records += self._delete_helper(image_id, force, prune, quiet)
            self.gc_content()
            return records

    def _delete_helper(self, image_id: str, force: bool, prune: bool, quiet: bool) -> list[dict]:
        found = self._delete_conflict(image_id, force, check_refs=True)
        if found is not None:
            if quiet:
                return []
            raise found[0]
        records: list[dict] = []
        for r, k in self._sorted_refs(image_id):
            self._untag(r, k)
            records.append({"Untagged": k})
        parent = self.store.get_meta(image_id, "parent") or None
        records += self._delete_image(image_id)
        if prune and parent and parent in self._held and not self.store.refs_of(parent):
            records += self._delete_helper(parent, False, True, True)  # an untagged parent left unused
        return records

    def _delete_image(self, image_id: str) -> list[dict]:
        top = self._held.pop(image_id)
        self.store.delete(image_id)
        records = [{"Deleted": image_id}]
        if top is not None:
            records += [{"Deleted": c} for c in self.layers.release(top)]
        return records

    def prune(self, dangling_only: bool = True, filters: dict | None = None) -> dict:
        """`docker image prune [-a]`: unused dangling (or, with -a, all unused) images."""
        deleted: list[dict] = []
        reclaimed = 0
        until = (filters or {}).get("until")
        labels = (filters or {}).get("label") or []
        not_labels = (filters or {}).get("label!") or []
        for img in self.images():
            if dangling_only and img.repo_tags:
                continue  # as moby: untagged images go, those known only by a digest too
            if self.image_users(img.id):
                continue
            if until and parse_time(img.config.get("created")) >= _until(until[0]):
                continue
            img_labels = img.container_config.get("Labels") or {}
            if labels and not _labels_match(img_labels, labels):
                continue
            if not_labels and any(_labels_match(img_labels, [x]) for x in not_labels):
                continue
            if self._children().get(img.id):
                continue
            before = {layer.chain_id: layer.size for layer in self.layers.layers()}
            with self.lock:
                if img.id not in self._held or self._leased(img.id):
                    continue  # gone meanwhile, or made by a pull/load that has not tagged it yet
                if dangling_only and any("@" not in k for _r, k in self.store.refs_of(img.id)):
                    continue  # tagged meanwhile
                records = []
                for r, k in self.store.refs_of(img.id):
                    self._untag(r, k)
                    records.append({"Untagged": k})
                records += self._delete_image(img.id)
            for rec in records:
                if "Deleted" in rec and rec["Deleted"] in before:
                    reclaimed += before[rec["Deleted"]]
            deleted += records
        self.gc_content()
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    def disk_usage(self) -> tuple[list[dict], int]:
        """Images for /system/df (with Containers and SharedSize) and the layers' total size."""
        images = self.images()
        layer_users: dict[str, int] = {}
        for img in images:
            for layer in self.layers.chain(img.top_layer) if img.top_layer else []:
                layer_users[layer.chain_id] = layer_users.get(layer.chain_id, 0) + 1
        out = []
        for img in images:
            s = self.summary(img)
            chain = self.layers.chain(img.top_layer) if img.top_layer else []
            s["SharedSize"] = sum(x.size for x in chain if layer_users.get(x.chain_id, 0) > 1)
            s["Containers"] = len(self.image_users(img.id))
            out.append(s)
        return out, sum(x.size for x in self.layers.layers())

    def df(self) -> dict:
        """The image part of /system/df: LayersSize, Images (with SharedSize and Containers),
        and BuildCache (Dockyard has no build cache yet: always empty)."""
        images, layers_size = self.disk_usage()
        return {"LayersSize": layers_size, "Images": images, "BuildCache": []}

    # --- registry, archives (implemented in their own modules) -------------------------------------
    async def pull(
        self,
        ref: str,
        auth: dict | None = None,
        progress: ProgressFn | None = None,
        platform: str | None = None,
    ) -> str:
        from dockyard.image.pull import pull

        return await pull(self, ref, auth=auth, progress=progress, platform=platform)

    async def push(
        self, ref: str, auth: dict | None = None, progress: ProgressFn | None = None, chunk_size: int | None = None
    ) -> str:
        from dockyard.image.push import push

        return await push(self, ref, auth=auth, progress=progress, chunk_size=chunk_size)

    def save(self, refs: list[str], out) -> None:  # noqa: ANN001
        from dockyard.image.archive import save

        save(self, refs, out)

    def load(self, stream, progress: ProgressFn | None = None) -> list[str]:  # noqa: ANN001
        from dockyard.image.archive import load

        return load(self, stream, progress)


def _version_lt(a: str, b: str) -> bool:
    def parts(v: str) -> tuple[int, ...]:
        try:
            return tuple(int(x) for x in v.split("."))
        except ValueError:
            return (99,)

    return parts(a) < parts(b)


def _ref_matches(pattern: str, ref: str) -> bool:
    """Docker's reference filter (FamiliarMatch): Go's path.Match of the pattern against the
    familiar string (`busybox:latest`, `repo@sha256:...`), else against the familiar name."""
    name = ref.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    rx = _path_pattern(pattern)
    return rx.fullmatch(ref) is not None or rx.fullmatch(name) is not None


def _path_pattern(pattern: str):  # noqa: ANN202 - re.Pattern
    """Go's path.Match as a regex: `*` and `?` never match `/`, `[...]` (`^` negates), `\\x`."""
    import re

    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("^", "]") else i + 1)
            if end < 0:
                raise InvalidParameter("syntax error in pattern")
            body = pattern[i + 1 : end]
            neg = body.startswith("^")
            body = body[1:] if neg else body
            if not body:
                raise InvalidParameter("syntax error in pattern")
            out.append("[" + ("^/" if neg else "") + body.replace("\\", "\\\\").replace("[", "\\[") + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    try:
        return re.compile("".join(out))
    except re.error:
        raise InvalidParameter("syntax error in pattern") from None


def _labels_match(labels: dict, wanted: list[str]) -> bool:
    for w in wanted:
        k, eq, v = w.partition("=")
        if k not in labels or (eq and labels[k] != v):
            return False
    return True


def _until(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    t = parse_time(value)
    if t:
        return t
    units = {"s": 1, "m": 60, "h": 3600}
    if value and value[-1] in units:
        try:
            return time.time() - float(value[:-1]) * units[value[-1]]
        except ValueError:
            pass
    raise InvalidParameter(f"invalid filter 'until={value}'")


__all__ = ["Image", "ImageService", "HashingReader", "top_chain"]
