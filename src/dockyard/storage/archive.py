"""Layer tars in and out of a directory: safe extraction with overlay whiteouts, and diff export.

`apply_layer(stream, root)` extracts an (uncompressed) layer tar into `root`, the `diff/`
directory of a layer:
- every parent directory is opened with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS |
  RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV) relative to `root`, and each entry is created with the
  *at() calls relative to that directory fd, so nothing can land outside `root` whatever the tar
  holds; names with `..` escapes, absolute names, relative symlinks escaping the root (Docker's
  "invalid symlink"), hardlinks to anything but an earlier entry of the layer, and paths that
  traverse a symlink are refused with `InvalidParameter`;
- `.wh.<name>` becomes a 0/0 character device and `.wh..wh..opq` sets
  `trusted.overlay.opaque=y` on its directory (what overlayfs reads);
- ownership, modes (setuid/setgid/sticky included), xattrs (PAX `SCHILY.xattr.*`), device
  nodes, fifos, hardlinks, symlinks and mtimes are kept (directory times are set last);
- with an id mapping (`--userns-remap`, see storage/idshift.py) owners are shifted to host ids
  (0:0 in the tar is the remapped root on disk; an id outside the range is an error, as in
  Docker) and directories the tar implies without listing them belong to the remapped root.

`export_diff(root, out)` writes the directory back as a layer tar, converting overlay whiteouts
(0/0 char devices, opaque xattrs) back to `.wh.` entries; hardlinks inside the tree become tar
hardlinks. Entries are sorted so the same tree always gives the same bytes. With an id mapping,
owners are shifted back to container ids, so a layer committed on a remapped daemon is the same
layer as anywhere else.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import tarfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from dockyard.errors import InvalidParameter
from dockyard.storage.idshift import IdentityMapping
from dockyard.storage.tarstream import Member, TarFormatError, TarReader
from dockyard.sys import linux

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"

_RESOLVE = linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_SYMLINKS | linux.RESOLVE_NO_MAGICLINKS | linux.RESOLVE_NO_XDEV
_COPY_CHUNK = 1 << 20


class HashingReader:
    """Passes reads through while hashing (sha256) and counting the bytes."""

    def __init__(self, raw, algo: str = "sha256") -> None:  # noqa: ANN001 - any .read(n) object
        self._raw = raw
        self.hash = hashlib.new(algo)
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if data:
            self.hash.update(data)
            self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(_COPY_CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


@dataclass
class ApplyResult:
    size: int  # bytes of regular file content written (Docker's layer "size")
    entries: int


def _clean_name(name: str) -> list[str]:
    """Split a member name into components, refusing escapes and absolute names."""
    if name.startswith("/"):
        raise InvalidParameter(f"invalid tar entry {name!r}: absolute paths are not allowed in a layer")
    parts: list[str] = []
    for p in name.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if not parts:
                raise InvalidParameter(f"invalid tar entry {name!r}: it points outside of the layer root")
            parts.pop()
            continue
        parts.append(p)
    return parts


class _DirCache:
    """Directory fds inside the layer root, opened with openat2 so they cannot lie outside it."""

    LIMIT = 4096

    def __init__(self, root_fd: int, before_close=None, owner: tuple[int, int] | None = None) -> None:  # noqa: ANN001
        self.root_fd = root_fd
        self.fds: dict[tuple[str, ...], int] = {}
        self.created: set[tuple[str, ...]] = set()  # directories made implicitly for children
        self.before_close = before_close  # waits for workers that may still use the fds
        self.owner = owner  # (uid, gid) of implicitly made directories (the remapped root)

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()

    def invalidate(self, prefix: tuple[str, ...]) -> None:
        if self.before_close:
            self.before_close()
        for key in [k for k in self.fds if k[: len(prefix)] == prefix]:
            os.close(self.fds.pop(key))

    def _open(self, parts: tuple[str, ...]) -> int:
        path = "/".join(parts) if parts else "."
        return linux.openat2(self.root_fd, path, os.O_PATH | os.O_DIRECTORY, 0, _RESOLVE)

    def get(self, parts: tuple[str, ...], create: bool = True) -> int:
        """The fd of directory `parts`, creating missing components (0755, root) if asked."""
        if not parts:
            return self.root_fd
        fd = self.fds.get(parts)
        if fd is not None:
            return fd
        try:
            fd = self._open(parts)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise InvalidParameter(f"invalid tar entry {'/'.join(parts)!r}: path traverses a symlink") from None
            if e.errno == errno.ENOTDIR:
                raise InvalidParameter(f"invalid tar entry {'/'.join(parts)!r}: a parent is not a directory") from None
            if e.errno != errno.ENOENT or not create:
                raise
            parent = self.get(parts[:-1], create)
            try:
                os.mkdir(parts[-1], 0o755, dir_fd=parent)
                self.created.add(parts)
                if self.owner is not None:
                    os.chown(parts[-1], *self.owner, dir_fd=parent, follow_symlinks=False)
            except FileExistsError:
                pass
            fd = self._open(parts)
        if len(self.fds) >= self.LIMIT:
            if self.before_close:
                self.before_close()
            self.close()
        self.fds[parts] = fd
        return fd


def _proc(fd: int, name: str) -> str:
    return f"/proc/self/fd/{fd}/{name}"


def _xattrs(member: Member) -> list[tuple[str, bytes]]:
    return member.xattrs


class _Pending:
    """Creations handed to worker threads: many files are created at once, which hides the
    filesystem's per-create latency (journal waits); ordering is kept per path."""

    MAX_BYTES = 64 << 20
    MAX_COUNT = 2048
    WORKERS = 8

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=self.WORKERS, thread_name_prefix="dockyard-extract")
        self.by_path: dict[tuple[str, ...], Future] = {}
        self.cond = threading.Condition()
        self.bytes = 0
        self.count = 0
        self.error: BaseException | None = None

    def submit(self, path: tuple[str, ...], size: int, fn, *args) -> None:  # noqa: ANN001
        with self.cond:
            while (self.bytes + size > self.MAX_BYTES and self.bytes > 0) or self.count >= self.MAX_COUNT:
                self.cond.wait()
            self.bytes += size
            self.count += 1
        self.check()

        def run() -> None:
            try:
                fn(*args)
            except BaseException as e:
                if self.error is None:
                    self.error = e
                raise
            finally:
                with self.cond:
                    self.bytes -= size
                    self.count -= 1
                    self.cond.notify_all()

        self.by_path[path] = self.pool.submit(run)
        if len(self.by_path) > 2 * self.MAX_COUNT:
            self.by_path = {p: f for p, f in self.by_path.items() if not f.done()}

    def wait(self, path: tuple[str, ...]) -> None:
        fut = self.by_path.pop(path, None)
        if fut is not None:
            fut.result()

    def wait_all(self) -> None:
        futures = list(self.by_path.values())
        self.by_path.clear()
        for f in futures:
            try:
                f.result()
            except BaseException:  # noqa: S110 - the first error is kept in self.error
                pass
        self.check()

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _remove_existing(x: _Extractor, parent: tuple[str, ...], pfd: int, name: str, keep_dir: bool) -> None:
    path = parent + (name,)
    x.pending.wait(path)
    try:
        st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if keep_dir:
            return
        x.pending.wait_all()  # something may still be writing below it
        x.dcache.invalidate(path)
        shutil.rmtree(name, dir_fd=pfd)
    else:
        os.unlink(name, dir_fd=pfd)


