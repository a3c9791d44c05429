"""POST /containers/create: validate, merge the image's config, reserve the name, make the
container's layers and volumes, persist. Nothing runs yet."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any

from dockyard.daemon import health, hostconfig, idmap, mounts, names
from dockyard.daemon.container import Container
from dockyard.errors import DockyardError, InvalidParameter, NotFound
from dockyard.util import new_id

if TYPE_CHECKING:
    from dockyard.daemon.daemon import Daemon

log = logging.getLogger("dockyard.create")


def _host_cpus() -> set[int] | None:
    try:
        with open("/sys/devices/system/cpu/online") as f:
            return hostconfig.parse_cpuset(f.read().strip())
    except (OSError, ValueError):
        return None


async def create(d: Daemon, name: str | None, body: dict[str, Any]) -> tuple[str, list[str]]:
    if not isinstance(body, dict):
        raise InvalidParameter("config cannot be empty in order to create a container")
    cfg_in = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
    if not cfg_in.get("Image"):
        raise InvalidParameter("config cannot be empty in order to create a container")
    if name:
        name = names.validate(name)
    hc = hostconfig.normalize_host_config(body.get("HostConfig"), d.config.default_shm_size,
                                          log_driver=d.config.log_driver)
    hostconfig.validate_host_config(hc, os.cpu_count() or 1, await asyncio.to_thread(_host_cpus))
    if d.id_mapping is not None:
        idmap.check_host_config(hc)  # --privileged, --network=host, --pid=host need --userns=host
    d.networking.validate_mode(hc)
    runtime_name = hc.get("Runtime") or d.config.default_runtime
    d.config.runtime(runtime_name)  # unknown runtime -> 400 now, not at start
    hc["Runtime"] = runtime_name
    if hc["LogConfig"]["Type"] == "json-file" and not hc["LogConfig"]["Config"]:
        pass  # daemon defaults apply at start; inspect shows what the user asked, like Docker

    image = await d.image_get(cfg_in["Image"])
    image_cfg = (image.config or {}).get("config") or {}
    config = hostconfig.normalize_config(cfg_in)
    health.validate(config)
    config = hostconfig.merge_image_config(config, image_cfg)
    path, args = hostconfig.command_of(config)
    wd = config.get("WorkingDir") or ""
    if wd and not wd.startswith("/"):
        raise InvalidParameter(f"the working directory '{wd}' is invalid, it needs to be an absolute path")

    points = mounts.collect(hc, config)
    # --volumes-from: the other container's mount points, optionally read-only
    for spec in hc.get("VolumesFrom") or []:
        ref, mode = mounts.parse_volumes_from(spec)
        other = d.store.find(ref)
        if other is None:
            raise NotFound(f"No such container: {ref}")
        for mp in other.mount_points:
            if mp["Type"] == "tmpfs" or any(p["Destination"] == mp["Destination"] for p in points):
                continue
            copy = dict(mp)
            if mode.startswith("ro"):
                copy["RW"] = False
            elif mode.startswith("rw"):
                copy["RW"] = True
            copy["Anonymous"] = False  # owned by the other container
            points.append(copy)
    # the image's (and the user's) VOLUME entries become anonymous volumes
    tmpfs = {os.path.normpath(p) for p in (hc.get("Tmpfs") or {})}
    for dest in sorted((config.get("Volumes") or {}).keys()):
        clean = os.path.normpath(dest)
        if any(p["Destination"] == clean for p in points) or clean in tmpfs:
            continue
        points.append({"Type": "volume", "Name": "", "Source": "", "Destination": clean, "Driver": "local",
                       "Mode": "", "RW": True, "Propagation": "", "Anonymous": True})  # fmt: skip

    for mp in points:
        if mp["Type"] == "bind":
            # --mount refuses a missing source, -v creates it (as dockerd does, at create)
            await asyncio.to_thread(mounts.ensure_bind_source, mp, d.root_ids)

    cid = new_id()
    if name:
        d.store.reserve_name(name, cid)
    else:
        name = d.store.generate_name(cid)
    if not config.get("Hostname"):
        config["Hostname"] = cid[:12]
    c = Container(cid, name, config, hc, image.id)
    c.path, c.args = path, args
    c.runtime = runtime_name
    cdir = d.store.dir(cid)
    if hc["LogConfig"]["Type"] in ("json-file", "local"):
        c.log_path = os.path.join(cdir, f"{cid}-json.log")
    made_volumes: list[str] = []
    layer_made = False
    try:
        await asyncio.to_thread(d.store.make_dir, cid)
        await asyncio.to_thread(d.layers.create_rw, cid, image.top_layer)
        layer_made = True
        for mp in points:
            if mp["Type"] != "volume":
                continue
            if not mp.get("Name"):
                vol = await asyncio.to_thread(d.volumes.create, None, mp.get("Driver"), None, None, True)
                made_volumes.append(vol.name)
            else:
                existed = d.volumes.exists(mp["Name"])
                vol = await asyncio.to_thread(d.volumes.create, mp["Name"], mp.get("Driver"), mp.get("DriverOpts"),
                                              mp.get("Labels"))  # fmt: skip
                if not existed:
                    made_volumes.append(vol.name)
                    d.events.publish("volume", "create", vol.name, {"driver": vol.driver})
            mp["Name"] = vol.name
            mp["Source"] = d.volumes.path(vol.name)
            mp.pop("DriverOpts", None)
            mp.pop("Labels", None)
            d.volumes.ref(vol.name, cid)
        c.mount_points = points
        await d.networking.register(c, body.get("NetworkingConfig"))
        d.store.add(c)
        await d.store.save(c)
    except BaseException as e:
        d.store.discard(c)
        d.store.release_name(name, cid)
        await d.networking.forget(c)
        for mp in points:
            if mp.get("Type") == "volume" and mp.get("Name"):
                d.volumes.unref(mp["Name"], cid)
        for v in made_volumes:
            try:
                await asyncio.to_thread(d.volumes.remove, v, True)
            except DockyardError:
                pass
        if layer_made:
            await asyncio.to_thread(d.layers.remove_rw, cid)
        await asyncio.to_thread(d.store.delete_dir_sync, cid)
        raise e
    d.events.publish("container", "create", cid, {"image": config.get("Image", ""), "name": name})
    return cid, []
