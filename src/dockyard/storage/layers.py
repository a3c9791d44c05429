"""The layer store: read-only image layers by chain id, and per-container read-write layers.

On disk (as Docker lays it out):
    image/overlay2/layerdb/sha256/<chain-hex>/{diff,size,cache-id,parent}
    image/overlay2/layerdb/mounts/<container-id>/{mount-id,init-id,parent}
    overlay2/<cache-id>/...          (the driver's directories, see storage/overlay.py)

API (blocking; the daemon calls it from a worker thread):
    LayerStore(data_root, idmap=None)   idmap: storage.idshift.IdentityMapping (userns-remap)
    register(stream, parent=None, compression="auto") -> Layer      one reference held by caller
    stage(stream, compression="auto") -> Staged   extract only (safe to run several at once)
    commit(staged, parent) -> Layer                 link it into the chain; one reference held
    discard(staged)
    get(chain_id) -> Layer (takes a reference)     lookup(chain_id) -> Layer | None (no reference)
    release(chain_id) -> list[str]                 drops a reference; removes unreferenced layers
    diff_ids(chain_id) -> list[str]                 bottom first
    layer_tar(chain_id, out)                        the layer's diff as a tar
    create_rw(container_id, parent_chain_id) -> RWLayer   the <mount-id>-init layer + the rw layer
    mount(container_id) -> merged path (refcounted)  unmount(container_id)  remove_rw(container_id)
    changes(container_id) -> [{"Path", "Kind"}]      Kind 0 modified, 1 added, 2 deleted
    diff(container_id, out)                          rw layer as a tar, whiteouts converted back
    sizes(container_id) -> (size_rw, size_root_fs)
    gc() -> list[str]                                removes layers nothing references

Reference counts live in memory: each child layer and each container layer holds one reference
on its parent; the image store takes one per image at start-up (see image/service.py).

With an id mapping (userns-remap) layers are extracted with owners shifted into the remapped
range, the init and rw layers belong to the remapped root, and `diff`/`layer_tar` shift owners
back to container ids: digests are the same as on a daemon without remapping.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import stat
import threading
from dataclasses import dataclass, field

from dockyard.errors import Conflict, InvalidParameter, NotFound
from dockyard.storage import archive
from dockyard.storage.compression import open_decompressed
from dockyard.storage.idshift import IDENTITY, IdentityMapping
from dockyard.storage.overlay import Overlay2
from dockyard.util import atomic_write

# Docker's init layer: path -> "dir", "file" or a symlink target
INIT_ENTRIES: list[tuple[str, str]] = [
    ("dev/pts", "dir"),
    ("dev/shm", "dir"),
    ("proc", "dir"),
    ("sys", "dir"),
    (".dockerenv", "file"),
    ("etc/resolv.conf", "file"),
    ("etc/hosts", "file"),
    ("etc/hostname", "file"),
    ("dev/console", "file"),
    ("etc/mtab", "/proc/mounts"),
]
MAX_DEPTH = 125  # Docker's limit on the number of layers of an image


def chain_id(parent: str | None, diff_id: str) -> str:
    if parent is None:
        return diff_id
    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


def _hex(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise InvalidParameter(f"invalid digest {digest!r}")
    return hexpart


@dataclass(frozen=True)
class Layer:
    chain_id: str
    diff_id: str
    parent: str | None
    cache_id: str
    size: int
    path: str  # the diff directory

    @property
    def id(self) -> str:
        return self.chain_id


@dataclass
class Staged:
    cache_id: str
    diff_id: str
    size: int
    compressed_digest: str = ""
    compressed_size: int = 0


@dataclass(frozen=True)
class RWLayer:
    container_id: str
    mount_id: str
    init_id: str
    parent: str | None


@dataclass
class _State:
    layers: dict[str, Layer] = field(default_factory=dict)
    refs: dict[str, int] = field(default_factory=dict)
    mounts: dict[str, RWLayer] = field(default_factory=dict)


class LayerStore:
    driver_name = "overlay2"

    def __init__(self, data_root: str, idmap: IdentityMapping | None = None) -> None:
        self.data_root = data_root
        self.idmap = idmap or IDENTITY
        self.root_ids: tuple[int, int] | None = None if self.idmap.empty else self.idmap.root_pair()
        self.db = os.path.join(data_root, "image", "overlay2", "layerdb")
        self.driver = Overlay2(os.path.join(data_root, "overlay2"), self.root_ids)
        for sub in ("sha256", "mounts", "tmp"):
            os.makedirs(os.path.join(self.db, sub), exist_ok=True)
        self._lock = threading.RLock()
        self._s = _State()
        self._load()

    # --- loading ----------------------------------------------------------------------------------
    def _read(self, *parts: str) -> str | None:
        try:
            with open(os.path.join(*parts)) as f:
                return f.read().strip()
        except FileNotFoundError:
            return None

    def _load(self) -> None:
        shutil.rmtree(os.path.join(self.db, "tmp"), ignore_errors=True)
        os.makedirs(os.path.join(self.db, "tmp"), exist_ok=True)
        base = os.path.join(self.db, "sha256")
        for hexid in os.listdir(base):
            d = os.path.join(base, hexid)
            diff, cache = self._read(d, "diff"), self._read(d, "cache-id")
            if not diff or not cache or not self.driver.exists(cache):
                shutil.rmtree(d, ignore_errors=True)  # half-registered: never became visible
                continue
            size = int(self._read(d, "size") or 0)
            parent = self._read(d, "parent") or None
            cid = "sha256:" + hexid
            self._s.layers[cid] = Layer(cid, diff, parent, cache, size, self.driver.diff_path(cache))
        for layer in self._s.layers.values():
            self._s.refs.setdefault(layer.chain_id, 0)
            if layer.parent:
                self._s.refs[layer.parent] = self._s.refs.get(layer.parent, 0) + 1
        mbase = os.path.join(self.db, "mounts")
        for cont in os.listdir(mbase):
            d = os.path.join(mbase, cont)
            mount_id, init_id = self._read(d, "mount-id"), self._read(d, "init-id")
            if not mount_id or not init_id:
                shutil.rmtree(d, ignore_errors=True)
                continue
            parent = self._read(d, "parent") or None
            self._s.mounts[cont] = RWLayer(cont, mount_id, init_id, parent)
            if parent:
                self._s.refs[parent] = self._s.refs.get(parent, 0) + 1
        # cache dirs nothing points at were left by an interrupted extraction
        known = {layer.cache_id for layer in self._s.layers.values()}
        for rw in self._s.mounts.values():
            known |= {rw.mount_id, rw.init_id}
        for name in os.listdir(self.driver.home):
            if name != "l" and name not in known:
                self.driver.remove(name)
        ldir = os.path.join(self.driver.home, "l")
        for short in os.listdir(ldir):
            if not os.path.exists(os.path.join(ldir, short)):
                os.unlink(os.path.join(ldir, short))

    # --- read-only layers -------------------------------------------------------------------------
    def stage(self, stream, compression: str = "auto") -> Staged:  # noqa: ANN001 - any .read(n)
        """Extract a layer tar into a fresh cache directory; not visible until commit()."""
        cache_id = secrets.token_hex(32)
        path = self.driver.create(cache_id)
        try:
            raw = archive.HashingReader(stream)
            tar = archive.HashingReader(open_decompressed(raw, compression))
            result = archive.apply_layer(tar, path, self.idmap)
            tar.drain()  # tar padding after the end-of-archive blocks is part of the diff id
            raw.drain()
        except BaseException:
            self.driver.remove(cache_id)
            raise
        return Staged(cache_id, tar.digest, result.size, raw.digest, raw.size)

    def discard(self, staged: Staged) -> None:
        self.driver.remove(staged.cache_id)

    def commit(self, staged: Staged, parent: str | None) -> Layer:
        with self._lock:
            if parent is not None and parent not in self._s.layers:
                self.discard(staged)
                raise NotFound(f"layer does not exist: {parent}")
            cid = chain_id(parent, staged.diff_id)
            existing = self._s.layers.get(cid)
            if existing is not None:
                self.discard(staged)
                self._s.refs[cid] += 1
                return existing
            if parent is not None and self._depth(parent) >= MAX_DEPTH:
                self.discard(staged)
                raise InvalidParameter("max depth exceeded")
            self.driver.set_parent(staged.cache_id, self._s.layers[parent].cache_id if parent else None)
            tmp = os.path.join(self.db, "tmp", secrets.token_hex(8))
            os.mkdir(tmp)
            for name, value in (("diff", staged.diff_id), ("size", str(staged.size)), ("cache-id", staged.cache_id)):
                atomic_write(os.path.join(tmp, name), value)
            if parent:
                atomic_write(os.path.join(tmp, "parent"), parent)
            os.rename(tmp, os.path.join(self.db, "sha256", _hex(cid)))
            layer = Layer(cid, staged.diff_id, parent, staged.cache_id, staged.size, self.driver.diff_path(staged.cache_id))
            self._s.layers[cid] = layer
            self._s.refs[cid] = 1
            if parent:
                self._s.refs[parent] += 1
            return layer

    def register(self, stream, parent: str | None = None, compression: str = "auto") -> Layer:  # noqa: ANN001
        """Extract and commit a layer tar on top of `parent`; the caller holds one reference."""
        if parent is not None and self.lookup(parent) is None:
            raise NotFound(f"layer does not exist: {parent}")
        return self.commit(self.stage(stream, compression), parent)

    def _depth(self, cid: str | None) -> int:
        n = 0
        while cid:
            n += 1
            cid = self._s.layers[cid].parent
        return n

    def lookup(self, cid: str) -> Layer | None:
        with self._lock:
            return self._s.layers.get(cid)

    def get(self, cid: str) -> Layer:
        """The layer, taking a reference on it (give it back with release())."""
        with self._lock:
            layer = self._s.layers.get(cid)
            if layer is None:
                raise NotFound(f"layer does not exist: {cid}")
            self._s.refs[cid] += 1
            return layer

    def release(self, cid: str) -> list[str]:
        """Drop one reference; a layer left with none is removed, then its parent released."""
        removed: list[str] = []
        with self._lock:
            cur: str | None = cid
            while cur:
                if cur not in self._s.layers:
                    break
                self._s.refs[cur] = max(0, self._s.refs.get(cur, 0) - 1)
                if self._s.refs[cur] > 0:
                    break
                layer = self._s.layers[cur]
                self._delete_layer(layer)
                removed.append(cur)
                cur = layer.parent
        return removed

    def _delete_layer(self, layer: Layer) -> None:
        d = os.path.join(self.db, "sha256", _hex(layer.chain_id))
        tmp = os.path.join(self.db, "tmp", "del-" + secrets.token_hex(8))
        os.rename(d, tmp)  # invisible first, then removed
        del self._s.layers[layer.chain_id]
        self._s.refs.pop(layer.chain_id, None)
        self.driver.remove(layer.cache_id)
        shutil.rmtree(tmp, ignore_errors=True)

    def gc(self) -> list[str]:
        """Remove every layer no image, child layer or container references."""
        removed: list[str] = []
        with self._lock:
            while True:
                orphans = [c for c, n in self._s.refs.items() if n <= 0 and c in self._s.layers]
                if not orphans:
                    return removed
                for c in orphans:
                    layer = self._s.layers[c]
                    self._delete_layer(layer)
                    removed.append(c)
                    if layer.parent and layer.parent in self._s.refs:
                        self._s.refs[layer.parent] -= 1

    def refcount(self, cid: str) -> int:
        return self._s.refs.get(cid, 0)

    def layers(self) -> list[Layer]:
        with self._lock:
            return list(self._s.layers.values())

    def chain(self, cid: str | None) -> list[Layer]:
        """The layers from the bottom up to `cid`."""
        out = []
        with self._lock:
            while cid:
                layer = self._s.layers.get(cid)
                if layer is None:
                    raise NotFound(f"layer does not exist: {cid}")
                out.append(layer)
                cid = layer.parent
        return out[::-1]

    def diff_ids(self, cid: str | None) -> list[str]:
        return [layer.diff_id for layer in self.chain(cid)]

    def layer_tar(self, cid: str, out) -> None:  # noqa: ANN001 - binary writer
        """Write the layer's own files as a tar (whiteouts as `.wh.` entries)."""
        layer = self.lookup(cid)
        if layer is None:
            raise NotFound(f"layer does not exist: {cid}")
        archive.export_diff(layer.path, out, idmap=self.idmap)

    def _lower_diffs(self, cid: str | None) -> list[str]:
        return [layer.path for layer in reversed(self.chain(cid))]

    # --- container layers ---------------------------------------------------------------------------
    def create_rw(self, container_id: str, parent: str | None) -> RWLayer:
        """Create the `<mount-id>-init` layer over `parent` (an image's top layer or None) and the
        container's rw layer over it; metadata under layerdb/mounts/<container-id>."""
        with self._lock:
            if container_id in self._s.mounts:
                raise Conflict(f"layer for container {container_id} already exists")
            if parent is not None:
                if parent not in self._s.layers:
                    raise NotFound(f"layer does not exist: {parent}")
                self._s.refs[parent] += 1
        mount_id = secrets.token_hex(32)
        init_id = mount_id + "-init"
        try:
            parent_cache = self._s.layers[parent].cache_id if parent else None
            init_diff = self.driver.create(init_id)
            self.driver.set_parent(init_id, parent_cache)
            self._setup_init(init_diff, self._lower_diffs(parent) if parent else [])
            self.driver.create(mount_id)
            self.driver.set_parent(mount_id, init_id)
            tmp = os.path.join(self.db, "tmp", secrets.token_hex(8))
            os.mkdir(tmp)
            atomic_write(os.path.join(tmp, "mount-id"), mount_id)
            atomic_write(os.path.join(tmp, "init-id"), init_id)
            if parent:
                atomic_write(os.path.join(tmp, "parent"), parent)
            os.rename(tmp, os.path.join(self.db, "mounts", container_id))
        except BaseException:
            self.driver.remove(mount_id)
            self.driver.remove(init_id)
            if parent:
                self.release(parent)
            raise
        rw = RWLayer(container_id, mount_id, init_id, parent)
        with self._lock:
            self._s.mounts[container_id] = rw
        return rw

    def _setup_init(self, init_diff: str, lowers: list[str]) -> None:
        for rel, kind in INIT_ENTRIES:
            st = _lookup(lowers, rel)
            if st is not None and _init_entry_fits(st, kind):
                continue
            # absent, or (an image's symlink, device, ...) not what Docker's init layer puts there:
            # the init layer's entry shadows it, as in Docker, so /proc, /sys, /dev/pts, /dev/shm are
            # real directories and /etc/hosts etc. real files (a symlink there would move mounts)
            parts = rel.split("/")
            for i in range(1, len(parts)):
                sub = "/".join(parts[:i])
                dst = os.path.join(init_diff, sub)
                if os.path.lexists(dst):
                    continue
                st = _lookup(lowers, sub)
                if st is not None and not stat.S_ISDIR(st.st_mode):
                    st = None  # a lower file or symlink where a directory goes: shadowed
                os.mkdir(dst, 0o755)
                if st is not None:  # keep the image's attributes on the merged directory
                    os.chown(dst, st.st_uid, st.st_gid)
                    os.chmod(dst, stat.S_IMODE(st.st_mode))
                    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
                elif self.root_ids:
                    os.chown(dst, *self.root_ids)
            else:
                dst = os.path.join(init_diff, rel)
                if kind == "dir":
                    os.mkdir(dst, 0o755)
                elif kind == "file":
                    os.close(os.open(dst, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o755))
                else:
                    os.symlink(kind, dst)
                if self.root_ids:  # the container's root owns what the init layer adds (Docker's)
                    os.lchown(dst, *self.root_ids)

    def rw_layer(self, container_id: str) -> RWLayer:
        with self._lock:
            rw = self._s.mounts.get(container_id)
        if rw is None:
            raise NotFound(f"no layer for container {container_id}")
        return rw

    def rw_layers(self) -> list[RWLayer]:
        with self._lock:
            return list(self._s.mounts.values())

    def mount(self, container_id: str) -> str:
        return self.driver.mount(self.rw_layer(container_id).mount_id)

    def unmount(self, container_id: str) -> None:
        self.driver.unmount(self.rw_layer(container_id).mount_id)

    def rw_path(self, container_id: str) -> str:
        """The container layer's upper directory (its own changes)."""
        return self.driver.diff_path(self.rw_layer(container_id).mount_id)

    def remove_rw(self, container_id: str) -> None:
        rw = self.rw_layer(container_id)
        with self._lock:
            while self.driver.mount_count(rw.mount_id):
                self.driver.unmount(rw.mount_id)
            d = os.path.join(self.db, "mounts", container_id)
            tmp = os.path.join(self.db, "tmp", "del-" + secrets.token_hex(8))
            os.rename(d, tmp)
            self._s.mounts.pop(container_id, None)
            self.driver.remove(rw.mount_id)
            self.driver.remove(rw.init_id)
            shutil.rmtree(tmp, ignore_errors=True)
            if rw.parent:
                self.release(rw.parent)

    def changes(self, container_id: str) -> list[dict]:
        """What `docker diff` shows: Kind 0 = modified, 1 = added, 2 = deleted, sorted by path."""
        rw = self.rw_layer(container_id)
        upper = self.driver.diff_path(rw.mount_id)
        lowers = [self.driver.diff_path(rw.init_id)] + (self._lower_diffs(rw.parent) if rw.parent else [])
        out: list[dict] = []
        skip: list[str] = []
        for rel, _path, st in archive.walk(upper):
            if any(rel.startswith(s + "/") for s in skip):
                continue
            in_lower = any(os.path.lexists(os.path.join(low, rel)) for low in lowers)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                out.append({"Path": "/" + rel, "Kind": 2})
                continue
            if stat.S_ISDIR(st.st_mode) and not in_lower:
                skip.append(rel)
                out.append({"Path": "/" + rel, "Kind": 1})
                for sub, _p, sst in archive.walk(os.path.join(upper, rel)):
                    if not (stat.S_ISCHR(sst.st_mode) and sst.st_rdev == 0):
                        out.append({"Path": f"/{rel}/{sub}", "Kind": 1})
                continue
            out.append({"Path": "/" + rel, "Kind": 0 if in_lower else 1})
        out.sort(key=lambda c: c["Path"])
        return out

    def diff(self, container_id: str, out) -> None:  # noqa: ANN001 - binary writer
        """The container's changes as a layer tar (for commit, push, build)."""
        archive.export_diff(self.rw_path(container_id), out, idmap=self.idmap)

    def sizes(self, container_id: str) -> tuple[int, int]:
        """(SizeRw, SizeRootFs) in bytes, as `docker ps -s` shows them."""
        rw = self.rw_layer(container_id)
        size_rw = archive.tree_size(self.driver.diff_path(rw.mount_id))
        image = sum(layer.size for layer in self.chain(rw.parent)) if rw.parent else 0
        init = archive.tree_size(self.driver.diff_path(rw.init_id))
        return size_rw, size_rw + init + image

    def image_size(self, cid: str | None) -> int:
        return sum(layer.size for layer in self.chain(cid)) if cid else 0


def _init_entry_fits(st: os.stat_result, kind: str) -> bool:
    """Whether what the image has at an init-layer path is what belongs there."""
    if kind == "dir":
        return stat.S_ISDIR(st.st_mode)
    if kind == "file":
        return stat.S_ISREG(st.st_mode)
    return True


def _lookup(lowers: list[str], rel: str) -> os.stat_result | None:
    """lstat of `rel` in the union of `lowers` (top first), honouring whiteouts and opaque dirs."""
    parts = rel.split("/")
    for low in lowers:
        # a whiteout or an opaque directory on the way down hides everything below
        hidden = False
        for i in range(1, len(parts) + 1):
            p = os.path.join(low, *parts[:i])
            try:
                st = os.lstat(p)
            except (FileNotFoundError, NotADirectoryError):
                break
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                return None
            if i == len(parts):
                return st
            if not stat.S_ISDIR(st.st_mode):
                return None
            if archive._is_opaque(p):
                hidden = True
        if hidden:
            return None
    return None
