"""`docker save` / `docker load` archives.

save(svc, refs, out) writes one tar that is both a docker-archive (manifest.json, repositories,
what `docker load` and `podman load` read) and an OCI image layout (oci-layout, index.json,
blobs/sha256/...), as Docker 25+ writes it: layers are stored uncompressed, so each layer blob's
digest is its diff id.

load(svc, stream, progress) reads either format (docker-archive from any Docker version, or a
plain OCI layout tar), verifies each layer's diff id against the config, and returns Docker's
messages ("Loaded image: busybox:latest", or "Loaded image ID: sha256:..." for untagged ones).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from typing import TYPE_CHECKING

from dockyard.errors import InvalidParameter, NotFound
from dockyard.image import reference
from dockyard.image.progress import Progress
from dockyard.storage import archive as tarsafe
from dockyard.storage.compression import open_decompressed

if TYPE_CHECKING:
    from dockyard.image.service import Image, ImageService, Lease

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def _uncompressed_layer(svc: ImageService, diff_id: str, chain: str, tmpdir: str) -> str:
    """A file holding the layer tar whose sha256 is `diff_id`."""
    if svc.content.exists(diff_id):
        return svc.content.path(diff_id)
    out = os.path.join(tmpdir, diff_id[7:])
    for entry in svc.store.blobs_for_diff(diff_id):
        if not svc.content.exists(entry["Digest"]):
            continue
        h = hashlib.sha256()
        with svc.content.open(entry["Digest"]) as raw, open(out, "wb") as f:
            reader = open_decompressed(raw)
            while True:
                chunk = reader.read(1 << 20)
                if not chunk:
                    break
                h.update(chunk)
                f.write(chunk)
        if "sha256:" + h.hexdigest() == diff_id:
            return out
    with open(out, "wb") as f:
        svc.layers.layer_tar(chain, f)
    with open(out, "rb") as f:
        if "sha256:" + hashlib.file_digest(f, "sha256").hexdigest() != diff_id:
            raise NotFound(f"layer {diff_id} cannot be exported: its original content is missing")
    return out


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = 0o644
    ti.mtime = 0
    tf.addfile(ti, _BytesReader(data))


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n < 0 else self.pos + n
        chunk = self.data[self.pos : end]
        self.pos += len(chunk)
        return chunk


def _add_dir(tf: tarfile.TarFile, name: str) -> None:
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.DIRTYPE
    ti.mode = 0o755
    ti.mtime = 0
    tf.addfile(ti)


def save(svc: ImageService, refs: list[str], out) -> None:  # noqa: ANN001
    """Write the images named by `refs` (tags, ids) to `out` as one archive."""
    selected: dict[str, tuple[Image, list[str]]] = {}
    for img, tags in _expand(svc, refs):
        prev = selected.get(img.id)
        selected[img.id] = (img, (prev[1] if prev else []) + [t for t in tags if t not in (prev[1] if prev else [])])
    written: set[str] = set()
    manifest_json = []
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    repositories: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(dir=svc.content.ingest) as tmpdir, tarfile.open(
        fileobj=out, mode="w|", format=tarfile.PAX_FORMAT
    ) as tf:
        _add_dir(tf, "blobs")
        _add_dir(tf, "blobs/sha256")
        for img, tags in selected.values():
            layer_paths = []
            layer_descs = []
            chain = svc.layers.chain(img.top_layer) if img.top_layer else []
            for layer in chain:
                name = f"blobs/sha256/{layer.diff_id[7:]}"
                path = _uncompressed_layer(svc, layer.diff_id, layer.chain_id, tmpdir)
                size = os.path.getsize(path)
                if name not in written:
                    ti = tarfile.TarInfo(name)
                    ti.size, ti.mode, ti.mtime = size, 0o644, 0
                    with open(path, "rb") as f:
                        tf.addfile(ti, f)
                    written.add(name)
                layer_paths.append(name)
                layer_descs.append({"mediaType": OCI_LAYER, "size": size, "digest": layer.diff_id})
            cname = f"blobs/sha256/{img.id[7:]}"
            if cname not in written:
                _add_bytes(tf, cname, img.raw)
                written.add(cname)
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, "digest": img.id, "size": len(img.raw)},
                    "layers": layer_descs,
                },
                separators=(",", ":"),
            ).encode()
            mdigest = "sha256:" + hashlib.sha256(manifest).hexdigest()
            mname = f"blobs/sha256/{mdigest[7:]}"
            if mname not in written:
                _add_bytes(tf, mname, manifest)
                written.add(mname)
            for t in tags or [None]:
                desc: dict = {"mediaType": OCI_MANIFEST, "digest": mdigest, "size": len(manifest)}
                if t:
                    ref = reference.parse_normalized(t)
                    desc["annotations"] = {"io.containerd.image.name": str(ref), "org.opencontainers.image.ref.name": ref.tag}
                    repositories.setdefault(ref.familiar_name, {})[ref.tag or "latest"] = (chain[-1].diff_id[7:] if chain else "")
                index["manifests"].append(desc)
            manifest_json.append({"Config": cname, "RepoTags": tags or None, "Layers": layer_paths})
        _add_bytes(tf, "index.json", json.dumps(index, separators=(",", ":")).encode())
        _add_bytes(tf, "manifest.json", json.dumps(manifest_json, separators=(",", ":")).encode())
        _add_bytes(tf, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        if repositories:
            _add_bytes(tf, "repositories", json.dumps(repositories, separators=(",", ":")).encode())


def _expand(svc: ImageService, refs: list[str]) -> list[tuple[Image, list[str]]]:
    """(image, tags to record) per name given to save: a repository name without tag or digest
    stands for every tag of that repository, as in `docker save busybox`."""
    out: list[tuple[Image, list[str]]] = []
    for r in refs:
        if not reference.is_id_like(r) or svc.exists(r) is False:
            try:
                ref = reference.parse(r)
            except InvalidParameter:
                ref = None
            if ref is not None and not ref.tag and not ref.digest:
                keys = sorted(k for k in svc.store.repositories.get(ref.familiar_name, {}) if "@" not in k)
                if keys:
                    out += [(svc.get(k), [k]) for k in keys]
                    continue
        img = svc.get(r)
        tags: list[str] = []
        if not (reference.is_id_like(r) and img.id.startswith(r if r.startswith("sha256:") else "sha256:" + r)):
            ref = reference.parse_normalized(r)
            if not ref.digest:
                tags = [ref.familiar()]
        out.append((img, tags))
    return out


def _safe_file(root: str, name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise InvalidParameter(f"invalid archive: bad path {name!r}")
    path = os.path.join(root, *parts)
    real = os.path.realpath(path)
    if not real.startswith(os.path.realpath(root) + os.sep) or not os.path.isfile(real):
        raise InvalidParameter(f"invalid archive: {name!r} is missing or not a file")
    return real


def load(svc: ImageService, stream, progress: Progress | None = None) -> list[str]:  # noqa: ANN001
    """Load images from a docker-archive or OCI layout tar; returns Docker's "Loaded image" lines."""
    with svc._collect_on_failure(), svc.lease() as lease:  # noqa: SLF001 - the service's own helper
        return _load(svc, stream, progress, lease)


