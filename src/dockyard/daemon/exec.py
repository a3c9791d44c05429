"""Exec instances: POST /containers/{id}/exec, /exec/{id}/start|resize|json.

An exec is held in memory (as in Docker). Starting one spawns a shim in exec mode with a process
spec derived from the container's (env, capabilities, user, rlimits, seccomp stay the
container's; --privileged gives all capabilities), opens a control connection (start, resize,
started/error/exit frames) and, when attached, a client session subscribed to its output.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
from typing import TYPE_CHECKING, Any

from dockyard.daemon import attach, shim, userdb
from dockyard.daemon.container import Container
from dockyard.errors import Conflict, InvalidParameter, NotFound, SystemError_
from dockyard.util import atomic_write, new_id

if TYPE_CHECKING:
    from dockyard.daemon.daemon import Daemon

log = logging.getLogger("dockyard.exec")


class Exec:
    def __init__(self, eid: str, c: Container, body: dict[str, Any]) -> None:
        self.id = eid
        self.container = c
        self.cmd = list(body.get("Cmd") or [])
        self.env = list(body.get("Env") or [])
        self.user = body.get("User") or ""
        self.workdir = body.get("WorkingDir") or ""
        self.tty = bool(body.get("Tty"))
        self.privileged = bool(body.get("Privileged"))
        self.attach_stdin = bool(body.get("AttachStdin"))
        self.attach_stdout = bool(body.get("AttachStdout"))
        self.attach_stderr = bool(body.get("AttachStderr"))
        self.detach_keys = body.get("DetachKeys")
        self.console_size = body.get("ConsoleSize")
        self.running = False
        self.started = False
        self.exit_code: int | None = None
        self.pid = 0
        self.control: shim.ShimConnection | None = None
        self.finished = asyncio.Event()
        self.started_event = asyncio.Event()  # set once the process runs (or failed to start)
        self.can_remove = False

    def container_stopped(self) -> None:
        if self.running:
            self.running = False
            if self.exit_code is None:
                self.exit_code = 137
            self.finished.set()

    def inspect(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "Running": self.running,
            "ExitCode": self.exit_code,
            "ProcessConfig": {
                "tty": self.tty,
                "entrypoint": self.cmd[0] if self.cmd else "",
                "arguments": self.cmd[1:],
                "privileged": self.privileged,
                "user": self.user,
            },
            "OpenStdin": self.attach_stdin,
            "OpenStderr": self.attach_stderr,
            "OpenStdout": self.attach_stdout,
            "CanRemove": self.can_remove,
            "ContainerID": self.container.id,
            "DetachKeys": self.detach_keys or "",
            "Pid": self.pid,
        }


class ExecStore:
    def __init__(self) -> None:
        self._execs: dict[str, Exec] = {}

    def add(self, ex: Exec) -> None:
        self._execs[ex.id] = ex

    def find(self, eid: str) -> Exec | None:
        return self._execs.get(eid)

    def get(self, eid: str) -> Exec:
        ex = self._execs.get(eid)
        if ex is None:
            raise NotFound(f"No such exec instance: {eid}")
        return ex

    def forget(self, eid: str) -> None:
        self._execs.pop(eid, None)


def _check_running(c: Container, ref: str | None = None) -> None:
    """Docker's refusals; like dockerd, the paused one names the container as the client did."""
    if not c.state.running:
        raise Conflict(f"Container {c.id} is not running")
    if c.state.paused:
        raise Conflict(f"Container {ref or c.id} is paused, unpause the container before exec")
    if c.state.restarting:
        raise Conflict(f"Container {c.id} is restarting, wait until the container is running")


async def create(d: Daemon, c: Container, body: dict[str, Any], ref: str | None = None) -> str:
    if not isinstance(body, dict):
        raise InvalidParameter("config cannot be empty in order to create an exec")
    _check_running(c, ref)
    cmd = body.get("Cmd")
    if not cmd or not isinstance(cmd, list) or not cmd[0]:
        raise InvalidParameter("No exec command specified")
    if body.get("DetachKeys"):
        attach.parse_detach_keys(body["DetachKeys"])
    for e in body.get("Env") or []:
        if not isinstance(e, str) or "=" not in e and not e:
            raise InvalidParameter(f"invalid environment variable: {e!r}")
    ex = Exec(new_id(), c, body)
    d.execs.add(ex)
    c.exec_ids.append(ex.id)
    d.events.publish("container", event_action("exec_create", ex.cmd), c.id, {**d.actor_attrs(c), "execID": ex.id})
    return ex.id


def event_action(kind: str, cmd: list[str]) -> str:
    """Docker's exec event action: "exec_create: <entrypoint> <args joined>" (a trailing space
    when there are no arguments, as dockerd writes it)."""
    return f"{kind}: {cmd[0] if cmd else ''} {' '.join(cmd[1:])}"


