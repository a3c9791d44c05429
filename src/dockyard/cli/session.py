"""An attached session with a container or exec: the sequence Docker's CLI follows.

Owns: attach (hijacked, `Upgrade: tcp`), the wait request sent before start (condition
`next-exit`, or `removed` with `--rm`), start, the initial resize and SIGWINCH resizes
(`POST .../resize?h=&w=`), forwarding signals to the container (`--sig-proxy`, as
`POST /containers/{id}/kill?signal=NAME`), raw mode for `-it`, the copy loop, detaching with the
detach keys, and the exit status the CLI returns.
"""

from __future__ import annotations

import os
import sys

from dockyard.cli.attach import DETACHED, Streamer
from dockyard.cli.client import APIError
from dockyard.cli.jsonfast import loads
from dockyard.cli.term import RawMode, window_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from dockyard.cli.client import Client
    from dockyard.cli.http import Response, Sock

# signals the CLI forwards to the container (Docker forwards all but CHLD, PIPE, URG, WINCH)
PROXIED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM")


class Wait:
    """POST /containers/{id}/wait sent now (headers come back at once), body read later."""

    def __init__(self, client: Client, cid: str, condition: str) -> None:
        from dockyard.cli.client import Client as _C

        # a separate connection: the request stays open until the container exits
        self.client = _C(client.host, True, client._tls, client.negotiate())
        self.resp: Response | None = self.client.stream("POST", f"/containers/{cid}/wait", {"condition": condition})

    def status(self, timeout: float | None = None) -> tuple[int, str]:
        if self.resp is None:
            return 0, ""
        if timeout is not None:
            self.resp.conn.sock.settimeout(timeout)
        try:
            raw = self.resp.read()
        except OSError:  # timed out: report nothing rather than hang
            self.close()
            return 0, ""
        self.resp.conn.close()
        self.resp = None
        try:
            doc = loads(raw)
        except ValueError:
            return 125, raw.decode(errors="replace")
        err = (doc.get("Error") or {}) if isinstance(doc, dict) else {}
        code = int(doc.get("StatusCode", 0)) if isinstance(doc, dict) else 0
        return code, (err.get("Message") or "") if isinstance(err, dict) else ""

    def fileno(self) -> int | None:
        """The wait connection's fd: readable once the answer (the exit status) arrives."""
        if self.resp is None:
            return None
        if self.resp.conn.buf:  # the answer came with the headers already
            r, w = os.pipe()
            os.write(w, b"x")
            os.close(w)
            self._ready_pipe = r
            return r
        return self.resp.conn.fileno()

    def close(self) -> None:
        if self.resp is not None:
            self.resp.conn.close()
            self.resp = None
        if getattr(self, "_ready_pipe", None) is not None:
            os.close(self._ready_pipe)
            self._ready_pipe = None


def resize(client: Client, path: str, retries: int = 0) -> None:
    """POST <path>/resize with stdout's window size (retried while the process starts)."""
    from dockyard.cli.client import APIError

    size = window_size(1)
    if size is None:
        return
    h, w = size
    for attempt in range(retries + 1):
        try:
            client.post(f"{path}/resize", {"h": h, "w": w})
            return
        except APIError:
            if attempt == retries:
                return
            import time

            time.sleep(0.01 * (attempt + 1))


