"""`dockyard run` and `dockyard create`.

Owns: Docker's run sequence — create (pulling the image on a 404 "No such image" with
`--pull missing`, or first with `--pull always`), attach (hijacked), wait (`next-exit`, or
`removed` with `--rm`) before start, start, resize, signal proxying, the copy loop — and its exit
statuses: the container's exit code; 125 for errors before the container runs; 126/127 when the
command cannot be invoked/found; Docker's `docker: ... See 'docker run --help'.` error form.
"""

from __future__ import annotations

import os
import sys

from dockyard.cli.client import APIError
from dockyard.cli.command import CLIError, Command, Ctx, StatusError
from dockyard.cli.flags import Flag, Options
from dockyard.cli.progress import StreamError
from dockyard.cli.runopts import CONTAINER_FLAGS, RUN_ONLY_FLAGS, build_create

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def report(name: str, message: str, with_help: bool) -> str:
    """How Docker 28's CLI reports a run/create failure on stderr."""
    text = f"dockyard: {message}"
    if with_help:
        text += f"\n\nRun 'dockyard {name} --help' for more information"
    return text


def start_error_status(message: str) -> int:
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 125


def familiar_tagged(image: str) -> str:
    """reference.FamiliarString(TagNameOnly(ref)): 'busybox' -> 'busybox:latest'."""
    from dockyard.cli.common import familiar_name, split_repo_tag

    name = familiar_name(image)
    if "@" in name:
        return name
    _repo, tag = split_repo_tag(name)
    return name if tag else name + ":latest"


def pull_image(ctx: Ctx, image: str, quiet: bool, platform: str = "", out: Any = None) -> None:
    """POST /images/create?fromImage=..., progress rendered on `out` (stderr by default)."""
    from dockyard.cli.common import split_repo_tag
    from dockyard.cli.progress import display_stream
    from dockyard.cli.registry_auth import encoded_auth_for

    repo, tag = split_repo_tag(image)
    query: dict[str, Any] = {"fromImage": repo}
    if "@" not in repo:
        query["tag"] = tag or "latest"
    if platform:
        query["platform"] = platform
    headers = {"X-Registry-Auth": encoded_auth_for(ctx.config_dir, image)}
    resp = ctx.client.stream("POST", "/images/create", query, None, headers)
    target = open(os.devnull, "w") if quiet else (out or sys.stderr)  # noqa: SIM115
    try:
        display_stream(resp.iter_lines(), target)
    finally:
        resp.conn.close()
        if quiet:
            target.close()


def create_container(ctx: Ctx, opts: Options, args: list[str], is_run: bool) -> tuple[str, dict[str, Any], dict[str, Any]]:
    config, host, networking = build_create(opts, args, is_run)
    pull = opts["pull"]
    if pull not in ("always", "missing", "never", ""):
        raise CLIError(f"invalid pull option: '{pull}': must be one of \"always\", \"missing\" or \"never\"", 125)
    if host.get("OomKillDisable") and not host.get("Memory"):
        sys.stderr.write("WARNING: Disabling the OOM killer on containers without setting a '-m/--memory' limit may be dangerous.\n")
    for dns in host.get("Dns") or []:
        if dns.startswith("127.") or dns == "::1":
            sys.stderr.write(f"WARNING: Localhost DNS setting (--dns={dns}) may fail in containers.\n")
            break
    cidfile = host.get("ContainerIDFile") or ""
    if cidfile and os.path.exists(cidfile):
        raise CLIError(f"container ID file found, make sure the other container isn't running or delete {cidfile}", 125)
    size = None
    if os.isatty(1):
        from dockyard.cli.term import window_size

        size = window_size(1)
    if size:
        host["ConsoleSize"] = [size[0], size[1]]
    query: dict[str, Any] = {}
    if opts["name"]:
        query["name"] = opts["name"]
    if opts["platform"]:
        query["platform"] = opts["platform"]
    body = dict(config)
    body["HostConfig"] = host
    body["NetworkingConfig"] = networking
    image = config["Image"]
    client = ctx.client
    if pull == "always":
        pull_image(ctx, image, opts["quiet"], opts["platform"])
    try:
        resp = client.post("/containers/create", query, body)
    except APIError as e:
        if e.status == 404 and pull in ("missing", "") and "image" in e.message.lower():
            if not opts["quiet"]:
                sys.stderr.write(f"Unable to find image '{familiar_tagged(image)}' locally\n")
                sys.stderr.flush()
            pull_image(ctx, image, opts["quiet"], opts["platform"])
            resp = client.post("/containers/create", query, body)
        else:
            raise
    for w in resp.get("Warnings") or []:
        sys.stderr.write(f"WARNING: {w}\n")
    cid = resp["Id"]
    if cidfile:
        try:
            with open(cidfile, "w") as f:
                f.write(cid)
        except OSError as e:
            raise CLIError(f"failed to write the container ID to the file: {e}", 125) from None
    return cid, config, host


