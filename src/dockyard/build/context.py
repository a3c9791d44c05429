"""The build context on the daemon side, and the sources of COPY/ADD.

    ctx = Context.extract(stream, tmp_parent)   the client's tar (identity, gzip, bzip2, xz) made
                                                safe by storage/archive.apply_layer (nothing
                                                lands outside the directory)
    ctx.read_dockerfile(name) -> text           the Dockerfile, then .dockerignore applied
    ctx.close()                                 removes the directory
    scoped(root, path) -> host path             `path` resolved inside `root`, symlinks included
    resolve_sources(root, patterns, what) -> [host paths]   wildcards as filepath.Match
    content_hash(paths) -> "file:<hex>" | "dir:<hex>" | "multi:<hex>"   the cache key of sources
    pack_copy(sources, dest, chown, out, dest_is_dir)       a tar of what COPY writes, names
                                                            relative to `/`, for daemon/archive
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
from typing import Any

from dockyard.build import dockerignore
from dockyard.errors import InvalidParameter, NotFound


class Context:
    def __init__(self, root: str) -> None:
        self.root = root

    @classmethod
    def extract(cls, stream: Any, parent: str) -> Context:
        from dockyard.storage.archive import apply_layer
        from dockyard.storage.compression import open_decompressed

        root = tempfile.mkdtemp(prefix="build-", dir=parent)
        try:
            os.chmod(root, 0o700)
            raw = open_decompressed(stream)
            head = raw.read(512)
            if head:
                apply_layer(_Prefixed(head, raw), root)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return cls(root)

    def read_dockerfile(self, name: str) -> str:
        name = name or "Dockerfile"
        path = scoped(self.root, name)
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            if name == "Dockerfile" and os.path.exists(scoped(self.root, "dockerfile")):
                with open(scoped(self.root, "dockerfile"), encoding="utf-8", errors="replace") as f:
                    text = f.read()
            else:
                raise InvalidParameter(f"Cannot locate specified Dockerfile: {name}") from None
        self.apply_dockerignore(name)
        return text

    def apply_dockerignore(self, dockerfile: str) -> None:
        try:
            with open(os.path.join(self.root, ".dockerignore"), encoding="utf-8", errors="replace") as f:
                patterns = dockerignore.read_patterns(f.read())
        except OSError:
            return
        m = dockerignore.Matcher(patterns)
        for dirpath, dirs, files in os.walk(self.root):
            rel_dir = os.path.relpath(dirpath, self.root)
            for name in list(dirs) + files:
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                if not m.excluded(rel):
                    continue
                full = os.path.join(dirpath, name)
                if name in dirs and not os.path.islink(full):
                    if m.has_exceptions:
                        continue  # something below may be re-included: files are judged one by one
                    dirs.remove(name)
                    shutil.rmtree(full, ignore_errors=True)
                else:
                    os.unlink(full)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class _Prefixed:
    def __init__(self, head: bytes, rest: Any) -> None:
        self.head, self.rest = head, rest

    def read(self, n: int = -1) -> bytes:
        if self.head:
            if n is None or n < 0:
                data, self.head = self.head + self.rest.read(), b""
                return data
            data, self.head = self.head[:n], self.head[n:]
            return data
        return self.rest.read(n)


def scoped(root: str, path: str, follow_last: bool = True) -> str:
    """The host path of `path` inside `root`, symlinks followed as if `root` were `/`."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    cur = ""  # relative to root, resolved
    hops = 0
    while parts:
        p = parts.pop(0)
        if p == "..":
            cur = posixpath.dirname(cur)
            continue
        nxt = posixpath.join(cur, p) if cur else p
        full = os.path.join(root, nxt)
        if (parts or follow_last) and os.path.islink(full):
            hops += 1
            if hops > 255:
                raise InvalidParameter(f"too many links in {path}")
            target = os.readlink(full)
            if target.startswith("/"):
                cur = ""
            parts = [q for q in target.split("/") if q not in ("", ".")] + parts
            continue
        cur = nxt
    return os.path.join(root, cur) if cur else root


def _has_wildcards(p: str) -> bool:
    return any(c in p for c in "*?[")


