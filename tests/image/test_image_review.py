"""Review against Docker's behaviour (moby's daemon/images and the Engine API 1.43): `images`
filters, history of committed images, rmi records and conflicts, tag errors, save of a whole
repository, import from a URL, and the whiteout/opaque round trip through commit → push → pull
on another store."""

from __future__ import annotations

import http.server
import io
import json
import os
import tarfile
import threading

import pytest

from dockyard.errors import Conflict, DockyardError, InvalidParameter, NotFound
from dockyard.image.pull import pull_sync
from dockyard.image.push import push_sync
from image.conftest import build_image
from storage.layertars import LayerTar


def _img(svc, tag: str, labels: dict | None = None, created: str | None = None) -> str:
    import json as _json

    from dockyard.image.config import empty_container_config

    layer = svc.register_layer(io.BytesIO(LayerTar().file("f", tag.encode()).bytes()), None)
    cfg = empty_container_config()
    cfg["Labels"] = labels
    config = {"architecture": "amd64", "os": "linux", "created": created or "2024-01-01T00:00:00Z", "config": cfg,
              "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]}, "history": [{"created": created}]}  # fmt: skip
    return svc.add_image(_json.dumps(config).encode(), layer.chain_id, tag)


def _tags(listing: list[dict]) -> list[str]:
    return sorted(t for i in listing for t in i["RepoTags"])


def test_images_filters(services):
    svc = services.new()
    a = _img(svc, "app:1", {"tier": "web"}, "2024-01-01T00:00:00Z")
    _img(svc, "app:2", {"tier": "db"}, "2024-02-01T00:00:00Z")
    _img(svc, "localhost:5000/team/app:3", None, "2024-03-01T00:00:00Z")
    digest_only = _img(svc, "digested:x", None, "2024-04-01T00:00:00Z")
    svc.store.delete_ref("digested", "digested:x")
    svc.store.set_ref("digested", "digested@sha256:" + "a" * 64, digest_only)
    # reference patterns follow path.Match: `*` does not cross a slash
    assert _tags(svc.list(filters={"reference": ["*"]})) == ["app:1", "app:2"]
    assert _tags(svc.list(filters={"reference": ["*/*/app"]})) == ["localhost:5000/team/app:3"]
    assert _tags(svc.list(filters={"reference": ["app:[12]"]})) == ["app:1", "app:2"]
    listed = svc.list(filters={"reference": ["digested"]})
    assert [i["Id"] for i in listed] == [digest_only] and listed[0]["RepoDigests"] == ["digested@sha256:" + "a" * 64]
    # dangling: no tags (an image known only by digest is dangling, and not for dangling=false)
    assert [i["Id"] for i in svc.list(filters={"dangling": ["true"]})] == [digest_only]
    assert digest_only in [i["Id"] for i in svc.list(filters={"dangling": ["false"]})]
    with pytest.raises(InvalidParameter, match="invalid filter 'dangling=maybe'"):
        svc.list(filters={"dangling": ["maybe"]})
    # before/since compare creation times with the named image; until is a time
    assert _tags(svc.list(filters={"since": ["app:1"]})) == ["app:2", "localhost:5000/team/app:3"]
    assert _tags(svc.list(filters={"before": ["app:2"]})) == ["app:1"]
    assert _tags(svc.list(filters={"until": ["2024-02-15T00:00:00Z"]})) == ["app:1", "app:2"]
    assert _tags(svc.list(filters={"label": ["tier=web"]})) == ["app:1"]
    assert _tags(svc.list(filters={"label": ["tier"]})) == ["app:1", "app:2"]
    assert svc.list(filters={"label": ["tier=web"]})[0]["Id"] == a


def test_history_of_a_committed_image_names_its_local_parent(services, busybox_tar_bytes):
    svc = services.new()
    base = svc.import_(io.BytesIO(busybox_tar_bytes), "busybox:latest")
    svc.layers.create_rw("c1", svc.get("busybox").top_layer)
    try:
        new = svc.commit("c1", "busybox", "mine:v1", author="Ann <ann@example.com>", comment="hello",
                         container_config={"Cmd": ["sh", "-c", "touch /x"]})  # fmt: skip
    finally:
        svc.layers.remove_rw("c1")
    hist = svc.history("mine:v1")
    assert [h["Id"] for h in hist] == [new, base]
    assert hist[0]["Tags"] == ["mine:v1"] and hist[1]["Tags"] == ["busybox:latest"]
    assert hist[0]["CreatedBy"] == "sh -c touch /x" and hist[0]["Comment"] == "hello"
    assert svc.get(new).config["history"][-1]["author"] == "Ann <ann@example.com>"
    assert svc.inspect(new)["Author"] == "Ann <ann@example.com>"


def test_rmi_records_and_conflicts(services):
    svc = services.new()
    image_id = _img(svc, "app:1")
    short = image_id[7:19]
    svc.store.set_ref("app", "app@sha256:" + "b" * 64, image_id)
    # a tag and a digest of one repository are a single reference: a stopped container blocks
    svc.image_users = lambda _i: [("c" * 64, False)]
    with pytest.raises(Conflict, match=f'unable to remove repository reference "app:1" \\(must force\\) - container cccccccccccc is using its referenced image {short}'):  # fmt: skip
        svc.remove("app:1")
    # a running container: -f untags (and its digest in the same repo), the image stays
    svc.image_users = lambda _i: [("d" * 64, True)]
    assert svc.remove("app:1", force=True) == [{"Untagged": "app:1"}, {"Untagged": "app@sha256:" + "b" * 64}]
    assert svc.exists(image_id)
    # by id: a stopped container is reported before multiple references
    svc.tag(image_id, "zeta", "1")
    svc.tag(image_id, "alpha", "1")
    svc.image_users = lambda _i: [("e" * 64, False)]
    with pytest.raises(Conflict, match=f"unable to delete {short} \\(must be forced\\) - image is being used by stopped container eeeeeeeeeeee"):  # fmt: skip
        svc.remove(short)
    svc.image_users = lambda _i: []
    with pytest.raises(Conflict, match=f"unable to delete {short} \\(must be forced\\) - image is referenced in multiple repositories"):  # fmt: skip
        svc.remove(short)
    records = svc.remove(short, force=True)
    assert records[:2] == [{"Untagged": "alpha:1"}, {"Untagged": "zeta:1"}] and records[2] == {"Deleted": image_id}


def test_tag_errors(services):
    svc = services.new()
    _img(svc, "app:1")
    with pytest.raises(InvalidParameter, match="refusing to create an ambiguous tag using digest algorithm as name"):
        svc.tag("app:1", "sha256", "x")
    with pytest.raises(InvalidParameter, match="invalid reference format"):
        svc.tag("nosuch:1", "Bad", "x")  # the new name is checked before the source is looked up
    with pytest.raises(NotFound, match="No such image: nosuch:1"):
        svc.tag("nosuch:1", "good", "x")
    with pytest.raises(InvalidParameter, match="invalid tag format"):
        svc.tag("app:1", "good", "bad tag")


def test_save_of_a_repository_name_takes_all_its_tags(services):
    svc = services.new()
    a = _img(svc, "app:1")
    b = _img(svc, "app:2")
    _img(svc, "other:1")
    buf = io.BytesIO()
    svc.save(["app"], buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))
    assert sorted(t for m in manifest for t in m["RepoTags"]) == ["app:1", "app:2"]
    assert sorted(m["Config"].rsplit("/", 1)[1] for m in manifest) == sorted([a[7:], b[7:]])
    with pytest.raises(NotFound):
        svc.save(["nosuchrepo"], io.BytesIO())


