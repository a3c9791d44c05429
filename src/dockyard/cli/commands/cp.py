"""`dockyard cp`: copy files between a container and the local filesystem via the archive API.

Owns: parsing `CONTAINER:PATH` arguments as Docker does, the destination-dependent renaming of
archive entries (moby's PrepareArchiveCopy: into an existing directory, onto an existing file,
to a new name), building the upload tar, extracting a downloaded tar safely (no entry may land
outside the destination directory, symlinks in the way are not followed out), `-` for a tar on
stdin/stdout, `-L`, `-a`, and the "Successfully copied" summary on a terminal.
"""

from __future__ import annotations

import os
import sys

from dockyard.cli.client import APIError
from dockyard.cli.command import CLIError, Command, Ctx
from dockyard.cli.flags import Flag, Options
from dockyard.cli.http import quote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MODE_DIR = 1 << 31
MODE_SYMLINK = 1 << 27


def split_cp_arg(arg: str) -> tuple[str, str]:
    if arg.startswith("/"):
        return "", arg
    ctr, sep, path = arg.partition(":")
    if not sep or ctr.startswith("."):
        return "", arg
    return ctr, path


def split_path_dir_entry(path: str) -> tuple[str, str]:
    """moby's SplitPathDirEntry: ('/a/b/', ...) -> ('/a', 'b'); '/a/.' -> ('/a', '.')."""
    cleaned = path
    trailing_dot = cleaned.endswith("/.") or cleaned == "."
    cleaned = os.path.normpath(cleaned) if cleaned else "."
    if trailing_dot:
        return cleaned, "."
    return os.path.dirname(cleaned) or ".", os.path.basename(cleaned) or cleaned


def asserts_directory(path: str) -> bool:
    return path.endswith("/") or path.endswith("/.") or path == "."


def _stat_header(headers: dict[str, str]) -> dict[str, Any] | None:
    from dockyard.cli.jsonfast import loads
    from dockyard.cli.registry_auth import b64decode

    raw = headers.get("x-docker-container-path-stat")
    if not raw:
        return None
    try:
        return loads(b64decode(raw))
    except ValueError:
        return None


def _rebase(name: str, old: str, new: str) -> str:
    if old == new:
        return name
    if name == old:
        return new
    if name.startswith(old + "/"):
        return new + name[len(old):]
    return name


# ---- from the container --------------------------------------------------------------------------

def _safe_target(root: str, name: str) -> str:
    norm = os.path.normpath(name.lstrip("/"))
    if norm == "." or norm.startswith("../") or norm == "..":
        raise CLIError(f"invalid archive entry: {name!r}")
    target = os.path.join(root, norm)
    parent = os.path.dirname(target)
    real_root = os.path.realpath(root)
    real_parent = os.path.realpath(parent)
    if real_parent != real_root and not real_parent.startswith(real_root + os.sep):
        raise CLIError(f"invalid archive entry: {name!r} resolves outside the destination")
    return target


