"""What happens when a container's process exits: the shim reports it (exit frame, exit.json),
the monitor releases everything the run held (runtime state and cgroup, network, volume mounts,
the rootfs mount, the bundle dir), records the exit, wakes `wait` callers, and applies the
restart policy or --rm. Also the restart manager (Docker's backoff: 100 ms doubling to 1 min,
reset after 10 s of running)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from typing import TYPE_CHECKING

from dockyard.daemon import shim, timeutil
from dockyard.daemon.container import Container
from dockyard.daemon.runtime import RuntimeClient

if TYPE_CHECKING:
    from dockyard.daemon.daemon import Daemon

log = logging.getLogger("dockyard.monitor")

BACKOFF_START = 0.1
BACKOFF_MAX = 60.0
BACKOFF_RESET_AFTER = 10.0


class Monitor:
    def __init__(self, d: Daemon) -> None:
        self.d = d
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def watch(self, c: Container, conn: shim.ShimConnection) -> None:
        old = self.tasks.get(c.id)
        if old and not old.done():
            old.cancel()
        self.tasks[c.id] = asyncio.get_running_loop().create_task(self._watch(c, conn), name=f"monitor-{c.short_id}")

    async def _watch(self, c: Container, conn: shim.ShimConnection) -> None:
        try:
            while True:
                frame = await conn.read_frame()
                if frame is None:
                    break
        finally:
            conn.close()
        await self.handle_exit(c)

    async def handle_exit(self, c: Container) -> None:
        d = self.d
        if not c.state.running or c.state.restarting:
            return
        d.health.stop(c)  # probing starts again with the next run
        from dockyard.daemon.lifecycle import bundle_dir

        bdir = bundle_dir(d, c.id)
        info = await asyncio.to_thread(shim.read_exit_file, bdir)
        code = int(info["exit_code"]) if info else 255
        finished = (info or {}).get("finished_at") or timeutil.now()
        oom = await asyncio.to_thread(_oom_killed, d, c)
        d.events.hold(c.id)  # the network and volume events of the release come after "die"
        try:
            await self.release_run(c)
            started_ns = timeutil.parse_ns(c.state.started_at)
            c.state.running = False
            c.state.paused = False
            c.state.restarting = False
            c.state.pid = 0
            c.state.exit_code = code
            c.state.finished_at = finished
            c.state.oom_killed = oom
            for eid in list(c.exec_ids):
                ex = d.execs.find(eid)
                if ex is not None:
                    ex.container_stopped()
            await d.store.save(c)
            if oom:
                d.events.publish("container", "oom", c.id, d.actor_attrs(c))
            d.events.publish("container", "die", c.id, {**d.actor_attrs(c), "exitCode": str(code)})
        finally:
            d.events.flush(c.id)
        c.exited.set()
        fut, c.next_exit = c.next_exit, None
        if fut is not None and not fut.done():
            fut.set_result(code)
        ran_for = time.time() - started_ns / 1e9 if started_ns else 0.0
        if self.should_restart(c, code):
            await d.restarts.schedule(c, ran_for)
        elif c.host_config.get("AutoRemove"):
            asyncio.get_running_loop().create_task(self._auto_remove(c))

    async def release_run(self, c: Container, force: bool = False) -> None:
        """Give back what a run held: runtime state and cgroup, network, volume mounts, the rootfs
        mount, the bundle dir. Idempotent (a second call does nothing unless `force`); used by the
        exit path, by rm and by reconcile."""
        if c.released and not force:
            return
        d = self.d
        from dockyard.daemon.lifecycle import bundle_dir

        async def runtime_delete() -> None:
            try:
                rt = RuntimeClient(d.config.runtime(c.runtime or None), d.runtime_root)
                await rt.delete(c.id, force=True)
            except Exception as e:  # noqa: BLE001 - keep releasing the rest
                log.warning("runtime delete %s: %s", c.short_id, e)

        # the process is gone: its runtime state and its network go in parallel
        await asyncio.gather(runtime_delete(), d.networking.release(c))
        for mp in c.mount_points:
            if mp["Type"] == "volume" and mp.get("Name"):
                try:
                    await asyncio.to_thread(d.volumes.unmount, mp["Name"])
                except Exception as e:  # noqa: BLE001
                    log.warning("volume unmount %s: %s", mp["Name"], e)
                d.events.publish("volume", "unmount", mp["Name"], {"driver": mp.get("Driver") or "local", "container": c.id})
        try:
            if d.layers.driver.mount_count(d.layers.rw_layer(c.id).mount_id):
                await asyncio.to_thread(d.layers.unmount, c.id)
        except Exception as e:  # noqa: BLE001
            log.warning("unmount %s: %s", c.short_id, e)
        await asyncio.to_thread(shutil.rmtree, bundle_dir(d, c.id), True)
        c.released = True

    def should_restart(self, c: Container, code: int) -> bool:
        if c.manually_stopped or self.d.shutting_down or c.state.removing:
            return False
        rp = c.host_config.get("RestartPolicy") or {}
        name = rp.get("Name") or "no"
        if name in ("always", "unless-stopped"):
            return True
        if name == "on-failure":
            limit = int(rp.get("MaximumRetryCount") or 0)
            return code != 0 and (limit == 0 or c.restart_count < limit)
        return False

    async def _auto_remove(self, c: Container) -> None:
        from dockyard.daemon import remove

        try:
            await remove.remove(self.d, c, force=True, volumes=True)
        except Exception as e:  # noqa: BLE001 - already gone, or a concurrent rm
            log.debug("auto-remove %s: %s", c.short_id, e)

    async def finish_restart_cancelled(self, c: Container) -> None:
        c.state.running = False
        c.state.restarting = False
        c.state.pid = 0
        c.exited.set()
        await self.d.store.save(c)


def _oom_killed(d: Daemon, c: Container) -> bool:
    """Did the kernel's OOM killer act in the container's memory cgroup (v1 or v2)?"""
    import os

    parent = c.host_config.get("CgroupParent") or d.config.cgroup_parent
    rel = f"{parent}/{c.id}"
    candidates = []
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, ctrls, path = line.strip().split(":", 2)
                if "memory" in ctrls.split(","):
                    candidates.append(os.path.join("/sys/fs/cgroup/memory", path.lstrip("/"), rel, "memory.oom_control"))
                if ctrls == "":
                    candidates.append(os.path.join("/sys/fs/cgroup/unified", path.lstrip("/"), rel, "memory.events"))
                    candidates.append(os.path.join("/sys/fs/cgroup", path.lstrip("/"), rel, "memory.events"))
    except OSError:
        return False
    for p in candidates:
        try:
            with open(p) as f:
                for line in f:
                    k, _, v = line.partition(" ")
                    if k == "oom_kill" and int(v or 0) > 0:
                        return True
        except (OSError, ValueError):
            continue
    return False


class RestartManager:
    def __init__(self, d: Daemon) -> None:
        self.d = d
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.delay: dict[str, float] = {}

    async def schedule(self, c: Container, ran_for: float) -> None:
        prev = self.delay.get(c.id, 0.0)
        delay = BACKOFF_START if ran_for >= BACKOFF_RESET_AFTER or not prev else min(prev * 2, BACKOFF_MAX)
        self.delay[c.id] = delay
        c.state.running = True
        c.state.restarting = True
        await self.d.store.save(c)
        self.tasks[c.id] = asyncio.get_running_loop().create_task(self._later(c, delay))

    async def _later(self, c: Container, delay: float) -> None:
        from dockyard.daemon import lifecycle

        await asyncio.sleep(delay)
        async with c.op_lock:
            if not c.state.restarting or c.state.removing:
                return
            c.restart_count += 1
            try:
                await lifecycle.start_locked(self.d, c, restarting=True)
            except Exception as e:  # noqa: BLE001 - the restart failed: the container stays down
                log.warning("restart of %s failed: %s", c.short_id, e)
                c.state.running = False
                c.state.restarting = False
                c.exited.set()
                await self.d.store.save(c)

    def cancel(self, c: Container) -> None:
        t = self.tasks.pop(c.id, None)
        if t is not None and not t.done():
            t.cancel()

    def forget(self, c: Container) -> None:
        self.cancel(c)
        self.delay.pop(c.id, None)
