"""Hand-made layer tars for the storage and image tests (import as `storage.layertars`)."""

from __future__ import annotations

import gzip
import io
import tarfile


class LayerTar:
    """Builds an uncompressed layer tar in memory, entry by entry."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.tf = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115 - closed in bytes()

    def _info(self, name: str, type_: bytes, mode: int, uid: int = 0, gid: int = 0, mtime: int = 1_600_000_000):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = type_, mode, uid, gid, mtime
        return ti

    def dir(self, name: str, mode: int = 0o755, **kw) -> LayerTar:
        self.tf.addfile(self._info(name, tarfile.DIRTYPE, mode, **kw))
        return self

    def file(self, name: str, data: bytes = b"", mode: int = 0o644, xattrs: dict[str, bytes] | None = None, **kw) -> LayerTar:
        ti = self._info(name, tarfile.REGTYPE, mode, **kw)
        ti.size = len(data)
        for k, v in (xattrs or {}).items():
            ti.pax_headers["SCHILY.xattr." + k] = v.decode("utf-8", "surrogateescape")
        self.tf.addfile(ti, io.BytesIO(data))
        return self

    def symlink(self, name: str, target: str) -> LayerTar:
        ti = self._info(name, tarfile.SYMTYPE, 0o777)
        ti.linkname = target
        self.tf.addfile(ti)
        return self

    def hardlink(self, name: str, target: str) -> LayerTar:
        ti = self._info(name, tarfile.LNKTYPE, 0o644)
        ti.linkname = target
        self.tf.addfile(ti)
        return self

    def chardev(self, name: str, major: int, minor: int, mode: int = 0o666) -> LayerTar:
        ti = self._info(name, tarfile.CHRTYPE, mode)
        ti.devmajor, ti.devminor = major, minor
        self.tf.addfile(ti)
        return self

    def fifo(self, name: str, mode: int = 0o644) -> LayerTar:
        self.tf.addfile(self._info(name, tarfile.FIFOTYPE, mode))
        return self

    def whiteout(self, name: str) -> LayerTar:
        head, _, base = name.rpartition("/")
        return self.file(f"{head}/.wh.{base}" if head else f".wh.{base}", b"", 0o600)

    def opaque(self, dirname: str) -> LayerTar:
        return self.file(f"{dirname}/.wh..wh..opq", b"", 0o600)

    def raw_name(self, name: str, data: bytes = b"x") -> LayerTar:
        """A regular file whose name is written as given (hostile names)."""
        return self.file(name, data)

    def bytes(self) -> bytes:
        self.tf.close()
        return self.buf.getvalue()

    def gz(self) -> bytes:
        return gzip.compress(self.bytes(), compresslevel=1, mtime=0)


def base_layer() -> LayerTar:
    """A small rootfs-like base: dirs, files, a file to delete, a dir to make opaque."""
    t = LayerTar()
    t.dir("etc").file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    t.file("etc/deleted.conf", b"gone soon\n")
    t.dir("opq").file("opq/old1", b"1").file("opq/old2", b"2").dir("opq/sub").file("opq/sub/deep", b"d")
    t.dir("data", mode=0o750, uid=1000, gid=1000).file("data/keep", b"keep", uid=1000, gid=1000)
    t.dir("bin").file("bin/tool", b"#!/bin/sh\necho tool\n", mode=0o755)
    return t


def second_layer() -> LayerTar:
    """Whiteout, opaque marker, hardlink, symlink, setuid file, device node, xattr."""
    t = LayerTar()
    t.dir("etc").whiteout("etc/deleted.conf")
    t.dir("opq").opaque("opq").file("opq/new", b"new")
    t.file("bin/suid", b"suid-binary", mode=0o4755)
    t.hardlink("bin/suid-link", "bin/suid")
    t.symlink("bin/sh-link", "/bin/tool")
    t.chardev("dev-null", 1, 3)
    t.fifo("fifo")
    t.file("xattr-file", b"x", xattrs={"user.dockyard": b"yes"})
    return t