def resolve_sources(root: str, pattern: str, where: str) -> list[str]:
    """Host paths of one COPY/ADD source inside `root` (the context or another stage's rootfs)."""
    clean = posixpath.normpath("/" + pattern).lstrip("/")
    if posixpath.normpath(pattern).startswith("../") or posixpath.normpath(pattern) == "..":
        raise InvalidParameter(f"{where.split()[0]} failed: forbidden path outside the build context: {pattern} ()")
    if not _has_wildcards(clean):
        path = scoped(root, clean)
        if not os.path.lexists(path):
            raise NotFound(f"{where.split()[0]} failed: {'file not found in build context or excluded by .dockerignore: ' if where.endswith('context') else ''}stat {clean or '.'}: file does not exist")
        return [path]
    rx = dockerignore._regex(clean)
    found: list[str] = []
    for dirpath, dirs, files in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted(dirs + files):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if rx.match(rel):
                found.append(os.path.join(root, rel))
        dirs.sort()
    if not found:
        raise InvalidParameter(f"{where.split()[0]} failed: no source files were specified")
    return sorted(found)


def _entries(src: str) -> list[tuple[str, str]]:
    """(host path, name relative to the source) of everything under a directory source."""
    out: list[tuple[str, str]] = []
    for dirpath, dirs, files in os.walk(src):
        dirs.sort()
        rel_dir = os.path.relpath(dirpath, src)
        for name in sorted(dirs) + sorted(files):
            out.append((os.path.join(dirpath, name), name if rel_dir == "." else f"{rel_dir}/{name}"))
    return out


def content_hash(paths: list[str]) -> str:
    """A digest of names, modes, link targets and contents (not owners or times: a fresh clone of
    the same files hits the cache), prefixed as Docker's history shows it."""

    def one(path: str) -> tuple[str, str]:
        h = hashlib.sha256()
        st = os.lstat(path)
        kind = "dir" if stat.S_ISDIR(st.st_mode) else "file"
        items = [(path, "")] + (_entries(path) if kind == "dir" else [])
        for host, rel in items:
            s = os.lstat(host)
            h.update(f"{rel}\0{stat.S_IMODE(s.st_mode):o}\0{stat.S_IFMT(s.st_mode):o}\0".encode())
            if stat.S_ISLNK(s.st_mode):
                h.update(os.readlink(host).encode())
            elif stat.S_ISREG(s.st_mode):
                with open(host, "rb") as f:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
            h.update(b"\0")
        return kind, h.hexdigest()

    results = [one(p) for p in paths]
    if len(results) == 1:
        return f"{results[0][0]}:{results[0][1]}"
    h = hashlib.sha256()
    for kind, digest in results:
        h.update(f"{kind}:{digest}\n".encode())
    return f"multi:{h.hexdigest()}"


def _info(name: str, host: str, st: os.stat_result, owner: tuple[int, int] | None) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.mtime = int(st.st_mtime)
    ti.uid, ti.gid = owner if owner is not None else (0, 0)
    if stat.S_ISDIR(st.st_mode):
        ti.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(st.st_mode):
        ti.type = tarfile.SYMTYPE
        ti.linkname = os.readlink(host)
    elif stat.S_ISREG(st.st_mode):
        ti.size = st.st_size
    elif stat.S_ISFIFO(st.st_mode):
        ti.type = tarfile.FIFOTYPE
    else:
        raise InvalidParameter(f"unsupported file type of {os.path.basename(host)} in the build sources")
    return ti


def pack_copy(sources: list[str], dest: str, dest_is_dir: bool, owner: tuple[int, int] | None, out: Any,
              make_dest_dir: bool) -> None:  # fmt: skip
    """Write the tar that COPY extracts at `/`: a directory source's contents go into `dest`, a
    file goes to `dest/<name>` when `dest` is a directory, else to `dest` itself."""
    dest = posixpath.normpath("/" + dest).lstrip("/")
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        if make_dest_dir and dest:
            ti = tarfile.TarInfo(dest)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 0
            ti.uid, ti.gid = owner if owner is not None else (0, 0)
            tf.addfile(ti)
        for src in sources:
            st = os.lstat(src)
            if stat.S_ISDIR(st.st_mode):
                for host, rel in _entries(src):
                    s = os.lstat(host)
                    ti = _info(posixpath.join(dest, rel) if dest else rel, host, s, owner)
                    _add(tf, ti, host)
            else:
                name = posixpath.join(dest, os.path.basename(src)) if dest_is_dir else dest
                _add(tf, _info(name, src, st, owner), src)


def _add(tf: tarfile.TarFile, ti: tarfile.TarInfo, host: str) -> None:
    if ti.type == tarfile.REGTYPE:
        with open(host, "rb") as f:
            tf.addfile(ti, f)
    else:
        tf.addfile(ti)


def is_archive(path: str) -> bool:
    """ADD extracts local tar archives (identity, gzip, bzip2, xz), as Docker does."""
    try:
        with tarfile.open(path, mode="r:*") as tf:
            return tf.next() is not None
    except (tarfile.TarError, OSError, EOFError):
        return False