class _Extractor:
    def __init__(self, root_fd: int, idmap: IdentityMapping | None = None) -> None:
        self.pending = _Pending()
        self.idmap = idmap if idmap is not None and not idmap.empty else None
        owner = self.idmap.root_pair() if self.idmap is not None else None
        self.dcache = _DirCache(root_fd, self.pending.wait_all, owner)
        self.dir_times: list[tuple[tuple[str, ...], int, int]] = []
        self.seen: set[tuple[str, ...]] = set()


def apply_layer(stream, root: str, idmap: IdentityMapping | None = None) -> ApplyResult:  # noqa: ANN001
    """Extract the uncompressed layer tar read from `stream` into the empty directory `root`,
    owners shifted to host ids by `idmap` (userns-remap) when given.

    Raises InvalidParameter for hostile or malformed archives; the caller removes `root` then.
    """
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
    x = _Extractor(root_fd, idmap)
    size = entries = 0
    try:
        reader = TarReader(stream)
        try:
            for member in reader:
                entries += 1
                size += _apply_member(reader, member, x)
            x.pending.wait_all()
        except TarFormatError as e:
            raise InvalidParameter(f"invalid layer tar: {e}") from None
        # directory times last: creating children changed them
        for parts, atime, mtime in reversed(x.dir_times):
            try:
                pfd = x.dcache.get(parts[:-1], create=False)
                os.utime(parts[-1], ns=(atime, mtime), dir_fd=pfd, follow_symlinks=False)
            except (OSError, InvalidParameter):
                pass
    finally:
        x.pending.close()
        x.dcache.close()
        os.close(root_fd)
    return ApplyResult(size=size, entries=entries)


