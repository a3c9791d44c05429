"""Start-up: load containers from disk and repair what a crash (of the daemon, or of a whole
run) left behind, then reattach to the shims of containers that kept running.

- running per disk, shim alive     -> reattach the exit monitor (logs, attach, exec work again)
- running per disk, shim gone, exit file present -> record the exit (restart policy applies)
- running per disk, no shim, no exit file        -> the supervisor died: kill what is left, exit 255
- not running: no runtime state, no rootfs mount, no bundle dir may remain
- runtime states, rw layers and exec dirs nobody owns are deleted
Then containers with restart policy always (or unless-stopped, not stopped by hand) start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from typing import TYPE_CHECKING

from dockyard.daemon import shim, timeutil
from dockyard.daemon.lifecycle import bundle_dir
from dockyard.daemon.runtime import RuntimeClient

if TYPE_CHECKING:
    from dockyard.daemon.daemon import Daemon

log = logging.getLogger("dockyard.reconcile")


async def restore(d: Daemon) -> None:
    containers = await asyncio.to_thread(d.store.load_all)
    for c in containers:
        for mp in c.mount_points:
            if mp.get("Type") == "volume" and mp.get("Name") and d.volumes.exists(mp["Name"]):
                d.volumes.ref(mp["Name"], c.id)
    exited = []
    for c in containers:
        c.state.removing = False
        if c.state.restarting and not c.state.pid:
            c.state.restarting = False
            c.state.running = False
            c.exited.set()
        if not c.state.running:
            await _clean_stopped(d, c)
            continue
        bdir = bundle_dir(d, c.id)
        conn = None
        if shim.shim_alive(bdir) is not None:
            try:
                conn = await shim.ShimConnection.connect(bdir)
            except OSError:
                conn = None
        if conn is not None:
            log.info("reattached to %s (pid %d)", c.short_id, c.state.pid)
            d.monitor.watch(c, conn)
            if not c.state.paused:
                d.health.init(c)  # health checks start again ("starting"), as dockerd's restore does
            continue
        info = await asyncio.to_thread(shim.read_exit_file, bdir)
        if info is None:
            log.warning("supervisor of %s is gone without an exit status", c.short_id)
            rt = RuntimeClient(d.config.runtime(c.runtime or None), d.runtime_root)
            try:
                await rt.kill(c.id, 9, all_=True)
            except Exception:  # noqa: BLE001 - nothing left to kill
                pass
            await asyncio.to_thread(_write_lost_exit, bdir)
        exited.append(c)
    for c in exited:
        await d.monitor.handle_exit(c)
    await _orphans(d)


def _write_lost_exit(bdir: str) -> None:
    import json

    from dockyard.util import atomic_write

    os.makedirs(bdir, exist_ok=True)
    atomic_write(os.path.join(bdir, "exit.json"), json.dumps({"exit_code": 255, "finished_at": timeutil.now()}))


async def _clean_stopped(d: Daemon, c) -> None:  # noqa: ANN001
    """A stopped container holds nothing: no runtime state, no mounts, no bundle."""
    if await asyncio.to_thread(os.path.exists, os.path.join(d.runtime_root, c.id)):
        try:
            rt = RuntimeClient(d.config.runtime(c.runtime or None), d.runtime_root)
            await rt.delete(c.id, force=True)
        except Exception as e:  # noqa: BLE001
            log.warning("runtime delete %s: %s", c.short_id, e)
    try:
        rw = d.layers.rw_layer(c.id)
        while d.layers.driver.mount_count(rw.mount_id):
            await asyncio.to_thread(d.layers.unmount, c.id)
    except Exception as e:  # noqa: BLE001 - no layer (half-created) is fine
        log.debug("unmount %s: %s", c.short_id, e)
    await asyncio.to_thread(shutil.rmtree, bundle_dir(d, c.id), True)


async def _orphans(d: Daemon) -> None:
    known = {c.id for c in d.store.all()}
    # runtime states of containers we do not know (crash during create/remove)
    for name in await asyncio.to_thread(_listdir, d.runtime_root):
        if name not in known and len(name) == 64:
            try:
                rt = RuntimeClient(d.config.runtime(None), d.runtime_root)
                await rt.delete(name, force=True)
            except Exception as e:  # noqa: BLE001
                log.warning("runtime delete of orphan %s: %s", name[:12], e)
    for name in await asyncio.to_thread(_listdir, os.path.join(d.exec_root, "containers")):
        if name not in known:
            await asyncio.to_thread(shutil.rmtree, os.path.join(d.exec_root, "containers", name), True)
    # exec supervisors do not survive a daemon restart in Docker either: forget their dirs
    for name in await asyncio.to_thread(_listdir, os.path.join(d.exec_root, "exec")):
        sdir = os.path.join(d.exec_root, "exec", name)
        if shim.shim_alive(sdir) is None:
            await asyncio.to_thread(shutil.rmtree, sdir, True)
    for rw in d.layers.rw_layers():
        if rw.container_id not in known:
            log.info("removing the layer of unknown container %s", rw.container_id[:12])
            try:
                await asyncio.to_thread(d.layers.remove_rw, rw.container_id)
            except Exception as e:  # noqa: BLE001
                log.warning("remove layer %s: %s", rw.container_id[:12], e)
    for name in await asyncio.to_thread(_listdir, d.store.root):
        cdir = os.path.join(d.store.root, name)
        # a create that never finished (no config written); unreadable configs are kept for a human
        if name not in known and not await asyncio.to_thread(os.path.exists, os.path.join(cdir, "config.v2.json")):
            await asyncio.to_thread(shutil.rmtree, cdir, True)


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


async def after_start(d: Daemon) -> None:
    """Restart policies at daemon start (in the background, as dockerd does)."""
    from dockyard.daemon import lifecycle

    for c in d.store.all():
        if c.state.running:
            continue
        policy = (c.host_config.get("RestartPolicy") or {}).get("Name") or "no"
        if policy == "always" or (policy == "unless-stopped" and not c.manually_stopped):

            async def go(c=c) -> None:  # noqa: ANN001
                try:
                    await lifecycle.start(d, c)
                except Exception as e:  # noqa: BLE001
                    log.warning("restart of %s at daemon start failed: %s", c.short_id, e)

            asyncio.get_running_loop().create_task(go())
