"""`dockyard build` (and `image build`, `builder prune`): the classic builder's client side.

Owns: packing the context directory into a tar (`.dockerignore` applied with Docker's rules, the
Dockerfile and `.dockerignore` always sent, a Dockerfile outside the context added as
`.dockerfile.<hex>`), `-` for a context tar or a Dockerfile on stdin, the /build query
(t, dockerfile, buildargs, labels, nocache, q, rm, forcerm, pull, target, platform), the
X-Registry-Config header, and printing the stream as `DOCKER_BUILDKIT=0 docker build` does:
`Sending build context to Docker daemon  2.048kB`, the daemon's text, with -q only the image id;
a failed build exits with the error's code (a failing RUN's exit code, else 1).
"""

from __future__ import annotations

import contextlib
import os
import sys

from dockyard.cli.command import CLIError, Command, Ctx, StatusError
from dockyard.cli.flags import Flag, Options

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _human(size: float) -> str:
    """go-units HumanSize (4 significant digits, decimal units)."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000
        i += 1
    text = f"{size:.4g}"
    return text + units[i]


def _pack(context: str, dockerfile: str | None, dockerfile_data: bytes | None, out: Any) -> str:
    """Write the context tar into `out`; returns the dockerfile name to send."""
    import secrets
    import tarfile

    from dockyard.build import dockerignore

    patterns: list[str] = []
    try:
        with open(os.path.join(context, ".dockerignore"), encoding="utf-8", errors="replace") as f:
            patterns = dockerignore.read_patterns(f.read())
    except OSError:
        pass
    name = "Dockerfile"
    extra: tuple[str, bytes] | None = None
    if dockerfile_data is not None:
        name = ".dockerfile." + secrets.token_hex(10)
        extra = (name, dockerfile_data)
    elif dockerfile:
        path = os.path.abspath(dockerfile)
        rel = os.path.relpath(path, os.path.abspath(context))
        if rel.startswith(".." + os.sep) or rel == "..":
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as e:
                raise CLIError(f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
                               f"lstat {path}: {(e.strerror or '').lower()}") from None
            name = ".dockerfile." + secrets.token_hex(10)
            extra = (name, data)
        else:
            name = rel.replace(os.sep, "/")
    if extra is None and not os.path.exists(os.path.join(context, name)):
        raise CLIError(f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat "
                       f"{os.path.join(os.path.abspath(context), name)}: no such file or directory")
    keep = {name, ".dockerignore"}
    m = dockerignore.Matcher([p for p in patterns] + [f"!{k}" for k in sorted(keep)] if patterns else [])
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for dirpath, dirs, files in os.walk(context):
            dirs.sort()
            rel_dir = os.path.relpath(dirpath, context)
            for entry in sorted(dirs) + sorted(files):
                rel = entry if rel_dir == "." else f"{rel_dir}/{entry}".replace(os.sep, "/")
                full = os.path.join(dirpath, entry)
                is_dir = entry in dirs
                if patterns and m.excluded(rel):
                    if is_dir and not os.path.islink(full) and m.has_exceptions:
                        continue  # children may be re-included; the directory itself is not sent
                    if is_dir:
                        dirs.remove(entry)
                    continue
                ti = tf.gettarinfo(full, rel)
                if ti is None:
                    continue  # sockets and doors are not sent, as the Docker CLI skips them
                ti.uid = ti.gid = 0
                ti.uname = ti.gname = ""
                ti.mtime = int(ti.mtime)
                if ti.isreg():
                    with open(full, "rb") as f:
                        tf.addfile(ti, f)
                elif ti.isdir() or ti.issym() or ti.islnk():
                    if ti.islnk():
                        ti.type = tarfile.REGTYPE
                        with open(full, "rb") as f:
                            tf.addfile(ti, f)
                        continue
                    tf.addfile(ti)
        if extra is not None:
            import io
            import time

            ti = tarfile.TarInfo(extra[0])
            ti.size, ti.mode, ti.mtime = len(extra[1]), 0o600, int(time.time())
            tf.addfile(ti, io.BytesIO(extra[1]))
        end = tf.offset + 2 * tarfile.BLOCKSIZE  # offset: absolute position in `out`
    # Go's tar writer ends with the two zero blocks, without Python's padding to 10 KiB records:
    # the same bytes, so `Sending build context` shows the Docker CLI's size
    out.truncate(end)
    out.seek(end)
    return name


def _kv_map(values: list[str], from_env: bool) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for v in values:
        k, has, val = v.partition("=")
        if has:
            out[k] = val
        elif from_env:
            out[k] = os.environ.get(k)
        else:
            out[k] = ""
    return out


def _write_iidfile(path: str, image_id: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(image_id)
    except OSError as e:
        raise CLIError(f"Failed to write image ID to file: {e}") from None


def build(ctx: Ctx, opts: Options, args: list[str]) -> int:
    import json
    import tempfile

    from dockyard.cli.progress import StreamError, display_stream

    source = args[0]
    dockerfile = opts["file"] or None
    dockerfile_data: bytes | None = None
    query: dict[str, Any] = {}
    tmp = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    try:
        if source == "-":
            if dockerfile == "-":
                raise CLIError("invalid argument: can't use stdin for both build context and dockerfile")
            data = sys.stdin.buffer.read()
            if _is_tar(data):
                tmp.write(data)
                if dockerfile:
                    query["dockerfile"] = dockerfile
            else:  # a Dockerfile alone: an empty context
                with tempfile.TemporaryDirectory() as empty:
                    query["dockerfile"] = _pack(empty, None, data, tmp)
        else:
            if not os.path.isdir(source):
                if os.path.exists(source):
                    raise CLIError(f"unable to prepare context: context must be a directory: {os.path.abspath(source)}")
                raise CLIError(f'unable to prepare context: path "{source}" not found')
            if dockerfile == "-":
                dockerfile_data = sys.stdin.buffer.read()
                dockerfile = None
            elif dockerfile and not os.path.lexists(dockerfile):
                # -f is relative to the current directory, not to the context (as the Docker CLI)
                raise CLIError("unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat "
                               f"{os.path.abspath(dockerfile)}: no such file or directory")
            name = _pack(source, dockerfile, dockerfile_data, tmp)
            if name != "Dockerfile":
                query["dockerfile"] = name
        size = tmp.tell()
        tmp.seek(0)
        if opts["tag"]:
            query["t"] = list(opts["tag"])
        if opts["build-arg"]:
            query["buildargs"] = json.dumps(_kv_map(list(opts["build-arg"]), True))
        if opts["label"]:
            query["labels"] = json.dumps(_kv_map(list(opts["label"]), False))
        for flag, q in (("no-cache", "nocache"), ("quiet", "q"), ("force-rm", "forcerm"), ("pull", "pull")):
            if opts[flag]:
                query[q] = "1"
        query["rm"] = "1" if opts["rm"] else "0"
        if opts["target"]:
            query["target"] = opts["target"]
        if opts["platform"]:
            query["platform"] = opts["platform"]
        if opts["network"]:
            query["networkmode"] = opts["network"]
        if opts["add-host"]:
            query["extrahosts"] = list(opts["add-host"])
        for flag, q in (("memory", "memory"), ("memory-swap", "memswap"), ("shm-size", "shmsize"),
                        ("cpu-shares", "cpushares"), ("cpu-quota", "cpuquota"), ("cpu-period", "cpuperiod")):  # fmt: skip
            if opts[flag]:
                query[q] = str(opts[flag])
        for flag, q in (("cpuset-cpus", "cpusetcpus"), ("cpuset-mems", "cpusetmems"), ("cgroup-parent", "cgroupparent")):
            if opts[flag]:
                query[q] = opts[flag]
        if opts["ulimit"]:
            query["ulimits"] = json.dumps([_ulimit(u) for u in opts["ulimit"]])
        headers = {"Content-Type": "application/x-tar", "X-Registry-Config": _registry_config(ctx)}
        if not opts["quiet"]:
            # the Docker CLI's progress line ends in \r, then \r\n when the upload completes
            sys.stdout.write(f"Sending build context to Docker daemon {_human(size):>8}\r\r\n")
            sys.stdout.flush()
        resp = ctx.client.stream("POST", "/build", query, tmp, headers)
    finally:
        tmp.close()
    import io

    buf: Any = io.StringIO() if opts["quiet"] else sys.stdout
    image_id: list[str] = []
    if opts["iidfile"]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(opts["iidfile"])  # a failed build leaves no stale id behind
    try:
        display_stream(resp.iter_lines(), buf, False,
                       aux=lambda a: image_id.append(a["ID"]) if isinstance(a, dict) and a.get("ID") else None)
    except StreamError as e:
        if opts["quiet"]:
            sys.stderr.write(buf.getvalue())
        raise StatusError(e.code or 1, e.message) from None
    finally:
        resp.conn.close()
    if opts["quiet"]:
        sys.stdout.write(buf.getvalue())
    if opts["iidfile"] and image_id:
        _write_iidfile(opts["iidfile"], image_id[-1])
    return 0


def _ulimit(spec: str) -> dict[str, Any]:
    name, _, limits = spec.partition("=")
    soft, _, hard = limits.partition(":")
    try:
        return {"Name": name, "Soft": int(soft), "Hard": int(hard or soft)}
    except ValueError:
        raise CLIError(f'invalid argument "{spec}" for "--ulimit" flag: invalid ulimit argument: {spec}') from None


def _is_tar(data: bytes) -> bool:
    if data[:2] == b"\x1f\x8b" or data[:3] == b"BZh" or data[:6] == b"\xfd7zXZ\x00":
        return True
    return len(data) >= 262 and data[257:262] == b"ustar"


def _registry_config(ctx: Ctx) -> str:
    from dockyard.cli.registry_auth import b64encode, get_credentials, load_config

    auths: dict[str, Any] = {}
    try:
        for server in (load_config(ctx.config_dir).get("auths") or {}):
            creds = get_credentials(ctx.config_dir, server)
            if creds:
                auths[server] = creds
    except (OSError, ValueError):
        pass
    import json

    return b64encode(json.dumps(auths).encode(), url=True)


def builder_prune(ctx: Ctx, opts: Options, args: list[str]) -> int:
    from dockyard.cli.common import confirm, filters_json
    from dockyard.cli.units import human_size

    if not opts["force"] and not confirm(
            "WARNING! This will remove all dangling build cache. Are you sure you want to continue?"):
        return 0
    query: dict[str, Any] = {}
    if opts["all"]:
        query["all"] = "1"
    if opts["filter"]:
        query["filters"] = filters_json(opts["filter"])
    report = ctx.client.post("/build/prune", query) or {}
    deleted = report.get("CachesDeleted") or []
    if deleted:
        sys.stdout.write("Deleted build cache objects:\n" + "".join(f"{d}\n" for d in deleted))
    sys.stdout.write(f"Total reclaimed space: {human_size(report.get('SpaceReclaimed') or 0)}\n")
    return 0


BUILD = Command("[OPTIONS] PATH | URL | -", build, min_args=1, max_args=1, flags=[
    Flag("add-host", kind="list", help="Add a custom host-to-IP mapping (\"host:ip\")"),
    Flag("build-arg", kind="list", help="Set build-time variables"),
    Flag("cgroup-parent", help="Set the parent cgroup for the \"RUN\" instructions during build"),
    Flag("cpu-period", kind="int", default=0, help="Limit the CPU CFS (Completely Fair Scheduler) period"),
    Flag("cpu-quota", kind="int", default=0, help="Limit the CPU CFS (Completely Fair Scheduler) quota"),
    Flag("cpu-shares", "c", kind="int", default=0, help="CPU shares (relative weight)"),
    Flag("cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)"),
    Flag("cpuset-mems", help="MEMs in which to allow execution (0-3, 0,1)"),
    Flag("file", "f", help="Name of the Dockerfile (Default is 'PATH/Dockerfile')"),
    Flag("force-rm", kind="bool", help="Always remove intermediate containers"),
    Flag("iidfile", help="Write the image ID to the file"),
    Flag("label", kind="list", help="Set metadata for an image"),
    Flag("memory", "m", kind="bytes", default=0, help="Memory limit"),
    Flag("memory-swap", kind="swapbytes", default=0,
         help="Swap limit equal to memory plus swap: -1 to enable unlimited swap"),
    Flag("network", default="default", help="Set the networking mode for the RUN instructions during build"),
    Flag("no-cache", kind="bool", help="Do not use cache when building the image"),
    Flag("platform", help="Set platform if server is multi-platform capable"),
    Flag("pull", kind="bool", help="Always attempt to pull a newer version of the image"),
    Flag("quiet", "q", kind="bool", help="Suppress the build output and print image ID on success"),
    Flag("rm", kind="bool", default=True, help="Remove intermediate containers after a successful build"),
    Flag("shm-size", kind="bytes", default=0, help="Size of /dev/shm"),
    Flag("tag", "t", kind="list", help="Name and optionally a tag in the 'name:tag' format"),
    Flag("target", help="Set the target build stage to build."),
    Flag("ulimit", kind="list", help="Ulimit options"),
])
BUILDER_PRUNE = Command("[OPTIONS]", builder_prune, max_args=0, flags=[
    Flag("all", "a", kind="bool", help="Remove all unused build cache, not just dangling ones"),
    Flag("filter", kind="filter", help="Provide filter values (e.g. \"until=24h\")"),
    Flag("force", "f", kind="bool", help="Do not prompt for confirmation"),
])
