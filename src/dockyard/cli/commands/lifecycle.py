"""Container lifecycle commands: start, stop, kill, restart, rm, pause, unpause, wait, rename, update.

Owns: each command's flags and API calls, Docker's per-container output (the name as given on
success, `Error response from daemon: ...` per failure, exit 1 if any failed), and `start -a/-i`
(attach before start, exit with the container's status).
"""

from __future__ import annotations

import sys

from dockyard.cli.client import APIError
from dockyard.cli.command import CLIError, Command, Ctx
from dockyard.cli.common import for_each
from dockyard.cli.flags import Flag, Options

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _q(name: str) -> str:
    from dockyard.cli.http import quote

    return quote(name)


# ---- start ----------------------------------------------------------------------------------

def start(ctx: Ctx, opts: Options, args: list[str]) -> int:
    client = ctx.client
    if opts["attach"] or opts["interactive"]:
        if len(args) > 1:
            raise CLIError("you cannot start and attach multiple containers at once")
        return _start_attached(ctx, opts, args[0])
    failed = []
    errors = []
    for name in args:
        try:
            client.post(f"/containers/{_q(name)}/start")
        except APIError as e:
            errors.append(str(e))
            failed.append(name)
            continue
        sys.stdout.write(name + "\n")
    if failed:
        sys.stdout.flush()
        raise CLIError("\n".join(errors) + "\nError: failed to start containers: " + ", ".join(failed))
    return 0


def _start_attached(ctx: Ctx, opts: Options, name: str) -> int:
    from dockyard.cli.session import StartError, attach_start_wait, detach_keys_for

    client = ctx.client
    info = client.get(f"/containers/{_q(name)}/json")
    cid = info["Id"]
    config = info.get("Config") or {}
    tty = bool(config.get("Tty"))
    stdin = bool(opts["interactive"] and config.get("OpenStdin"))
    if stdin and tty and not _isatty(0):
        raise CLIError("the input device is not a TTY")
    keys_spec, keys = detach_keys_for(ctx, opts["detach-keys"])
    query = {"stream": "1", "stdin": "1" if stdin else "0", "stdout": "1", "stderr": "1", "detachKeys": keys_spec}
    try:
        return attach_start_wait(client, cid, query, tty=tty, stdin=stdin, keys=keys, sig_proxy=not tty,
                                 auto_remove=bool((info.get("HostConfig") or {}).get("AutoRemove")))
    except StartError as e:
        raise e.error from None


def _isatty(fd: int) -> bool:
    import os

    return os.isatty(fd)


# ---- stop / kill / restart --------------------------------------------------------------------

def _timeout_query(opts: Options) -> dict[str, Any]:
    query: dict[str, Any] = {}
    if "timeout" in opts.changed:
        query["t"] = opts["timeout"]
    elif "time" in opts.changed:
        query["t"] = opts["time"]
    if opts.get("signal"):
        query["signal"] = opts["signal"]
    return query


def stop(ctx: Ctx, opts: Options, args: list[str]) -> int:
    query = _timeout_query(opts)
    return for_each(args, lambda n: ctx.client.post(f"/containers/{_q(n)}/stop", query) and None)


def restart(ctx: Ctx, opts: Options, args: list[str]) -> int:
    query = _timeout_query(opts)
    return for_each(args, lambda n: ctx.client.post(f"/containers/{_q(n)}/restart", query) and None)


def kill(ctx: Ctx, opts: Options, args: list[str]) -> int:
    query = {"signal": opts["signal"]} if opts["signal"] else None
    return for_each(args, lambda n: ctx.client.post(f"/containers/{_q(n)}/kill", query) and None)


# ---- rm ---------------------------------------------------------------------------------------

def rm(ctx: Ctx, opts: Options, args: list[str]) -> int:
    query = {"v": "1" if opts["volumes"] else None, "force": "1" if opts["force"] else None,
             "link": "1" if opts["link"] else None}

    def one(name: str) -> None:
        stripped = name.strip("/")
        if not stripped:
            raise CLIError("Container name cannot be empty")
        ctx.client.delete(f"/containers/{_q(stripped)}", query)

    return for_each(args, one)


# ---- pause / unpause / wait / rename ------------------------------------------------------------

def pause(ctx: Ctx, opts: Options, args: list[str]) -> int:
    return for_each(args, lambda n: ctx.client.post(f"/containers/{_q(n)}/pause") and None)


def unpause(ctx: Ctx, opts: Options, args: list[str]) -> int:
    return for_each(args, lambda n: ctx.client.post(f"/containers/{_q(n)}/unpause") and None)


def wait(ctx: Ctx, opts: Options, args: list[str]) -> int:
    def one(name: str) -> str:
        doc = ctx.client.post(f"/containers/{_q(name)}/wait")
        err = (doc or {}).get("Error") or {}
        if err and err.get("Message"):
            raise CLIError(err["Message"])
        return str((doc or {}).get("StatusCode", 0))

    return for_each(args, one)


def rename(ctx: Ctx, opts: Options, args: list[str]) -> int:
    old, new = args[0].strip(), args[1].strip()
    if not old or not new:
        raise CLIError("Error: Neither old nor new names may be empty")
    try:
        ctx.client.post(f"/containers/{_q(old)}/rename", {"name": new})
    except APIError as e:
        raise CLIError(f"{e}\nError: failed to rename container named {old}") from None
    return 0


