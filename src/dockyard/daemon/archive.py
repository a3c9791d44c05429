"""`docker cp`: GET/HEAD/PUT /containers/{id}/archive, with every path resolved inside the
container's root filesystem.

The root is the running container's own view (/proc/<pid>/root, so volumes and binds appear
where the container sees them) or, for a stopped one, its mounted rootfs with mount points
redirected to their sources. Paths are opened with openat2(RESOLVE_IN_ROOT): `..`, absolute
paths and symlinks (absolute or relative) all stay inside that root, so a symlink in the
container cannot point a copy at the host. Walking down a tree never follows symlinks (O_NOFOLLOW
on every *at() call); extraction creates each entry relative to a parent directory fd resolved
the same way, and refuses names that leave the destination.

Under userns-remap the root carries the daemon's id mapping: owners in an uploaded tar are
shifted to host ids (root of the container is the remapped root on disk), and owners in a
download are shifted back (ids the mapping does not cover show as 65534, as inside the container).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import os
import posixpath
import stat
import tarfile
import time
from dataclasses import dataclass
from typing import Any

from dockyard.errors import Forbidden, InvalidParameter, NotFound
from dockyard.storage.idshift import IdentityMapping
from dockyard.sys import linux

# Go's os.FileMode type bits (what X-Docker-Container-Path-Stat carries)
GO_DIR, GO_SYMLINK, GO_DEVICE, GO_PIPE, GO_SOCKET = 1 << 31, 1 << 27, 1 << 26, 1 << 25, 1 << 24
GO_SETUID, GO_SETGID, GO_CHARDEV, GO_STICKY = 1 << 23, 1 << 22, 1 << 21, 1 << 20

RESOLVE = linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS


def go_mode(st: os.stat_result) -> int:
    m = st.st_mode & 0o777
    if stat.S_ISDIR(st.st_mode):
        m |= GO_DIR
    elif stat.S_ISLNK(st.st_mode):
        m |= GO_SYMLINK
    elif stat.S_ISBLK(st.st_mode):
        m |= GO_DEVICE
    elif stat.S_ISCHR(st.st_mode):
        m |= GO_DEVICE | GO_CHARDEV
    elif stat.S_ISFIFO(st.st_mode):
        m |= GO_PIPE
    elif stat.S_ISSOCK(st.st_mode):
        m |= GO_SOCKET
    if st.st_mode & stat.S_ISUID:
        m |= GO_SETUID
    if st.st_mode & stat.S_ISGID:
        m |= GO_SETGID
    if st.st_mode & stat.S_ISVTX:
        m |= GO_STICKY
    return m


@dataclass
class Root:
    """A directory fd playing the container's `/`, and how container paths map onto it."""

    fd: int
    redirects: list[tuple[str, str]]  # (container mount point, host source), longest first
    idmap: IdentityMapping | None = None  # userns-remap: container ids <-> host ids

    def locate(self, path: str) -> tuple[int, str, bool]:
        """Container path -> (dirfd to resolve against, relative path, fd is owned by caller)."""
        clean = posixpath.normpath("/" + path)
        for dest, src in self.redirects:
            if clean == dest or clean.startswith(dest + "/"):
                fd = os.open(src, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                return fd, clean[len(dest):].lstrip("/"), True
        return self.fd, clean.lstrip("/"), False

    def close(self) -> None:
        os.close(self.fd)


def open_root(root_path: str, redirects: list[tuple[str, str]] | None = None,
              idmap: IdentityMapping | None = None) -> Root:  # fmt: skip
    fd = os.open(root_path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    reds = sorted(redirects or [], key=lambda r: len(r[0]), reverse=True)
    return Root(fd, reds, idmap if idmap is not None and not idmap.empty else None)


def _split(rel: str) -> tuple[str, str]:
    rel = rel.strip("/")
    if not rel:
        return "", ""
    parent, _, name = rel.rpartition("/")
    return parent, name


def _open_parent(root: Root, path: str) -> tuple[int, str]:
    """(fd of the parent directory, final name) of a container path; the final component is not
    followed. '' name means the root itself."""
    base, rel, owned = root.locate(path)
    try:
        parent, name = _split(rel)
        if name in ("", ".", "..") or path.endswith("/"):
            # the root, a path ending in . or .., or a trailing slash (a symlink there is followed,
            # inside the root, as Docker does): the directory itself
            return linux.openat2(base, rel or ".", os.O_PATH | os.O_DIRECTORY, 0, RESOLVE), ""
        pfd = linux.openat2(base, parent or ".", os.O_PATH | os.O_DIRECTORY, 0, RESOLVE)
        return pfd, name
    finally:
        if owned:
            os.close(base)


def stat_path(root: Root, path: str, who: str) -> tuple[dict[str, Any], os.stat_result, str]:
    """Docker's PathStat of `path` (not following a final symlink)."""
    try:
        pfd, name = _open_parent(root, path)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            raise NotFound(f"Could not find the file {path} in container {who}") from None
        raise
    try:
        try:
            st = os.stat(name or ".", dir_fd=pfd, follow_symlinks=False) if name else os.stat(f"/proc/self/fd/{pfd}")
        except FileNotFoundError:
            raise NotFound(f"Could not find the file {path} in container {who}") from None
        link = ""
        if stat.S_ISLNK(st.st_mode):
            link = os.readlink(name, dir_fd=pfd)
            # as the container sees it (Docker shows the target's absolute path)
            link = posixpath.normpath(posixpath.join(posixpath.dirname("/" + path.strip("/")), link))
        base = posixpath.basename(path.rstrip("/")) or "/"
        info = {
            "name": base,
            "size": st.st_size,
            "mode": go_mode(st),
            "mtime": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(st.st_mtime)) + _frac(st.st_mtime_ns) + "Z",
            "linkTarget": link,
        }
        return info, st, name
    finally:
        os.close(pfd)


def _frac(ns: int) -> str:
    f = ns % 1_000_000_000
    return ("." + f"{f:09d}".rstrip("0")) if f else ""


def stat_header(info: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(info).encode()).decode()


def _tarinfo(name: str, st: os.stat_result, link: str = "", idmap: IdentityMapping | None = None) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.mode = st.st_mode & 0o7777
    ti.uid, ti.gid = st.st_uid, st.st_gid
    if idmap is not None:
        ti.uid, ti.gid = idmap.to_container_or_overflow(st.st_uid, st.st_gid)
    ti.mtime = int(st.st_mtime)  # whole seconds, as Go's tar writes them (no PAX header for them)
    if stat.S_ISDIR(st.st_mode):
        ti.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(st.st_mode):
        ti.type = tarfile.SYMTYPE
        ti.linkname = link
    elif stat.S_ISREG(st.st_mode):
        ti.type = tarfile.REGTYPE
        ti.size = st.st_size
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        ti.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
        ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(st.st_mode):
        ti.type = tarfile.FIFOTYPE
    else:
        return ti  # sockets are skipped by the caller
    return ti


def _walk(tf: tarfile.TarFile, dfd: int, name: str, arc: str, seen: dict[tuple[int, int], str],
          idmap: IdentityMapping | None = None) -> None:  # fmt: skip
    """Add `name` (relative to directory fd `dfd`, never followed) as `arc`, recursively."""
    st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    if stat.S_ISSOCK(st.st_mode):
        return
    link = os.readlink(name, dir_fd=dfd) if stat.S_ISLNK(st.st_mode) else ""
    ti = _tarinfo(arc, st, link, idmap)
    if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
        key = (st.st_dev, st.st_ino)
        if key in seen:
            ti.type, ti.linkname, ti.size = tarfile.LNKTYPE, seen[key], 0
            tf.addfile(ti)
            return
        seen[key] = arc
    if stat.S_ISREG(st.st_mode):
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        with os.fdopen(fd, "rb") as f:
            tf.addfile(ti, f)
        return
    if stat.S_ISDIR(st.st_mode):
        if not ti.name.endswith("/"):
            ti.name = arc
        tf.addfile(ti)
        sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        try:
            for child in sorted(os.listdir(sub)):
                _walk(tf, sub, child, f"{arc}/{child}" if arc not in (".", "") else child, seen, idmap)
        finally:
            os.close(sub)
        return
    tf.addfile(ti)


def write_archive(root: Root, path: str, out: Any, who: str) -> None:
    """The tar GET /archive returns: `path` under its own base name (a trailing '/.' gives the
    directory's content under '.'), symlinks not followed."""
    info, _st, name = stat_path(root, path, who)
    arc = "." if path.rstrip("/").endswith("/.") or path.strip() == "." else info["name"]
    pfd, name = _open_parent(root, path)
    try:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
            if name:
                _walk(tf, pfd, name, arc, {}, root.idmap)
            else:
                # the root, a '..'/'.' path or one with a trailing slash: the directory itself
                top = "." if arc in (".", "/") else arc
                tf.addfile(_tarinfo(top, os.stat(f"/proc/self/fd/{pfd}"), "", root.idmap))
                dfd = os.open(f"/proc/self/fd/{pfd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    for child in sorted(os.listdir(dfd)):
                        _walk(tf, dfd, child, child if arc in (".", "/") else f"{arc}/{child}", {}, root.idmap)
                finally:
                    os.close(dfd)
    finally:
        os.close(pfd)


# --- extraction (PUT) ---------------------------------------------------------------------------------
def _mkdirs(root: Root, path: str) -> int:
    """Open (creating as needed) the directory `path`, resolved in root; returns an O_PATH fd."""
    base, rel, owned = root.locate(path)
    try:
        try:
            return linux.openat2(base, rel or ".", os.O_PATH | os.O_DIRECTORY, 0, RESOLVE)
        except FileNotFoundError:
            pass
        parent, name = _split(rel)
        if not name:
            raise
        pfd = _mkdirs(root, posixpath.dirname(posixpath.normpath("/" + path)))
        try:
            try:
                os.mkdir(name, 0o755, dir_fd=pfd)
                if root.idmap is not None:
                    os.chown(name, *root.idmap.root_pair(), dir_fd=pfd, follow_symlinks=False)
            except FileExistsError:
                pass
            return linux.openat2(pfd, name, os.O_PATH | os.O_DIRECTORY, 0, RESOLVE)
        finally:
            os.close(pfd)
    finally:
        if owned:
            os.close(base)


def _entry_parent(root: Root, dest: str, rel_name: str) -> tuple[int, str]:
    full = posixpath.normpath(posixpath.join(dest, rel_name))
    if not (full == dest or full.startswith(dest.rstrip("/") + "/")):
        raise InvalidParameter(f"invalid tar entry {rel_name!r}: it leaves the destination directory")
    parent, name = posixpath.split(full)
    return _mkdirs(root, parent), name


def extract(root: Root, dest: str, stream: Any, no_overwrite_dir_non_dir: bool, copy_uid_gid: bool, who: str) -> None:
    dest = posixpath.normpath("/" + dest)
    info, st, _ = stat_path(root, dest, who)
    if not stat.S_ISDIR(st.st_mode):
        # a symlink to a directory is fine: it resolves inside the root
        try:
            fd = _mkdirs(root, dest)
            os.close(fd)
        except OSError:
            raise InvalidParameter("extraction point is not a directory") from None
    # the destination as the root sees it (symlinks resolved inside the root)
    dfd = _mkdirs(root, dest)
    os.close(dfd)
    dirs_times: list[tuple[str, float]] = []
    with tarfile.open(fileobj=stream, mode="r|*") as tf:
        for m in tf:
            name = m.name
            if name in (".", "./", ""):
                continue
            pfd, base = _entry_parent(root, dest, name.lstrip("/"))
            try:
                _extract_one(tf, m, pfd, base, no_overwrite_dir_non_dir, copy_uid_gid, root, dest)
            finally:
                os.close(pfd)
            if m.isdir():
                dirs_times.append((posixpath.join(dest, name), m.mtime))
    for path, mtime in reversed(dirs_times):
        with contextlib.suppress(OSError):
            fd = _mkdirs(root, path)
            try:
                os.utime(f"/proc/self/fd/{fd}", (mtime, mtime))
            finally:
                os.close(fd)


def _existing(pfd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=pfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _extract_one(tf: tarfile.TarFile, m: tarfile.TarInfo, pfd: int, name: str, no_overwrite: bool,
                 keep_owner: bool, root: Root, dest: str) -> None:  # fmt: skip
    real = os.open(f"/proc/self/fd/{pfd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        old = _existing(real, name)
        if old is not None:
            if no_overwrite and stat.S_ISDIR(old.st_mode) != m.isdir():
                kind = "directory" if stat.S_ISDIR(old.st_mode) else "non-directory"
                raise InvalidParameter(f"cannot overwrite {kind} \"{name}\" with {'directory' if m.isdir() else 'non-directory'}")
            if not (m.isdir() and stat.S_ISDIR(old.st_mode)):
                if stat.S_ISDIR(old.st_mode):
                    _rmtree_at(real, name)
                else:
                    os.unlink(name, dir_fd=real)
        uid, gid = (m.uid, m.gid) if keep_owner else (0, 0)
        if root.idmap is not None:
            uid, gid = root.idmap.to_host(uid, gid)
        if m.isdir():
            if old is None or not stat.S_ISDIR(old.st_mode):
                os.mkdir(name, 0o700, dir_fd=real)
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=real)
            try:
                os.fchown(fd, uid, gid)
                os.fchmod(fd, m.mode & 0o7777)
            finally:
                os.close(fd)
        elif m.isreg():
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=real)
            try:
                src = tf.extractfile(m)
                if src is not None:
                    while True:
                        chunk = src.read(1 << 20)
                        if not chunk:
                            break
                        os.write(fd, chunk)
                os.fchown(fd, uid, gid)
                os.fchmod(fd, m.mode & 0o7777)
                os.utime(fd, (m.mtime, m.mtime))
            finally:
                os.close(fd)
        elif m.issym():
            os.symlink(m.linkname, name, dir_fd=real)
            os.chown(name, uid, gid, dir_fd=real, follow_symlinks=False)
        elif m.islnk():
            target = posixpath.normpath(posixpath.join(dest, m.linkname.lstrip("/")))
            if not (target.startswith(dest.rstrip("/") + "/")):
                raise InvalidParameter(f"invalid hardlink {m.linkname!r}: it leaves the destination directory")
            tpfd, tname = _open_parent(root, target)
            try:
                treal = os.open(f"/proc/self/fd/{tpfd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    os.link(tname, name, src_dir_fd=treal, dst_dir_fd=real, follow_symlinks=False)
                finally:
                    os.close(treal)
            finally:
                os.close(tpfd)
        elif m.ischr() or m.isblk():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(name, kind | (m.mode & 0o7777), os.makedev(m.devmajor, m.devminor), dir_fd=real)
            os.chown(name, uid, gid, dir_fd=real, follow_symlinks=False)
        elif m.isfifo():
            os.mkfifo(name, m.mode & 0o7777, dir_fd=real)
            os.chown(name, uid, gid, dir_fd=real, follow_symlinks=False)
    finally:
        os.close(real)


def _rmtree_at(dfd: int, name: str) -> None:
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    try:
        for child in os.listdir(fd):
            st = os.stat(child, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                _rmtree_at(fd, child)
            else:
                os.unlink(child, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dfd)


def check_writable(read_only: bool) -> None:
    if read_only:
        raise Forbidden("container rootfs is marked read-only")
