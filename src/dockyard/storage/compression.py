"""Compression of layer streams: detection by magic bytes and streaming decompression.

Layers arrive gzip-compressed (Docker, most registries), zstd-compressed (OCI `+zstd`) or as
plain tars; `docker import` also accepts bzip2 and xz. `open_decompressed(raw)` returns a
file-like object with `read(n)` giving the uncompressed bytes, and raises `InvalidParameter`
with a clear message when the bytes are not what their label says.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from typing import BinaryIO, Protocol

from dockyard.errors import InvalidParameter

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def detect(head: bytes) -> str:
    """'gzip', 'zstd', 'bzip2', 'xz' or 'none' from the first bytes of a stream."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(XZ_MAGIC):
        return "xz"
    if head.startswith(BZIP2_MAGIC):
        return "bzip2"
    return "none"


class PeekReader:
    """Wraps a stream so its first bytes can be looked at without losing them."""

    def __init__(self, raw: Readable) -> None:
        self._raw = raw
        self._head = b""

    def peek(self, n: int) -> bytes:
        while len(self._head) < n:
            chunk = self._raw.read(n - len(self._head))
            if not chunk:
                break
            self._head += chunk
        return self._head[:n]

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0:
                data, self._head = self._head + self._raw.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._raw.read(n)


class _Decompressor:
    """Streaming decompression with a read(n) interface; multi-member gzip is handled."""

    CHUNK = 1 << 20

    def __init__(self, raw: Readable, kind: str) -> None:
        self._raw = raw
        self._kind = kind
        self._buf = bytearray()
        self._eof = False
        self._new()

    def _new(self) -> None:
        if self._kind == "gzip":
            self._d = zlib.decompressobj(31)
        elif self._kind == "zstd":
            import zstandard

            self._d = zstandard.ZstdDecompressor().decompressobj()
        elif self._kind == "bzip2":
            self._d = bz2.BZ2Decompressor()
        elif self._kind == "xz":
            self._d = lzma.LZMADecompressor()
        else:  # pragma: no cover - guarded by the caller
            raise ValueError(self._kind)
        self._started = False

    def _fill(self) -> None:
        chunk = self._raw.read(self.CHUNK)
        if not chunk:
            if self._kind == "gzip" and self._started and not self._d.eof:
                raise InvalidParameter("unexpected EOF: the gzip stream is truncated")
            if self._kind in ("bzip2", "xz") and self._started and not self._d.eof:
                raise InvalidParameter(f"unexpected EOF: the {self._kind} stream is truncated")
            self._eof = True
            return
        try:
            while chunk:
                if self._kind == "gzip" and self._d.eof:
                    # another gzip member follows (or trailing garbage)
                    if not chunk.startswith(GZIP_MAGIC[:1]):
                        raise InvalidParameter("invalid gzip data: trailing garbage after the stream")
                    self._new()
                self._started = True
                out = self._d.decompress(chunk)
                self._buf += out
                chunk = self._d.unused_data if self._kind in ("gzip",) and self._d.eof else b""
        except zlib.error as e:
            raise InvalidParameter(f"invalid gzip data: {e}") from None
        except (OSError, EOFError, lzma.LZMAError) as e:
            raise InvalidParameter(f"invalid {self._kind} data: {e}") from None
        except Exception as e:  # zstandard.ZstdError
            if type(e).__name__ == "ZstdError":
                raise InvalidParameter(f"invalid zstd data: {e}") from None
            raise

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            while not self._eof:
                self._fill()
            data = bytes(self._buf)
            self._buf.clear()
            return data
        while len(self._buf) < n and not self._eof:
            self._fill()
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data


def open_decompressed(raw: Readable | BinaryIO, kind: str = "auto") -> Readable:
    """A reader of the uncompressed bytes of `raw`.

    `kind` is 'auto' (sniff the magic), 'gzip', 'zstd', 'bzip2', 'xz' or 'none'. A stream
    labelled gzip whose bytes are not gzip is refused: InvalidParameter("invalid gzip data ...").
    """
    peek = PeekReader(raw)
    head = peek.peek(6)
    found = detect(head)
    if kind == "auto":
        kind = found
    elif kind != "none" and found != kind and head:
        raise InvalidParameter(f"invalid {kind} data: the stream does not start with the {kind} magic bytes")
    if kind == "none":
        return peek
    return _Decompressor(peek, kind)
