"""Running a container: start (mounts, network, spec, shim, runtime start), stop, kill, restart,
pause/unpause and wait. Exit handling and restart policies live in daemon/monitor.py.

Every state change takes the container's `op_lock`, so concurrent API calls on one container are
serialised; the exit path (monitor) does not take it, so `stop` can hold the lock while it waits
for the exit that the monitor records.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal as _signal
import time
from typing import TYPE_CHECKING, Any

from dockyard.daemon import idmap, mounts, networking, oci_spec, propagation, shim, signals, timeutil, userdb
from dockyard.daemon.container import Container
from dockyard.daemon.runtime import RuntimeClient, RuntimeError_
from dockyard.errors import Conflict, DockyardError, InvalidParameter, NotFound, NotModified, SystemError_
from dockyard.util import atomic_write

if TYPE_CHECKING:
    from dockyard.daemon.daemon import Daemon

log = logging.getLogger("dockyard.lifecycle")

DEFAULT_STOP_TIMEOUT = 10


def start_error(message: str) -> DockyardError:
    """Docker's wording for a runtime failure at start, and its status: a missing or
    non-executable command is the user's mistake (400), anything else the daemon's (500)."""
    full = f"failed to create task for container: failed to create shim task: OCI runtime create failed: {message}: unknown"
    low = message.lower()
    if "executable file not found" in low or "no such file or directory" in low or "permission denied" in low \
            or "not a directory" in low or "is a directory" in low:  # fmt: skip
        return InvalidParameter(full)
    return SystemError_(full)


def exit_code_for_start_error(message: str) -> int:
    low = message.lower()
    if "executable file not found" in low or "no such file or directory" in low:
        return 127
    if "permission denied" in low or "is a directory" in low:
        return 126
    return 128


def _copy_up(rootfs: str, dest: str, volume_path: str) -> None:
    """Fill an empty volume with what the image has at `dest` (Docker's copy-up), resolving `dest`
    inside the container's root."""
    from dockyard.sys import linux

    try:
        if os.listdir(volume_path):
            return
    except OSError:
        return
    rootfd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fd = linux.openat2(rootfd, dest.lstrip("/"), os.O_PATH | os.O_DIRECTORY, 0, linux.RESOLVE_IN_ROOT)
        except OSError:
            return
        try:
            src = f"/proc/self/fd/{fd}"
            st = os.stat(src)
            os.chown(volume_path, st.st_uid, st.st_gid)
            os.chmod(volume_path, st.st_mode & 0o7777)
            for entry in os.listdir(src):
                s, t = os.path.join(src, entry), os.path.join(volume_path, entry)
                if os.path.isdir(s) and not os.path.islink(s):
                    shutil.copytree(s, t, symlinks=True, copy_function=_copy_keep_owner)
                    _chown_tree(s, t)
                else:
                    _copy_keep_owner(s, t)
        finally:
            os.close(fd)
    finally:
        os.close(rootfd)


def _copy_keep_owner(s: str, t: str) -> None:
    import stat

    st = os.lstat(s)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(s), t)
    elif stat.S_ISREG(st.st_mode):
        shutil.copy2(s, t, follow_symlinks=False)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        # the node itself, as Docker's tar copy makes it: reading an image's device node here, on
        # the host, would copy the host's device (a disk) into the volume (security review)
        os.mknod(t, st.st_mode, st.st_rdev)
        os.chmod(t, stat.S_IMODE(st.st_mode))
    else:
        return  # sockets are not copied
    os.lchown(t, st.st_uid, st.st_gid)


def _chown_tree(src: str, dst: str) -> None:
    for dirpath, dirnames, _ in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        for dn in [".", *dirnames] if rel == "." else dirnames:
            s = os.path.join(dirpath, dn) if dn != "." else dirpath
            t = os.path.normpath(os.path.join(dst, rel, dn if dn != "." else ""))
            st = os.lstat(s)
            os.lchown(t, st.st_uid, st.st_gid)


