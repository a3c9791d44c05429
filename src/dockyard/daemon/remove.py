"""DELETE /containers/{id} and POST /containers/prune: stop if forced, then remove the
container's layers, its anonymous volumes (with -v), its files and its name."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from dockyard.daemon import lifecycle
from dockyard.daemon.container import Container
from dockyard.errors import Conflict, DockyardError, InvalidParameter, NotModified

if TYPE_CHECKING:
    from dockyard.daemon.daemon import Daemon

log = logging.getLogger("dockyard.remove")


async def remove(d: Daemon, c: Container, force: bool = False, volumes: bool = False, link: bool = False) -> None:
    if link:
        raise InvalidParameter("Conflict, cannot remove the default link name of the container")
    if c.state.removing:
        raise Conflict(f"removal of container {c.id} is already in progress")
    async with c.op_lock:
        if d.store.find(c.id) is not c:
            return  # removed while we waited for the lock
        if c.state.running and not c.state.restarting:
            if not force:
                state = c.state.status
                procedure = "Stop the container before attempting removal or force remove"
                if state == "paused":
                    procedure = "Unpause and then " + procedure.lower()
                raise Conflict(f"You cannot remove a {state} container {c.id}. {procedure}")
            try:
                await lifecycle.stop_locked(d, c, timeout=0, sig_value="SIGKILL", manual=True)
            except NotModified:
                pass
        if c.state.restarting:
            d.restarts.cancel(c)
            await d.monitor.finish_restart_cancelled(c)
        c.state.removing = True
        try:
            await _cleanup(d, c, volumes)
        except BaseException:
            c.state.removing = False
            c.state.dead = True
            await d.store.save(c)
            raise
    d.events.publish("container", "destroy", c.id, d.actor_attrs(c))
    c.removed.set()
    fut, c.next_exit = c.next_exit, None
    if fut is not None and not fut.done():
        fut.set_result(c.state.exit_code)


async def _cleanup(d: Daemon, c: Container, volumes: bool) -> None:
    d.restarts.forget(c)
    await d.monitor.release_run(c)
    for eid in list(c.exec_ids):
        d.execs.forget(eid)
    await d.networking.forget(c)
    try:
        await asyncio.to_thread(d.layers.remove_rw, c.id)
    except DockyardError as e:
        if e.status != 404:
            raise
    for mp in c.mount_points:
        if mp["Type"] != "volume" or not mp.get("Name"):
            continue
        d.volumes.unref(mp["Name"], c.id)
        if volumes and mp.get("Anonymous"):
            try:
                await asyncio.to_thread(d.volumes.remove, mp["Name"])
                d.events.publish("volume", "destroy", mp["Name"], {"driver": "local"})
            except DockyardError as e:
                log.info("keeping volume %s: %s", mp["Name"], e.message)
    lock = d.store._save_locks.get(c.id)
    if lock is not None:
        async with lock:
            await asyncio.to_thread(d.store.delete_dir_sync, c.id)
    else:
        await asyncio.to_thread(d.store.delete_dir_sync, c.id)
    d.store.discard(c)


async def prune(d: Daemon, filters: dict[str, list[str]]) -> dict[str, Any]:
    from dockyard.daemon import filters as flt

    flt.check_prune_filters(filters)
    deleted, space = [], 0
    for c in d.store.all():
        if c.state.running or c.state.removing:
            continue
        if not flt.prune_matches(c, filters):
            continue
        try:
            sizes = await asyncio.to_thread(d.layers.sizes, c.id)
        except Exception:  # noqa: BLE001
            sizes = (0, 0)
        try:
            await remove(d, c)
        except DockyardError:
            continue
        deleted.append(c.id)
        space += sizes[0]
    d.events.publish("container", "prune", "", {"reclaimed": str(space)})
    return {"ContainersDeleted": deleted or None, "SpaceReclaimed": space}
