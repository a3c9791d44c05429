"""Driving an OCI runtime (dockyard-runc, runc, crun) through runc's command line.

Only the verbs the daemon runs itself are here: start, kill, delete, pause, resume, state, ps,
update. `create` and `exec` are run by the shim (daemon/shim.py), which owns the container's
stdio. Commands run in worker threads (never fork on the event loop) and their failures become
Docker-worded errors carrying the runtime's own message.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

from dockyard.daemon.config import Runtime
from dockyard.errors import Conflict, NotFound, SystemError_


def runtime_message(stderr: str) -> str:
    """The useful part of a runtime's error output (runc logs `time=... level=error msg="..."`)."""
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    if not lines:
        return "runtime failed without a message"
    last = lines[-1]
    idx = last.find('msg="')
    if idx >= 0:
        out, i = [], idx + 5
        while i < len(last):
            ch = last[i]
            if ch == "\\" and i + 1 < len(last):
                out.append(last[i + 1])
                i += 2
                continue
            if ch == '"':
                break
            out.append(ch)
            i += 1
        return "".join(out)
    if last.startswith("{"):
        try:
            return str(json.loads(last).get("msg", last))
        except ValueError:
            pass
    return last


class RuntimeError_(SystemError_):  # noqa: N801
    def __init__(self, verb: str, message: str) -> None:
        super().__init__(message)
        self.verb = verb


class RuntimeClient:
    def __init__(self, runtime: Runtime, root: str) -> None:
        self.runtime = runtime
        self.root = root

    def argv(self, *args: str) -> list[str]:
        return [self.runtime.path, *self.runtime.args, "--root", self.root, *args]

    def _run_sync(self, args: list[str], stdin: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(self.argv(*args), input=stdin, capture_output=True, timeout=timeout, check=False)

    async def run(self, *args: str, stdin: bytes | None = None, timeout: float = 60) -> str:
        try:
            cp = await asyncio.to_thread(self._run_sync, list(args), stdin, timeout)
        except FileNotFoundError:
            raise SystemError_(f"exec: \"{self.runtime.path}\": executable file not found in $PATH") from None
        except subprocess.TimeoutExpired:
            raise SystemError_(f"runtime {args[0]} timed out after {timeout}s") from None
        if cp.returncode != 0:
            raise RuntimeError_(args[0], runtime_message(cp.stderr.decode(errors="replace")))
        return cp.stdout.decode(errors="replace")

    async def start(self, cid: str) -> None:
        await self.run("start", cid)

    async def kill(self, cid: str, signal: int, all_: bool = False) -> None:
        args = ["kill", *(["--all"] if all_ else []), cid, str(signal)]
        try:
            await self.run(*args)
        except RuntimeError_ as e:
            msg = str(e).lower()
            if "not running" in msg or "no such process" in msg or "process already finished" in msg or "stopped" in msg:
                raise Conflict(f"Container {cid} is not running") from None
            if "does not exist" in msg or "not found" in msg or "no such" in msg:
                raise NotFound(f"No such container: {cid}") from None
            raise

    async def delete(self, cid: str, force: bool = False) -> None:
        try:
            await self.run("delete", *(["--force"] if force else []), cid)
        except RuntimeError_ as e:
            msg = str(e).lower()
            if "does not exist" in msg or "not found" in msg or "no such" in msg or "not exist" in msg:
                return
            raise

    async def pause(self, cid: str) -> None:
        await self.run("pause", cid)

    async def resume(self, cid: str) -> None:
        await self.run("resume", cid)

    async def state(self, cid: str) -> dict[str, Any] | None:
        try:
            out = await self.run("state", cid)
        except RuntimeError_:
            return None
        try:
            return json.loads(out)
        except ValueError:
            return None

    async def ps(self, cid: str) -> list[int]:
        out = await self.run("ps", "--format", "json", cid)
        try:
            pids = json.loads(out or "[]")
        except ValueError:
            pids = []
        return [int(p) for p in pids or []]

    async def update(self, cid: str, resources: dict[str, Any]) -> None:
        await self.run("update", "--resources", "-", cid, stdin=json.dumps(resources).encode())
