"""Health checks, run as Docker runs them (moby daemon/health.go).

`Config.Healthcheck` (the image's HEALTHCHECK merged with `--health-*`) names a probe: `["CMD",
arg...]` runs the arguments, `["CMD-SHELL", cmd]` runs `Config.Shell` (default `/bin/sh -c`)
with it, `["NONE"]` (or no test) disables it. While the container runs (and is not paused) a
`HealthMonitor` task per container runs the probe as an exec instance inside the container
(daemon/exec.py: the runtime's exec, the container's user, env and working directory; the usual
exec_create/exec_start/exec_die events), every `Interval` (30 s; `StartInterval`, 5 s, while the
status is still "starting" inside `StartPeriod`), each run limited to `Timeout` (30 s, counted from
the moment the process runs; on expiry it is killed and the result is exit code -1 "Health check
exceeded timeout (30s)").

`State.Health` = {Status, FailingStreak, Log}: "starting" at each start, "healthy" after a run
exiting 0, "unhealthy" after `Retries` (3) failures in a row; failures inside the start period do
not count while the status is still "starting". Log keeps the last 5 results {Start, End,
ExitCode, Output}, the output cut at 4096 bytes with "..." appended. A change of status is
published as the container event "health_status: <status>" and written to disk. The health state
stays after the container stops (probing stops); a start, restart or daemon restart resets it to
"starting" and begins probing again.

Interface for the other daemon modules: `d.health.init(c)` when a run begins (start, restart,
reattach at daemon start), `d.health.update(c)` after pause/unpause, `d.health.stop(c)` when the
run ends, `await d.health.close()` at shutdown; `validate(config)` at create.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from typing import TYPE_CHECKING, Any

from dockyard.daemon import timeutil
from dockyard.errors import InvalidParameter
from dockyard.util import new_id

if TYPE_CHECKING:
    from dockyard.daemon.container import Container
    from dockyard.daemon.daemon import Daemon

log = logging.getLogger("dockyard.health")

STARTING, HEALTHY, UNHEALTHY, NONE = "starting", "healthy", "unhealthy", "none"
STATUSES = (STARTING, HEALTHY, UNHEALTHY, NONE)

MAX_OUTPUT = 4096
MAX_LOG = 5
DEFAULT_INTERVAL_NS = 30 * 1_000_000_000
DEFAULT_TIMEOUT_NS = 30 * 1_000_000_000
DEFAULT_START_PERIOD_NS = 0
DEFAULT_START_INTERVAL_NS = 5 * 1_000_000_000
DEFAULT_RETRIES = 3
MINIMUM_NS = 1_000_000  # Docker's containertypes.MinimumDuration (1ms)
EXEC_START_TIMEOUT = 30.0  # an exec that does not start in this long is an error, as in dockerd


# --- pure parts (unit-tested) -------------------------------------------------------------------
def go_duration(ns: int) -> str:
    """Go's time.Duration.String(): 30s, 300ms, 1.5s, 2m0s, 1h0m0s, 1µs."""
    if ns == 0:
        return "0s"
    neg, ns = ns < 0, abs(ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1000), ("ns", 1)):
            if ns >= size:
                whole, frac = divmod(ns, size)
                text = str(whole) + (("." + f"{frac:0{len(str(size)) - 1}d}".rstrip("0")) if frac else "")
                return ("-" if neg else "") + text + unit
    secs, frac = divmod(ns, 1_000_000_000)
    hours, rest = divmod(secs, 3600)
    minutes, secs = divmod(rest, 60)
    s = str(secs) + (("." + f"{frac:09d}".rstrip("0")) if frac else "") + "s"
    if hours:
        s = f"{hours}h{minutes}m" + s
    elif minutes:
        s = f"{minutes}m" + s
    return ("-" if neg else "") + s


def _ns(hc: dict[str, Any], key: str) -> int:
    v = hc.get(key) or 0
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise InvalidParameter(f"json: cannot unmarshal {type(v).__name__} into Go struct field "
                               f"HealthConfig.Healthcheck.{key} of type time.Duration")  # fmt: skip
    return int(v)


def validate(config: dict[str, Any]) -> None:
    """moby's validateHealthCheck, at create (Docker's words, 400)."""
    hc = config.get("Healthcheck")
    if hc is None:
        return
    if not isinstance(hc, dict):
        raise InvalidParameter("json: cannot unmarshal into Go struct field Config.Healthcheck of type container.HealthConfig")
    test = hc.get("Test")
    if test is not None and (not isinstance(test, list) or not all(isinstance(t, str) for t in test)):
        raise InvalidParameter("json: cannot unmarshal into Go struct field HealthConfig.Healthcheck.Test of type []string")
    for key in ("Interval", "Timeout"):
        v = _ns(hc, key)
        if v != 0 and v < MINIMUM_NS:
            raise InvalidParameter(f"{key} in Healthcheck cannot be less than 1ms")
    retries = hc.get("Retries") or 0
    if isinstance(retries, bool) or not isinstance(retries, int):
        raise InvalidParameter("json: cannot unmarshal into Go struct field HealthConfig.Healthcheck.Retries of type int")
    if retries < 0:
        raise InvalidParameter("Retries in Healthcheck cannot be negative")
    for key in ("StartPeriod", "StartInterval"):
        v = _ns(hc, key)
        if v != 0 and v < MINIMUM_NS:
            raise InvalidParameter(f"{key} in Healthcheck cannot be less than 1ms")


