"""`dockyard exec` and `dockyard attach`.

Owns: exec (create the exec instance, start it hijacked or detached, resize, exit with the
process's exit code read from `GET /exec/{id}/json`) and attach (refuse stopped/paused
containers with Docker's words, wait for exit, stream, forward signals without a tty, exit with
the container's status, or 0 after the detach keys).
"""

from __future__ import annotations

import os
import sys

from dockyard.cli.client import APIError
from dockyard.cli.command import CLIError, Command, Ctx
from dockyard.cli.flags import Flag, Options
from dockyard.cli.http import quote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def exec_(ctx: Ctx, opts: Options, args: list[str]) -> int:
    from dockyard.cli.runopts import parse_env
    from dockyard.cli.session import DETACHED, Session, detach_keys_for, resize
    from dockyard.cli.term import window_size

    container, cmd = args[0], args[1:]
    detach = opts["detach"]
    tty = bool(opts["tty"])
    stdin = bool(opts["interactive"]) and not detach
    if stdin and tty and not os.isatty(0):
        raise CLIError("the input device is not a TTY")
    keys_spec, keys = detach_keys_for(ctx, opts["detach-keys"])
    body: dict[str, Any] = {
        "User": opts["user"], "Privileged": bool(opts["privileged"]), "Tty": tty,
        "AttachStdin": stdin, "AttachStdout": not detach, "AttachStderr": not detach,
        "DetachKeys": keys_spec, "Env": parse_env(opts["env"], opts["env-file"]) or None,
        "WorkingDir": opts["workdir"], "Cmd": cmd,
    }
    size = window_size(1) if tty and os.isatty(1) else None
    if size:
        body["ConsoleSize"] = [size[0], size[1]]
    client = ctx.client
    created = client.post(f"/containers/{quote(container)}/exec", None, body)
    exec_id = created["Id"]
    if detach:
        client.post(f"/exec/{exec_id}/start", None, {"Detach": True, "Tty": tty})
        return 0
    start_body: dict[str, Any] = {"Detach": False, "Tty": tty}
    if size:
        start_body["ConsoleSize"] = [size[0], size[1]]
    conn, _resp = client.hijack(f"/exec/{exec_id}/start", None, start_body)
    path = f"/exec/{exec_id}"
    session = Session(client, conn, tty, stdin, keys, resize_path=path)

    def after() -> None:
        if session.resize_path:
            resize(client, path, retries=10)

    try:
        result = session.run(after_setup=after)
    except OSError:
        result = "eof"
    if result == DETACHED:
        return 0
    info = client.get(f"/exec/{exec_id}/json") or {}
    code = info.get("ExitCode")
    if info.get("Running"):
        # the output ended before the process did (e.g. it closed its stdout): wait for it
        import time

        for _ in range(200):
            time.sleep(0.05)
            info = client.get(f"/exec/{exec_id}/json") or {}
            if not info.get("Running"):
                code = info.get("ExitCode")
                break
    return int(code or 0)


def attach(ctx: Ctx, opts: Options, args: list[str]) -> int:
    from dockyard.cli.session import DETACHED, Session, Wait, detach_keys_for, resize

    client = ctx.client
    info = client.get(f"/containers/{quote(args[0])}/json")
    state = info.get("State") or {}
    if not state.get("Running"):
        raise CLIError("You cannot attach to a stopped container, start it first")
    if state.get("Paused"):
        raise CLIError("You cannot attach to a paused container, unpause it first")
    if state.get("Restarting"):
        raise CLIError("You cannot attach to a restarting container, wait until it is running")
    config = info.get("Config") or {}
    cid = info["Id"]
    tty = bool(config.get("Tty"))
    stdin = not opts["no-stdin"] and bool(config.get("OpenStdin"))
    if stdin and tty and not os.isatty(0):
        raise CLIError("the input device is not a TTY")
    keys_spec, keys = detach_keys_for(ctx, opts["detach-keys"])
    waiter = Wait(client, cid, "not-running")
    try:
        query = {"stream": "1", "stdin": "1" if stdin else "0", "stdout": "1", "stderr": "1",
                 "detachKeys": keys_spec}
        conn, _resp = client.hijack(f"/containers/{cid}/attach", query)
        path = f"/containers/{cid}"
        session = Session(client, conn, tty, stdin, keys, resize_path=path,
                          kill_path=f"{path}/kill" if (opts["sig-proxy"] and not tty) else None)

        def after() -> None:
            if session.resize_path:
                resize(client, path, retries=3)

        try:
            result = session.run(after_setup=after, exit_fd=waiter.fileno())
        except OSError:
            result = "eof"
        if result == DETACHED:
            return 0
        status, err = waiter.status()
        if err:
            sys.stderr.write(err + "\n")
        return status
    except APIError:
        raise
    finally:
        waiter.close()


EXEC = Command("[OPTIONS] CONTAINER COMMAND [ARG...]", exec_, min_args=2, interspersed=False, flags=[
    Flag("detach", "d", kind="bool", help="Detached mode: run command in the background"),
    Flag("detach-keys", help="Override the key sequence for detaching a container"),
    Flag("env", "e", kind="list", help="Set environment variables"),
    Flag("env-file", kind="list", help="Read in a file of environment variables"),
    Flag("interactive", "i", kind="bool", help="Keep STDIN open even if not attached"),
    Flag("privileged", kind="bool", help="Give extended privileges to the command"),
    Flag("tty", "t", kind="bool", help="Allocate a pseudo-TTY"),
    Flag("user", "u", help='Username or UID (format: "<name|uid>[:<group|gid>]")'),
    Flag("workdir", "w", help="Working directory inside the container"),
])
ATTACH = Command("[OPTIONS] CONTAINER", attach, min_args=1, max_args=1, flags=[
    Flag("detach-keys", help="Override the key sequence for detaching a container"),
    Flag("no-stdin", kind="bool", help="Do not attach STDIN"),
    Flag("sig-proxy", kind="bool", default=True, help="Proxy all received signals to the process"),
])
