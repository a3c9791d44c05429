"""Image metadata on disk, laid out as Docker's classic image store:

    image/overlay2/imagedb/content/sha256/<hex>            the image config (id = sha256 of it)
    image/overlay2/imagedb/metadata/sha256/<hex>/{parent,lastUpdated}
    image/overlay2/repositories.json                       {"Repositories": {name: {ref: id}}}
    image/overlay2/distribution/diffid-by-digest/sha256/<blob-hex>      -> diff id
    image/overlay2/distribution/v2metadata-by-diffid/sha256/<diff-hex>  -> [{Digest, SourceRepository,
                                                                          MediaType}]

Repository keys are familiar names (`busybox`, `localhost:5000/app`), refs are familiar strings
(`busybox:latest`, `busybox@sha256:...`), as Docker writes them. All writes are atomic.
"""

from __future__ import annotations

import json
import os
import threading

from dockyard.image.content import hex_of
from dockyard.util import atomic_write


class ImageStore:
    def __init__(self, data_root: str) -> None:
        base = os.path.join(data_root, "image", "overlay2")
        self.content_dir = os.path.join(base, "imagedb", "content", "sha256")
        self.meta_dir = os.path.join(base, "imagedb", "metadata", "sha256")
        self.repos_path = os.path.join(base, "repositories.json")
        self.by_digest = os.path.join(base, "distribution", "diffid-by-digest", "sha256")
        self.by_diffid = os.path.join(base, "distribution", "v2metadata-by-diffid", "sha256")
        for d in (self.content_dir, self.meta_dir, self.by_digest, self.by_diffid):
            os.makedirs(d, exist_ok=True)
        self.lock = threading.RLock()
        self.repositories: dict[str, dict[str, str]] = {}
        try:
            with open(self.repos_path) as f:
                self.repositories = json.load(f).get("Repositories") or {}
        except FileNotFoundError:
            pass

    # --- configs ----------------------------------------------------------------------------------
    def ids(self) -> list[str]:
        return ["sha256:" + h for h in os.listdir(self.content_dir) if not h.startswith(".")]

    def put_config(self, raw: bytes) -> str:
        import hashlib

        image_id = "sha256:" + hashlib.sha256(raw).hexdigest()
        path = os.path.join(self.content_dir, hex_of(image_id))
        if not os.path.exists(path):
            atomic_write(path, raw, 0o600)
        return image_id

    def get_config(self, image_id: str) -> bytes | None:
        try:
            with open(os.path.join(self.content_dir, hex_of(image_id)), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def delete(self, image_id: str) -> None:
        h = hex_of(image_id)
        for p in (os.path.join(self.content_dir, h),):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
        import shutil

        shutil.rmtree(os.path.join(self.meta_dir, h), ignore_errors=True)

    def set_meta(self, image_id: str, key: str, value: str) -> None:
        d = os.path.join(self.meta_dir, hex_of(image_id))
        os.makedirs(d, exist_ok=True)
        atomic_write(os.path.join(d, key), value)

    def get_meta(self, image_id: str, key: str) -> str | None:
        try:
            with open(os.path.join(self.meta_dir, hex_of(image_id), key)) as f:
                return f.read()
        except FileNotFoundError:
            return None

    # --- references -------------------------------------------------------------------------------
    def save_repositories(self) -> None:
        data = json.dumps({"Repositories": self.repositories}, separators=(",", ":"))
        atomic_write(self.repos_path, data, 0o600)

    def set_ref(self, repo: str, ref: str, image_id: str) -> str | None:
        """Point `ref` (familiar string) at the image; returns the id it pointed to before."""
        with self.lock:
            old = self.repositories.get(repo, {}).get(ref)
            self.repositories.setdefault(repo, {})[ref] = image_id
            self.save_repositories()
            return old

    def delete_ref(self, repo: str, ref: str) -> str | None:
        with self.lock:
            refs = self.repositories.get(repo)
            if not refs or ref not in refs:
                return None
            old = refs.pop(ref)
            if not refs:
                del self.repositories[repo]
            self.save_repositories()
            return old

    def lookup_ref(self, repo: str, ref: str) -> str | None:
        return self.repositories.get(repo, {}).get(ref)

    def refs_of(self, image_id: str) -> list[tuple[str, str]]:
        """(repo, ref) pairs pointing at the image."""
        with self.lock:
            return [(repo, ref) for repo, refs in self.repositories.items() for ref, i in refs.items() if i == image_id]

    # --- distribution metadata --------------------------------------------------------------------
    def add_blob_mapping(self, blob_digest: str, diff_id: str, repo: str, media_type: str) -> None:
        atomic_write(os.path.join(self.by_digest, hex_of(blob_digest)), diff_id)
        path = os.path.join(self.by_diffid, hex_of(diff_id))
        entries = self.blobs_for_diff(diff_id)
        entry = {"Digest": blob_digest, "SourceRepository": repo, "MediaType": media_type}
        entries = [e for e in entries if not (e["Digest"] == blob_digest and e.get("SourceRepository") == repo)]
        entries.insert(0, entry)
        atomic_write(path, json.dumps(entries[:16]))

    def diff_for_blob(self, blob_digest: str) -> str | None:
        try:
            with open(os.path.join(self.by_digest, hex_of(blob_digest))) as f:
                return f.read().strip()
        except FileNotFoundError:
            return None

    def blobs_for_diff(self, diff_id: str) -> list[dict]:
        try:
            with open(os.path.join(self.by_diffid, hex_of(diff_id))) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return []
