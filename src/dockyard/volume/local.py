"""Volumes with Docker's `local` driver: `<data-root>/volumes/<name>/_data` (+ `opts.json`).

A volume is a directory, or with driver options (`type`, `device`, `o`, as `mount -t type -o o
device`) a mount made on `_data` when the first container using it starts and unmade when the
last one stops. References (which containers use which volume) are tracked so `rm` and `prune`
refuse or skip volumes in use, with Docker's messages. Blocking methods are plain functions; the
daemon calls them from worker threads.

With userns-remap the daemon passes `root_ids` (the remapped root's host uid and gid) and each
new `_data` belongs to them, as Docker's local driver makes it, so the container's root can write.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import Conflict, InvalidParameter, NotFound
from dockyard.util import atomic_write

VALID_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
LOCAL_OPTS = {"type", "device", "o", "size"}
ANONYMOUS_LABEL = "com.docker.volume.anonymous"


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@dataclass
class Volume:
    name: str
    driver: str = "local"
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    created_at: str = ""
    anonymous: bool = False

    def inspect(self, mountpoint: str, usage: dict[str, int] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "CreatedAt": self.created_at,
            "Driver": self.driver,
            "Labels": dict(self.labels) if self.labels else None,
            "Mountpoint": mountpoint,
            "Name": self.name,
            "Options": dict(self.options) if self.options else None,
            "Scope": "local",
        }
        if usage is not None:
            out["UsageData"] = usage
        return out


class VolumeService:
    def __init__(self, data_root: str, root_ids: tuple[int, int] | None = None) -> None:
        self.root = os.path.join(data_root, "volumes")
        self.root_ids = root_ids if root_ids and root_ids != (0, 0) else None
        os.makedirs(self.root, mode=0o701, exist_ok=True)
        self._lock = threading.RLock()
        self._vols: dict[str, Volume] = {}
        self._refs: dict[str, set[str]] = {}
        self._mounted: dict[str, int] = {}
        self._load()

    # --- paths and loading ------------------------------------------------------------------------
    def path(self, name: str) -> str:
        return os.path.join(self.root, name, "_data")

    def _load(self) -> None:
        for name in os.listdir(self.root):
            d = os.path.join(self.root, name)
            if not os.path.isdir(d):
                continue
            try:
                with open(os.path.join(d, "opts.json")) as f:
                    meta = json.load(f)
            except (OSError, ValueError):
                if not os.path.isdir(os.path.join(d, "_data")):
                    continue  # a half-created volume (crash before _data existed)
                meta = {}
            self._vols[name] = Volume(
                name=name,
                driver=meta.get("Driver", "local"),
                labels=meta.get("Labels") or {},
                options=meta.get("Options") or {},
                created_at=meta.get("CreatedAt") or _rfc3339(os.stat(d).st_mtime),
                anonymous=bool(meta.get("Anonymous")),
            )
            # an options mount left by a crash
            if self._vols[name].options.get("type") and os.path.ismount(self.path(name)):
                self._mounted[name] = 0

    # --- CRUD ---------------------------------------------------------------------------------------
    def create(self, name: str | None = None, driver: str | None = None, driver_opts: dict[str, str] | None = None,
               labels: dict[str, str] | None = None, anonymous: bool = False) -> Volume:  # fmt: skip
        driver = driver or "local"
        if driver != "local":
            raise NotFound(f'error looking up volume plugin {driver}: plugin "{driver}" not found')
        if not name:
            name = secrets.token_hex(32)
            anonymous = True
        if not VALID_NAME.match(name):
            raise InvalidParameter(
                f'create {name}: "{name}" includes invalid characters for a local volume name, only '
                '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path'
            )
        opts = dict(driver_opts or {})
        for k in opts:
            if k not in LOCAL_OPTS:
                raise InvalidParameter(f'create {name}: invalid option key: "{k}"')
        if opts and ("type" in opts) != ("device" in opts) and opts.get("type") != "tmpfs":
            raise InvalidParameter(f"create {name}: missing required option: \"{'device' if 'type' in opts else 'type'}\"")
        with self._lock:
            existing = self._vols.get(name)
            if existing is not None:
                return existing
            vol = Volume(name=name, driver=driver, labels=dict(labels or {}), options=opts,
                         created_at=_rfc3339(time.time()), anonymous=anonymous)  # fmt: skip
            if anonymous:
                vol.labels.setdefault(ANONYMOUS_LABEL, "")
            d = os.path.join(self.root, name)
            tmp = os.path.join(self.root, f".tmp-{secrets.token_hex(6)}")
            os.makedirs(os.path.join(tmp, "_data"), mode=0o755)
            if self.root_ids:
                os.chown(os.path.join(tmp, "_data"), *self.root_ids)
            atomic_write(os.path.join(tmp, "opts.json"), json.dumps({
                "Driver": driver, "Labels": vol.labels, "Options": opts, "CreatedAt": vol.created_at,
                "Anonymous": anonymous}))  # fmt: skip
            os.rename(tmp, d)
            self._vols[name] = vol
            return vol

    def get(self, name: str) -> Volume:
        with self._lock:
            v = self._vols.get(name)
        if v is None:
            raise NotFound(f"get {name}: no such volume")
        return v

    def exists(self, name: str) -> bool:
        with self._lock:
            return name in self._vols

    def inspect(self, name: str) -> dict[str, Any]:
        return self.get(name).inspect(self.path(name))

    def all(self) -> list[Volume]:
        with self._lock:
            return list(self._vols.values())

    def users(self, name: str) -> set[str]:
        with self._lock:
            return set(self._refs.get(name, set()))

    def list(self, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        filters = filters or {}
        for k in filters:
            if k not in ("dangling", "driver", "label", "name"):
                raise InvalidParameter(f"invalid filter '{k}'")
        out = []
        for v in sorted(self.all(), key=lambda v: v.name):
            if not _match(v, filters, self.users(v.name)):
                continue
            out.append(v.inspect(self.path(v.name)))
        return out

    def remove(self, name: str, force: bool = False) -> None:
        with self._lock:
            v = self._vols.get(name)
            if v is None:
                if force:
                    return
                raise NotFound(f"get {name}: no such volume")
            users = self._refs.get(name)
            if users:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(sorted(users))}]")
            self._unmount_opts(name, force=True)
            d = os.path.join(self.root, name)
            tmp = os.path.join(self.root, f".del-{secrets.token_hex(6)}")
            os.rename(d, tmp)
            del self._vols[name]
        shutil.rmtree(tmp, ignore_errors=True)

    def prune(self, filters: dict[str, list[str]] | None = None) -> tuple[list[str], int]:
        filters = dict(filters or {})
        all_ = "true" in [x.lower() for x in filters.pop("all", [])] or "1" in filters.get("all", [])
        for k in filters:
            if k not in ("label", "label!"):
                raise InvalidParameter(f"invalid filter '{k}'")
        deleted, space = [], 0
        for v in self.all():
            if self.users(v.name):
                continue
            if not all_ and not v.anonymous:
                continue
            if not _labels_match(v.labels, filters.get("label", []), filters.get("label!", [])):
                continue
            size = self.size(v.name)
            try:
                self.remove(v.name)
            except (Conflict, NotFound):
                continue
            deleted.append(v.name)
            space += size
        return deleted, space

    def size(self, name: str) -> int:
        total = 0
        for dirpath, _dirs, files in os.walk(self.path(name)):
            for f in files:
                try:
                    total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
                except OSError:
                    pass
        return total

    # --- references and mounts --------------------------------------------------------------------
    def ref(self, name: str, cid: str) -> None:
        with self._lock:
            if name not in self._vols:
                raise NotFound(f"get {name}: no such volume")
            self._refs.setdefault(name, set()).add(cid)

    def unref(self, name: str, cid: str) -> None:
        with self._lock:
            users = self._refs.get(name)
            if users is not None:
                users.discard(cid)
                if not users:
                    del self._refs[name]

    def mount(self, name: str) -> str:
        """The host path to bind into a container; performs the options mount on first use."""
        v = self.get(name)
        path = self.path(name)
        if not v.options.get("type"):
            return path
        with self._lock:
            count = self._mounted.get(name, 0)
            if count == 0 and not os.path.ismount(path):
                from dockyard.sys import linux

                opts = v.options.get("o", "")
                if "size" in v.options:
                    opts = ",".join(x for x in (opts, f"size={v.options['size']}") if x)
                linux.mount(v.options.get("device", v.options["type"]), path, v.options["type"], 0, opts or None)
            self._mounted[name] = count + 1
        return path

    def unmount(self, name: str) -> None:
        with self._lock:
            if name not in self._mounted:
                return
            self._mounted[name] -= 1
            if self._mounted[name] <= 0:
                self._unmount_opts(name, force=True)

    def _unmount_opts(self, name: str, force: bool = False) -> None:
        if name not in self._mounted:
            return
        from dockyard.sys import linux

        path = self.path(name)
        try:
            if os.path.ismount(path):
                linux.umount(path, linux.MNT_DETACH)
        except OSError:
            pass
        self._mounted.pop(name, None)

    def unmount_all(self) -> None:
        with self._lock:
            for name in list(self._mounted):
                self._unmount_opts(name, force=True)


def _labels_match(labels: dict[str, str], want: list[str], not_want: list[str]) -> bool:
    for lab in want:
        k, sep, val = lab.partition("=")
        if k not in labels or (sep and labels[k] != val):
            return False
    for lab in not_want:
        k, sep, val = lab.partition("=")
        if k in labels and (not sep or labels[k] == val):
            return False
    return True


def _match(v: Volume, filters: dict[str, list[str]], users: set[str]) -> bool:
    if "dangling" in filters:
        vals = {x.lower() for x in filters["dangling"]}
        if not vals <= {"true", "false", "1", "0"}:
            raise InvalidParameter(f"invalid filter 'dangling={next(iter(vals))}'")
        dangling = bool(vals & {"true", "1"})
        if dangling == bool(users):
            return False
    if "driver" in filters and v.driver not in filters["driver"]:
        return False
    if "name" in filters and not any(n in v.name for n in filters["name"]):
        return False
    return _labels_match(v.labels, filters.get("label", []), [])