def create(ctx: Ctx, opts: Options, args: list[str]) -> int:
    try:
        cid, _config, _host = create_container(ctx, opts, args, is_run=False)
    except CLIError as e:
        if e.status == 125:
            raise CLIError(report("create", e.message, True), 125) from None
        raise
    except StreamError as e:
        raise CLIError(e.message) from None
    sys.stdout.write(cid + "\n")
    return 0


def run(ctx: Ctx, opts: Options, args: list[str]) -> int:
    from dockyard.cli.session import StartError, attach_start_wait, detach_keys_for

    try:
        detach = opts["detach"]
        if detach and opts["attach"]:
            raise CLIError("Conflicting options: -a and -d", 125)
        if not detach and opts["interactive"] and opts["tty"] and not os.isatty(0):
            raise CLIError("the input device is not a TTY", 1)
        keys_spec, keys = detach_keys_for(ctx, opts["detach-keys"])
        cid, config, host = create_container(ctx, opts, args, is_run=True)
    except CLIError as e:
        if e.status == 125:
            raise CLIError(report("run", e.message, True), 125) from None
        raise
    except APIError as e:
        raise StatusError(start_error_status(e.message), report("run", str(e), True)) from None
    except StreamError as e:
        raise CLIError(report("run", e.message, True), 125) from None

    client = ctx.client
    attach_stdin = config["AttachStdin"]
    attach_out = config["AttachStdout"] or config["AttachStderr"]
    tty = config["Tty"]
    if detach or not (attach_stdin or attach_out):
        try:
            client.post(f"/containers/{cid}/start")
        except APIError as e:
            raise StatusError(start_error_status(e.message), report("run", str(e), True)) from None
        sys.stdout.write(cid + "\n")
        return 0

    query = {"stream": "1", "stdin": "1" if attach_stdin else "0", "stdout": "1" if config["AttachStdout"] else "0",
             "stderr": "1" if config["AttachStderr"] else "0", "detachKeys": keys_spec}
    try:
        return attach_start_wait(client, cid, query, tty=tty, stdin=attach_stdin, keys=keys,
                                 auto_remove=bool(host.get("AutoRemove")), sig_proxy=bool(opts["sig-proxy"]))
    except StartError as e:
        sys.stderr.write(report("run", str(e), True) + "\n")
        return start_error_status(e.error.message)


RUN = Command("[OPTIONS] IMAGE [COMMAND] [ARG...]", run, min_args=1, interspersed=False, see=True,
              flags=[*CONTAINER_FLAGS, *RUN_ONLY_FLAGS, Flag("help", kind="bool", help="Print usage")])
CREATE = Command("[OPTIONS] IMAGE [COMMAND] [ARG...]", create, min_args=1, interspersed=False, see=True,
                 flags=[*CONTAINER_FLAGS, Flag("help", kind="bool", help="Print usage")])
