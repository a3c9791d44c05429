"""The narrow backends api/ talks to (moby's router/backend split): one class per route group,
each a thin facade over the verb modules. Route handlers only parse, call one of these, and
serialise; they never touch the daemon's internals.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from dockyard.daemon import (
    archive,
    attach,
    create,
    exec,
    inspect,
    lifecycle,
    logs,
    ops,
    remove,
    stats,
    system,
)
from dockyard.daemon.container import Container
from dockyard.daemon.events import validate_filters
from dockyard.errors import Conflict, DockyardError, InvalidParameter

if TYPE_CHECKING:
    from dockyard.daemon.daemon import Daemon


class NotImplementedByDriver(DockyardError):
    status = 501  # what dockerd answers when the log driver cannot be read


class ContainerBackend:
    def __init__(self, d: Daemon) -> None:
        self.d = d

    def get(self, ref: str) -> Container:
        return self.d.store.get(ref)

    async def create(self, name: str | None, body: dict[str, Any]) -> tuple[str, list[str]]:
        return await create.create(self.d, name, body)

    async def start(self, ref: str) -> None:
        await lifecycle.start(self.d, self.get(ref))

    async def stop(self, ref: str, timeout: int | None, sig: str | None) -> None:
        await lifecycle.stop(self.d, self.get(ref), timeout, sig)

    async def restart(self, ref: str, timeout: int | None, sig: str | None) -> None:
        await lifecycle.restart(self.d, self.get(ref), timeout, sig)

    async def kill(self, ref: str, sig: str | None) -> None:
        await lifecycle.kill(self.d, self.get(ref), sig, ref)

    async def pause(self, ref: str) -> None:
        await lifecycle.pause(self.d, self.get(ref))

    async def unpause(self, ref: str) -> None:
        await lifecycle.unpause(self.d, self.get(ref))

    async def wait(self, c: Container, condition: str) -> int:
        return await lifecycle.wait(c, condition)

    async def remove(self, ref: str, force: bool, volumes: bool, link: bool) -> None:
        await remove.remove(self.d, self.get(ref), force=force, volumes=volumes, link=link)

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        return await remove.prune(self.d, filters)

    async def list(self, **kw: Any) -> list[dict[str, Any]]:
        return await inspect.list_containers(self.d, **kw)

    async def inspect(self, ref: str, size: bool = False) -> dict[str, Any]:
        return await inspect.inspect(self.d, self.get(ref), size)

    async def rename(self, ref: str, name: str) -> None:
        await ops.rename(self.d, self.get(ref), name)

    async def update(self, ref: str, body: dict[str, Any]) -> list[str]:
        return await ops.update(self.d, self.get(ref), body)

    async def resize(self, ref: str, h: int, w: int) -> None:
        await ops.resize(self.d, self.get(ref), h, w)

    async def top(self, ref: str, ps_args: str | None) -> dict[str, Any]:
        return await ops.top(self.d, self.get(ref), ps_args)

    async def changes(self, ref: str) -> list[dict[str, Any]]:
        return await ops.changes(self.d, self.get(ref))

    def export(self, c: Container) -> AsyncIterator[bytes]:
        return ops.export(self.d, c)

    # --- logs and attach ----------------------------------------------------------------------------
    def logs(self, c: Container, o: logs.LogOptions) -> AsyncIterator[logs.Entry]:
        if c.host_config.get("LogConfig", {}).get("Type") == "none" or not c.log_path:
            raise NotImplementedByDriver("configured logging driver does not support reading")
        return logs.stream(c.log_path, o, lambda: c.state.running)

    async def attach(self, c: Container, hijack: Any, *, stdin: bool, stdout: bool, stderr: bool,
                     stream: bool, replay_logs: bool, detach_keys: bytes, multiplex: bool = True) -> None:  # fmt: skip
        """Join `c`'s output and input. The session is registered (or connected) before `hijack()`
        answers the client, so a `start` sent right after the 101 loses no output. `multiplex`
        False: raw output even without a tty (the websocket form)."""
        tty = bool(c.config.get("Tty"))
        s = attach.Session(None, tty=tty, stdin=stdin and bool(c.config.get("OpenStdin")), stdout=stdout,
                           stderr=stderr, stdin_once=bool(c.config.get("StdinOnce")), detach_keys=detach_keys,
                           multiplex=multiplex)  # fmt: skip
        try:
            if stream:
                if c.state.running and not c.state.restarting:
                    await s.connect(lifecycle.bundle_dir(self.d, c.id))
                else:
                    c.attach_waiters.append(s)
            client = await hijack()
            if replay_logs and c.log_path:
                o = logs.LogOptions(stdout=stdout, stderr=stderr)
                async for e in logs.stream(c.log_path, o, lambda: False):
                    await client.write(logs.frame(e, not s.multiplex, False))
            if not stream:
                await client.close()
                return
            s.set_client(client)
            s.start_input()
            self.d.events.publish("container", "attach", c.id, self.d.actor_attrs(c))
            await s.wait()
            if s.detached:
                self.d.events.publish("container", "detach", c.id, self.d.actor_attrs(c))
        finally:
            if s in c.attach_waiters:
                c.attach_waiters.remove(s)
            await s.close()

    # --- stats ----------------------------------------------------------------------------------------
    async def stats(self, c: Container, stream: bool, one_shot: bool) -> AsyncIterator[dict[str, Any]]:
        prev = None
        if not stream and not one_shot and c.state.running:
            prev = await asyncio.to_thread(stats.sample, self.d, c)
            await asyncio.sleep(1)
        while True:
            cur = await asyncio.to_thread(stats.sample, self.d, c)
            yield stats.with_pre(cur, prev)
            if not stream:
                return
            prev = cur
            await asyncio.sleep(1)
            if not c.state.running and self.d.store.find(c.id) is None:
                return

    # --- archive ---------------------------------------------------------------------------------------
    async def _root(self, c: Container) -> tuple[archive.Root, bool]:
        """The root to resolve paths in and whether we mounted the rootfs for it."""
        if c.state.running and c.state.pid and not c.state.restarting:
            try:
                return await asyncio.to_thread(archive.open_root, f"/proc/{c.state.pid}/root", None,
                                               self.d.id_mapping), False  # fmt: skip
            except OSError:
                pass
        rootfs = await asyncio.to_thread(self.d.layers.mount, c.id)
        reds = [(mp["Destination"], mp["Source"]) for mp in c.mount_points if mp.get("Source") and mp["Type"] != "tmpfs"]
        try:
            return await asyncio.to_thread(archive.open_root, rootfs, reds, self.d.id_mapping), True
        except BaseException:
            await asyncio.to_thread(self.d.layers.unmount, c.id)
            raise

    async def _release(self, c: Container, root: archive.Root, mounted: bool) -> None:
        root.close()
        if mounted:
            await asyncio.to_thread(self.d.layers.unmount, c.id)

    async def archive_stat(self, c: Container, path: str) -> dict[str, Any]:
        root, mounted = await self._root(c)
        try:
            info, _st, _n = await asyncio.to_thread(archive.stat_path, root, path, c.name)
            return info
        finally:
            await self._release(c, root, mounted)

    async def archive_get(self, c: Container, path: str) -> tuple[dict[str, Any], AsyncIterator[bytes]]:
        from dockyard.daemon import threadstream

        root, mounted = await self._root(c)
        try:
            info, _st, _n = await asyncio.to_thread(archive.stat_path, root, path, c.name)
        except BaseException:
            await self._release(c, root, mounted)
            raise

        async def gen() -> AsyncIterator[bytes]:
            try:
                async for chunk in threadstream.stream(lambda w: archive.write_archive(root, path, w, c.name)):
                    yield chunk
            finally:
                await self._release(c, root, mounted)

        return info, gen()

    async def archive_put(self, c: Container, path: str, body: Any, no_overwrite: bool, copy_uidgid: bool) -> None:
        if c.host_config.get("ReadonlyRootfs"):
            archive.check_writable(True)
        root, mounted = await self._root(c)
        try:
            await asyncio.to_thread(archive.extract, root, path, body, no_overwrite, copy_uidgid, c.name)
        finally:
            await self._release(c, root, mounted)
        self.d.events.publish("container", "extract-to-dir", c.id, {**self.d.actor_attrs(c), "path": path})


class ExecBackend:
    def __init__(self, d: Daemon) -> None:
        self.d = d

    async def create(self, ref: str, body: dict[str, Any]) -> str:
        return await exec.create(self.d, self.d.store.get(ref), body, ref)

    def get(self, eid: str) -> exec.Exec:
        return self.d.execs.get(eid)

    async def start(self, ex: exec.Exec, client: attach.ClientStream | None, detach: bool, tty: bool | None,
                    console_size: list[int] | None) -> None:  # fmt: skip
        await exec.start(self.d, ex, client, detach, tty, console_size)

    def check_startable(self, ex: exec.Exec) -> None:
        exec.check_startable(ex)

    async def resize(self, eid: str, h: int, w: int) -> None:
        await exec.resize(self.get(eid), h, w)

    def inspect(self, eid: str) -> dict[str, Any]:
        return self.get(eid).inspect()


class VolumeBackend:
    def __init__(self, d: Daemon) -> None:
        self.d = d

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("Name") or None
        existed = bool(name) and self.d.volumes.exists(name)
        v = await asyncio.to_thread(self.d.volumes.create, name, body.get("Driver"), body.get("DriverOpts"),
                                    body.get("Labels"))  # fmt: skip
        if not existed:
            self.d.events.publish("volume", "create", v.name, {"driver": v.driver})
        return v.inspect(self.d.volumes.path(v.name))

    async def list(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        vols = await asyncio.to_thread(self.d.volumes.list, filters)
        return {"Volumes": vols, "Warnings": None}

    async def inspect(self, name: str) -> dict[str, Any]:
        return await asyncio.to_thread(self.d.volumes.inspect, name)

    async def remove(self, name: str, force: bool) -> None:
        existed = self.d.volumes.exists(name)
        await asyncio.to_thread(self.d.volumes.remove, name, force)
        if existed:
            self.d.events.publish("volume", "destroy", name, {"driver": "local"})

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        deleted, space = await asyncio.to_thread(self.d.volumes.prune, filters)
        for name in deleted:
            self.d.events.publish("volume", "destroy", name, {"driver": "local"})
        self.d.events.publish("volume", "prune", "", {"reclaimed": str(space)})
        return {"VolumesDeleted": deleted or None, "SpaceReclaimed": space}


class SystemBackend:
    def __init__(self, d: Daemon) -> None:
        self.d = d

    async def info(self) -> dict[str, Any]:
        return await system.info(self.d)

    def version(self) -> dict[str, Any]:
        return system.version()

    async def df(self, types: set[str]) -> dict[str, Any]:
        for t in types:
            if t not in ("container", "image", "volume", "build-cache"):
                raise InvalidParameter(f"unknown object type: {t}")
        return await system.df(self.d, types)

    def events_subscribe(self, filters: dict[str, list[str]]) -> asyncio.Queue[dict[str, Any]]:
        validate_filters(filters)
        return self.d.events.subscribe()

    def events_unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self.d.events.unsubscribe(q)

    def events_history(self, since_ns: int, until_ns: int | None) -> list[dict[str, Any]]:
        return self.d.events.since(since_ns, until_ns)


def backends(d: Daemon) -> dict[str, Any]:
    return {
        "daemon": d,
        "containers": ContainerBackend(d),
        "exec": ExecBackend(d),
        "volumes": VolumeBackend(d),
        "system": SystemBackend(d),
        "images": d.images,
        "networks": d.networking.service,
    }


__all__ = ["ContainerBackend", "ExecBackend", "SystemBackend", "VolumeBackend", "backends", "Conflict"]
