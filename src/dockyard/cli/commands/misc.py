"""Smaller container commands: top, port, diff, export, commit, container prune.

Owns: their API calls and Docker's output for each (`top`'s aligned ps table, `port`'s
`80/tcp -> 0.0.0.0:8080` lines, `diff`'s `A/C/D path` lines, `export` to a file or a non-tty
stdout, `commit` printing the new image id, the prune report).
"""

from __future__ import annotations

import os
import sys

from dockyard.cli.command import CLIError, Command, Ctx
from dockyard.cli.common import confirm, filters_json
from dockyard.cli.flags import Flag, Options
from dockyard.cli.http import quote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def top(ctx: Ctx, opts: Options, args: list[str]) -> int:
    from dockyard.cli.table import tabwrite

    query = {"ps_args": " ".join(args[1:])} if len(args) > 1 else None
    procs = ctx.client.get(f"/containers/{quote(args[0])}/top", query) or {}
    lines = ["\t".join(procs.get("Titles") or [])]
    lines += ["\t".join(p) for p in procs.get("Processes") or []]
    sys.stdout.write(tabwrite("\n".join(lines) + "\n", minwidth=20, padding=3))
    return 0


def _join(ip: str, port: str) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def port(ctx: Ctx, opts: Options, args: list[str]) -> int:
    info = ctx.client.get(f"/containers/{quote(args[0])}/json")
    ports: dict[str, Any] = ((info.get("NetworkSettings") or {}).get("Ports")) or {}
    if len(args) > 1:
        want = args[1]
        p, _, proto = want.partition("/")
        proto = proto or "tcp"
        key = f"{p}/{proto}"
        bindings = ports.get(key)
        if bindings:
            sys.stdout.write("".join(_join(b.get("HostIp", ""), b.get("HostPort", "")) + "\n" for b in bindings))
            return 0
        raise CLIError(f"Error: No public port '{want}' published for {args[0]}")

    def order(key: str) -> tuple[int, str]:
        num, _, proto = key.partition("/")
        try:
            return int(num.split("-")[0]), proto
        except ValueError:
            return 0, key

    out = []
    for key in sorted(ports, key=order):
        for b in ports[key] or []:
            out.append(f"{key} -> {_join(b.get('HostIp', ''), b.get('HostPort', ''))}\n")
    sys.stdout.write("".join(out))
    return 0


def diff(ctx: Ctx, opts: Options, args: list[str]) -> int:
    changes = ctx.client.get(f"/containers/{quote(args[0])}/changes") or []
    kinds = {0: "C", 1: "A", 2: "D"}
    sys.stdout.write("".join(f"{kinds.get(c.get('Kind'), '?')} {c.get('Path')}\n" for c in changes))
    return 0


def export(ctx: Ctx, opts: Options, args: list[str]) -> int:
    from dockyard.cli.commands.images import _copy_body

    if not opts["output"] and os.isatty(1):
        raise CLIError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    resp = ctx.client.stream("GET", f"/containers/{quote(args[0])}/export")
    _copy_body(resp, opts["output"])
    return 0


def commit(ctx: Ctx, opts: Options, args: list[str]) -> int:
    from dockyard.cli.common import split_repo_tag

    query: dict[str, Any] = {"container": args[0]}
    if len(args) > 1:
        from dockyard.cli.reference import split

        split(args[1])
        repo, tag = split_repo_tag(args[1])
        query["repo"] = repo
        query["tag"] = tag
    if opts["message"]:
        query["comment"] = opts["message"]
    if opts["author"]:
        query["author"] = opts["author"]
    if opts["change"]:
        query["changes"] = list(opts["change"])
    query["pause"] = "1" if opts["pause"] else "0"
    resp = ctx.client.post("/commit", query, {}) or {}
    sys.stdout.write(resp.get("Id", "") + "\n")
    return 0


def container_prune(ctx: Ctx, opts: Options, args: list[str]) -> int:
    from dockyard.cli.units import human_size

    if not confirm("WARNING! This will remove all stopped containers.", opts["force"]):
        return 0
    report = ctx.client.post("/containers/prune", {"filters": filters_json(opts["filter"])}) or {}
    deleted = report.get("ContainersDeleted") or []
    if deleted:
        sys.stdout.write("Deleted Containers:\n" + "".join(d + "\n" for d in deleted) + "\n")
    sys.stdout.write(f"Total reclaimed space: {human_size(report.get('SpaceReclaimed') or 0)}\n")
    return 0


TOP = Command("CONTAINER [ps OPTIONS]", top, min_args=1, interspersed=False)
PORT = Command("CONTAINER [PRIVATE_PORT[/PROTO]]", port, min_args=1, max_args=2)
DIFF = Command("CONTAINER", diff, min_args=1, max_args=1)
EXPORT = Command("[OPTIONS] CONTAINER", export, min_args=1, max_args=1, flags=[
    Flag("output", "o", help="Write to a file, instead of STDOUT"),
])
COMMIT = Command("[OPTIONS] CONTAINER [REPOSITORY[:TAG]]", commit, min_args=1, max_args=2, flags=[
    Flag("author", "a", help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")'),
    Flag("change", "c", kind="list", help="Apply Dockerfile instruction to the created image"),
    Flag("message", "m", help="Commit message"),
    Flag("pause", "p", kind="bool", default=True, help="Pause container during commit"),
])
CONTAINER_PRUNE = Command("[OPTIONS]", container_prune, max_args=0, flags=[
    Flag("filter", kind="filter", help='Provide filter values (e.g. "until=<timestamp>")'),
    Flag("force", "f", kind="bool", help="Do not prompt for confirmation"),
])
