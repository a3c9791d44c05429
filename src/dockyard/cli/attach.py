"""Pumping a hijacked attach/exec connection between the container and the local terminal.

Owns: copying local stdin to the connection (with Docker's detach-key escape proxy: a partial
match is held back, a full match detaches without closing the container's stdin), half-closing
the write side at stdin EOF, and copying the container's output to stdout/stderr — raw with a
tty, demultiplexed from Docker's 8-byte frame headers (stream type, 0, 0, 0, big-endian size)
without one. A wake-up fd lets the caller handle SIGWINCH and forwarded signals in the same loop.
"""

from __future__ import annotations

import _socket
import os
import select

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from dockyard.cli.http import Sock

EOF = "eof"
DETACHED = "detached"
LINGER = 1.0  # seconds of quiet output tolerated after the container exited


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        view = view[n:]


class Demuxer:
    """Splits Docker's multiplexed stream into (stream, payload) writes."""

    def __init__(self, out_fd: int, err_fd: int) -> None:
        self.buf = b""
        self.out_fd = out_fd
        self.err_fd = err_fd
        self.system_error = b""

    def feed(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        pos = 0
        n = len(buf)
        while n - pos >= 8:
            stream = buf[pos]
            size = int.from_bytes(buf[pos + 4:pos + 8], "big")
            if n - pos - 8 < size:
                break
            payload = buf[pos + 8:pos + 8 + size]
            pos += 8 + size
            if stream == 2:
                write_all(self.err_fd, payload)
            elif stream == 3:
                self.system_error += payload
            else:
                write_all(self.out_fd, payload)
        self.buf = buf[pos:]


class EscapeProxy:
    """Docker's term.EscapeProxy: watch input for the detach sequence."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.matched = 0

    def filter(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to send, detached?)"""
        if not self.keys:
            return data, False
        out = bytearray()
        for b in data:
            if b == self.keys[self.matched]:
                self.matched += 1
                if self.matched == len(self.keys):
                    self.matched = 0
                    return bytes(out), True
                continue
            if self.matched:
                out += self.keys[:self.matched]
                self.matched = 0
                if b == self.keys[0]:
                    self.matched = 1
                    continue
            out.append(b)
        return bytes(out), False


class Streamer:
    """Run the copy loop until the container's output ends or the user detaches."""

    def __init__(self, conn: Sock, tty: bool, attach_stdin: bool, detach_keys: bytes | None,
                 in_fd: int = 0, out_fd: int = 1, err_fd: int = 2) -> None:
        self.conn = conn
        self.tty = tty
        self.attach_stdin = attach_stdin
        self.proxy = EscapeProxy(detach_keys or b"")
        self.in_fd, self.out_fd, self.err_fd = in_fd, out_fd, err_fd
        self.demux = None if tty else Demuxer(out_fd, err_fd)

    def _output(self, data: bytes) -> None:
        if self.demux is None:
            write_all(self.out_fd, data)
        else:
            self.demux.feed(data)

    def run(self, wake_fd: int | None = None, on_wake: Callable[[bytes], None] | None = None,
            exit_fd: int | None = None) -> str:
        """Copy until the output ends or the user detaches.

        `exit_fd` (the pending wait request's socket) becoming readable means the container has
        exited: the output is then drained for up to LINGER seconds of quiet, so a daemon that
        keeps the attach stream open after the exit cannot hang the CLI.
        """
        import time

        conn = self.conn
        if conn.buf:
            data, conn.buf = conn.buf, b""
            self._output(data)
        sock_fd = conn.fileno()
        stdin_open = self.attach_stdin
        deadline: float | None = None
        while True:
            rlist = [sock_fd]
            if stdin_open:
                rlist.append(self.in_fd)
            if wake_fd is not None:
                rlist.append(wake_fd)
            if exit_fd is not None and deadline is None:
                rlist.append(exit_fd)
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                ready, _w, _x = select.select(rlist, [], [], timeout)
            except InterruptedError:
                continue
            if not ready and deadline is not None:
                return EOF
            if exit_fd is not None and exit_fd in ready:
                deadline = time.monotonic() + LINGER
            if wake_fd is not None and wake_fd in ready:
                try:
                    woke = os.read(wake_fd, 512)
                except BlockingIOError:
                    woke = b""
                if on_wake and woke:
                    on_wake(woke)
            if sock_fd in ready:
                try:
                    data = conn.sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                if not data:
                    return EOF
                self._output(data)
                if deadline is not None:
                    deadline = time.monotonic() + LINGER
            if stdin_open and self.in_fd in ready:
                try:
                    data = os.read(self.in_fd, 32768)
                except OSError:
                    data = b""
                if not data:
                    stdin_open = False
                    try:
                        conn.sock.shutdown(_socket.SHUT_WR)
                    except OSError:
                        pass
                    continue
                send, detached = self.proxy.filter(data)
                if send:
                    try:
                        conn.sendall(send)
                    except OSError:
                        stdin_open = False
                if detached:
                    return DETACHED
