"""`dockyard stats`: live (or one-shot) resource usage of containers.

Owns: reading `GET /containers/{id}/stats` (one-shot with `--no-stream`, or one stream per
container multiplexed with select), Docker's derived numbers (CPU % from the cpu/precpu deltas
times online CPUs, memory usage minus inactive file cache, network and block I/O sums, PIDs) and
its table (`CONTAINER ID  NAME  CPU %  MEM USAGE / LIMIT  MEM %  NET I/O  BLOCK I/O  PIDS`),
redrawn every second on a terminal.
"""

from __future__ import annotations

import sys

from dockyard.cli import table
from dockyard.cli.client import APIError
from dockyard.cli.command import CLIError, Command, Ctx
from dockyard.cli.common import FORMAT_HELP, format_flag
from dockyard.cli.flags import Flag, Options
from dockyard.cli.http import quote
from dockyard.cli.units import bytes_size, human_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_FORMAT = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
HEADERS = {"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %",
           "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
           "PIDs": "PIDS"}


def compute(s: dict[str, Any]) -> dict[str, float]:
    """The numbers Docker's CLI derives from one stats sample."""
    cpu = s.get("cpu_stats") or {}
    pre = s.get("precpu_stats") or {}
    cpu_delta = ((cpu.get("cpu_usage") or {}).get("total_usage") or 0) - ((pre.get("cpu_usage") or {}).get("total_usage") or 0)
    sys_delta = (cpu.get("system_cpu_usage") or 0) - (pre.get("system_cpu_usage") or 0)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    cpu_pct = (cpu_delta / sys_delta) * online * 100.0 if sys_delta > 0 and cpu_delta > 0 else 0.0
    mem = s.get("memory_stats") or {}
    usage = mem.get("usage") or 0
    st = mem.get("stats") or {}
    inactive = st.get("total_inactive_file", st.get("inactive_file"))
    if inactive is not None and inactive < usage:
        usage -= inactive
    limit = mem.get("limit") or 0
    mem_pct = usage / limit * 100.0 if limit else 0.0
    rx = tx = 0
    for net in (s.get("networks") or {}).values():
        rx += net.get("rx_bytes") or 0
        tx += net.get("tx_bytes") or 0
    blk_r = blk_w = 0
    for entry in ((s.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []):
        op = (entry.get("op") or "").lower()
        if op == "read":
            blk_r += entry.get("value") or 0
        elif op == "write":
            blk_w += entry.get("value") or 0
    pids = (s.get("pids_stats") or {}).get("current") or 0
    return {"cpu": cpu_pct, "mem": usage, "limit": limit, "mem_pct": mem_pct, "rx": rx, "tx": tx,
            "blk_r": blk_r, "blk_w": blk_w, "pids": pids}


class StatsRow:
    def __init__(self, container: str, cid: str, name: str, v: dict[str, float] | None, trunc: bool) -> None:
        self.container, self.cid, self.name, self.v, self.trunc = container, cid, name, v, trunc

    def Container(self) -> str:  # noqa: N802
        return self.container

    def ID(self) -> str:  # noqa: N802
        return self.cid[:12] if self.trunc else self.cid

    def Name(self) -> str:  # noqa: N802
        return self.name.lstrip("/") or "--"

    def CPUPerc(self) -> str:  # noqa: N802
        return "--" if self.v is None else f"{self.v['cpu']:.2f}%"

    def MemUsage(self) -> str:  # noqa: N802
        if self.v is None:
            return "-- / --"
        return f"{bytes_size(self.v['mem'])} / {bytes_size(self.v['limit'])}"

    def MemPerc(self) -> str:  # noqa: N802
        return "--" if self.v is None else f"{self.v['mem_pct']:.2f}%"

    def NetIO(self) -> str:  # noqa: N802
        if self.v is None:
            return "--"
        return f"{human_size(self.v['rx'], 3)} / {human_size(self.v['tx'], 3)}"

    def BlockIO(self) -> str:  # noqa: N802
        if self.v is None:
            return "--"
        return f"{human_size(self.v['blk_r'], 3)} / {human_size(self.v['blk_w'], 3)}"

    def PIDs(self) -> str:  # noqa: N802
        return "--" if self.v is None else str(int(self.v["pids"]))

    def to_json(self) -> dict[str, str]:
        return {k: getattr(self, k)() for k in ("BlockIO", "CPUPerc", "Container", "ID", "MemPerc", "MemUsage", "Name", "NetIO", "PIDs")}


def _targets(ctx: Ctx, opts: Options, args: list[str]) -> list[tuple[str, str, str]]:
    """(as given, id, name) for each container to show."""
    client = ctx.client
    out = []
    if args:
        errors = []
        for name in args:
            try:
                info = client.get(f"/containers/{quote(name)}/json")
            except APIError as e:
                errors.append(str(e))
                continue
            out.append((name, info["Id"], info.get("Name", "")))
        if errors:
            raise CLIError("\n".join(errors))
        return out
    for c in client.get("/containers/json", {"all": "1"} if opts["all"] else None) or []:
        names = c.get("Names") or [""]
        out.append((c["Id"][:12], c["Id"], names[0]))
    return out


def stats(ctx: Ctx, opts: Options, args: list[str]) -> int:
    from dockyard.cli.jsonfast import loads

    fmt = opts["format"] or ctx.config().get("statsFormat", "") or DEFAULT_FORMAT
    if fmt == "table":
        fmt = DEFAULT_FORMAT
    trunc = not opts["no-trunc"]
    targets = _targets(ctx, opts, args)
    client = ctx.client
    if opts["no-stream"]:
        rows = []
        for given, cid, name in targets:
            try:
                sample = client.get(f"/containers/{cid}/stats", {"stream": "0"})
            except APIError:
                sample = None
            rows.append(StatsRow(given, cid, name, compute(sample) if sample else None, trunc))
        table.write_list(fmt, rows, HEADERS)
        return 0
    return _stream(ctx, fmt, targets, trunc, loads)


def _stream(ctx: Ctx, fmt: str, targets: list[tuple[str, str, str]], trunc: bool, loads: Any) -> int:
    import os
    import select
    import time

    from dockyard.cli.client import Client

    latest: dict[str, dict[str, float] | None] = {cid: None for _g, cid, _n in targets}
    streams = {}
    for _given, cid, _name in targets:
        c = Client(ctx.client.host, True, ctx.client._tls, ctx.client.negotiate())
        try:
            resp = c.stream("GET", f"/containers/{cid}/stats", {"stream": "1"})
        except APIError:
            continue
        streams[resp.conn.fileno()] = (cid, resp, [b""])
    is_tty = os.isatty(1)
    next_draw = 0.0
    try:
        while True:
            now = time.monotonic()
            if now >= next_draw:
                rows = [StatsRow(g, cid, n, latest.get(cid), trunc) for g, cid, n in targets]
                text = table.render_list(fmt, rows, HEADERS)
                if is_tty:
                    sys.stdout.write("\x1b[2J\x1b[H")
                sys.stdout.write(text)
                sys.stdout.flush()
                next_draw = now + 1.0
            if not streams:
                time.sleep(max(0.0, next_draw - time.monotonic()))
                continue
            ready, _w, _x = select.select(list(streams), [], [], max(0.0, next_draw - time.monotonic()))
            for fd in ready:
                cid, resp, pending = streams[fd]
                while True:
                    chunk = resp.read_chunk()
                    if not chunk:
                        resp.conn.close()
                        del streams[fd]
                        break
                    pending[0] += chunk
                    while b"\n" in pending[0]:
                        line, pending[0] = pending[0].split(b"\n", 1)
                        if line.strip():
                            try:
                                latest[cid] = compute(loads(line))
                            except ValueError:
                                pass
                    if not resp.conn.buf:
                        break
    except KeyboardInterrupt:
        return 0
    finally:
        for _cid, resp, _p in streams.values():
            resp.conn.close()


STATS = Command("[OPTIONS] [CONTAINER...]", stats, flags=[
    Flag("all", "a", kind="bool", help="Show all containers (default shows just running)"),
    format_flag(FORMAT_HELP),
    Flag("no-stream", kind="bool", help="Disable streaming stats and only pull the first result"),
    Flag("no-trunc", kind="bool", help="Do not truncate output"),
])
