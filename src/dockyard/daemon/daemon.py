"""The daemon object: builds the services once (layers, images, volumes, containers, networking,
events, execs), restores state at start-up (daemon/reconcile.py), and shuts down cleanly.

Verb modules (create, lifecycle, remove, exec, inspect, ...) take this object; the API talks to
it through the narrow backends in daemon/backend.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dockyard.daemon.config import DaemonConfig
from dockyard.daemon.events import EventBus
from dockyard.daemon.exec import ExecStore
from dockyard.daemon.health import HealthMonitor
from dockyard.daemon.monitor import Monitor, RestartManager
from dockyard.daemon.networking import Networking
from dockyard.daemon.store import ContainerStore
from dockyard.errors import NotFound
from dockyard.volume.local import VolumeService

log = logging.getLogger("dockyard.daemon")


class Daemon:
    def __init__(self, config: DaemonConfig) -> None:
        from dockyard.storage.layers import LayerStore

        self.config = config
        self.data_root = config.data_root
        self.exec_root = config.exec_root
        self.runtime_root = os.path.join(config.exec_root, "runtime")
        for d in (self.data_root, self.exec_root, self.runtime_root, os.path.join(self.exec_root, "containers"),
                  os.path.join(self.exec_root, "exec")):  # fmt: skip
            os.makedirs(d, mode=0o711, exist_ok=True)
        # userns-remap (daemon/idmap.py): the containers' root is this host uid/gid pair, layers and
        # volumes are owned accordingly; None without remapping
        self.id_mapping = config.id_mapping if config.id_mapping is not None and not config.id_mapping.empty else None
        self.root_ids: tuple[int, int] | None = self.id_mapping.root_pair() if self.id_mapping else None
        if self.id_mapping is not None:
            from dockyard.daemon import idmap

            idmap.sweep_pins(os.path.join(self.exec_root, "userns"))  # user namespaces a crash left pinned
        self.events = EventBus()
        self.layers = LayerStore(self.data_root, self.id_mapping)
        self.images: Any = None
        try:
            from dockyard.image.service import ImageService

            self.images = ImageService(self.data_root, self.layers, {
                "insecure-registries": list(config.insecure_registries),
                "registry-mirrors": list(config.registry_mirrors),
            })  # fmt: skip
            self.images.image_users = self.image_users
        except ImportError:  # pragma: no cover - the image layer is part of the tree
            log.warning("image service not available")
        self.volumes = VolumeService(self.data_root, self.root_ids)
        self.store = ContainerStore(self.data_root, self.root_ids)
        self.networking = Networking(config, self)
        self.execs = ExecStore()
        self.monitor = Monitor(self)
        self.restarts = RestartManager(self)
        self.health = HealthMonitor(self)  # health checks (daemon/health.py)
        self.shutting_down = False
        from dockyard.daemon.lifecycle import bounding_caps

        self.caps = bounding_caps()
        self.seccomp_default: str | None = None  # --seccomp-profile: a Docker-format file, or "unconfined"
        if config.seccomp_profile:
            if config.seccomp_profile in ("unconfined", "builtin"):
                self.seccomp_default = None if config.seccomp_profile == "builtin" else "unconfined"
            else:
                with open(config.seccomp_profile) as f:
                    self.seccomp_default = f.read()
        self.started_at = 0.0
        self.executor = ThreadPoolExecutor(max_workers=64, thread_name_prefix="dockyard-worker")

    # --- helpers for verb modules -----------------------------------------------------------------
    def actor_attrs(self, c: Any) -> dict[str, str]:
        attrs = {str(k): str(v) for k, v in (c.config.get("Labels") or {}).items()}
        attrs.update({"image": c.config.get("Image") or c.image_id, "name": c.name})
        return attrs

    async def image_get(self, ref: str) -> Any:
        if self.images is None:
            raise NotFound(f"No such image: {ref}")
        return await asyncio.to_thread(self.images.get, ref)

    def image_users(self, image_id: str) -> list[tuple[str, bool]]:
        return [(c.id, c.state.running) for c in self.store.all() if c.image_id == image_id]

    # --- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(self.executor)
        import time

        self.started_at = time.time()
        from dockyard.daemon import reconcile

        await reconcile.restore(self)
        await self.networking.start()
        await reconcile.after_start(self)

    async def shutdown(self) -> None:
        self.shutting_down = True
        await self.health.close()
        from dockyard.daemon import lifecycle

        if not self.config.live_restore:
            running = [c for c in self.store.all() if c.state.running]

            async def stop_one(c: Any) -> None:
                try:
                    async with c.op_lock:
                        await lifecycle.stop_locked(self, c, manual=False)
                except Exception as e:  # noqa: BLE001 - keep stopping the others
                    log.warning("stopping %s at shutdown: %s", c.short_id, e)

            if running:
                try:
                    await asyncio.wait_for(asyncio.gather(*(stop_one(c) for c in running)),
                                           self.config.shutdown_timeout + 15)  # fmt: skip
                except TimeoutError:
                    log.warning("containers did not stop within the shutdown timeout")
        for t in list(self.monitor.tasks.values()) + list(self.restarts.tasks.values()):
            t.cancel()
        await self.networking.close()
        if not self.config.live_restore:
            await asyncio.to_thread(self.volumes.unmount_all)
