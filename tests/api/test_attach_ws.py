"""GET /containers/{id}/attach/ws: attach over a websocket, as Portainer-style web consoles use it.

A real websocket client (aiohttp's) talks to the daemon's socket: stdin goes in as messages, the
container's output comes back raw (never multiplexed), in binary messages, or text ones before
API 1.28; `logs=1` replays what was logged; an unknown container is a plain 404."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from support.daemon import TestDaemon


async def _session(daemon: TestDaemon) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=daemon.socket))


async def _collect(ws: aiohttp.ClientWebSocketResponse, until: bytes, timeout: float = 20) -> tuple[bytes, set]:
    """Messages until `until` has been seen (or the socket closes); their bytes and frame kinds."""
    got, kinds = b"", set()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while until not in got:
        msg = await ws.receive(timeout=max(0.1, deadline - loop.time()))
        if msg.type == aiohttp.WSMsgType.BINARY:
            got += msg.data
        elif msg.type == aiohttp.WSMsgType.TEXT:
            got += msg.data.encode()
        else:
            break
        kinds.add(msg.type)
    return got, kinds


def _create(daemon: TestDaemon, cmd: list[str], **config: object) -> str:
    st, r = daemon.api("POST", "/containers/create", {"Image": "busybox", "Cmd": cmd, **config})
    assert st == 201, r
    return r["Id"]


def test_ws_attach_stdin_in_raw_output_out(daemon: TestDaemon) -> None:
    cid = _create(daemon, ["sh", "-c", "read line; echo got:$line; echo oops >&2; echo done"],
                  OpenStdin=True, StdinOnce=True, AttachStdin=True, AttachStdout=True, AttachStderr=True)

    async def main() -> tuple[bytes, set]:
        async with await _session(daemon) as s:
            url = f"http://d/v1.43/containers/{cid}/attach/ws?stream=1&stdin=1&stdout=1&stderr=1"
            async with s.ws_connect(url) as ws:
                st, r = await asyncio.to_thread(daemon.api, "POST", f"/containers/{cid}/start")
                assert st == 204, r
                await ws.send_str("hello\n")
                return await _collect(ws, b"\x00never")  # until the daemon closes it: the container exited

    try:
        got, kinds = asyncio.run(main())
        # raw bytes: no 8-byte stream headers even without a tty; both streams on one socket
        assert sorted(got.decode().splitlines()) == ["done", "got:hello", "oops"], got
        assert kinds == {aiohttp.WSMsgType.BINARY}
        st, r = daemon.api("POST", f"/containers/{cid}/wait")
        assert st == 200 and r["StatusCode"] == 0
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")


def test_ws_attach_selected_streams_and_logs_replay(daemon: TestDaemon) -> None:
    cid = _create(daemon, ["sh", "-c", "echo to-out; echo to-err >&2"])
    try:
        st, r = daemon.api("POST", f"/containers/{cid}/start")
        assert st == 204, r
        st, r = daemon.api("POST", f"/containers/{cid}/wait")
        assert st == 200

        async def replay(query: str, version: str = "v1.43") -> tuple[bytes, set]:
            url = f"http://d/{version}/containers/{cid}/attach/ws?{query}"
            async with await _session(daemon) as s, s.ws_connect(url) as ws:
                return await _collect(ws, b"\x00never", timeout=10)

        out, _ = asyncio.run(replay("logs=1&stdout=1"))
        assert out == b"to-out\n"
        both, _ = asyncio.run(replay("logs=1&stdout=1&stderr=1"))
        assert sorted(both.decode().splitlines()) == ["to-err", "to-out"]
        # before 1.42 the stream selection is ignored (all of them); before 1.28 frames are text
        old, kinds = asyncio.run(replay("logs=1&stdout=1", version="v1.27"))
        assert sorted(old.decode().splitlines()) == ["to-err", "to-out"]
        assert kinds == {aiohttp.WSMsgType.TEXT}
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")


def test_ws_attach_tty_and_client_close(daemon: TestDaemon) -> None:
    cid = _create(daemon, ["sh"], Tty=True, OpenStdin=True, AttachStdin=True, AttachStdout=True)
    try:
        st, r = daemon.api("POST", f"/containers/{cid}/start")
        assert st == 204, r

        async def main() -> bytes:
            url = f"http://d/containers/{cid}/attach/ws?stream=1&stdin=1&stdout=1"
            async with await _session(daemon) as s, s.ws_connect(url) as ws:
                await ws.send_bytes(b"echo $((6*7))\n")
                got, _ = await _collect(ws, b"42")
                return got

        assert b"42" in asyncio.run(main())
        # the websocket went away: the container keeps running (no StdinOnce) and can be attached again
        st, r = daemon.api("GET", f"/containers/{cid}/json")
        assert st == 200 and r["State"]["Running"] is True
        assert b"42" in asyncio.run(main())
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")


def test_ws_attach_unknown_container_is_404(daemon: TestDaemon) -> None:
    async def main() -> tuple[int, str]:
        async with await _session(daemon) as s:
            with pytest.raises(aiohttp.WSServerHandshakeError) as e:
                await s.ws_connect("http://d/containers/nope/attach/ws?stream=1")
            return e.value.status, e.value.message

    status, _ = asyncio.run(main())
    assert status == 404
    st, r = daemon.api("GET", "/containers/nope/attach/ws")
    assert st == 404 and r["message"] == "No such container: nope"