def test_import_from_url(services, busybox_tar_bytes):
    from dockyard.api.routes.images import import_from_url

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            if self.path != "/rootfs.tar":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(busybox_tar_bytes)))
            self.end_headers()
            self.wfile.write(busybox_tar_bytes)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        svc = services.new()
        msgs: list[dict] = []
        host = f"127.0.0.1:{httpd.server_address[1]}"
        image_id = import_from_url(svc, f"{host}/rootfs.tar", "fromurl:v1", [], None, msgs.append)
        assert msgs[0] == {"status": f"Downloading from http://{host}/rootfs.tar"}
        assert svc.get("fromurl:v1").config["comment"] == f"Imported from http://{host}/rootfs.tar"
        assert svc.get("fromurl:v1").id == image_id
        with pytest.raises(DockyardError, match=f"failed to GET http://{host}/missing.tar with status 404 Not Found"):
            import_from_url(svc, f"http://{host}/missing.tar", None, [], None, msgs.append)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_whiteouts_and_opaque_dirs_survive_commit_push_pull(services, registry):
    src = services.new("src")
    base = LayerTar().dir("etc").file("etc/gone.conf", b"x").file("etc/kept.conf", b"k")
    base.dir("opq").file("opq/old1", b"1").dir("opq/sub").file("opq/sub/old2", b"2")
    build_image(src, [base.bytes()], "base:1")
    src.layers.create_rw("c1", src.get("base:1").top_layer)
    merged = src.layers.mount("c1")
    try:
        os.unlink(f"{merged}/etc/gone.conf")
        import shutil

        shutil.rmtree(f"{merged}/opq")
        os.mkdir(f"{merged}/opq")
        with open(f"{merged}/opq/new", "w") as f:
            f.write("new")
    finally:
        src.layers.unmount("c1")
    ref = f"{registry.addr}/review/wh:v1"
    src.commit("c1", "base:1", ref)
    src.layers.remove_rw("c1")
    push_sync(src, ref)
    dst = services.new("dst")
    pull_sync(dst, ref)
    top = dst.layers.chain(dst.get(ref).top_layer)[-1]
    tar = io.BytesIO()
    dst.layers.layer_tar(top.chain_id, tar)
    tar.seek(0)
    with tarfile.open(fileobj=tar) as tf:
        names = set(tf.getnames())
    assert {"etc/.wh.gone.conf", "opq/.wh..wh..opq", "opq/new"} <= names, names
    dst.layers.create_rw("c2", dst.get(ref).top_layer)
    merged = dst.layers.mount("c2")
    try:
        assert not os.path.lexists(f"{merged}/etc/gone.conf") and os.path.exists(f"{merged}/etc/kept.conf")
        assert sorted(os.listdir(f"{merged}/opq")) == ["new"]
    finally:
        dst.layers.unmount("c2")
        dst.layers.remove_rw("c2")


