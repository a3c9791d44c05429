"""The build cache index: which image a step made from a parent image and a run config.

A step's key is sha256 of the parent image id and its run config (the instruction as committed,
`#(nop) ...` or the RUN command with the build args it used, the env, workdir, user, shell and
the content hash of COPY/ADD sources), so a step is reused only when all of those match. The
index lives at `<data-root>/builder/cache.json` (atomic writes); an entry whose image is gone is
a miss. The images themselves are the dangling intermediate images Docker's classic builder keeps.

    idx = CacheIndex(data_root)
    idx.key(parent_id, run_config) -> str
    idx.lookup(key) -> image id | None       idx.store(key, image_id)
    idx.entries() -> {key: image id}         idx.drop(keys)
"""

from __future__ import annotations

import hashlib
import json
import os
import threading

from dockyard.util import atomic_write


class CacheIndex:
    def __init__(self, data_root: str) -> None:
        self.path = os.path.join(data_root, "builder", "cache.json")
        self.lock = threading.Lock()

    @staticmethod
    def key(parent: str | None, run_config: dict) -> str:
        raw = json.dumps({"parent": parent or "", "config": run_config}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()

    def _load(self) -> dict[str, str]:
        try:
            with open(self.path) as f:
                doc = json.load(f)
            return doc if isinstance(doc, dict) else {}
        except (OSError, ValueError):
            return {}

    def entries(self) -> dict[str, str]:
        with self.lock:
            return self._load()

    def lookup(self, key: str) -> str | None:
        with self.lock:
            return self._load().get(key)

    def store(self, key: str, image_id: str) -> None:
        with self.lock:
            doc = self._load()
            doc[key] = image_id
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            atomic_write(self.path, json.dumps(doc, sort_keys=True), mode=0o600)

    def drop(self, keys: list[str]) -> None:
        with self.lock:
            doc = self._load()
            for k in keys:
                doc.pop(k, None)
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            atomic_write(self.path, json.dumps(doc, sort_keys=True), mode=0o600)
