"""The smaller container verbs: rename, update, resize, top, changes, export."""

from __future__ import annotations

import asyncio
import os
import subprocess
import tarfile
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from dockyard.daemon import hostconfig, names, oci_spec, shim, threadstream
from dockyard.daemon.container import Container
from dockyard.daemon.runtime import RuntimeClient, RuntimeError_
from dockyard.errors import Conflict, InvalidParameter, SystemError_

if TYPE_CHECKING:
    from dockyard.daemon.daemon import Daemon


async def rename(d: Daemon, c: Container, new: str) -> None:
    if not new:
        raise InvalidParameter("Neither old nor new names may be empty")
    new = names.validate(new)
    async with c.op_lock:
        old = c.name
        if new == old:
            raise InvalidParameter("Renaming a container with the same name as its current name")
        try:
            d.store.reserve_name(new, c.id)
        except Conflict as e:
            raise Conflict(f"Error when allocating new name: {e}") from None  # dockerd's words
        c.name = new
        try:
            await d.store.save(c)
        except BaseException:
            c.name = old
            d.store.release_name(new, c.id)
            raise
        d.store.release_name(old, c.id)
        svc = d.networking.service
        if svc is not None and hasattr(svc, "rename"):
            try:
                await svc.rename(c.id, new)
            except Exception:  # noqa: BLE001 - not on a network the service tracks
                pass
    d.events.publish("container", "rename", c.id, {**d.actor_attrs(c), "oldName": "/" + old})


# What `update` changes, as dockerd: a zero or empty value leaves the field as it is (the Docker
# CLI sends every field), PidsLimit changes whenever it is given (<= 0: unlimited).
UPDATABLE = ("BlkioWeight", "CpuShares", "CpuPeriod", "CpuQuota", "CpuRealtimePeriod", "CpuRealtimeRuntime",
             "CpusetCpus", "CpusetMems", "Memory", "MemoryReservation", "MemorySwap", "KernelMemory", "NanoCpus")  # fmt: skip


async def update(d: Daemon, c: Container, body: dict[str, Any]) -> list[str]:
    if not isinstance(body, dict):
        raise InvalidParameter("invalid update body")
    async with c.op_lock:
        if c.state.removing or c.state.dead:
            raise Conflict(f"Cannot update container {c.id}: container is marked for removal or dead")
        new = dict(c.host_config)
        for k in UPDATABLE:
            if body.get(k):
                new[k] = body[k]
        if body.get("PidsLimit") is not None:
            new["PidsLimit"] = body["PidsLimit"] if int(body["PidsLimit"]) > 0 else None
        if body.get("RestartPolicy") and (body["RestartPolicy"].get("Name") or "") != "":
            rp = body["RestartPolicy"]
            hostconfig.validate_restart_policy(rp, bool(new.get("AutoRemove")))
            new["RestartPolicy"] = {"Name": rp.get("Name") or "no", "MaximumRetryCount": int(rp.get("MaximumRetryCount") or 0)}
        if body.get("Memory") and not body.get("MemorySwap"):
            cur_swap = int(c.host_config.get("MemorySwap") or 0)
            if cur_swap > 0 and int(body["Memory"]) > cur_swap:
                raise InvalidParameter(
                    "Cannot update container: Memory limit should be smaller than already set memoryswap limit, "
                    "update the memoryswap at the same time"
                )
            if cur_swap in (0,) or cur_swap == 2 * int(c.host_config.get("Memory") or 0):
                new["MemorySwap"] = 2 * int(body["Memory"])
        if body.get("NanoCpus"):
            new["CpuPeriod"], new["CpuQuota"] = 0, 0
        hostconfig.validate_resources(new, os.cpu_count() or 1)
        if c.state.running and not c.state.restarting:
            res = oci_spec.resources(new)
            if body.get("PidsLimit") is not None and new["PidsLimit"] is None:
                res["pids"] = {"limit": -1}  # back to unlimited in the cgroup too
            rt = RuntimeClient(d.config.runtime(c.runtime or None), d.runtime_root)
            try:
                await rt.update(c.id, res)
            except RuntimeError_ as e:
                raise SystemError_(f"Cannot update container {c.id}: {e.message}") from None
        c.host_config = new
        await d.store.save(c)
    d.events.publish("container", "update", c.id, d.actor_attrs(c))
    return []


async def resize(d: Daemon, c: Container, height: int, width: int) -> None:
    if not c.state.running:
        raise Conflict(f"Container {c.id} is not running")
    from dockyard.daemon.lifecycle import bundle_dir

    conn = await shim.ShimConnection.connect(bundle_dir(d, c.id))
    try:
        await conn.resize(height, width)
    finally:
        conn.close()


def _parse_ps(output: str, pids: set[int]) -> dict[str, Any]:
    lines = output.splitlines()
    if not lines:
        raise SystemError_("Couldn't find PID field in ps output")
    titles = lines[0].split()
    try:
        pid_idx = titles.index("PID")
    except ValueError:
        raise SystemError_("Couldn't find PID field in ps output") from None
    procs = []
    for line in lines[1:]:
        if not line.strip():
            continue
        fields = line.split(None, len(titles) - 1)
        try:
            pid = int(fields[pid_idx])
        except (ValueError, IndexError):
            continue
        if pid in pids:
            procs.append(fields)
    return {"Titles": titles, "Processes": procs}


async def top(d: Daemon, c: Container, ps_args: str | None) -> dict[str, Any]:
    if not c.state.running or c.state.restarting:
        raise Conflict(f"Container {c.id} is not running")
    if c.state.paused:
        raise Conflict(f"Container {c.id} is paused")
    rt = RuntimeClient(d.config.runtime(c.runtime or None), d.runtime_root)
    try:
        pids = set(await rt.ps(c.id))
    except RuntimeError_ as e:
        raise SystemError_(e.message) from None
    args = (ps_args or "-ef").split()
    cp = await asyncio.to_thread(subprocess.run, ["ps", *args], capture_output=True, text=True, timeout=30, check=False)
    if cp.returncode != 0:
        raise SystemError_(f"Error running ps: exit status {cp.returncode}: {cp.stderr.strip()}")
    return _parse_ps(cp.stdout, pids)


async def changes(d: Daemon, c: Container) -> list[dict[str, Any]]:
    return await asyncio.to_thread(d.layers.changes, c.id)


def _tar_tree(root: str, out: Any, idmap: Any = None) -> None:
    """The tree as a tar; under userns-remap owners are shifted back to container ids."""

    def shift(ti: tarfile.TarInfo) -> tarfile.TarInfo:
        ti.uid, ti.gid = idmap.to_container_or_overflow(ti.uid, ti.gid)
        ti.uname = ti.gname = ""
        return ti

    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for name in sorted(os.listdir(root)):
            tf.add(os.path.join(root, name), arcname=name, recursive=True, filter=shift if idmap is not None else None)


async def export(d: Daemon, c: Container) -> AsyncIterator[bytes]:
    rootfs = await asyncio.to_thread(d.layers.mount, c.id)
    try:
        async for chunk in threadstream.stream(lambda w: _tar_tree(rootfs, w, d.id_mapping)):
            yield chunk
    finally:
        await asyncio.to_thread(d.layers.unmount, c.id)
    d.events.publish("container", "export", c.id, d.actor_attrs(c))