def test_inspect_virtual_size_follows_the_api_version(services):
    svc = services.new()
    _img(svc, "app:1")
    assert "VirtualSize" in svc.inspect("app:1", api_version="1.43")
    assert "VirtualSize" not in svc.inspect("app:1", api_version="1.44")
    data = svc.inspect("app:1")["GraphDriver"]["Data"]
    assert set(data) == {"MergedDir", "UpperDir", "WorkDir"}  # one layer: no LowerDir, as overlay2 reports


def test_prune_takes_images_known_only_by_digest_and_label_filters(services):
    svc = services.new()
    old = _img(svc, "app:1", {"keep": "no"})
    svc.store.set_ref("app", "app@sha256:" + "c" * 64, old)
    _img(svc, "app:1", {"keep": "yes"})  # the tag moves to a newer image, as after a re-pull
    kept = _img(svc, "other:1", {"keep": "yes"})
    svc.store.delete_ref("other", "other:1")  # dangling, but labelled keep=yes
    result = svc.prune(filters={"label!": ["keep=yes"]})
    assert {"Untagged": "app@sha256:" + "c" * 64} in result["ImagesDeleted"] and {"Deleted": old} in result["ImagesDeleted"]
    assert kept in {i.id for i in svc.images()} and svc.exists("app:1")


def test_save_of_two_tags_of_one_image_and_load_messages(services):
    src = services.new("src")
    image_id = _img(src, "app:1")
    src.tag("app:1", "mirror/app", "2")
    buf = io.BytesIO()
    src.save(["app:1", "mirror/app:2"], buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))
    assert len(manifest) == 1 and manifest[0]["RepoTags"] == ["app:1", "mirror/app:2"]
    dst = services.new("dst")
    old = _img(dst, "app:1", {"other": "1"})  # a different image holds the tag already
    lines = dst.load(io.BytesIO(buf.getvalue()))
    assert lines == [f"The image app:1 already exists, renaming the old one with ID {old} to empty string",
                     "Loaded image: app:1", "Loaded image: mirror/app:2"]  # fmt: skip
    assert dst.get("app:1").id == image_id and dst.exists(old)
