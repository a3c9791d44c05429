"""`dockyard mkimage busybox [TAG]` and `dockyard mkimage debian [--suite S] [--mirror URL] [TAG]`.

Owns: building a base image's root filesystem tar on the client with the images library's
standard-library-only builders (`dockyard.image.mkimage`: busybox-static, or debootstrap
minbase, cached) and importing it through the API exactly as `docker import` does
(`POST /images/create?fromSrc=-&repo=&tag=&changes=CMD [...]`), so it works against any daemon.
"""

from __future__ import annotations

import sys

from dockyard.cli.command import CLIError, Command, Ctx
from dockyard.cli.flags import Flag, Options

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

KINDS = {"busybox": ('CMD ["sh"]', "busybox:latest"), "debian": ('CMD ["bash"]', None)}


def import_tar(ctx: Ctx, body: Any, ref: str, changes: list[str], message: str) -> str:
    """POST the tar; returns the image id the daemon reports (`sha256:...`)."""
    from dockyard.cli.common import split_repo_tag
    from dockyard.cli.jsonfast import loads
    from dockyard.cli.progress import StreamError, display_stream

    repo, tag = split_repo_tag(ref)
    query: dict[str, Any] = {"fromSrc": "-", "repo": repo, "tag": tag or "latest", "changes": changes,
                             "message": message}
    resp = ctx.client.stream("POST", "/images/create", query, body, {"Content-Type": "application/x-tar"})
    ids: list[str] = []

    def lines() -> Any:
        for line in resp.iter_lines():
            try:
                jm = loads(line)
            except ValueError:
                continue
            status = jm.get("status") if isinstance(jm, dict) else None
            if isinstance(status, str) and status.startswith("sha256:"):
                ids.append(status)
            yield line

    try:
        display_stream(lines(), sys.stdout)
    except StreamError as e:
        raise CLIError(e.message) from None
    finally:
        resp.conn.close()
    return ids[-1] if ids else ""


def mkimage(ctx: Ctx, opts: Options, args: list[str]) -> int:
    from dockyard.cli.reference import split

    kind = args[0]
    if kind not in KINDS:
        raise CLIError(f"unknown base image {kind!r}: choose busybox or debian")
    change, default_ref = KINDS[kind]
    if kind == "busybox" and ("suite" in opts.changed or "mirror" in opts.changed):
        raise CLIError("--suite and --mirror apply to `mkimage debian` only")
    ref = args[1] if len(args) > 1 else (default_ref or f"debian:{opts['suite']}")
    split(ref)
    from dockyard.image import mkimage as builders

    if kind == "busybox":
        import io

        buf = io.BytesIO()
        try:
            builders.busybox_tar(buf)
        except (OSError, FileNotFoundError) as e:
            raise CLIError(f"mkimage busybox: {e}") from None
        import_tar(ctx, buf.getvalue(), ref, [change], "dockyard mkimage busybox")
        return 0
    try:
        proc, stream = builders.debian_tar_stream(opts["suite"], opts["mirror"] or None)
    except FileNotFoundError as e:
        raise CLIError(f"mkimage debian: {e}") from None
    except Exception as e:  # subprocess.CalledProcessError from debootstrap
        detail = getattr(e, "stderr", b"") or b""
        raise CLIError(f"mkimage debian: debootstrap failed: {e}\n{detail.decode(errors='replace')[-2000:]}") from None
    try:
        import_tar(ctx, stream, ref, [change], f"dockyard mkimage debian {opts['suite']}")
    finally:
        stream.close()
        if proc.wait() != 0:
            raise CLIError(f"mkimage debian: tar exited with status {proc.returncode}")
    return 0


MKIMAGE = Command("[OPTIONS] busybox|debian [REPOSITORY[:TAG]]", mkimage, min_args=1, max_args=2, flags=[
    Flag("mirror", help="Debian mirror for debootstrap (default: the first one in apt's sources)"),
    Flag("suite", default="bookworm", help="Debian suite for debootstrap"),
])
