"""Streaming routes' plumbing, shared by images (pull, import, push, load) and build.

`BodyReader`: a blocking read(n) over the request body for a worker thread (each read hops to
the event loop with run_coroutine_threadsafe). `stream_json(request, job)`: runs `job(emit)` and
streams what it emits as Docker's newline-delimited JSON; `emit` may be called from the loop or
from worker threads. An error before the first message is an ordinary HTTP error (so `docker
pull nosuch` prints "Error response from daemon: ..."); after it, an `{"errorDetail": {...},
"error": ...}` line.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from dockyard.errors import DockyardError

Emit = Callable[[dict], None]


class BodyReader:
    """A blocking read(n) over the request body, for use from a worker thread."""

    def __init__(self, request: web.Request, loop: asyncio.AbstractEventLoop) -> None:
        self.content, self.loop = request.content, loop
        self.buf = b""
        self.eof = False

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            chunks = [self.buf]
            self.buf = b""
            while True:
                c = asyncio.run_coroutine_threadsafe(self.content.read(1 << 20), self.loop).result()
                if not c:
                    return b"".join(chunks)
                chunks.append(c)
        while not self.buf and not self.eof:
            self.buf = asyncio.run_coroutine_threadsafe(self.content.read(max(n, 1 << 16)), self.loop).result()
            if not self.buf:
                self.eof = True
        data, self.buf = self.buf[:n], self.buf[n:]
        return data


def error_detail(exc: BaseException, code: int | None = None) -> dict[str, Any]:
    message = exc.message if isinstance(exc, DockyardError) else str(exc) or exc.__class__.__name__
    detail: dict[str, Any] = {"message": message} if code is None else {"code": code, "message": message}
    return {"errorDetail": detail, "error": message}


async def stream_json(request: web.Request, job: Callable[[Emit], Awaitable[Any]], *,
                      failure: Callable[[BaseException], dict[str, Any]] = error_detail,
                      cancel_on_disconnect: bool = False) -> web.StreamResponse:  # fmt: skip
    """Run `job(emit)` and stream its messages; `failure(exc)` is the last line when it fails
    after the first message. With `cancel_on_disconnect`, a client that goes away cancels it."""
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[dict] = asyncio.Queue()

    def emit(msg: dict) -> None:
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            q.put_nowait(msg)
        else:
            loop.call_soon_threadsafe(q.put_nowait, msg)

    task = asyncio.ensure_future(job(emit))
    getter = asyncio.ensure_future(q.get())
    await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
    first: dict | None
    if not getter.done():
        getter.cancel()
        task.result()  # an error before any output: an HTTP error
        first = None
    else:
        first = getter.result()
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)

    async def write(msg: dict) -> None:
        await resp.write((json.dumps(msg, separators=(",", ":")) + "\n").encode())

    try:
        if first is not None:
            await write(first)
        while True:
            if task.done() and q.empty():
                break
            getter = asyncio.ensure_future(q.get())
            await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                await write(getter.result())
            else:
                getter.cancel()
        exc = task.exception()
        if exc is not None:
            await write(failure(exc))
        await resp.write_eof()
    except (ConnectionResetError, asyncio.CancelledError):
        if cancel_on_disconnect and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        raise
    return resp