# ---- update -----------------------------------------------------------------------------------

def update(ctx: Ctx, opts: Options, args: list[str]) -> int:
    from dockyard.cli.runopts import parse_restart

    if not opts.changed:
        raise CLIError("you must provide one or more flags when using this command", 1)
    body: dict[str, Any] = {}
    mapping = {"blkio-weight": "BlkioWeight", "cpu-period": "CpuPeriod", "cpu-quota": "CpuQuota",
               "cpu-rt-period": "CpuRealtimePeriod", "cpu-rt-runtime": "CpuRealtimeRuntime",
               "cpu-shares": "CpuShares", "cpuset-cpus": "CpusetCpus", "cpuset-mems": "CpusetMems",
               "memory": "Memory", "memory-reservation": "MemoryReservation", "memory-swap": "MemorySwap",
               "pids-limit": "PidsLimit", "kernel-memory": "KernelMemory"}
    for flag, key in mapping.items():
        if flag in opts.changed:
            body[key] = opts[flag]
    if "cpus" in opts.changed:
        body["NanoCpus"] = int(round(opts["cpus"] * 1e9))
    if "restart" in opts.changed:
        body["RestartPolicy"] = parse_restart(opts["restart"])
    warnings: list[str] = []

    def one(name: str) -> None:
        resp = ctx.client.post(f"/containers/{_q(name)}/update", None, body)
        warnings.extend((resp or {}).get("Warnings") or [])

    try:
        return for_each(args, one)
    finally:
        for w in warnings:
            sys.stderr.write(w + "\n")


SIGNAL = Flag("signal", "s", help="Signal to send to the container")
TIMEOUT = [Flag("timeout", "t", kind="int", help="Seconds to wait before killing the container"),
           Flag("time", kind="int", help="Seconds to wait before killing the container", hidden=True)]

START = Command("[OPTIONS] CONTAINER [CONTAINER...]", start, min_args=1, flags=[
    Flag("attach", "a", kind="bool", help="Attach STDOUT/STDERR and forward signals"),
    Flag("checkpoint", help="Restore from this checkpoint", hidden=True),
    Flag("checkpoint-dir", help="Use a custom checkpoint storage directory", hidden=True),
    Flag("detach-keys", help="Override the key sequence for detaching a container"),
    Flag("interactive", "i", kind="bool", help="Attach container's STDIN"),
])
STOP = Command("[OPTIONS] CONTAINER [CONTAINER...]", stop, min_args=1, flags=[SIGNAL, *TIMEOUT])
RESTART = Command("[OPTIONS] CONTAINER [CONTAINER...]", restart, min_args=1, flags=[SIGNAL, *TIMEOUT])
KILL = Command("[OPTIONS] CONTAINER [CONTAINER...]", kill, min_args=1, flags=[SIGNAL])
RM = Command("[OPTIONS] CONTAINER [CONTAINER...]", rm, min_args=1, flags=[
    Flag("force", "f", kind="bool", help="Force the removal of a running container (uses SIGKILL)"),
    Flag("link", "l", kind="bool", help="Remove the specified link"),
    Flag("volumes", "v", kind="bool", help="Remove anonymous volumes associated with the container"),
])
PAUSE = Command("CONTAINER [CONTAINER...]", pause, min_args=1)
UNPAUSE = Command("CONTAINER [CONTAINER...]", unpause, min_args=1)
WAIT = Command("CONTAINER [CONTAINER...]", wait, min_args=1)
RENAME = Command("CONTAINER NEW_NAME", rename, min_args=2, max_args=2)
UPDATE = Command("[OPTIONS] CONTAINER [CONTAINER...]", update, min_args=1, flags=[
    Flag("blkio-weight", kind="uint16", help="Block IO (relative weight), between 10 and 1000, or 0 to disable", show_default="0"),
    Flag("cpu-period", kind="int", help="Limit CPU CFS (Completely Fair Scheduler) period"),
    Flag("cpu-quota", kind="int", help="Limit CPU CFS (Completely Fair Scheduler) quota"),
    Flag("cpu-rt-period", kind="int", help="Limit the CPU real-time period in microseconds"),
    Flag("cpu-rt-runtime", kind="int", help="Limit the CPU real-time runtime in microseconds"),
    Flag("cpu-shares", "c", kind="int", help="CPU shares (relative weight)"),
    Flag("cpus", kind="decimal", help="Number of CPUs"),
    Flag("cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)"),
    Flag("cpuset-mems", help="MEMs in which to allow execution (0-3, 0,1)"),
    Flag("kernel-memory", kind="bytes", help="Kernel memory limit (deprecated)", hidden=True),
    Flag("memory", "m", kind="bytes", help="Memory limit"),
    Flag("memory-reservation", kind="bytes", help="Memory soft limit"),
    Flag("memory-swap", kind="swapbytes", help="Swap limit equal to memory plus swap: -1 to enable unlimited swap"),
    Flag("pids-limit", kind="int", help="Tune container pids limit (set -1 for unlimited)"),
    Flag("restart", help="Restart policy to apply when a container exits"),
])
