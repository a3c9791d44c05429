"""Attach sessions: a hijacked client connection joined to a container's (or an exec's) shim.

Output from the shim arrives as Docker frames (stream 1/2, 8-byte headers); it goes to the client
as is without a tty, and as raw bytes with one (or on a websocket, which never multiplexes). Client input becomes stdin frames; the detach
sequence (default ctrl-p ctrl-q) ends the session without reaching the container; EOF on the
client's input closes the container's stdin when the container was created with StdinOnce.

A session on a container that is not running waits for the next start (the start path connects
it before `runtime start`, so no output is lost: `docker run` attaches before it starts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from dockyard.daemon import shim
from dockyard.errors import InvalidParameter

log = logging.getLogger("dockyard.attach")

DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p, ctrl-q


class ClientStream(Protocol):
    """What the API layer hands over after hijacking the connection."""

    async def read(self) -> bytes: ...  # b"" at EOF (the client closed its write side)
    async def write(self, data: bytes) -> None: ...  # raises ConnectionError when the client is gone
    async def close(self) -> None: ...


def parse_detach_keys(spec: str | None) -> bytes:
    """Docker's --detach-keys: comma-separated 'ctrl-<x>' or single characters."""
    if spec is None:
        return DEFAULT_DETACH_KEYS
    if spec == "":
        return b""
    out = bytearray()
    for part in spec.split(","):
        part = part.strip()
        if len(part) == 1:
            out.append(ord(part))
            continue
        if part.startswith("ctrl-") and len(part) == 6:
            ch = part[5]
            if "a" <= ch <= "z":
                out.append(ord(ch) - ord("a") + 1)
                continue
            specials = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}
            if ch in specials:
                out.append(specials[ch])
                continue
        raise InvalidParameter(f"Invalid detach keys ({spec}) provided")
    return bytes(out)


class DetachScanner:
    """Finds the detach sequence in client input; bytes that might start it are held back."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        if not self.keys:
            return data, False
        out = bytearray()
        for b in data:
            cand = self.held + bytes([b])
            if self.keys.startswith(cand):
                if cand == self.keys:
                    return bytes(out), True
                self.held = cand
                continue
            out += cand
            self.held = b""
        return bytes(out), False


class Session:
    def __init__(self, client: ClientStream | None, *, tty: bool, stdin: bool, stdout: bool, stderr: bool,
                 stdin_once: bool, detach_keys: bytes = DEFAULT_DETACH_KEYS, multiplex: bool = True) -> None:  # fmt: skip
        self.client = client
        self.client_ready = asyncio.Event()
        if client is not None:
            self.client_ready.set()
        self.tty = tty
        self.multiplex = multiplex and not tty  # raw bytes with a tty, and on a websocket
        self.want_stdin = stdin
        self.want_stdout = stdout
        self.want_stderr = stderr
        self.stdin_once = stdin_once
        self.scanner = DetachScanner(detach_keys if stdin else b"")
        self.conn: shim.ShimConnection | None = None
        self.connected = asyncio.Event()
        self.done = asyncio.Event()
        self.detached = False
        self.exit_code: int | None = None
        self.error: str | None = None
        self.started_pid: int | None = None
        self.on_frame: Any = None  # optional callback(ftype, payload) for control frames
        self._pending_input: list[bytes] = []
        self._input_eof = False
        self._tasks: list[asyncio.Task[Any]] = []

    # --- wiring -------------------------------------------------------------------------------------
    def set_client(self, client: ClientStream) -> None:
        """The session was registered before the connection was hijacked: output waits for this."""
        self.client = client
        self.client_ready.set()

    async def connect(self, state_dir: str, subscribe: bool = True) -> None:
        """Join the shim serving `state_dir` (called by the start path, or right away)."""
        self.conn = await shim.ShimConnection.connect(state_dir)
        if subscribe:
            await self.conn.subscribe(self.want_stdout, self.want_stderr)
        for chunk in self._pending_input:
            await self.conn.stdin(chunk)
        self._pending_input.clear()
        if self._input_eof and self.stdin_once:
            await self.conn.close_stdin()
        self._tasks.append(asyncio.get_running_loop().create_task(self._pump_output()))
        self.connected.set()

    def start_input(self) -> None:
        if self.want_stdin:
            self._tasks.append(asyncio.get_running_loop().create_task(self._pump_input()))
        else:
            self._tasks.append(asyncio.get_running_loop().create_task(self._watch_client()))

    async def _pump_output(self) -> None:
        assert self.conn is not None
        try:
            await self.client_ready.wait()
            while True:
                frame = await self.conn.read_frame()
                if frame is None:
                    break
                ftype, payload = frame
                if ftype in (shim.S_STDOUT, shim.S_STDERR):
                    if not self.multiplex:
                        await self.client.write(payload)
                    else:
                        await self.client.write(bytes([ftype, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload)
                elif ftype == shim.S_EXIT:
                    self.exit_code = int(payload or b"0")
                elif ftype == shim.S_STARTED:
                    self.started_pid = int(payload or b"0")
                elif ftype == shim.S_ERROR:
                    self.error = payload.decode(errors="replace")
                if self.on_frame is not None and ftype >= shim.S_EXIT:
                    self.on_frame(ftype, payload)
        except (ConnectionError, OSError) as e:
            log.debug("attach output ended: %s", e)
        finally:
            self.done.set()

    async def _pump_input(self) -> None:
        try:
            while True:
                data = await self.client.read()
                if not data:
                    self._input_eof = True
                    if self.conn is not None and self.stdin_once:
                        await self.conn.close_stdin()
                    return
                data, detach = self.scanner.feed(data)
                if data:
                    if self.conn is None:
                        self._pending_input.append(data)
                    else:
                        await self.conn.stdin(data)
                if detach:
                    self.detached = True
                    self.done.set()
                    return
        except (ConnectionError, OSError):
            self.done.set()

    async def _watch_client(self) -> None:
        """Without stdin, a client that goes away still ends the session."""
        try:
            while await self.client.read():
                pass
        except (ConnectionError, OSError):
            self.done.set()

    async def wait(self) -> None:
        await self.done.wait()

    async def close(self) -> None:
        for t in self._tasks:
            if not t.done():
                t.cancel()
        for t in self._tasks:
            with contextlib.suppress(BaseException):
                await t
        if self.conn is not None:
            self.conn.close()
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.close()