def probe_command(config: dict[str, Any]) -> list[str] | None:
    """The argv a probe runs, or None when there is no (usable) health check."""
    hc = config.get("Healthcheck") or {}
    test = list(hc.get("Test") or [])
    if not test:
        return None
    kind, rest = test[0], test[1:]
    if kind == "CMD":
        return rest or None
    if kind == "CMD-SHELL":
        return list(config.get("Shell") or ["/bin/sh", "-c"]) + rest
    if kind != "NONE":
        log.warning("Unknown healthcheck type '%s' (expected 'CMD')", kind)
    return None


def new_state() -> dict[str, Any]:
    return {"Status": STARTING, "FailingStreak": 0, "Log": []}


def apply_result(h: dict[str, Any], result: dict[str, Any], config: dict[str, Any], started_ns: int) -> str | None:
    """Record one probe result in State.Health `h`; returns the new status if it changed."""
    hc = config.get("Healthcheck") or {}
    retries = int(hc.get("Retries") or 0)
    if retries <= 0:
        retries = DEFAULT_RETRIES
    old = h.get("Status") or UNHEALTHY
    h["Log"] = [*list(h.get("Log") or [])[-(MAX_LOG - 1):], result]
    if result["ExitCode"] == 0:
        h["FailingStreak"] = 0
        h["Status"] = HEALTHY
    else:
        count = True
        if old == STARTING:
            start_period = int(hc.get("StartPeriod") or 0) or DEFAULT_START_PERIOD_NS
            if timeutil.parse_ns(result["Start"]) - started_ns < start_period:
                count = False  # inside the start period, before the first success: not counted
        if count:
            h["FailingStreak"] = int(h.get("FailingStreak") or 0) + 1
            if h["FailingStreak"] >= retries:
                h["Status"] = UNHEALTHY
    return h["Status"] if h["Status"] != old else None


def next_interval(config: dict[str, Any], started_ns: int, status: str, now_ns: int) -> float:
    """Seconds until the next probe: StartInterval while "starting" inside the start period."""
    hc = config.get("Healthcheck") or {}
    interval = int(hc.get("Interval") or 0) or DEFAULT_INTERVAL_NS
    start_interval = int(hc.get("StartInterval") or 0) or DEFAULT_START_INTERVAL_NS
    start_period = int(hc.get("StartPeriod") or 0) or DEFAULT_START_PERIOD_NS
    if now_ns - started_ns >= start_period or status != STARTING:
        return interval / 1e9
    return start_interval / 1e9


class LimitedBuffer:
    """The first 4096 bytes of the probe's output; "..." is appended when more was written."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.truncated = False

    def write(self, data: bytes) -> None:
        keep = min(MAX_OUTPUT - len(self.buf), len(data))
        if keep > 0:
            self.buf += data[:keep]
        if keep < len(data):
            self.truncated = True

    def text(self) -> str:
        out = self.buf.decode("utf-8", errors="replace")
        return out + "..." if self.truncated else out


class _Capture:
    """The probe's exec client: keeps stdout and stderr (Docker frames) in a LimitedBuffer."""

    def __init__(self) -> None:
        self.out = LimitedBuffer()

    async def read(self) -> bytes:
        return b""  # no input

    async def write(self, data: bytes) -> None:
        if len(data) >= 8 and data[0] in (1, 2) and int.from_bytes(data[4:8], "big") == len(data) - 8:
            data = data[8:]
        self.out.write(data)

    async def close(self) -> None:
        return None


