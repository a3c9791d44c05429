"""`dockyard logs`: fetch (and follow) a container's output.

Owns: the logs query (stdout, stderr, follow, timestamps, tail, since/until as Docker's
timestamp forms, details) and printing the stream raw for tty containers or demultiplexed to
stdout/stderr otherwise.
"""

from __future__ import annotations

from dockyard.cli.command import CLIError, Command, Ctx
from dockyard.cli.flags import Flag, Options
from dockyard.cli.http import quote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def logs(ctx: Ctx, opts: Options, args: list[str]) -> int:
    from dockyard.cli.attach import Demuxer, write_all
    from dockyard.cli.units import timestamp_arg

    client = ctx.client
    name = args[0]
    info = client.get(f"/containers/{quote(name)}/json")
    query: dict[str, Any] = {"stdout": "1", "stderr": "1"}
    try:
        if opts["since"]:
            query["since"] = timestamp_arg(opts["since"])
        if opts["until"]:
            query["until"] = timestamp_arg(opts["until"])
    except ValueError as e:
        raise CLIError(str(e)) from None
    if opts["timestamps"]:
        query["timestamps"] = "1"
    if opts["follow"]:
        query["follow"] = "1"
    if opts["details"]:
        query["details"] = "1"
    query["tail"] = opts["tail"] or "all"
    resp = client.stream("GET", f"/containers/{quote(info.get('Id') or name)}/logs", query)
    tty = bool((info.get("Config") or {}).get("Tty"))
    ctype = resp.headers.get("content-type", "")
    if "multiplexed" in ctype:
        tty = False
    elif "raw-stream" in ctype:
        tty = True
    demux = None if tty else Demuxer(1, 2)
    try:
        for chunk in resp.iter_chunks():
            if demux is None:
                write_all(1, chunk)
            else:
                demux.feed(chunk)
    finally:
        resp.conn.close()
    return 0


LOGS = Command("[OPTIONS] CONTAINER", logs, min_args=1, max_args=1, flags=[
    Flag("details", kind="bool", help="Show extra details provided to logs"),
    Flag("follow", "f", kind="bool", help="Follow log output"),
    Flag("since", help='Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)'),
    Flag("tail", "n", default="all", help="Number of lines to show from the end of the logs"),
    Flag("timestamps", "t", kind="bool", help="Show timestamps"),
    Flag("until", help='Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)'),
])
