"""The daemon's side of dockyard-shim (shim/dockyard-shim.c): spawning one, and talking to it.

Spawning: `spawn()` runs the shim with a sync pipe; the shim double-forks (so the daemon can reap
it at once and it survives the daemon), runs `runtime create` (or, in exec mode, waits for a
`start` frame) and answers on the pipe: "ok <pid>", "ready <shim-pid>" or "err <message>".

Talking: `ShimConnection` speaks the frame protocol on `<state-dir>/shim.sock`: 8-byte headers
[type, 0, 0, 0, len u32 BE] + payload. Client frames: 0 stdin, 1 subscribe (bit0 stdout, bit1
stderr), 2 close stdin, 3 resize (u16 rows, u16 cols), 4 start. Shim frames: 1 stdout, 2 stderr,
3 exit (decimal code), 4 started (pid), 5 error (message). The state dir may be longer than a
unix socket path allows, so connections go through /proc/self/fd/<dirfd>/shim.sock.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import subprocess
from dataclasses import dataclass
from typing import Any

from dockyard.errors import SystemError_

C_STDIN, C_SUBSCRIBE, C_CLOSE_STDIN, C_RESIZE, C_START = 0, 1, 2, 3, 4
S_STDOUT, S_STDERR, S_EXIT, S_STARTED, S_ERROR = 1, 2, 3, 4, 5
SUB_STDOUT, SUB_STDERR = 1, 2

_HDR = struct.Struct(">BxxxI")


class ShimError(SystemError_):
    """The runtime (run by the shim) failed; `.message` is the runtime's own message."""


@dataclass
class SpawnResult:
    pid: int  # the container's (or exec's) init pid; the shim's pid in exec mode


async def spawn(shim_path: str, *, cid: str, state_dir: str, runtime_path: str, runtime_args: tuple[str, ...],
                runtime_root: str, bundle: str | None = None, process: str | None = None, tty: bool = False,
                stdin: bool = False, log_path: str | None = None, log_max_size: int = -1,
                log_max_file: int = 1) -> SpawnResult:  # fmt: skip
    argv = [shim_path, "--id", cid, "--state-dir", state_dir, "--runtime", runtime_path, "--runtime-root", runtime_root]
    for a in runtime_args:
        argv += ["--runtime-arg", a]
    if process:
        argv += ["--exec", "--process", process]
    else:
        assert bundle
        argv += ["--bundle", bundle]
    if tty:
        argv.append("--tty")
    if stdin:
        argv.append("--stdin")
    if log_path:
        argv += ["--log-path", log_path, "--log-max-size", str(log_max_size), "--log-max-file", str(log_max_file)]
    argv += ["--sync-fd", "{fd}"]

    msg = await asyncio.to_thread(_spawn_with_fd, argv)
    kind, _, rest = msg.partition(" ")
    if kind in ("ok", "ready"):
        return SpawnResult(int(rest.split()[0]))
    raise ShimError(rest or msg)


def _spawn_with_fd(argv: list[str]) -> str:
    """Run the shim with a sync pipe (its number replaces "{fd}" in argv); return its report."""
    r, w = os.pipe()
    argv = [str(w) if a == "{fd}" else a for a in argv]
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                pass_fds=(w,), close_fds=True)  # fmt: skip
    except BaseException:
        os.close(r)
        os.close(w)
        raise
    os.close(w)
    try:
        _, err = proc.communicate(timeout=30)
        chunks = []
        while True:
            b = os.read(r, 65536)
            if not b:
                break
            chunks.append(b)
    finally:
        os.close(r)
    msg = b"".join(chunks).decode(errors="replace").strip()
    if not msg:
        msg = "err " + (err.decode(errors="replace").strip() or "shim exited without reporting")
    return msg


def _connect_sync(state_dir: str) -> socket.socket:
    path = os.path.join(state_dir, "shim.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        if len(path.encode()) < 100:
            sock.connect(path)
        else:
            dfd = os.open(state_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                sock.connect(f"/proc/self/fd/{dfd}/shim.sock")
            finally:
                os.close(dfd)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class ShimConnection:
    """One connection to a shim. Read frames with `read_frame()`; None means the shim closed."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, state_dir: str) -> ShimConnection:
        sock = await asyncio.to_thread(_connect_sync, state_dir)
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=1 << 20)
        return cls(reader, writer)

    async def send(self, ftype: int, payload: bytes = b"") -> None:
        self.writer.write(_HDR.pack(ftype, len(payload)) + payload)
        await self.writer.drain()

    async def subscribe(self, stdout: bool = True, stderr: bool = True) -> None:
        await self.send(C_SUBSCRIBE, bytes([(SUB_STDOUT if stdout else 0) | (SUB_STDERR if stderr else 0)]))

    async def stdin(self, data: bytes) -> None:
        for i in range(0, len(data), 1 << 19):
            await self.send(C_STDIN, data[i : i + (1 << 19)])

    async def close_stdin(self) -> None:
        await self.send(C_CLOSE_STDIN)

    async def resize(self, height: int, width: int) -> None:
        await self.send(C_RESIZE, struct.pack(">HH", max(0, min(height, 65535)), max(0, min(width, 65535))))

    async def start(self) -> None:
        await self.send(C_START)

    async def read_frame(self) -> tuple[int, bytes] | None:
        try:
            hdr = await self.reader.readexactly(8)
            ftype, n = _HDR.unpack(hdr)
            payload = await self.reader.readexactly(n) if n else b""
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        return ftype, payload

    def close(self) -> None:
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001 - closing a dead transport
            pass


def read_exit_file(state_dir: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(state_dir, "exit.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def shim_alive(state_dir: str) -> int | None:
    """The shim's pid if a shim is still serving `state_dir`."""
    try:
        with open(os.path.join(state_dir, "shim.pid")) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().split(b"\0")
    except (OSError, ValueError):
        return None
    if not cmd or not cmd[0].endswith(b"dockyard-shim"):
        return None
    if state_dir.encode() not in cmd:
        return None
    return pid