def _load(svc: ImageService, stream, progress: Progress | None, lease: Lease) -> list[str]:  # noqa: ANN001
    emit = progress or (lambda _m: None)
    tmp = tempfile.mkdtemp(prefix="load-", dir=svc.content.ingest)
    try:
        try:
            tarsafe.apply_layer(open_decompressed(stream), tmp)
        except InvalidParameter as e:
            raise InvalidParameter(f"invalid archive: {e.message}") from None
        entries: list[tuple[bytes, list[str], list[str]]] = []  # config, layer files, tags
        mpath = os.path.join(tmp, "manifest.json")
        if os.path.isfile(mpath):
            with open(mpath) as f:
                try:
                    doc = json.load(f)
                except ValueError:
                    raise InvalidParameter("invalid archive: manifest.json is not JSON") from None
            for e in doc:
                with open(_safe_file(tmp, e["Config"]), "rb") as f:
                    config = f.read()
                entries.append((config, [_safe_file(tmp, x) for x in e.get("Layers") or []], list(e.get("RepoTags") or [])))
        elif os.path.isfile(os.path.join(tmp, "index.json")):
            entries = _oci_entries(tmp)
        else:
            raise InvalidParameter("invalid archive: neither manifest.json nor index.json was found (not a docker-archive or OCI layout)")
        out: list[str] = []
        for config, layer_files, tags in entries:
            image_id = _load_one(svc, config, layer_files, emit, lease)
            if tags:
                for t in tags:
                    ref = reference.parse_normalized(t)
                    old = svc.store.lookup_ref(ref.familiar_name, ref.familiar())
                    if old and old != image_id:
                        msg = f"The image {ref.familiar()} already exists, renaming the old one with ID {old} to empty string"
                        emit({"stream": msg + "\n"})
                        out.append(msg)
                    svc.tag_ref(image_id, ref)
                    line = f"Loaded image: {ref.familiar()}"
                    emit({"stream": line + "\n"})
                    out.append(line)
            else:
                line = f"Loaded image ID: {image_id}"
                emit({"stream": line + "\n"})
                out.append(line)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _oci_entries(root: str) -> list[tuple[bytes, list[str], list[str]]]:
    def blob(digest: str) -> str:
        algo, _, h = digest.partition(":")
        return _safe_file(root, f"blobs/{algo}/{h}")

    with open(os.path.join(root, "index.json")) as f:
        index = json.load(f)
    out = []
    stack = list(index.get("manifests") or [])
    while stack:
        desc = stack.pop(0)
        with open(blob(desc["digest"]), "rb") as f:
            doc = json.load(f)
        if "manifests" in doc:  # a nested index: take the linux entries
            stack += [m for m in doc["manifests"] if (m.get("platform") or {}).get("os", "linux") == "linux"]
            continue
        with open(blob(doc["config"]["digest"]), "rb") as f:
            config = f.read()
        ann = desc.get("annotations") or {}
        name = ann.get("io.containerd.image.name") or ann.get("org.opencontainers.image.ref.name")
        tags = []
        if name:
            try:
                tags = [reference.parse_normalized(name).familiar()]
            except InvalidParameter:
                tags = []
        out.append((config, [blob(x["digest"]) for x in doc.get("layers") or []], tags))
    return out


