"""Streaming bytes produced by blocking code (tar writers) to an async consumer, with
backpressure: the producer thread blocks while the consumer is behind."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

CHUNK = 256 * 1024


class _Writer:
    """A file-like object for the producer thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, q: asyncio.Queue[bytes | BaseException | None],
                 slots: threading.Semaphore) -> None:  # fmt: skip
        self.loop, self.q, self.slots = loop, q, slots
        self.buf = bytearray()
        self.closed = False
        self.cancelled = False

    def write(self, data: bytes) -> int:
        if self.cancelled:
            raise BrokenPipeError("the client went away")
        self.buf += data
        if len(self.buf) >= CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.buf:
            self._put(bytes(self.buf))
            self.buf.clear()

    def _put(self, item: bytes | BaseException | None) -> None:
        while not self.slots.acquire(timeout=0.5):
            if self.cancelled:
                raise BrokenPipeError("the client went away")
        self.loop.call_soon_threadsafe(self.q.put_nowait, item)

    def tell(self) -> int:  # tarfile asks for it in stream mode
        return 0


async def stream(fn: Callable[[Any], None], depth: int = 8) -> AsyncIterator[bytes]:
    """Run `fn(writer)` in a thread; yield what it writes."""
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
    slots = threading.Semaphore(depth)
    w = _Writer(loop, q, slots)

    def run() -> None:
        try:
            fn(w)
            w.flush()
            w._put(None)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            if not w.cancelled:
                try:
                    w._put(e)
                except BrokenPipeError:
                    pass

    fut = loop.run_in_executor(None, run)
    try:
        while True:
            item = await q.get()
            slots.release()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        w.cancelled = True
        while not q.empty():
            q.get_nowait()
            slots.release()
        await asyncio.shield(fut)
