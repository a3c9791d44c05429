"""Connection hijacking for attach and exec start, as Docker does it.

The client asks with `Connection: Upgrade` + `Upgrade: tcp` and gets `101 UPGRADED` (older
clients without the headers get `200 OK`); after the headers the connection is a raw
bidirectional byte stream. We answer through aiohttp, then take the transport over with our own
protocol (`transport.set_protocol`), which supports half-close: a client that shuts down its
write side (stdin EOF) still receives output until we close.

`WebSocketStream` is the same stream over a websocket (`GET /containers/{id}/attach/ws`): each
message from the client is stdin, output goes out as binary messages (text messages before API
1.28, as dockerd does); a closed websocket ends the session.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

RAW = "application/vnd.docker.raw-stream"
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"


class _HijackResponse(web.StreamResponse):
    _length_check = False  # no chunked encoding, no Content-Length: raw bytes follow the headers


class _RawProtocol(asyncio.Protocol):
    def __init__(self, previous: Any) -> None:
        self.previous = previous
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.eof = False
        self.lost = False
        self._can_write = asyncio.Event()
        self._can_write.set()
        self.transport: asyncio.Transport | None = None

    def data_received(self, data: bytes) -> None:
        self.queue.put_nowait(data)

    def eof_received(self) -> bool:
        self.eof = True
        self.queue.put_nowait(b"")
        return True  # keep the connection open for writing (half-close)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.queue.put_nowait(b"")
        self._can_write.set()
        try:
            self.previous.connection_lost(exc)
        except Exception:  # noqa: BLE001 - aiohttp's bookkeeping only
            pass

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()


class HijackedStream:
    """The ClientStream (daemon/attach.py) over a hijacked connection."""

    def __init__(self, transport: asyncio.Transport, proto: _RawProtocol) -> None:
        self.transport = transport
        self.proto = proto
        self._eof_seen = False

    async def read(self) -> bytes:
        if self._eof_seen:
            return b""
        data = await self.proto.queue.get()
        if not data:
            self._eof_seen = True
        return data

    async def write(self, data: bytes) -> None:
        if self.proto.lost or self.transport.is_closing():
            raise ConnectionResetError("client connection closed")
        self.transport.write(data)
        if not self.proto._can_write.is_set():
            await self.proto._can_write.wait()
            if self.proto.lost:
                raise ConnectionResetError("client connection closed")

    async def close(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()


async def hijack(request: web.Request, content_type: str = RAW) -> tuple[web.StreamResponse, HijackedStream]:
    upgrade = request.headers.get("Upgrade", "").lower() == "tcp" or "upgrade" in request.headers.get("Connection", "").lower()
    resp = _HijackResponse(status=101 if upgrade else 200, reason="UPGRADED" if upgrade else "OK")
    resp.content_type = content_type
    if upgrade:
        resp.headers["Connection"] = "Upgrade"
        resp.headers["Upgrade"] = "tcp"
    resp.force_close()
    await resp.prepare(request)
    transport = request.transport
    protocol = request.protocol
    assert transport is not None
    raw = _RawProtocol(protocol)
    raw.transport = transport  # type: ignore[assignment]
    tail = getattr(protocol, "_message_tail", b"")
    transport.set_protocol(raw)
    if tail:
        raw.data_received(tail)
        try:
            protocol._message_tail = b""  # type: ignore[attr-defined]
        except AttributeError:
            pass
    # bytes aiohttp already parsed as the request's body (a client that sent stdin early)
    if not upgrade and request.content is not None:
        try:
            while True:
                chunk = request.content.read_nowait(-1)
                if not chunk:
                    break
                raw.data_received(chunk)
        except Exception:  # noqa: BLE001
            pass
    try:
        transport.resume_reading()
    except Exception:  # noqa: BLE001
        pass
    return resp, HijackedStream(transport, raw)  # type: ignore[arg-type]


class WebSocketStream:
    """The attach session's client (daemon/attach.ClientStream) on a prepared websocket."""

    def __init__(self, ws: web.WebSocketResponse, binary: bool = True) -> None:
        self.ws = ws
        self.binary = binary

    async def read(self) -> bytes:
        from aiohttp import WSMsgType

        while True:
            msg = await self.ws.receive()
            if msg.type == WSMsgType.BINARY:
                return bytes(msg.data)
            if msg.type == WSMsgType.TEXT:
                return str(msg.data).encode()
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                raise ConnectionResetError("the websocket was closed")

    async def write(self, data: bytes) -> None:
        if self.ws.closed:
            raise ConnectionResetError("the websocket was closed")
        if self.binary:
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(data.decode(errors="replace"))

    async def close(self) -> None:
        await self.ws.close()