# --- the monitor --------------------------------------------------------------------------------
class HealthMonitor:
    """One probing task per running, unpaused container with a health check."""

    def __init__(self, d: Daemon) -> None:
        self.d = d
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def init(self, c: Container) -> None:
        """A run began (start, restart, reattach): status "starting", streak 0, probing on."""
        if probe_command(c.config) is None:
            return
        self.stop(c)
        if c.state.health is None:
            c.state.health = new_state()
        else:
            c.state.health["Status"] = STARTING
            c.state.health["FailingStreak"] = 0
        self.update(c)

    def update(self, c: Container) -> None:
        """Probe while running and not paused; stop otherwise (pause, unpause, exit)."""
        if c.state.health is None:
            return
        want = c.state.running and not c.state.paused and not c.state.restarting and probe_command(c.config) is not None
        if not want:
            self.stop(c)
            return
        t = self.tasks.get(c.id)
        if t is None or t.done():
            self.tasks[c.id] = asyncio.get_running_loop().create_task(self._loop(c), name=f"health-{c.short_id}")

    def stop(self, c: Container) -> None:
        t = self.tasks.pop(c.id, None)
        if t is not None and not t.done():
            t.cancel()

    async def close(self) -> None:
        tasks = list(self.tasks.values())
        self.tasks.clear()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(t, 10)

    async def _loop(self, c: Container) -> None:
        started_ns = timeutil.parse_ns(c.state.started_at) or time.time_ns()
        try:
            while True:
                status = (c.state.health or {}).get("Status") or STARTING
                await asyncio.sleep(next_interval(c.config, started_ns, status, time.time_ns()))
                if not c.state.running or c.state.paused or c.state.health is None:
                    return
                result = await self._probe(c)
                if self.tasks.get(c.id) is not asyncio.current_task() or c.state.health is None:
                    return  # stopped while probing: the result is dropped, as dockerd does
                changed = apply_result(c.state.health, result, c.config, started_ns)
                if changed is not None:
                    self.d.events.publish("container", f"health_status: {changed}", c.id, self.d.actor_attrs(c))
                    try:
                        await self.d.store.save(c)
                    except Exception as e:  # noqa: BLE001 - a removed container, a full disk: keep probing
                        log.debug("saving health of %s: %s", c.short_id, e)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - never let a probe bug kill the daemon's loop quietly
            log.exception("health monitor of %s stopped", c.short_id)

    async def _probe(self, c: Container) -> dict[str, Any]:
        """One run of the probe as an exec instance; returns the HealthcheckResult."""
        from dockyard.daemon import exec as exec_mod

        d = self.d
        start = timeutil.now()
        cmd = probe_command(c.config) or []
        hc = c.config.get("Healthcheck") or {}
        timeout_ns = int(hc.get("Timeout") or 0) or DEFAULT_TIMEOUT_NS
        ex = exec_mod.Exec(new_id(), c, {"Cmd": cmd, "AttachStdout": True, "AttachStderr": True})
        d.execs.add(ex)
        c.exec_ids.append(ex.id)
        d.events.publish("container", exec_mod.event_action("exec_create", cmd), c.id,
                         {**d.actor_attrs(c), "execID": ex.id})  # fmt: skip
        capture = _Capture()
        run = asyncio.get_running_loop().create_task(exec_mod.start(d, ex, capture, False))
        try:
            started = asyncio.ensure_future(ex.started_event.wait())
            try:
                await asyncio.wait({run, started}, timeout=EXEC_START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
            finally:
                started.cancel()
            if not ex.started_event.is_set() and not run.done():
                _kill(ex)
                return _result(start, -1, f"timed out starting health check for container {c.id}")
            if run.done() and run.exception() is not None:
                return _result(start, -1, str(getattr(run.exception(), "message", None) or run.exception()))
            try:
                await asyncio.wait_for(asyncio.shield(run), timeout_ns / 1e9)
            except TimeoutError:
                _kill(ex)
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(asyncio.shield(run), 10)
                out = capture.out.text()
                msg = f"Health check exceeded timeout ({go_duration(timeout_ns)})"
                return _result(start, -1, f"{msg}: {out}" if out else msg)
            if run.exception() is not None:
                return _result(start, -1, str(getattr(run.exception(), "message", None) or run.exception()))
            if ex.pid == 0:
                # the runtime could not start the process: its message is the output, as dockerd reports it
                return _result(start, -1, capture.out.text().strip())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ex.finished.wait(), 5)
            if ex.exit_code is None:
                return _result(start, -1, f"healthcheck for container {c.id} has no exit code")
            return _result(start, ex.exit_code, capture.out.text())
        except asyncio.CancelledError:
            # the container stopped (or paused, or the daemon shuts down): end the probe's process
            _kill(ex)
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(run), 10)
            raise
        finally:
            if not run.done():
                run.cancel()
            d.execs.forget(ex.id)
            with contextlib.suppress(ValueError):
                c.exec_ids.remove(ex.id)


def _result(start: str, code: int, output: str) -> dict[str, Any]:
    return {"Start": start, "End": timeutil.now(), "ExitCode": code, "Output": output}


def _kill(ex: Any) -> None:
    """SIGKILL a probe's process while its supervisor still holds it (it cannot be reaped, so its
    pid cannot be reused, until the supervisor reports the exit)."""
    if ex.pid and ex.running and ex.exit_code is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(ex.pid, signal.SIGKILL)