def _write_file(pfd: int, name: str, data: bytes | None, reader: TarReader | None, m: Member) -> None:
    """Create a regular file under directory fd `pfd` from `data`, or streamed from `reader`
    (big files, written by the reading thread). `pfd` stays open: the directory cache owns it."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=pfd)
    try:
        def write(chunk: bytes) -> None:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]

        if data is not None:
            write(data)
        elif reader is not None:
            reader.copy_data(m, write)
        os.fchown(fd, m.uid, m.gid)
        for k, v in m.xattrs:
            os.setxattr(fd, k, v)
        os.fchmod(fd, m.mode & 0o7777)
        os.utime(fd, ns=(m.atime_ns, m.mtime_ns))
    finally:
        os.close(fd)


def _make_node(pfd: int, name: str, m: Member) -> None:
    """Create a symlink, device node or fifo under directory fd `pfd` (owned by the cache)."""
    mode = m.mode & 0o7777
    if m.issym():
        os.symlink(m.linkname, name, dir_fd=pfd)
    elif m.ischr() or m.isblk():
        kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
        os.mknod(name, kind | mode, os.makedev(m.devmajor, m.devminor), dir_fd=pfd)
    elif m.isfifo():
        os.mkfifo(name, mode, dir_fd=pfd)
    os.chown(name, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
    for k, v in _xattrs(m):
        os.setxattr(_proc(pfd, name), k, v, follow_symlinks=False)
    if not m.issym():
        os.chmod(name, mode, dir_fd=pfd)  # a node we just created: not a symlink
    os.utime(name, ns=(m.atime_ns, m.mtime_ns), dir_fd=pfd, follow_symlinks=False)


_INLINE_MAX = 8 << 20  # bigger files are written by the reading thread itself


def _apply_member(reader: TarReader, m: Member, x: _Extractor) -> int:
    parts = _clean_name(m.name)
    if not parts:
        return 0  # the root directory itself
    parent, name = tuple(parts[:-1]), parts[-1]
    path = tuple(parts)
    dcache = x.dcache
    if x.idmap is not None:
        m.uid, m.gid = x.idmap.to_host(m.uid, m.gid)
    if parent not in dcache.fds:
        for i in range(1, len(parent) + 1):  # a symlink still being made would be missed
            x.pending.wait(parent[:i])
    pfd = dcache.get(parent)

    if name.startswith(WHITEOUT_PREFIX):
        if name == WHITEOUT_OPAQUE:
            fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY, dir_fd=pfd)
            try:
                os.setxattr(fd, OPAQUE_XATTR, b"y")
            finally:
                os.close(fd)
            return 0
        if name.startswith(WHITEOUT_META_PREFIX):
            return 0  # aufs metadata (.wh..wh.plnk and friends): not used by overlay
        target = name[len(WHITEOUT_PREFIX) :]
        if target in ("", ".", ".."):
            raise InvalidParameter(f"invalid whiteout entry {m.name!r}")
        _remove_existing(x, parent, pfd, target, keep_dir=False)
        os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=pfd)
        os.chown(target, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
        return 0

    atime, mtime = m.atime_ns, m.mtime_ns
    mode = m.mode & 0o7777
    # the layer directory starts empty: only a path this tar already wrote may need replacing
    fresh = path not in x.seen and path not in dcache.created
    x.seen.add(path)

    if m.isdir():
        _remove_existing(x, parent, pfd, name, keep_dir=True)
        try:
            os.mkdir(name, 0o700, dir_fd=pfd)
        except FileExistsError:
            pass
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=pfd)
        try:
            os.fchown(fd, m.uid, m.gid)
            for k, v in _xattrs(m):
                os.setxattr(fd, k, v)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        x.dir_times.append((path, atime, mtime))
        return 0

    if not fresh:
        _remove_existing(x, parent, pfd, name, keep_dir=False)
    if m.isreg():
        if m.size <= _INLINE_MAX:
            data = reader.read_data(m)
            x.pending.submit(path, m.size, _write_file, pfd, name, data, None, m)
        else:
            _write_file(pfd, name, None, reader, m)
        return m.size
    if m.issym():
        link = m.linkname
        if not link.startswith("/"):
            # Docker refuses relative symlinks whose target climbs out of the layer root
            depth = len(parts) - 1
            for p in link.split("/"):
                if p == "..":
                    depth -= 1
                    if depth < 0:
                        raise InvalidParameter(f"invalid symlink {m.name!r} -> {link!r}")
                elif p not in ("", "."):
                    depth += 1
    elif m.islnk():
        try:  # an absolute target names a path inside the layer, as in Docker
            tparts = _clean_name(m.linkname.lstrip("/"))
        except InvalidParameter:
            tparts = []
        if not tparts:
            raise InvalidParameter(f"invalid hardlink {m.name!r} -> {m.linkname!r}: it points outside of the layer")
        x.pending.wait(tuple(tparts))
        try:
            tfd = dcache.get(tuple(tparts[:-1]), create=False)
            os.link(tparts[-1], name, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            raise InvalidParameter(
                f"invalid hardlink {m.name!r} -> {m.linkname!r}: the target is not an earlier entry of the layer"
            ) from None
        return 0  # a hardlink shares the target's inode: attributes are the target's
    elif not (m.ischr() or m.isblk() or m.isfifo()):
        return 0  # unknown types (e.g. GNU sparse headers already expanded) are skipped as Docker does
    x.pending.submit(path, 0, _make_node, pfd, name, m)
    return 0


# --- export ---------------------------------------------------------------------------------------
def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _list_xattrs(path: str) -> dict[str, str]:
    out = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for k in names:
        if k.startswith("trusted.overlay.") or not (k.startswith("user.") or k.startswith("security.capability")):
            continue
        try:
            out["SCHILY.xattr." + k] = os.getxattr(path, k, follow_symlinks=False).decode("utf-8", "surrogateescape")
        except OSError:
            pass
    return out


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _tarinfo(rel: str, path: str, st: os.stat_result) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(rel)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.uname = ti.gname = ""
    ti.mtime = st.st_mtime_ns // 1_000_000_000
    return ti


def export_diff(root: str, out, whiteouts: bool = True, idmap: IdentityMapping | None = None) -> None:  # noqa: ANN001
    """Write the tree under `root` to `out` as a layer tar (PAX), whiteouts converted to `.wh.`,
    owners shifted back to container ids by `idmap` (userns-remap) when given."""
    seen_inodes: dict[tuple[int, int], str] = {}
    shift = idmap if idmap is not None and not idmap.empty else None
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, bufsize=1 << 16) as tf:
        for rel, path, st in walk(root):
            ti = _tarinfo(rel, path, st)
            head, _, name = rel.rpartition("/")
            if shift is not None:
                try:
                    ti.uid, ti.gid = shift.to_container(st.st_uid, st.st_gid)
                except InvalidParameter:
                    if not _is_whiteout(st):
                        raise
                    ti.uid = ti.gid = 0  # overlayfs makes whiteouts with the mounter's (host root's) ids
            if whiteouts and _is_whiteout(st):
                wh = tarfile.TarInfo(f"{head}/{WHITEOUT_PREFIX}{name}" if head else WHITEOUT_PREFIX + name)
                wh.mode, wh.uid, wh.gid, wh.mtime = 0o600, ti.uid, ti.gid, ti.mtime
                wh.uname = wh.gname = ""
                tf.addfile(wh)
                continue
            ti.pax_headers.update(_list_xattrs(path))
            if stat.S_ISDIR(st.st_mode):
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
                if whiteouts and _is_opaque(path):
                    opq = tarfile.TarInfo(f"{rel}/{WHITEOUT_OPAQUE}")
                    opq.mode, opq.uid, opq.gid, opq.mtime = ti.mode, ti.uid, ti.gid, ti.mtime
                    opq.uname = opq.gname = ""
                    tf.addfile(opq)
            elif stat.S_ISLNK(st.st_mode):
                ti.type = tarfile.SYMTYPE
                ti.linkname = os.readlink(path)
                tf.addfile(ti)
            elif stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in seen_inodes:
                    ti.type = tarfile.LNKTYPE
                    ti.linkname = seen_inodes[key]
                    tf.addfile(ti)
                    continue
                seen_inodes[key] = rel
                ti.size = st.st_size
                with open(path, "rb") as f:
                    tf.addfile(ti, f)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                ti.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
                ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
                tf.addfile(ti)
            elif stat.S_ISFIFO(st.st_mode):
                ti.type = tarfile.FIFOTYPE
                tf.addfile(ti)
            # sockets are skipped, as Docker does


def walk(root: str) -> Iterator[tuple[str, str, os.stat_result]]:
    """(relative path, absolute path, lstat) of every entry under root: sorted, parents first."""
    yield from _walk_rel(root, "")


def _walk_rel(abs_dir: str, rel_dir: str) -> Iterator[tuple[str, str, os.stat_result]]:
    for n in sorted(os.listdir(abs_dir)):
        crel = f"{rel_dir}/{n}" if rel_dir else n
        cabs = os.path.join(abs_dir, n)
        st = os.lstat(cabs)
        yield crel, cabs, st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk_rel(cabs, crel)


def tree_size(root: str) -> int:
    """Bytes of regular files under root, each inode counted once (Docker's directory size)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for _rel, _abs, st in walk(root):
        if stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1:
                if key in seen:
                    continue
                seen.add(key)
            total += st.st_size
    return total