def _process_spec(bundle: str, ex: Exec, c: Container) -> dict[str, Any]:
    with open(os.path.join(bundle, "config.json")) as f:
        spec = json.load(f)
    proc = dict(spec["process"])
    proc["args"] = list(ex.cmd)
    proc["terminal"] = ex.tty
    env = list(proc.get("env") or [])
    keys = {e.split("=", 1)[0]: i for i, e in enumerate(env)}
    for e in ex.env:
        k = e.split("=", 1)[0]
        if k in keys:
            env[keys[k]] = e
        else:
            keys[k] = len(env)
            env.append(e)
    if ex.tty and "TERM" not in keys:
        env.append("TERM=xterm")
    proc["env"] = env
    if ex.workdir:
        proc["cwd"] = ex.workdir
    if ex.user:
        uid, gid, groups = userdb.lookup(spec["root"]["path"], ex.user, c.host_config.get("GroupAdd") or [])
        proc["user"] = {"uid": uid, "gid": gid, **({"additionalGids": list(groups)} if groups else {})}
    if ex.privileged:
        from dockyard.daemon.lifecycle import bounding_caps

        caps = list(bounding_caps())
        proc["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps, "inheritable": [], "ambient": []}
    if ex.tty and ex.console_size and any(ex.console_size):
        proc["consoleSize"] = {"height": int(ex.console_size[0]), "width": int(ex.console_size[1])}
    else:
        proc.pop("consoleSize", None)
    return proc


def check_startable(ex: Exec) -> None:
    if ex.running:
        raise Conflict(f"Error: Exec command {ex.id} is already running")
    if ex.started:
        raise Conflict(f"Error: Exec command {ex.id} has already run")
    _check_running(ex.container)


async def start(d: Daemon, ex: Exec, client: attach.ClientStream | None, detach: bool, tty: bool | None = None,
                console_size: list[int] | None = None) -> None:  # fmt: skip
    """Run the exec. With a client, returns when the process has exited and its output is sent."""
    c = ex.container
    check_startable(ex)
    if tty is not None:
        ex.tty = ex.tty or tty
    if console_size:
        ex.console_size = console_size
    ex.started = ex.running = True
    from dockyard.daemon.lifecycle import bundle_dir

    bundle = bundle_dir(d, c.id)
    sdir = os.path.join(d.exec_root, "exec", ex.id)
    session: attach.Session | None = None
    try:
        proc = await asyncio.to_thread(_process_spec, bundle, ex, c)
        await asyncio.to_thread(os.makedirs, sdir, 0o700, True)
        await asyncio.to_thread(atomic_write, os.path.join(sdir, "process.json"), json.dumps(proc))
        runtime = d.config.runtime(c.runtime or None)
        await shim.spawn(d.config.shim_path or "dockyard-shim", cid=c.id, state_dir=sdir, runtime_path=runtime.path,
                         runtime_args=runtime.args, runtime_root=d.runtime_root,
                         process=os.path.join(sdir, "process.json"), tty=ex.tty, stdin=ex.attach_stdin)  # fmt: skip
        ex.control = await shim.ShimConnection.connect(sdir)
        if client is not None and not detach:
            session = attach.Session(client, tty=ex.tty, stdin=ex.attach_stdin, stdout=ex.attach_stdout,
                                     stderr=ex.attach_stderr, stdin_once=True,
                                     detach_keys=attach.parse_detach_keys(ex.detach_keys))  # fmt: skip
            await session.connect(sdir)
            session.start_input()
        if ex.tty and ex.console_size and any(ex.console_size):
            await ex.control.resize(int(ex.console_size[0]), int(ex.console_size[1]))
        await ex.control.start()
        error = await _await_started(ex)
    except BaseException:
        ex.running = False
        if session is not None:
            await session.close()
        if ex.control is not None:
            ex.control.close()
        await asyncio.to_thread(shutil.rmtree, sdir, True)
        raise
    loop = asyncio.get_running_loop()
    loop.create_task(_follow(d, ex, sdir))
    if error is not None:
        msg = f"OCI runtime exec failed: {error}: unknown"
        ex.exit_code = 126
        if session is None:
            raise SystemError_(msg)
        line = (msg + "\r\n").encode()
        with contextlib.suppress(Exception):
            await client.write(line if ex.tty else b"\x01\x00\x00\x00" + len(line).to_bytes(4, "big") + line)
        await session.close()
        return
    d.events.publish("container", event_action("exec_start", ex.cmd), c.id, {**d.actor_attrs(c), "execID": ex.id})
    if session is not None:
        await session.wait()
        if not session.detached:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ex.finished.wait(), 5)
        await session.close()


async def _await_started(ex: Exec) -> str | None:
    assert ex.control is not None
    try:
        while True:
            frame = await ex.control.read_frame()
            if frame is None:
                return "the exec supervisor exited before starting the process"
            ftype, payload = frame
            if ftype == shim.S_STARTED:
                ex.pid = int(payload or b"0")
                return None
            if ftype == shim.S_ERROR:
                return payload.decode(errors="replace")
    finally:
        ex.started_event.set()


async def _follow(d: Daemon, ex: Exec, sdir: str) -> None:
    assert ex.control is not None
    try:
        while True:
            frame = await ex.control.read_frame()
            if frame is None:
                break
            if frame[0] == shim.S_EXIT and ex.exit_code is None:
                ex.exit_code = int(frame[1] or b"0")
    finally:
        ex.control.close()
        if ex.exit_code is None:
            info = await asyncio.to_thread(shim.read_exit_file, sdir)
            ex.exit_code = int(info["exit_code"]) if info else 126
        ex.running = False
        # the event goes out before `finished` releases the attached client, which may inspect
        # the exec and start the next one at once: exec_die must come first in the event stream
        c = ex.container
        d.events.publish("container", "exec_die", c.id, {**d.actor_attrs(c), "execID": ex.id, "exitCode": str(ex.exit_code)})
        ex.finished.set()
        await asyncio.to_thread(shutil.rmtree, sdir, True)


async def resize(ex: Exec, height: int, width: int) -> None:
    if not ex.running or ex.control is None:
        raise Conflict(f"Exec {ex.id} is not running") if ex.started else NotFound(f"No such exec instance: {ex.id}")
    await ex.control.resize(height, width)
