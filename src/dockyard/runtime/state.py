"""Container state on disk under the runtime root (`--root`, default /run/dockyard-runc).

One directory per container: `<root>/<id>/state.json` (written atomically) and, between `create`
and `start`, `<root>/<id>/exec.fifo`. The status is never stored: it is computed from the init's
pid and start time (so a recycled pid is not mistaken for the container), the freezer, and the
FIFO, as runc does: created, running, paused or stopped.
"""

from __future__ import annotations

import os
import time

from dockyard.runtime import jsonfast
from dockyard.util import atomic_write

DEFAULT_ROOT = "/run/dockyard-runc"
STATE_FILE = "state.json"
FIFO_NAME = "exec.fifo"
# compiled seccomp programs (runtime/seccomp.py), shared by every --root: not container state
SECCOMP_CACHE = "/run/dockyard-runc/.seccomp-cache"


class StateError(Exception):
    """A lifecycle rule was broken (no such container, wrong status...); shown to the user."""


def valid_id(container_id: str) -> bool:
    if not container_id or container_id in (".", "..") or len(container_id) > 1024:
        return False
    return all(c.isascii() and (c.isalnum() or c in "_+-.") for c in container_id)


def check_id(container_id: str) -> None:
    if not valid_id(container_id):
        raise StateError(f"invalid id format: {container_id}")


def container_dir(root: str, container_id: str) -> str:
    return os.path.join(root, container_id)


def now_rfc3339() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}Z"


def proc_start_time(pid: int) -> tuple[int, str] | None:
    """(start time in clock ticks since boot, state letter) of `pid`, None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2:].split()
    return int(rest[19]), rest[0].decode()


class Container:
    """A loaded state.json plus the helpers to ask about the container's status."""

    def __init__(self, root: str, data: dict) -> None:
        self.root = root
        self.data = data
        self.id: str = data["id"]
        self.dir = container_dir(root, self.id)

    # --- persisted fields --------------------------------------------------------------------
    @property
    def pid(self) -> int:
        return int(self.data.get("pid") or 0)

    @property
    def config(self) -> dict:
        return self.data.get("config") or {}

    @property
    def bundle(self) -> str:
        return self.data.get("bundle", "")

    @property
    def fifo(self) -> str:
        return os.path.join(self.dir, FIFO_NAME)

    def save(self) -> None:
        atomic_write(os.path.join(self.dir, STATE_FILE), jsonfast.dumps(self.data), mode=0o600, fsync=False)

    # --- computed ----------------------------------------------------------------------------
    def init_alive(self) -> bool:
        pid = self.pid
        if pid <= 0:
            return False
        st = proc_start_time(pid)
        if st is None or st[1] in ("Z", "X", "x"):
            return False
        return st[0] == int(self.data.get("init_start") or 0)

    def status(self) -> str:
        if not self.init_alive():
            return "stopped"
        if self.frozen():
            return "paused"
        if os.path.exists(self.fifo):
            return "created"
        return "running"

    def frozen(self) -> bool:
        from dockyard.runtime.cgroups import manager_for_state

        try:
            return manager_for_state(self.data).frozen()
        except OSError:
            return False

    def oci_state(self) -> dict:
        """The state runc prints for `state` (also handed to hooks)."""
        status = self.status()
        return {
            "ociVersion": self.config.get("ociVersion") or "1.0.2",
            "id": self.id,
            "pid": self.pid if status != "stopped" else 0,
            "status": status,
            "bundle": self.bundle,
            "rootfs": self.data.get("rootfs", ""),
            "created": self.data.get("created", ""),
            "owner": self.data.get("owner", ""),
            "annotations": self.config.get("annotations") or {},
        }


def load(root: str, container_id: str) -> Container:
    check_id(container_id)
    path = os.path.join(root, container_id, STATE_FILE)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise StateError(f"container does not exist: {container_id}") from None
    except NotADirectoryError:
        raise StateError(f"container does not exist: {container_id}") from None
    try:
        data = jsonfast.loads(raw)
    except ValueError as e:
        raise StateError(f"container {container_id}: corrupt state: {e}") from None
    return Container(root, data)  # type: ignore[arg-type]


def list_ids(root: str) -> list[str]:
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if valid_id(n) and os.path.exists(os.path.join(root, n, STATE_FILE)))


def reserve(root: str, container_id: str) -> str:
    """Create the container's state directory, failing if the id is taken (the create lock)."""
    check_id(container_id)
    os.makedirs(root, mode=0o700, exist_ok=True)
    d = container_dir(root, container_id)
    try:
        os.mkdir(d, 0o700)
    except FileExistsError:
        raise StateError(f"container with id exists: {container_id}") from None
    return d


def remove_dir(root: str, container_id: str) -> None:
    d = container_dir(root, container_id)
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return
    for n in names:
        try:
            os.unlink(os.path.join(d, n))
        except FileNotFoundError:
            pass
    try:
        os.rmdir(d)
    except FileNotFoundError:
        pass
