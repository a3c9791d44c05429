"""ImageService on a real layer store: import, lookup, tag, list, inspect, history, rmi, prune, commit."""

from __future__ import annotations

import io
import os

import pytest

from dockyard.errors import Conflict, InvalidParameter, NotFound
from dockyard.image import mkimage
from dockyard.image.service import ImageService
from dockyard.storage.layers import LayerStore
from storage.layertars import LayerTar


@pytest.fixture
def svc(tmp_path):
    layers = LayerStore(str(tmp_path / "root"))
    s = ImageService(str(tmp_path / "root"), layers)
    yield s
    for rw in layers.rw_layers():
        layers.remove_rw(rw.container_id)


@pytest.fixture(scope="module")
def busybox_tar() -> bytes:
    buf = io.BytesIO()
    mkimage.busybox_tar(buf)
    return buf.getvalue()


def test_import_busybox_and_get_by_every_name(svc, busybox_tar):
    image_id = svc.import_(io.BytesIO(busybox_tar), "busybox", changes=['CMD ["sh"]', "ENV A=1"])
    img = svc.get("busybox")
    assert img.id == image_id and image_id.startswith("sha256:")
    assert img.repo_tags == ["busybox:latest"]
    assert img.config["config"]["Cmd"] == ["sh"] and img.config["config"]["Env"] == ["A=1"]
    assert img.config["comment"] == "Imported from -"
    assert img.top_layer == img.diff_ids[0]
    for name in ("busybox:latest", "docker.io/library/busybox", image_id, image_id[7:], image_id[7:19], image_id[:19]):
        assert svc.get(name).id == image_id, name
    with pytest.raises(NotFound) as e:
        svc.get("nosuch")
    assert e.value.message == "No such image: nosuch:latest"
    with pytest.raises(InvalidParameter, match="must be lowercase"):
        svc.get("NoSuch")
    # the files are really in the layer
    layer = svc.layers.lookup(img.top_layer)
    assert os.path.islink(os.path.join(layer.path, "bin/sh"))
    # the original tar is kept as a verified blob (for push and save)
    blobs = svc.store.blobs_for_diff(img.diff_ids[0])
    assert blobs and svc.content.exists(blobs[0]["Digest"])
    # a new service on the same data root sees the same image and holds its layers
    again = ImageService(svc.data_root, LayerStore(svc.data_root))
    assert again.get("busybox").id == image_id


def test_list_inspect_history_tag_rmi(svc, busybox_tar):
    image_id = svc.import_(io.BytesIO(busybox_tar), "busybox:1", message="hello")
    svc.tag("busybox:1", "localhost:5000/bb", "v2")
    listing = svc.list()
    assert len(listing) == 1
    assert sorted(listing[0]["RepoTags"]) == ["busybox:1", "localhost:5000/bb:v2"]
    assert listing[0]["Size"] > 500_000
    info = svc.inspect(image_id)
    assert info["RootFS"]["Layers"] and info["GraphDriver"]["Name"] == "overlay2"
    assert info["Comment"] == "hello" and info["Os"] == "linux"
    hist = svc.history("busybox:1")
    assert hist[0]["Id"] == image_id and hist[0]["Comment"] == "hello" and hist[0]["Size"] > 0
    assert svc.list(filters={"reference": ["busybox"]})[0]["RepoTags"] == ["busybox:1"]
    assert svc.remove("localhost:5000/bb:v2") == [{"Untagged": "localhost:5000/bb:v2"}]
    svc.image_users = lambda i: [("c" * 64, False)]
    with pytest.raises(Conflict, match="must force"):
        svc.remove("busybox:1")
    svc.image_users = lambda i: []
    records = svc.remove("busybox:1")
    assert records[0] == {"Untagged": "busybox:1"} and {"Deleted": image_id} in records
    assert svc.list() == [] and svc.layers.layers() == []


def test_shared_layers_are_kept_until_last_image_goes(svc, busybox_tar):
    a = svc.import_(io.BytesIO(busybox_tar), "a")
    b = svc.import_(io.BytesIO(busybox_tar), "b", changes=["CMD sh"])
    assert a != b
    top = svc.get("a").top_layer
    assert svc.get("b").top_layer == top
    svc.remove("a")
    assert svc.layers.lookup(top) is not None
    svc.remove("b")
    assert svc.layers.lookup(top) is None


def test_commit_container_changes_and_prune(svc, busybox_tar):
    svc.import_(io.BytesIO(busybox_tar), "busybox")
    img = svc.get("busybox")
    svc.layers.create_rw("c1", img.top_layer)
    merged = svc.layers.mount("c1")
    try:
        with open(f"{merged}/hello.txt", "w") as f:
            f.write("hi")
        os.unlink(f"{merged}/bin/ls")
    finally:
        svc.layers.unmount("c1")
    new_id = svc.commit("c1", "busybox", "mine:v1", changes=["CMD [\"cat\", \"/hello.txt\"]"], comment="c")
    new = svc.get("mine:v1")
    assert new.id == new_id and len(new.diff_ids) == 2
    assert new.config["config"]["Cmd"] == ["cat", "/hello.txt"]
    assert svc.inspect(new_id)["Parent"] == img.id
    svc.layers.create_rw("c2", new.top_layer)
    merged = svc.layers.mount("c2")
    try:
        with open(f"{merged}/hello.txt") as f:
            assert f.read() == "hi"
        assert not os.path.lexists(f"{merged}/bin/ls")
    finally:
        svc.layers.unmount("c2")
    svc.layers.remove_rw("c2")
    svc.layers.remove_rw("c1")
    with pytest.raises(Conflict, match="dependent child images"):
        svc.remove(img.id)
    dangling = svc.import_(io.BytesIO(LayerTar().file("x", b"x").bytes()))
    result = svc.prune()
    assert result["ImagesDeleted"] == [{"Deleted": dangling}, {"Deleted": svc.layers.layers()[0].chain_id}] or any(
        r.get("Deleted") == dangling for r in result["ImagesDeleted"]
    )
    assert svc.exists("mine:v1") and svc.exists("busybox")


def test_system_df_and_driver_info(svc, busybox_tar):
    from dockyard.storage.info import driver_info

    svc.import_(io.BytesIO(busybox_tar), "busybox")
    df = svc.df()
    assert df["LayersSize"] > 500_000 and df["BuildCache"] == []
    assert df["Images"][0]["RepoTags"] == ["busybox:latest"] and df["Images"][0]["Containers"] == 0
    info = driver_info(svc.data_root)
    assert info["Driver"] == "overlay2" and info["DockerRootDir"] == svc.data_root
    status = dict(info["DriverStatus"])
    assert status["Backing Filesystem"] in ("extfs", "xfs", "btrfs", "tmpfs") and status["Supports d_type"] == "true"
