"""`python -m dockyard.daemon` / `dockyard daemon`: run the daemon in the foreground.

Reads flags and daemon.json (daemon/config.py), takes the pidfile, restores state, serves the
Engine API on every -H address, and on SIGTERM/SIGINT shuts down cleanly (containers are stopped
unless live-restore is on; shims keep them alive across a crash either way).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import sys

from dockyard.daemon import config as config_mod

log = logging.getLogger("dockyard")


def _take_pidfile(path: str) -> None:
    try:
        with open(path) as f:
            old = int(f.read().strip() or 0)
    except (FileNotFoundError, ValueError):
        old = 0
    if old and old != os.getpid():
        try:
            os.kill(old, 0)
            with open(f"/proc/{old}/cmdline", "rb") as f:
                if b"dockyard" in f.read():
                    raise SystemExit(f"pid file found, ensure dockyard is not running or delete {path}")
        except (ProcessLookupError, FileNotFoundError):
            pass
        except PermissionError:
            raise SystemExit(f"pid file found, ensure dockyard is not running or delete {path}") from None
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    from dockyard.util import atomic_write

    atomic_write(path, f"{os.getpid()}")


async def serve(cfg: config_mod.DaemonConfig) -> None:
    from aiohttp import web

    from dockyard.api.server import build_app, start_listeners
    from dockyard.daemon import loopguard
    from dockyard.daemon.backend import backends
    from dockyard.daemon.daemon import Daemon

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: log.info("SIGHUP: configuration reload is not supported"))
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    d = Daemon(cfg)
    await d.start()
    app = build_app(backends(d))
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0, handle_signals=False)
    await runner.setup()
    sockets = await start_listeners(runner, cfg)
    log.info("Dockyard daemon ready (data root %s, exec root %s, runtime %s)", cfg.data_root, cfg.exec_root,
             cfg.default_runtime)  # fmt: skip
    loopguard.install()
    await stop.wait()
    log.info("shutting down")
    for path in sockets:
        with contextlib.suppress(OSError):
            os.unlink(path)
    await d.shutdown()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(runner.cleanup(), 5)


def main(argv: list[str] | None = None) -> int:
    cfg = config_mod.load(argv)
    level = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR,
             "fatal": logging.CRITICAL}.get(cfg.log_level, logging.INFO)  # fmt: skip
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if os.geteuid() != 0:
        print("dockyard daemon needs to run as root", file=sys.stderr)
        return 1
    if not cfg.shim_path:
        print("dockyard-shim not found: run `make shim` (or set --shim)", file=sys.stderr)
        return 1
    from dockyard.daemon import lock

    try:
        # one daemon per data root and exec root, for the life of this process (daemon/lock.py)
        held = lock.acquire_all([cfg.data_root, cfg.exec_root])  # noqa: F841 - kept open until exit
    except lock.LockHeld as e:
        print(str(e), file=sys.stderr)
        return 1
    if cfg.userns_remap:
        from dockyard.daemon import idmap

        try:
            # subordinate ids of the remap user; state moves to <data-root>/<uid>.<gid> (daemon/idmap.py)
            cfg = idmap.setup(cfg)
        except idmap.RemapError as e:
            print(f"failed to start daemon: {e}", file=sys.stderr)
            return 1
    if cfg.pidfile:
        _take_pidfile(cfg.pidfile)
    try:
        asyncio.run(serve(cfg))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            print(f"failed to listen: {e}", file=sys.stderr)
            return 1
        raise
    finally:
        if cfg.pidfile:
            with contextlib.suppress(OSError):
                os.unlink(cfg.pidfile)
    return 0