def extract(fileobj: Any, dest_dir: str, rename: tuple[str, str] | None, keep_owner: bool) -> int:
    """Untar into dest_dir; returns the bytes of file content written."""
    import tarfile

    written = 0
    dir_times: list[tuple[str, float]] = []
    first = True
    with tarfile.open(fileobj=fileobj, mode="r|*") as tf:
        for m in tf:
            name = m.name
            if rename and first:
                # the archive has one top-level entry: rename whatever it is called
                top = name.split("/", 1)[0] if not name.startswith("./") else "."
                rename = (top or rename[0], rename[1])
            first = False
            if rename:
                name = _rebase(name, rename[0], rename[1])
            if os.path.normpath(name) == "." and m.isdir():
                continue
            target = _safe_target(dest_dir, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if m.isdir():
                if os.path.lexists(target) and not os.path.isdir(target):
                    raise CLIError(f"cannot overwrite non-directory {target!r} with directory")
                os.makedirs(target, exist_ok=True)
                os.chmod(target, m.mode & 0o7777)
                dir_times.append((target, m.mtime))
            elif m.isreg():
                if os.path.isdir(target) and not os.path.islink(target):
                    raise CLIError(f"cannot overwrite directory {target!r} with non-directory")
                if os.path.lexists(target):
                    os.unlink(target)
                src = tf.extractfile(m)
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
                try:
                    while src is not None:
                        block = src.read(1 << 20)
                        if not block:
                            break
                        view = memoryview(block)
                        while view:
                            view = view[os.write(fd, view):]
                        written += len(block)
                finally:
                    os.close(fd)
                os.chmod(target, m.mode & 0o7777)
                os.utime(target, (m.mtime, m.mtime))
            elif m.issym():
                if os.path.lexists(target):
                    if os.path.isdir(target) and not os.path.islink(target):
                        raise CLIError(f"cannot overwrite directory {target!r} with non-directory")
                    os.unlink(target)
                os.symlink(m.linkname, target)
                os.utime(target, (m.mtime, m.mtime), follow_symlinks=False)
            elif m.islnk():
                link = m.linkname
                if rename:
                    link = _rebase(link, rename[0], rename[1])
                source = _safe_target(dest_dir, link)
                if os.path.lexists(target):
                    os.unlink(target)
                os.link(source, target, follow_symlinks=False)
            elif m.ischr() or m.isblk() or m.isfifo():
                import stat

                kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
                if os.path.lexists(target):
                    os.unlink(target)
                try:
                    os.mknod(target, kind | (m.mode & 0o7777), os.makedev(m.devmajor, m.devminor))
                except PermissionError:
                    continue
            else:
                continue
            if keep_owner:
                try:
                    os.lchown(target, m.uid, m.gid)
                except OSError:
                    pass
    for path, mtime in reversed(dir_times):
        os.utime(path, (mtime, mtime))
    return written


def copy_from(ctx: Ctx, container: str, src: str, dst: str, opts: Options) -> None:
    client = ctx.client
    rebase_name = ""
    if opts["follow-link"]:
        st = _head_stat(ctx, container, src)
        if st and st.get("mode", 0) & MODE_SYMLINK:
            target = st.get("linkTarget", "")
            if not target.startswith("/"):
                target = os.path.join(split_path_dir_entry(src)[0], target)
            rebase_name = split_path_dir_entry(src)[1]
            src = target
    if dst != "-":
        trailing = "/." if dst.endswith("/.") else "/" if dst.endswith("/") else ""
        dst = (os.path.abspath(dst).rstrip("/") + trailing) or "/"
    resp = client.stream("GET", f"/containers/{quote(container)}/archive", {"path": src})
    try:
        if dst == "-":
            from dockyard.cli.attach import write_all

            for chunk in resp.iter_chunks():
                write_all(1, chunk)
            return
        st = _stat_header(resp.headers) or {}
        src_is_dir = bool(st.get("mode", 0) & MODE_DIR)
        _src_dir, src_base = split_path_dir_entry(src)
        if rebase_name:
            src_base_in_tar = src_base
            src_base = rebase_name
        else:
            src_base_in_tar = src_base
        dst_path = os.path.abspath(dst)
        dst_exists = os.path.lexists(dst_path)
        if dst_exists and os.path.islink(dst_path):
            dst_path = os.path.realpath(dst_path)
        dst_is_dir = os.path.isdir(dst_path)
        dst_dir, dst_base = split_path_dir_entry(dst_path)
        if not dst_exists:
            parent = os.path.dirname(dst_path) or "."
            if not os.path.isdir(parent):
                raise CLIError(f'invalid output path: directory "{parent}" does not exist')
        rename: tuple[str, str] | None
        if dst_exists and dst_is_dir:
            into, rename = dst_path, ((src_base_in_tar, src_base) if rebase_name else None)
        elif dst_exists and src_is_dir:
            raise CLIError("cannot copy directory")
        elif dst_exists or src_is_dir:
            into, rename = dst_dir, (src_base_in_tar, dst_base)
        elif asserts_directory(dst):
            raise CLIError("no such directory")
        else:
            into, rename = dst_dir, (src_base_in_tar, dst_base)
        reader = _BodyReader(resp)
        extract(reader, into, rename, keep_owner=False)
        size = st.get("size", 0) if not src_is_dir else reader.total
        _summary(opts, size, dst)
    finally:
        resp.conn.close()


class _BodyReader:
    """A file-like view of a response body, for tarfile's stream mode."""

    def __init__(self, resp: Any) -> None:
        self.resp = resp
        self.buf = b""
        self.total = 0

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self.buf) < n:
            chunk = self.resp.read_chunk()
            if not chunk:
                break
            self.total += len(chunk)
            self.buf += chunk
        if n < 0:
            data, self.buf = self.buf, b""
        else:
            data, self.buf = self.buf[:n], self.buf[n:]
        return data


def _summary(opts: Options, size: int, dest: str) -> None:
    quiet = opts["quiet"] if "quiet" in opts.changed else not os.isatty(1)
    if not quiet:
        from dockyard.cli.units import human_size

        sys.stderr.write(f"Successfully copied {human_size(size, 3)} to {dest}\n")


# ---- to the container ----------------------------------------------------------------------------

