"""The content-addressed blob store under `<data-root>/content`.

A blob is written to `ingest/<random>` while its sha256 is computed, fsynced, checked against the
expected size and digest, and only then renamed to `blobs/sha256/<hex>` (and the directory
fsynced): a blob that is visible is complete and verified. An interrupted write leaves only an
ingest file, removed when the store is opened again.

    store = ContentStore(data_root)
    w = store.writer(expected_digest, expected_size); w.write(b); digest = w.commit(); w.abort()
    store.put(data) -> digest, store.get(digest) -> bytes, store.open(digest) -> file
    store.exists(digest), store.size(digest), store.delete(digest), store.digests()
    Tee(reader, writer): read a stream and keep a copy of it as a blob
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil

from dockyard.errors import InvalidParameter, NotFound


def hex_of(digest: str) -> str:
    algo, _, h = digest.partition(":")
    if algo != "sha256" or len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
        raise InvalidParameter(f"invalid digest: {digest}")
    return h


class DigestMismatch(InvalidParameter):
    pass


class Writer:
    """An in-flight blob: write(), then commit() verifies and publishes it."""

    def __init__(self, store: ContentStore, expected_digest: str | None, expected_size: int | None) -> None:
        self.store = store
        self.expected_digest = expected_digest
        self.expected_size = expected_size
        self.path = os.path.join(store.ingest, secrets.token_hex(16))
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        self.hash = hashlib.sha256()
        self.size = 0
        self.done = False

    def write(self, data: bytes) -> None:
        self.hash.update(data)
        self.size += len(data)
        if self.expected_size is not None and self.size > self.expected_size:
            self.abort()
            raise DigestMismatch(
                f"blob {self.expected_digest or ''} is larger than its expected size {self.expected_size}"
            )
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()

    def commit(self, sync: bool = True) -> str:
        """Verify size and digest, fsync, rename into blobs/. Returns the digest."""
        try:
            if self.expected_size is not None and self.size != self.expected_size:
                raise DigestMismatch(
                    f"unexpected EOF: got {self.size} bytes of {self.expected_digest or 'blob'}, expected {self.expected_size}"
                )
            digest = self.digest
            if self.expected_digest is not None and digest != self.expected_digest:
                raise DigestMismatch(f"digest mismatch: expected {self.expected_digest}, got {digest}")
            if sync:
                os.fsync(self.fd)
        except BaseException:
            self.abort()
            raise
        os.close(self.fd)
        self.done = True
        os.rename(self.path, self.store.path(digest))
        if sync:
            self.store.sync_dir()
        return digest

    def abort(self) -> None:
        if self.done:
            return
        self.done = True
        try:
            os.close(self.fd)
        except OSError:
            pass
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class Tee:
    """A reader that copies every byte it hands out to a Writer: a layer is extracted and kept
    as a blob from one pass over the stream (pull, load)."""

    def __init__(self, raw, writer: Writer) -> None:  # noqa: ANN001
        self.raw, self.writer = raw, writer

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if data:
            self.writer.write(data)
        return data


class ContentStore:
    def __init__(self, data_root: str) -> None:
        self.root = os.path.join(data_root, "content")
        self.blobs = os.path.join(self.root, "blobs", "sha256")
        self.ingest = os.path.join(self.root, "ingest")
        os.makedirs(self.blobs, exist_ok=True)
        shutil.rmtree(self.ingest, ignore_errors=True)  # leftovers of interrupted writes
        os.makedirs(self.ingest, exist_ok=True)

    def path(self, digest: str) -> str:
        return os.path.join(self.blobs, hex_of(digest))

    def exists(self, digest: str) -> bool:
        try:
            return os.path.exists(self.path(digest))
        except InvalidParameter:
            return False

    def size(self, digest: str) -> int:
        try:
            return os.path.getsize(self.path(digest))
        except FileNotFoundError:
            raise NotFound(f"content digest {digest}: not found") from None

    def writer(self, expected_digest: str | None = None, expected_size: int | None = None) -> Writer:
        if expected_digest is not None:
            hex_of(expected_digest)
        return Writer(self, expected_digest, expected_size)

    def put(self, data: bytes, expected_digest: str | None = None) -> str:
        w = self.writer(expected_digest, len(data) if expected_digest else None)
        w.write(data)
        return w.commit()

    def get(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def open(self, digest: str):  # noqa: ANN201 - a binary file
        try:
            return open(self.path(digest), "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            raise NotFound(f"content digest {digest}: not found") from None

    def delete(self, digest: str) -> None:
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            pass

    def digests(self) -> list[str]:
        return ["sha256:" + h for h in os.listdir(self.blobs)]

    def sync_dir(self) -> None:
        fd = os.open(self.blobs, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
