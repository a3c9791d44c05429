"""The layer store and overlay2 driver on the real kernel: layer tars in, container views out."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile

import pytest
import zstandard

from dockyard.errors import InvalidParameter
from dockyard.storage.layers import LayerStore, chain_id
from storage.layertars import LayerTar, base_layer, second_layer


def _read(path) -> str:
    with open(path) as f:
        return f.read()


def _readb(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _write(path, data: str) -> None:
    with open(path, "w") as f:
        f.write(data)


@pytest.fixture
def store(tmp_path):
    s = LayerStore(str(tmp_path / "root"))
    yield s
    for rw in s.rw_layers():
        s.remove_rw(rw.container_id)


def _two_layers(store):
    l1 = store.register(io.BytesIO(base_layer().gz()))
    l2 = store.register(io.BytesIO(second_layer().bytes()), l1.chain_id)
    return l1, l2


def test_layout_on_disk_is_dockers(store, tmp_path):
    l1, l2 = _two_layers(store)
    root = tmp_path / "root"
    assert l2.chain_id == chain_id(l1.chain_id, l2.diff_id)
    db = root / "image/overlay2/layerdb/sha256" / l2.chain_id.split(":")[1]
    assert (db / "diff").read_text() == l2.diff_id
    assert (db / "parent").read_text() == l1.chain_id
    assert (db / "cache-id").read_text() == l2.cache_id
    assert int((db / "size").read_text()) == l2.size > 0
    ov = root / "overlay2"
    short1 = (ov / l1.cache_id / "link").read_text()
    assert len(short1) == 26
    assert os.readlink(ov / "l" / short1) == f"../{l1.cache_id}/diff"
    assert (ov / l2.cache_id / "lower").read_text() == f"l/{short1}"
    assert not (ov / l1.cache_id / "lower").exists()


def test_container_view_matches_docker(store):
    _, l2 = _two_layers(store)
    store.create_rw("c1", l2.chain_id)
    merged = store.mount("c1")
    try:
        assert _read(f"{merged}/etc/passwd").startswith("root:")
        assert not os.path.lexists(f"{merged}/etc/deleted.conf")  # whiteout
        assert sorted(os.listdir(f"{merged}/opq")) == ["new"]  # opaque dir hides old1, old2, sub
        suid = os.stat(f"{merged}/bin/suid")
        assert stat.S_IMODE(suid.st_mode) == 0o4755
        assert os.stat(f"{merged}/bin/suid-link").st_ino == suid.st_ino  # hardlink
        assert os.readlink(f"{merged}/bin/sh-link") == "/bin/tool"
        dev = os.lstat(f"{merged}/dev-null")
        assert stat.S_ISCHR(dev.st_mode) and os.major(dev.st_rdev) == 1 and os.minor(dev.st_rdev) == 3
        assert stat.S_ISFIFO(os.lstat(f"{merged}/fifo").st_mode)
        assert os.getxattr(f"{merged}/xattr-file", "user.dockyard") == b"yes"
        data = os.stat(f"{merged}/data")
        assert (data.st_uid, data.st_gid, stat.S_IMODE(data.st_mode)) == (1000, 1000, 0o750)
        assert os.stat(f"{merged}/etc/passwd").st_mtime == 1_600_000_000
        assert os.stat(f"{merged}/data").st_mtime == 1_600_000_000
        # Docker's init layer
        for f in ("etc/hosts", "etc/hostname", "etc/resolv.conf", ".dockerenv", "dev/console"):
            assert os.path.isfile(f"{merged}/{f}"), f
        for d in ("proc", "sys", "dev/pts", "dev/shm"):
            assert os.path.isdir(f"{merged}/{d}"), d
        assert os.readlink(f"{merged}/etc/mtab") == "/proc/mounts"
    finally:
        store.unmount("c1")
    assert not os.path.ismount(merged)


def test_writes_copy_up_and_lower_layers_stay_untouched(store):
    l1, l2 = _two_layers(store)
    before = {p: _readb(os.path.join(l1.path, p)) for p in ("etc/passwd", "bin/tool")}
    store.create_rw("c1", l2.chain_id)
    merged = store.mount("c1")
    try:
        with open(f"{merged}/etc/passwd", "a") as f:
            f.write("nobody:x:65534:65534::/:/bin/false\n")
        os.unlink(f"{merged}/bin/tool")
        os.mkdir(f"{merged}/newdir")
        _write(f"{merged}/newdir/a", "a")
        shutil.rmtree(f"{merged}/data")
    finally:
        store.unmount("c1")
    for p, content in before.items():
        assert _readb(os.path.join(l1.path, p)) == content
    assert os.path.exists(os.path.join(l1.path, "data/keep"))
    changes = {c["Path"]: c["Kind"] for c in store.changes("c1")}
    assert changes["/etc/passwd"] == 0
    assert changes["/bin/tool"] == 2
    assert changes["/data"] == 2
    assert changes["/newdir"] == 1 and changes["/newdir/a"] == 1
    # the diff round-trips as a layer: same view when stacked again
    buf = io.BytesIO()
    store.diff("c1", buf)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tf:
        names = tf.getnames()
    assert "bin/.wh.tool" in names and ".wh.data" in names and "newdir/a" in names
    l3 = store.register(io.BytesIO(buf.getvalue()), l2.chain_id)
    store.create_rw("c2", l3.chain_id)
    merged2 = store.mount("c2")
    try:
        assert "nobody" in _read(f"{merged2}/etc/passwd")
        assert not os.path.exists(f"{merged2}/bin/tool")
        assert not os.path.exists(f"{merged2}/data")
        assert _read(f"{merged2}/newdir/a") == "a"
    finally:
        store.unmount("c2")
    size_rw, size_root = store.sizes("c1")
    assert 0 < size_rw < size_root


def test_mount_is_refcounted_and_remove_rw_cleans_up(store, tmp_path):
    l1 = store.register(io.BytesIO(base_layer().bytes()))
    rw = store.create_rw("c1", l1.chain_id)
    m1 = store.mount("c1")
    assert store.mount("c1") == m1
    store.unmount("c1")
    assert os.path.ismount(m1)
    store.unmount("c1")
    assert not os.path.ismount(m1)
    store.mount("c1")
    assert store.refcount(l1.chain_id) == 2
    store.remove_rw("c1")
    assert not os.path.ismount(m1)
    assert not os.path.exists(tmp_path / "root/overlay2" / rw.mount_id)
    assert not os.path.exists(tmp_path / "root/overlay2" / rw.init_id)
    assert not os.path.exists(tmp_path / "root/image/overlay2/layerdb/mounts/c1")
    assert store.refcount(l1.chain_id) == 1


def test_refcounts_shared_layers_and_reload(store, tmp_path):
    l1, l2 = _two_layers(store)
    again = store.register(io.BytesIO(base_layer().bytes()))  # same content: same chain, one more ref
    assert again.chain_id == l1.chain_id and again.cache_id == l1.cache_id
    assert len(os.listdir(tmp_path / "root/overlay2")) == 3  # l + two layers: the duplicate was discarded
    store.create_rw("c1", l2.chain_id)
    reloaded = LayerStore(str(tmp_path / "root"))
    assert {x.chain_id for x in reloaded.layers()} == {l1.chain_id, l2.chain_id}
    assert reloaded.rw_layer("c1").parent == l2.chain_id
    assert store.release(l2.chain_id) == []  # the container still uses it
    store.remove_rw("c1")
    assert l2.chain_id not in {x.chain_id for x in store.layers()}
    assert store.release(l1.chain_id) == []  # one of two references left
    assert store.release(l1.chain_id) == [l1.chain_id]
    assert os.listdir(tmp_path / "root/overlay2/l") == []


def test_empty_base_and_no_parent_container(store):
    store.create_rw("c1", None)
    merged = store.mount("c1")
    try:
        assert os.path.isfile(f"{merged}/.dockerenv")
    finally:
        store.unmount("c1")


@pytest.mark.parametrize(
    "build,msg",
    [
        (lambda t: t.raw_name("../../etc/dyt-escape"), "outside of the layer"),
        (lambda t: t.raw_name("/etc/dyt-escape"), "absolute paths"),
        (lambda t: t.symlink("evil", "../../../../etc"), "invalid symlink"),
        (lambda t: t.symlink("evil", "/etc").raw_name("evil/dyt-escape"), "traverses a symlink"),
        (lambda t: t.hardlink("pw", "/etc/passwd"), "invalid hardlink"),
        (lambda t: t.hardlink("pw", "../../../../etc/passwd"), "invalid hardlink"),
    ],
)
def test_hostile_layers_are_refused_and_leave_nothing(store, tmp_path, build, msg):
    base = store.register(io.BytesIO(base_layer().bytes()))
    t = LayerTar().file("ok", b"ok")
    build(t)
    before = sorted(os.listdir(tmp_path / "root/overlay2"))
    with pytest.raises(InvalidParameter, match=msg):
        store.register(io.BytesIO(t.bytes()), base.chain_id)
    assert sorted(os.listdir(tmp_path / "root/overlay2")) == before
    assert not os.path.exists("/etc/dyt-escape")
    assert len(store.layers()) == 1
    assert not os.path.exists(os.path.join(base.path, "evil"))


def test_compressions_and_bad_compressed_bytes(store):
    plain = LayerTar().file("a", b"hello").bytes()
    gz = store.register(io.BytesIO(LayerTar().file("a", b"hello").gz()))
    zs = store.register(io.BytesIO(zstandard.ZstdCompressor().compress(plain)))
    assert gz.chain_id == zs.chain_id  # same uncompressed tar, same diff id
    with pytest.raises(InvalidParameter, match="gzip"):
        store.stage(io.BytesIO(plain), compression="gzip")
    truncated = LayerTar().file("big", os.urandom(200_000)).gz()[:5000]
    with pytest.raises(InvalidParameter, match="truncated|unexpected EOF"):
        store.register(io.BytesIO(truncated))
    assert len(store.layers()) == 1


def test_image_of_130_layers_mounts(store):
    parent = None
    for i in range(124):
        parent = store.register(io.BytesIO(LayerTar().file(f"f{i}", str(i).encode()).bytes()), parent).chain_id
    store.create_rw("deep", parent)
    merged = store.mount("deep")
    try:
        assert _read(f"{merged}/f0") == "0" and _read(f"{merged}/f123") == "123"
    finally:
        store.unmount("deep")
    with pytest.raises(InvalidParameter, match="max depth exceeded"):
        extra = parent
        for i in range(3):
            extra = store.register(io.BytesIO(LayerTar().file(f"g{i}", b"g").bytes()), extra).chain_id


def test_overlay2_dir_is_a_topdir_for_inode_placement(store, tmp_path):
    from dockyard.storage.info import mount_fstype
    from dockyard.sys import fsflags

    home = str(tmp_path / "root/overlay2")
    if mount_fstype(home) != "ext4":
        pytest.skip("FS_TOPDIR_FL is an ext4 placement hint")
    fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert fsflags.get_flags(fd) & fsflags.FS_TOPDIR_FL
    finally:
        os.close(fd)