def _head_stat(ctx: Ctx, container: str, path: str) -> dict[str, Any] | None:
    try:
        resp = ctx.client.request("HEAD", f"/containers/{quote(container)}/archive", {"path": path})
    except APIError as e:
        if e.status == 404:
            return None
        raise
    resp.read()
    ctx.client._release(resp)
    return _stat_header(resp.headers)


def _content_size(path: str) -> int:
    if not os.path.isdir(path) or os.path.islink(path):
        return os.lstat(path).st_size if os.path.isfile(path) else 0
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            fp = os.path.join(dirpath, f)
            if os.path.isfile(fp) and not os.path.islink(fp):
                total += os.lstat(fp).st_size
    return total


def copy_to(ctx: Ctx, src: str, container: str, dst: str, opts: Options) -> None:
    import tempfile

    client = ctx.client
    dst_path = dst
    st = _head_stat(ctx, container, dst)
    if st and st.get("mode", 0) & MODE_SYMLINK:
        target = st.get("linkTarget", "")
        if not target.startswith("/"):
            target = os.path.join(split_path_dir_entry(dst)[0], target)
        dst_path = target
        st = _head_stat(ctx, container, target)
    dst_exists = st is not None
    dst_is_dir = bool(st and st.get("mode", 0) & MODE_DIR)
    query: dict[str, Any] = {"noOverwriteDirNonDir": "true"}
    if opts["archive"]:
        query["copyUIDGID"] = "true"
    if src == "-":
        if not dst_is_dir:
            raise CLIError(f'destination "{container}:{dst}" must be a directory')
        query["path"] = dst_path
        client.call("PUT", f"/containers/{quote(container)}/archive", query, sys.stdin.buffer,
                    {"Content-Type": "application/x-tar"})
        return
    local = os.path.abspath(src) + ("/." if src.endswith("/.") or src == "." else "/" if src.endswith("/") else "")
    check = local.rstrip("/") if local != "/" else local
    if not os.path.lexists(check.removesuffix("/.") or "/"):
        raise CLIError(f"lstat {check.removesuffix('/.')}: no such file or directory")
    src_dir, src_base = split_path_dir_entry(local)
    rebase_name = ""
    source_path = os.path.join(src_dir, src_base) if src_base != "." else src_dir
    if opts["follow-link"] and os.path.islink(source_path):
        rebase_name = src_base
        source_path = os.path.realpath(source_path)
        src_dir, src_base = split_path_dir_entry(source_path)
    src_is_dir = os.path.isdir(source_path) and not (os.path.islink(source_path) and not opts["follow-link"])
    dst_dir, dst_base = split_path_dir_entry(dst_path)
    arc_base = rebase_name or src_base
    if dst_exists and dst_is_dir:
        into, name = dst_path, arc_base
    elif dst_exists and src_is_dir:
        raise CLIError("cannot copy directory")
    elif dst_exists or src_is_dir:
        into, name = dst_dir, dst_base
    elif asserts_directory(dst_path):
        raise CLIError("no such directory")
    else:
        into, name = dst_dir, dst_base
    import tarfile

    with tempfile.TemporaryFile() as tmp:
        with tarfile.open(fileobj=tmp, mode="w", format=tarfile.PAX_FORMAT) as tf:
            tf.add(source_path, arcname=name)
        tmp.seek(0)
        query["path"] = into
        client.call("PUT", f"/containers/{quote(container)}/archive", query, tmp,
                    {"Content-Type": "application/x-tar"})
    _summary(opts, _content_size(source_path), f"{container}:{dst_path}")


def cp(ctx: Ctx, opts: Options, args: list[str]) -> int:
    source, dest = args
    if not source:
        raise CLIError("source can not be empty")
    if not dest:
        raise CLIError("destination can not be empty")
    src_ctr, src_path = split_cp_arg(source)
    dst_ctr, dst_path = split_cp_arg(dest)
    if src_ctr and dst_ctr:
        raise CLIError("copying between containers is not supported")
    if src_ctr:
        copy_from(ctx, src_ctr, src_path, dst_path, opts)
    elif dst_ctr:
        copy_to(ctx, src_path, dst_ctr, dst_path, opts)
    else:
        raise CLIError("must specify at least one container source")
    return 0


CP = Command("[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tdockyard cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
             cp, min_args=2, max_args=2, flags=[
                 Flag("archive", "a", kind="bool", help="Archive mode (copy all uid/gid information)"),
                 Flag("follow-link", "L", kind="bool", help="Always follow symbol link in SRC_PATH"),
                 Flag("quiet", "q", kind="bool", help="Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached"),
             ])
