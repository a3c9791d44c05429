"""Garbage collection of the image store: what nothing references goes (layers and the content
store's blobs) after rmi and prune; what an operation in flight has made (a pull's layers and
blobs, its image before it is tagged) survives a concurrent rmi or prune; a failed or
interrupted load leaves nothing behind."""

from __future__ import annotations

import io
import json
import os
import tarfile

import pytest

from dockyard.errors import DockyardError
from dockyard.image.pull import pull_sync
from dockyard.image.push import push_sync
from dockyard.image.service import ImageService
from dockyard.storage.layers import LayerStore
from image.conftest import build_image
from storage.layertars import LayerTar


def _layers(tag: str) -> list[bytes]:
    return [LayerTar().file("base.txt", b"base " + tag.encode()).gz(), LayerTar().file("top.txt", tag.encode()).gz()]


def _pushed(services, registry, name: str) -> tuple[str, str]:
    src = services.new("src-" + name)
    ref = f"{registry.addr}/gc/{name}:v1"
    image_id = build_image(src, _layers(name), ref)
    push_sync(src, ref)
    return ref, image_id


def _manifest_layers(svc: ImageService, ref: str) -> list[str]:
    img = svc.get(ref)
    return [b["Digest"] for d in img.diff_ids for b in svc.store.blobs_for_diff(d) if svc.content.exists(b["Digest"])]


def test_rmi_and_prune_remove_what_nothing_references(services, registry):
    ref, _ = _pushed(services, registry, "rmi")
    svc = services.new("dst")
    pull_sync(svc, ref)
    assert len(svc.content.digests()) >= 4  # manifest, config, two layer blobs
    svc.remove(ref)
    assert svc.list() == [] and svc.layers.layers() == []
    assert svc.content.digests() == []
    # prune of an untagged image does the same
    image_id = pull_sync(svc, ref)
    svc.remove(ref)  # untags and deletes; pull again and untag by hand to leave it dangling
    image_id = pull_sync(svc, ref)
    for repo, key in svc.store.refs_of(image_id):
        svc.store.delete_ref(repo, key)
    assert svc.prune()["ImagesDeleted"]
    assert svc.layers.layers() == [] and svc.content.digests() == []


def test_shared_layer_blobs_stay_with_the_image_that_still_uses_them(services, registry):
    src = services.new("src")
    base = LayerTar().file("shared.txt", b"shared").gz()
    a = f"{registry.addr}/gc/shared-a:v1"
    b = f"{registry.addr}/gc/shared-b:v1"
    build_image(src, [base, LayerTar().file("a", b"a").gz()], a)
    build_image(src, [base, LayerTar().file("b", b"b").gz()], b)
    push_sync(src, a)
    push_sync(src, b)
    svc = services.new("dst")
    pull_sync(svc, a)
    pull_sync(svc, b)
    kept = set(_manifest_layers(svc, b)) | {svc.get(b).id}
    svc.remove(a)
    assert kept <= set(svc.content.digests())
    assert len(svc.layers.layers()) == 2


def test_prune_and_rmi_during_a_pull_leave_its_image_layers_and_blobs(services, registry):
    ref, image_id = _pushed(services, registry, "inflight")
    other_ref, other_id = _pushed(services, registry, "other")
    svc = services.new("dst")
    pull_sync(svc, other_ref)
    orig = svc.add_image
    seen: list[str] = []

    def add_then_collect(*a, **kw):  # noqa: ANN002, ANN003
        new_id = orig(*a, **kw)
        # a concurrent `rmi` of another image and an `image prune -a` land after the pull made
        # its image but before it tagged it
        svc.remove(other_ref)
        seen.append(json.dumps(svc.prune(dangling_only=False)))
        return new_id

    svc.add_image = add_then_collect
    assert pull_sync(svc, ref) == image_id
    svc.add_image = orig
    assert svc.get(ref).id == image_id
    assert len(svc.layers.chain(svc.get(ref).top_layer)) == 2
    blobs = _manifest_layers(svc, ref)
    assert len(blobs) == 2 and all(svc.content.exists(d) for d in blobs)
    assert image_id not in seen[0]
    with pytest.raises(DockyardError):
        svc.get(other_ref)
    assert other_id not in {i.id for i in svc.images()}


def _archive(svc: ImageService, ref: str, corrupt_layer: int | None = None) -> bytes:
    buf = io.BytesIO()
    svc.save([ref], buf)
    if corrupt_layer is None:
        return buf.getvalue()
    buf.seek(0)
    out = io.BytesIO()
    with tarfile.open(fileobj=buf) as src, tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst:
        manifest = json.load(src.extractfile("manifest.json"))
        bad = manifest[0]["Layers"][corrupt_layer]
        for ti in src.getmembers():
            data = src.extractfile(ti).read() if ti.isfile() else None
            if ti.name == bad:
                data = LayerTar().file("evil.txt", b"not the layer the config names").bytes()
                ti.size = len(data)
            dst.addfile(ti, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def _empty(svc: ImageService) -> None:
    assert svc.images() == [] and svc.layers.layers() == []
    assert svc.content.digests() == [] and os.listdir(svc.content.ingest) == []


def test_a_failed_load_leaves_nothing(services):
    src = services.new("src")
    build_image(src, _layers("load"), "loadme:v1")
    svc = services.new("dst")
    with pytest.raises(DockyardError, match="invalid diffID for layer 1"):
        svc.load(io.BytesIO(_archive(src, "loadme:v1", corrupt_layer=1)))
    _empty(svc)
    good = _archive(src, "loadme:v1")
    with pytest.raises(DockyardError):
        svc.load(io.BytesIO(good[: len(good) // 2]))  # the client went away halfway
    _empty(svc)
    assert svc.load(io.BytesIO(good)) == ["Loaded image: loadme:v1"]


def test_what_a_killed_load_or_pull_left_is_collected_on_open(services):
    svc = services.new("dst")
    # a killed daemon leaves registered layers and their blobs that no image names yet
    layer = svc.register_layer(io.BytesIO(LayerTar().file("orphan", b"o").gz()), None)
    assert svc.layers.lookup(layer.chain_id) and svc.content.digests()
    again = ImageService(svc.data_root, LayerStore(svc.data_root))
    _empty(again)