def _host_hard_limits() -> dict[str, int]:
    import resource

    out = {}
    for name in ("NOFILE", "NPROC", "MEMLOCK", "STACK", "CORE", "MSGQUEUE", "NICE", "RTPRIO", "SIGPENDING",
                 "AS", "CPU", "DATA", "FSIZE", "LOCKS", "RSS", "RTTIME"):  # fmt: skip
        attr = getattr(resource, "RLIMIT_" + name, None)
        if attr is None:
            continue
        hard = resource.getrlimit(attr)[1]
        out["RLIMIT_" + name] = -1 if hard == resource.RLIM_INFINITY else hard
    return out


def bounding_caps() -> tuple[str, ...]:
    """The capabilities this daemon holds (its bounding set): what --privileged can give."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    mask = int(line.split()[1], 16)
                    return tuple(c for i, c in enumerate(oci_spec.ALL_CAPS) if mask & (1 << i))
    except OSError:
        pass
    return tuple(oci_spec.ALL_CAPS)


def _privileged_devices() -> list[dict[str, Any]]:
    """Every character and block device of the host's /dev, as OCI device entries."""
    import stat

    out = []
    for dirpath, dirnames, filenames in os.walk("/dev"):
        dirnames[:] = [d for d in dirnames if d not in ("pts", "shm", "mqueue", "hugepages")]
        for fn in filenames:
            p = os.path.join(dirpath, fn)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                if p in ("/dev/console", "/dev/ptmx", "/dev/tty") or p.startswith("/dev/tty") and fn[3:].isdigit():
                    continue
                out.append({"path": p, "type": "c" if stat.S_ISCHR(st.st_mode) else "b",
                            "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                            "fileMode": st.st_mode & 0o777, "uid": st.st_uid, "gid": st.st_gid})  # fmt: skip
    return out


def bundle_dir(d: Daemon, cid: str) -> str:
    return os.path.join(d.exec_root, "containers", cid)


async def start(d: Daemon, c: Container) -> None:
    async with c.op_lock:
        await start_locked(d, c)


async def start_locked(d: Daemon, c: Container, restarting: bool = False) -> None:
    if c.state.removing:
        raise Conflict("container is marked for removal and cannot be started")
    if c.state.dead:
        raise Conflict(f"cannot start a container in dead state: {c.id}")
    if c.state.running and not c.state.restarting:
        if c.state.paused:
            raise Conflict("cannot start a paused container, try unpause instead")
        raise NotModified("container already started")
    if not restarting:
        c.manually_stopped = False
        d.restarts.cancel(c)
    try:
        await _run(d, c)
    except DockyardError as e:
        c.state.error = e.message
        if not c.has_been_started:
            c.state.exit_code = exit_code_for_start_error(e.message)
        await d.store.save(c)
        if c.host_config.get("AutoRemove") and not restarting:
            # as dockerd: a --rm container that failed to start is removed (wait?condition=removed returns)
            from dockyard.daemon import remove

            asyncio.get_running_loop().create_task(remove.remove(d, c, force=True, volumes=True))
        raise
    d.health.init(c)
    d.events.publish("container", "start", c.id, d.actor_attrs(c))


async def _run(d: Daemon, c: Container) -> None:
    cfg = d.config
    runtime = cfg.runtime(c.host_config.get("Runtime") or None)
    rt = RuntimeClient(runtime, d.runtime_root)
    bdir = bundle_dir(d, c.id)
    undo: list[Any] = []
    marks: list[tuple[str, float]] = [("begin", time.perf_counter())]

    async def rollback() -> None:
        for fn in reversed(undo):
            try:
                await fn()
            except Exception as e:  # noqa: BLE001 - best effort
                log.warning("start rollback of %s: %s", c.short_id, e)

    try:
        # stale runtime state from an earlier run (crash) must go before create
        if await asyncio.to_thread(os.path.exists, os.path.join(d.runtime_root, c.id)):
            await rt.delete(c.id, force=True)
        await asyncio.to_thread(shutil.rmtree, bdir, True)
        await asyncio.to_thread(os.makedirs, bdir, 0o711, True)

        marks.append(("prepare", time.perf_counter()))
        rootfs = await asyncio.to_thread(d.layers.mount, c.id)
        undo.append(lambda: asyncio.to_thread(d.layers.unmount, c.id))

        # volumes: options mounts, then copy-up into fresh volumes
        for mp in c.mount_points:
            if mp["Type"] == "volume":
                mp["Source"] = await asyncio.to_thread(d.volumes.mount, mp["Name"])
                undo.append(lambda n=mp["Name"]: asyncio.to_thread(d.volumes.unmount, n))
                if not mp.get("NoCopy") and mp.get("RW", True) is not None:
                    await asyncio.to_thread(_copy_up, rootfs, mp["Destination"], mp["Source"])
            elif mp["Type"] == "bind":
                await asyncio.to_thread(mounts.ensure_bind_source, mp, d.root_ids)
                await asyncio.to_thread(propagation.check, mp)  # shared/slave need a source that propagates

        marks.append(("mounts", time.perf_counter()))
        id_mappings = _id_mappings(d, c)
        user_ns = _shared_user_namespace(d, c) if id_mappings is not None else None
        userns_pin = None
        if id_mappings is not None and not user_ns:
            # userns-remap: the container's user namespace exists before its network namespace,
            # which the network layer makes inside it (as runc does for Docker); the runtime joins
            # both by path, and the pin goes once the container exists (daemon/idmap.py)
            userns_pin = user_ns = await asyncio.to_thread(idmap.pin_userns, _userns_pin_path(d, c), d.id_mapping)
            undo.append(lambda: asyncio.to_thread(idmap.unpin_userns, userns_pin))
        with idmap.network_owner(userns_pin):
            sandbox = await d.networking.prepare(c)
        undo.append(lambda: d.networking.release(c))
        _volume_events(d, c)
        paths = await asyncio.to_thread(networking.write_files, d.store.dir(c.id), c.hostname, sandbox)
        c.hostname_path, c.hosts_path, c.resolv_conf_path = paths["/etc/hostname"], paths["/etc/hosts"], paths["/etc/resolv.conf"]
        if id_mappings is not None and d.root_ids:
            # the container's root may edit its /etc/hosts, hostname and resolv.conf (bind mounts)
            await asyncio.to_thread(_chown_files, list(paths.values()), d.root_ids)
        if sandbox.settings:
            c.network_settings.update(sandbox.settings)

        marks.append(("network", time.perf_counter()))
        user = await asyncio.to_thread(userdb.lookup, rootfs, c.config.get("User") or "",
                                       c.host_config.get("GroupAdd") or [])  # fmt: skip
        ns_paths = _namespace_paths(d, c)
        if user_ns:
            ns_paths["user"] = user_ns
        spec_in = oci_spec.SpecInputs(
            container_id=c.id,
            config=c.config,
            host_config=c.host_config,
            rootfs=rootfs,
            args=[c.path, *c.args],
            hostname=c.hostname,
            user=user,
            mounts=tuple(mounts.oci_mounts(c.mount_points)),
            etc_files=paths,
            netns=sandbox.netns,
            namespace_paths=ns_paths,
            init_path=cfg.init_path if c.host_config.get("Init") else None,
            hard_limits=_host_hard_limits(),
            default_ulimits=tuple(cfg.default_ulimits.values()),
            host_devices=tuple(await asyncio.to_thread(_privileged_devices)) if c.host_config.get("Privileged") else (),
            seccomp_profile=d.seccomp_default,
            id_mappings=id_mappings,
            cgroup_parent=c.host_config.get("CgroupParent") or cfg.cgroup_parent,
            available_caps=d.caps,
        )
        if c.host_config.get("Init") and not cfg.init_path:
            raise SystemError_("docker-init binary not found: install tini (tini-static) or set --init-path")
        spec = await asyncio.to_thread(oci_spec.build_spec, spec_in)
        if getattr(sandbox, "env", None):  # legacy --link variables (network/legacy_links.py)
            spec["process"]["env"] = networking.merge_link_env(spec["process"]["env"], sandbox.env, c.config.get("Env"))
        marks.append(("spec", time.perf_counter()))
        if cfg.no_new_privileges:
            spec["process"]["noNewPrivileges"] = True
        await asyncio.to_thread(atomic_write, os.path.join(bdir, "config.json"), json.dumps(spec))

        log_opts = dict(cfg.log_opts)
        log_opts.update(c.host_config["LogConfig"].get("Config") or {})
        log_path = c.log_path if c.host_config["LogConfig"]["Type"] != "none" else None
        max_size = _log_size(log_opts.get("max-size"))
        max_file = int(log_opts.get("max-file") or 1)
        try:
            res = await shim.spawn(
                cfg.shim_path or "dockyard-shim", cid=c.id, state_dir=bdir, runtime_path=runtime.path,
                runtime_args=runtime.args, runtime_root=d.runtime_root, bundle=bdir,
                tty=bool(c.config.get("Tty")), stdin=bool(c.config.get("OpenStdin")), log_path=log_path,
                log_max_size=max_size, log_max_file=max_file,
            )  # fmt: skip
        except shim.ShimError as e:
            raise start_error(e.message) from None
        undo.append(lambda: rt.delete(c.id, force=True))
        if userns_pin:
            await asyncio.to_thread(idmap.unpin_userns, userns_pin)  # the container holds it now
        marks.append(("create", time.perf_counter()))
        conn = await shim.ShimConnection.connect(bdir)
        undo.append(lambda: _aclose(conn))
        # attach sessions that were waiting for this start see everything from the first byte
        waiters, c.attach_waiters = c.attach_waiters, []
        for w in waiters:
            try:
                await w.connect(bdir)
            except Exception as e:  # noqa: BLE001 - a client that went away
                log.debug("attach waiter of %s: %s", c.short_id, e)
        started_at = timeutil.now()
        marks.append(("attach", time.perf_counter()))
        try:
            await rt.start(c.id)
        except RuntimeError_ as e:
            raise start_error(e.message) from None
        marks.append(("start", time.perf_counter()))
    except BaseException:
        await rollback()
        raise
    c.runtime = runtime.name
    c.released = False
    c.state.running = True
    c.state.paused = False
    c.state.restarting = False
    c.state.oom_killed = False
    c.state.dead = False
    c.state.pid = res.pid
    c.state.error = ""
    c.state.exit_code = 0
    c.state.started_at = started_at
    c.has_been_started = True
    c.exited.clear()
    if c.next_exit is None or c.next_exit.done():
        c.next_exit = asyncio.get_running_loop().create_future()
    await d.store.save(c)
    d.monitor.watch(c, conn)
    if log.isEnabledFor(logging.DEBUG):
        steps = " ".join(f"{n} {1000 * (t - marks[i][1]):.1f}" for i, (n, t) in enumerate(marks[1:]))
        log.debug("start %s (ms): %s", c.short_id, steps)


def _volume_events(d: Daemon, c: Container) -> None:
    """dockerd's "mount" event per volume (not binds or tmpfs) of a starting container, after the
    network's "connect" and before "start"."""
    for mp in c.mount_points:
        if mp["Type"] == "volume" and mp.get("Name"):
            d.events.publish("volume", "mount", mp["Name"], {
                "driver": mp.get("Driver") or "local", "container": c.id, "destination": mp["Destination"],
                "read/write": "true" if mp.get("RW", True) else "false", "propagation": mp.get("Propagation") or "",
            })  # fmt: skip


async def _aclose(conn: shim.ShimConnection) -> None:
    conn.close()


def _log_size(v: str | None) -> int:
    from dockyard.daemon.config import parse_size

    if not v or v == "-1":
        return -1
    return parse_size(v)


def _id_mappings(d: Daemon, c: Container) -> tuple[list[dict[str, int]], list[dict[str, int]]] | None:
    """The OCI uid/gid maps of a container in the daemon's userns-remap mapping, else None."""
    if d.id_mapping is None or not idmap.remapped(c.host_config):
        return None
    return d.id_mapping.oci()


def _userns_pin_path(d: Daemon, c: Container) -> str:
    return os.path.join(d.exec_root, "userns", c.id)


def _chown_files(paths: list[str], owner: tuple[int, int]) -> None:
    for p in paths:
        os.chown(p, *owner)


def _shared_user_namespace(d: Daemon, c: Container) -> str | None:
    """Under userns-remap, a container joining another's network, PID, IPC or UTS namespace joins
    its user namespace too (the other's namespaces belong to it), as Docker does."""
    for key in ("NetworkMode", "PidMode", "IpcMode", "UTSMode"):
        mode = str(c.host_config.get(key) or "")
        if not mode.startswith("container:"):
            continue
        other = d.store.get(mode.split(":", 1)[1])
        if not other.state.running:
            continue  # the namespace join itself reports it
        if not idmap.remapped(other.host_config):
            raise Conflict(f"cannot join the namespaces of container {other.id}: it runs with --userns=host")
        return f"/proc/{other.state.pid}/ns/user"
    return None


def _namespace_paths(d: Daemon, c: Container) -> dict[str, str]:
    out: dict[str, str] = {}
    for kind, key, nsfile in (("ipc", "IpcMode", "ipc"), ("pid", "PidMode", "pid"), ("uts", "UTSMode", "uts")):
        mode = str(c.host_config.get(key) or "")
        if mode == "host":
            out[kind] = "host"
        elif mode.startswith("container:"):
            other = d.store.get(mode.split(":", 1)[1])
            if not other.state.running:
                raise Conflict(f"cannot join {kind.upper()} of a non running container: {other.id}")
            out[kind] = f"/proc/{other.state.pid}/ns/{nsfile}"
    return out


# --- stop / kill / restart ---------------------------------------------------------------------------
async def kill(d: Daemon, c: Container, sig_value: str | None, ref: str | None = None) -> None:
    sig = signals.parse(sig_value, _signal.SIGKILL)
    if not c.state.running:
        raise Conflict(f"Cannot kill container: {ref or c.name}: Container {c.id} is not running")
    if c.state.restarting:
        d.restarts.cancel(c)
        return
    if sig in (_signal.SIGKILL, _signal.SIGTERM, _signal.SIGINT, _signal.SIGQUIT):
        c.manually_stopped = True
    await _signal_container(d, c, sig)
    d.events.publish("container", "kill", c.id, {**d.actor_attrs(c), "signal": str(sig)})


async def _signal_container(d: Daemon, c: Container, sig: int) -> None:
    rt = RuntimeClient(d.config.runtime(c.runtime or None), d.runtime_root)
    try:
        await rt.kill(c.id, sig)
    except (Conflict, NotFound):
        # it exited meanwhile (the runtime may already have forgotten it)
        raise Conflict(f"Cannot kill container: {c.name}: Container {c.id} is not running") from None
    except RuntimeError_ as e:
        raise SystemError_(f"Cannot kill container: {c.name}: {e.message}") from None
    if c.state.paused and sig == _signal.SIGKILL:
        try:
            await rt.resume(c.id)
        except RuntimeError_:
            pass


async def wait_exit(c: Container, timeout: float | None) -> bool:
    try:
        await asyncio.wait_for(c.exited.wait(), timeout)
        return True
    except TimeoutError:
        return False


async def stop(d: Daemon, c: Container, timeout: int | None = None, sig_value: str | None = None) -> None:
    async with c.op_lock:
        await stop_locked(d, c, timeout, sig_value)


async def stop_locked(d: Daemon, c: Container, timeout: int | None = None, sig_value: str | None = None,
                      manual: bool = True) -> None:  # fmt: skip
    if not c.state.running:
        if manual:
            # The exit handler may be between "not running" and its restart decision (it awaits
            # the release of the run first): this stop must still count as a manual stop, or the
            # container restarts after the client was told it is stopped. `start` clears it.
            c.manually_stopped = True
        raise NotModified("container already stopped")
    if manual:
        c.manually_stopped = True
        await d.store.save(c)
    if c.state.restarting:
        d.restarts.cancel(c)
        await d.monitor.finish_restart_cancelled(c)
        d.events.publish("container", "stop", c.id, d.actor_attrs(c))
        return
    stop_sig = signals.parse(sig_value or c.config.get("StopSignal") or "SIGTERM", _signal.SIGTERM)
    if timeout is None:
        timeout = c.config.get("StopTimeout")
        if timeout is None:
            timeout = DEFAULT_STOP_TIMEOUT
    timeout = int(timeout)
    try:
        d.events.publish("container", "kill", c.id, {**d.actor_attrs(c), "signal": str(stop_sig)})
        await _signal_container(d, c, stop_sig)
        if c.state.paused:
            rt = RuntimeClient(d.config.runtime(c.runtime or None), d.runtime_root)
            try:
                await rt.resume(c.id)
            except RuntimeError_:
                pass
    except Conflict:
        pass  # it exited on its own meanwhile
    if timeout < 0:
        await c.exited.wait()
    elif not await wait_exit(c, timeout):
        d.events.publish("container", "kill", c.id, {**d.actor_attrs(c), "signal": "9"})
        try:
            await _signal_container(d, c, _signal.SIGKILL)
        except Conflict:
            pass
        if not await wait_exit(c, 30):
            raise SystemError_(f"cannot stop container: {c.id}: tried to kill container, but did not receive an exit event")
    d.events.publish("container", "stop", c.id, d.actor_attrs(c))


async def restart(d: Daemon, c: Container, timeout: int | None = None, sig_value: str | None = None) -> None:
    async with c.op_lock:
        if c.state.running:
            try:
                await stop_locked(d, c, timeout, sig_value)
            except NotModified:
                pass
        await start_locked(d, c)
        c.manually_stopped = False
        await d.store.save(c)
    d.events.publish("container", "restart", c.id, d.actor_attrs(c))


# --- pause ------------------------------------------------------------------------------------------
async def pause(d: Daemon, c: Container) -> None:
    async with c.op_lock:
        if not c.state.running:
            raise Conflict(f"Container {c.id} is not running")
        if c.state.paused:
            raise Conflict(f"Container {c.id} is already paused")
        if c.state.restarting:
            raise Conflict(f"Container {c.id} is restarting, wait until the container is running")
        rt = RuntimeClient(d.config.runtime(c.runtime or None), d.runtime_root)
        try:
            await rt.pause(c.id)
        except RuntimeError_ as e:
            raise SystemError_(f"Cannot pause container {c.id}: {e.message}") from None
        c.state.paused = True
        d.health.update(c)
        await d.store.save(c)
    d.events.publish("container", "pause", c.id, d.actor_attrs(c))


async def unpause(d: Daemon, c: Container) -> None:
    async with c.op_lock:
        if not c.state.paused:
            raise Conflict(f"Container {c.id} is not paused")
        rt = RuntimeClient(d.config.runtime(c.runtime or None), d.runtime_root)
        try:
            await rt.resume(c.id)
        except RuntimeError_ as e:
            raise SystemError_(f"Cannot unpause container {c.id}: {e.message}") from None
        c.state.paused = False
        d.health.update(c)
        await d.store.save(c)
    d.events.publish("container", "unpause", c.id, d.actor_attrs(c))


# --- wait -------------------------------------------------------------------------------------------
WAIT_CONDITIONS = ("not-running", "next-exit", "removed")


def check_wait_condition(condition: str | None) -> str:
    condition = condition or "not-running"
    if condition not in WAIT_CONDITIONS:
        raise InvalidParameter(f'invalid condition: "{condition}"')
    return condition


async def wait(c: Container, condition: str) -> int:
    if condition == "removed":
        await c.removed.wait()
        return c.state.exit_code
    if condition == "not-running" and not c.state.running:
        return c.state.exit_code
    # next exit (or the current run's exit)
    fut = c.next_exit
    if fut is None or fut.done():
        fut = asyncio.get_running_loop().create_future()
        c.next_exit = fut
    return await asyncio.shield(fut)