def _load_one(svc: ImageService, config: bytes, layer_files: list[str], emit, lease: Lease) -> str:  # noqa: ANN001
    try:
        cfg = json.loads(config)
        diff_ids = list(cfg["rootfs"]["diff_ids"])
    except (ValueError, KeyError, TypeError):
        raise InvalidParameter("invalid archive: an image config is not valid") from None
    if len(diff_ids) != len(layer_files):
        raise InvalidParameter(f"invalid archive: {len(layer_files)} layers for {len(diff_ids)} diff ids")
    parent = None
    held = []
    try:
        for i, path in enumerate(layer_files):
            cid = _chain(parent, diff_ids[i])
            try:
                layer = svc.layers.get(cid)  # a reference taken atomically: a concurrent rmi cannot drop it
            except NotFound:
                size = os.path.getsize(path)
                emit({"status": "Loading layer", "progressDetail": {"current": size, "total": size}, "id": diff_ids[i][7:19]})
                with open(path, "rb") as f:
                    layer = svc.register_layer(f, parent)
            held.append(layer.chain_id)
            if layer.diff_id != diff_ids[i]:
                raise InvalidParameter(f"invalid diffID for layer {i}: calculated {layer.diff_id}, expected {diff_ids[i]}")
            parent = layer.chain_id
        if parent is not None:
            svc.layers.get(parent)
        return svc.add_image(config, parent, lease=lease)
    finally:
        for c in reversed(held):
            svc.layers.release(c)


def _chain(parent: str | None, diff_id: str) -> str:
    from dockyard.storage.layers import chain_id

    return chain_id(parent, diff_id)