class Session:
    """Drive one attached stream. `run()` returns 'eof' or 'detached'."""

    def __init__(self, client: Client, conn: Sock, tty: bool, stdin: bool, detach_keys: bytes | None,
                 resize_path: str | None = None, kill_path: str | None = None) -> None:
        self.client = client
        self.conn = conn
        self.tty = tty
        self.stdin = stdin
        self.detach_keys = detach_keys
        self.resize_path = resize_path if (tty and os.isatty(1)) else None
        self.kill_path = kill_path
        self._rfd = self._wfd = -1
        self._saved: dict[int, Any] = {}

    def _install_signals(self) -> None:
        if not self.resize_path and not self.kill_path:
            return
        import _signal as signal  # `signal` would import enum and collections: ~8 ms

        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        self._rfd, self._wfd = r, w
        signal.set_wakeup_fd(w, warn_on_full_buffer=False)

        def noop(_sig: int, _frame: object) -> None:
            return None

        wanted = []
        if self.resize_path:
            wanted.append(signal.SIGWINCH)
        if self.kill_path:
            wanted.extend(getattr(signal, name) for name in PROXIED)
        for sig in wanted:
            self._saved[sig] = signal.signal(sig, noop)

    def _restore_signals(self) -> None:
        if self._rfd < 0:
            return
        import _signal as signal

        signal.set_wakeup_fd(-1)
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        os.close(self._rfd)
        os.close(self._wfd)
        self._rfd = self._wfd = -1

    def _on_wake(self, data: bytes) -> None:
        import _signal as signal

        names = {getattr(signal, n): n[3:] for n in PROXIED}
        for signum in set(data):
            if signum == signal.SIGWINCH and self.resize_path:
                resize(self.client, self.resize_path)
            elif self.kill_path and signum in names:
                name = names[signum]
                from dockyard.cli.client import APIError

                try:
                    self.client.post(self.kill_path, {"signal": name})
                except APIError:
                    pass

    def run(self, after_setup: Callable[[], None] | None = None, exit_fd: int | None = None) -> str:
        streamer = Streamer(self.conn, self.tty, self.stdin, self.detach_keys)
        raw = RawMode(0, enabled=self.tty and self.stdin)
        self._install_signals()
        try:
            with raw:
                if after_setup is not None:
                    after_setup()
                if self.conn.closed:  # the start failed: nothing to stream
                    return "eof"
                result = streamer.run(self._rfd if self._rfd >= 0 else None, self._on_wake, exit_fd)
        finally:
            self._restore_signals()
            self.conn.close()
        if streamer.demux is not None and streamer.demux.system_error:
            from dockyard.cli.command import CLIError

            raise CLIError(streamer.demux.system_error.decode(errors="replace").strip(), 126)
        return result


def detach_keys_for(ctx: Any, flag_value: str) -> tuple[str, bytes]:
    """(spec, bytes): --detach-keys, else config.json's detachKeys, else ctrl-p,ctrl-q."""
    from dockyard.cli.command import CLIError
    from dockyard.cli.term import DEFAULT_DETACH_KEYS, parse_detach_keys

    spec = flag_value or ctx.config().get("detachKeys") or DEFAULT_DETACH_KEYS
    try:
        return spec, parse_detach_keys(spec)
    except ValueError as e:
        raise CLIError(f"Invalid detach keys ({spec}) provided: {e}", 125) from None


__all__ = ["DETACHED", "Session", "Wait", "detach_keys_for", "resize"]


class StartError(Exception):
    """`POST /containers/{id}/start` failed after the attach was set up; `error` is the APIError."""

    def __init__(self, error: APIError) -> None:
        super().__init__(str(error))
        self.error = error


def attach_start_wait(client: Client, cid: str, query: dict[str, str], *, tty: bool, stdin: bool,
                      keys: bytes, auto_remove: bool, sig_proxy: bool) -> int:
    """Docker's attached start: attach, wait (sent before start), start, resize, pump the streams.

    Returns the container's exit status, or 0 when the user detached. A failed start raises
    StartError (after an auto-removed container is gone, so the caller's report comes last)."""
    conn, _resp = client.hijack(f"/containers/{cid}/attach", query)
    waiter = Wait(client, cid, "removed" if auto_remove else "next-exit")
    path = f"/containers/{cid}"
    session = Session(client, conn, tty, stdin, keys, resize_path=path,
                      kill_path=f"{path}/kill" if sig_proxy else None)
    failures: list[APIError] = []

    def start() -> None:
        try:
            client.post(f"{path}/start")
        except APIError as e:
            failures.append(e)
            conn.close()
            return
        if session.resize_path:
            resize(client, path, retries=10)

    try:
        try:
            result = session.run(after_setup=start, exit_fd=waiter.fileno())
        except OSError:
            result = "eof"
        if failures:
            if auto_remove:
                waiter.status(timeout=10)
            raise StartError(failures[0])
        if result == DETACHED:
            return 0
        status, err = waiter.status()
        if err:
            sys.stderr.write(err + "\n")
        return status
    finally:
        waiter.close()
