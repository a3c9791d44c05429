"""The container store: containers by id, the name index, lookups as Docker resolves them, and
persistence of `containers/<id>/config.v2.json` + `hostconfig.json` (atomic writes).

Lookup order is Docker's: full id, then exact name, then a unique id prefix.
Writes are blocking and are made from worker threads (`await store.save(c)`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import threading

from dockyard.daemon import names
from dockyard.daemon.container import Container
from dockyard.errors import Conflict, InvalidParameter, NotFound
from dockyard.util import atomic_write

log = logging.getLogger("dockyard.store")


class ContainerStore:
    def __init__(self, data_root: str, root_ids: tuple[int, int] | None = None) -> None:
        self.root = os.path.join(data_root, "containers")
        os.makedirs(self.root, mode=0o710, exist_ok=True)
        # userns-remap: the remapped root's group may traverse to the files bound into containers
        self.root_gid = root_ids[1] if root_ids else None
        if self.root_gid is not None:
            os.chown(self.root, os.getuid(), self.root_gid)
        self._by_id: dict[str, Container] = {}
        self._names: dict[str, str] = {}  # name -> id
        self._lock = threading.Lock()  # guards the dicts against worker threads
        self._save_locks: dict[str, asyncio.Lock] = {}  # one writer at a time per container

    # --- paths ----------------------------------------------------------------------------------
    def dir(self, cid: str) -> str:
        return os.path.join(self.root, cid)

    def make_dir(self, cid: str) -> str:
        """Create the container's directory (0710; group: the remapped root's, if any). Blocking."""
        d = self.dir(cid)
        os.makedirs(d, 0o710, exist_ok=True)
        if self.root_gid is not None:
            os.chown(d, os.getuid(), self.root_gid)
        return d

    # --- loading (start-up, blocking) -------------------------------------------------------------
    def load_all(self) -> list[Container]:
        out = []
        for cid in sorted(os.listdir(self.root)):
            d = self.dir(cid)
            try:
                with open(os.path.join(d, "config.v2.json")) as f:
                    cfg = json.load(f)
                try:
                    with open(os.path.join(d, "hostconfig.json")) as f:
                        hc = json.load(f)
                except FileNotFoundError:
                    hc = {}
                c = Container.from_disk(cfg, hc)
            except (OSError, ValueError, KeyError) as e:
                log.warning("skipping container %s: unreadable state (%s)", cid, e)
                continue
            if c.id != cid:
                log.warning("skipping container dir %s: id mismatch", cid)
                continue
            self._by_id[c.id] = c
            self._names[c.name] = c.id
            out.append(c)
        return out

    # --- lookups ----------------------------------------------------------------------------------
    def all(self) -> list[Container]:
        with self._lock:
            return list(self._by_id.values())

    def find(self, ref: str) -> Container | None:
        if not ref:
            return None
        with self._lock:
            c = self._by_id.get(ref)
            if c:
                return c
            cid = self._names.get(ref.lstrip("/"))
            if cid:
                return self._by_id.get(cid)
            if len(ref) < 64 and all(ch in "0123456789abcdef" for ch in ref):
                matches = [c for i, c in self._by_id.items() if i.startswith(ref)]
                if len(matches) > 1:
                    raise InvalidParameter(f"Multiple IDs found with provided prefix: {ref}")
                if matches:
                    return matches[0]
        return None

    def get(self, ref: str) -> Container:
        c = self.find(ref)
        if c is None:
            raise NotFound(f"No such container: {ref}")
        return c

    def name_owner(self, name: str) -> str | None:
        with self._lock:
            return self._names.get(name)

    # --- mutation ---------------------------------------------------------------------------------
    def reserve_name(self, name: str, cid: str) -> None:
        with self._lock:
            owner = self._names.get(name)
            if owner and owner != cid:
                raise Conflict(
                    f'Conflict. The container name "/{name}" is already in use by container "{owner}". '
                    "You have to remove (or rename) that container to be able to reuse that name."
                )
            self._names[name] = cid

    def release_name(self, name: str, cid: str) -> None:
        with self._lock:
            if self._names.get(name) == cid:
                del self._names[name]

    def generate_name(self, cid: str) -> str:
        for i in range(20):
            name = names.generate(retry=i >= 10)
            try:
                self.reserve_name(name, cid)
                return name
            except Conflict:
                continue
        name = cid[:12]
        self.reserve_name(name, cid)
        return name

    def add(self, c: Container) -> None:
        with self._lock:
            self._by_id[c.id] = c
            self._names[c.name] = c.id

    def discard(self, c: Container) -> None:
        with self._lock:
            self._by_id.pop(c.id, None)
            if self._names.get(c.name) == c.id:
                del self._names[c.name]

    def save_sync(self, c: Container) -> None:
        d = self.dir(c.id)
        os.makedirs(d, mode=0o710, exist_ok=True)
        cfg, hc = c.to_disk()
        atomic_write(os.path.join(d, "hostconfig.json"), json.dumps(hc), mode=0o644)
        atomic_write(os.path.join(d, "config.v2.json"), json.dumps(cfg), mode=0o600)

    async def save(self, c: Container) -> None:
        """Persist `c`: one writer at a time per container, each writing the state current when it
        gets its turn (so a later save never loses to an earlier one)."""
        lock = self._save_locks.setdefault(c.id, asyncio.Lock())
        async with lock:
            cfg, hc = c.to_disk()
            data_cfg, data_hc = json.dumps(cfg), json.dumps(hc)
            d = self.dir(c.id)

            def write() -> None:
                os.makedirs(d, mode=0o710, exist_ok=True)
                atomic_write(os.path.join(d, "hostconfig.json"), data_hc, mode=0o644)
                atomic_write(os.path.join(d, "config.v2.json"), data_cfg, mode=0o600)

            await asyncio.to_thread(write)

    def delete_dir_sync(self, cid: str) -> None:
        self._save_locks.pop(cid, None)
        shutil.rmtree(self.dir(cid), ignore_errors=True)
