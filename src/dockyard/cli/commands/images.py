"""Image commands: images/image ls, pull, push, tag, rmi, save, load, import, history, image prune.

Owns: Docker's image table (one row per repository:tag, `<none>` for dangling, digests with
`--digests`), the pull/push/load/import progress output (bars on a terminal, lines otherwise),
X-Registry-Auth for pull/push, and the prune report.
"""

from __future__ import annotations

import os
import sys
import time

from dockyard.cli import table
from dockyard.cli.client import APIError
from dockyard.cli.command import CLIError, Command, Ctx
from dockyard.cli.common import FORMAT_HELP, confirm, filter_flag, filters_json, format_flag
from dockyard.cli.flags import Flag, Options
from dockyard.cli.units import ellipsis, format_local, human_duration, human_size, rfc3339, truncate_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _q(name: str) -> str:
    from dockyard.cli.http import quote

    return quote(name, safe="/:@")


# ---- images ---------------------------------------------------------------------------------

IMAGE_HEADERS = {"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
                 "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
                 "Containers": "CONTAINERS", "VirtualSize": "VIRTUAL SIZE", "SharedSize": "SHARED SIZE",
                 "UniqueSize": "UNIQUE SIZE"}


class ImageRow:
    def __init__(self, img: dict[str, Any], repo: str, tag: str, digest: str, trunc: bool, now: float) -> None:
        self.i, self.repo, self.tag, self.digest, self.trunc, self.now = img, repo, tag, digest, trunc, now

    def ID(self) -> str:  # noqa: N802 - Docker's field names
        ident = self.i.get("Id", "")
        return truncate_id(ident) if self.trunc else ident

    def Repository(self) -> str:  # noqa: N802
        return self.repo

    def Tag(self) -> str:  # noqa: N802
        return self.tag

    def Digest(self) -> str:  # noqa: N802
        return self.digest

    def CreatedSince(self) -> str:  # noqa: N802
        created = self.i.get("Created", 0)
        if not created:
            return "N/A"
        return human_duration(self.now - created) + " ago"

    def CreatedAt(self) -> str:  # noqa: N802
        return format_local(self.i.get("Created", 0))

    def Size(self) -> str:  # noqa: N802
        return human_size(self.i.get("Size") or 0, 3)

    def Containers(self) -> str:  # noqa: N802
        n = self.i.get("Containers", -1)
        return "N/A" if n is None or n == -1 else str(n)

    def VirtualSize(self) -> str:  # noqa: N802
        return human_size(self.i.get("VirtualSize", self.i.get("Size") or 0) or 0, 3)

    def SharedSize(self) -> str:  # noqa: N802
        n = self.i.get("SharedSize", -1)
        return "N/A" if n is None or n == -1 else human_size(n, 3)

    def UniqueSize(self) -> str:  # noqa: N802
        shared = self.i.get("SharedSize", -1)
        if shared is None or shared == -1:
            return "N/A"
        return human_size((self.i.get("Size") or 0) - shared)

    def to_json(self) -> dict[str, str]:
        return {name: getattr(self, name)() for name in sorted(IMAGE_HEADERS)}


def _familiar_repo(ref: str) -> tuple[str, str]:
    """'docker.io/library/busybox:latest' or 'busybox:latest' -> ('busybox', 'latest')."""
    from dockyard.cli.common import familiar_name, split_repo_tag

    name, _, digest = ref.partition("@")
    repo, tag = split_repo_tag(familiar_name(name))
    return repo, (digest if digest else tag)


def image_rows(images: list[dict[str, Any]], digests: bool, trunc: bool) -> list[ImageRow]:
    now = time.time()
    rows = []
    for img in images:
        tags = [t for t in img.get("RepoTags") or [] if t != "<none>:<none>"]
        rdigests = [d for d in img.get("RepoDigests") or [] if d != "<none>@<none>"]
        if not tags and not rdigests:
            rows.append(ImageRow(img, "<none>", "<none>", "<none>", trunc, now))
            continue
        repo_tags: dict[str, list[str]] = {}
        for t in tags:
            repo, tag = _familiar_repo(t)
            repo_tags.setdefault(repo, []).append(tag)
        repo_digests: dict[str, list[str]] = {}
        for d in rdigests:
            repo, dg = _familiar_repo(d)
            repo_digests.setdefault(repo, []).append(dg)
        for repo, tlist in repo_tags.items():
            dlist = repo_digests.pop(repo, [])
            if not digests:
                dlist = []
            for tag in tlist:
                if not dlist:
                    rows.append(ImageRow(img, repo, tag, "<none>", trunc, now))
                for dg in dlist:
                    rows.append(ImageRow(img, repo, tag, dg, trunc, now))
        for repo, dlist in repo_digests.items():
            if digests:
                for dg in dlist:
                    rows.append(ImageRow(img, repo, "<none>", dg, trunc, now))
            else:
                rows.append(ImageRow(img, repo, "<none>", "", trunc, now))
    return rows


def images(ctx: Ctx, opts: Options, args: list[str]) -> int:
    query: dict[str, Any] = {}
    if opts["all"]:
        query["all"] = "1"
    filters = list(opts["filter"])
    if args:
        filters.append(f"reference={args[0]}")
    fj = filters_json(filters)
    if fj:
        query["filters"] = fj
    data = ctx.client.get("/images/json", query) or []
    fmt = opts["format"] or ctx.config().get("imagesFormat", "")
    trunc = not opts["no-trunc"]
    rows = image_rows(data, opts["digests"] or (".Digest" in fmt), trunc)
    if opts["quiet"] and (not fmt or fmt.startswith("table")):
        sys.stdout.write("".join(r.ID() + "\n" for r in rows))
        return 0
    if not fmt or fmt == "table":
        fmt = "table {{.Repository}}\t{{.Tag}}\t" + ("{{.Digest}}\t" if opts["digests"] else "") + \
            "{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    table.write_list(fmt, rows, IMAGE_HEADERS)
    return 0


# ---- pull / push ------------------------------------------------------------------------------

def _progress(resp: Any, quiet: bool, out: Any = None) -> None:
    from dockyard.cli.progress import StreamError, display_stream

    out = out or sys.stdout
    target = open(os.devnull, "w") if quiet else out  # noqa: SIM115
    try:
        display_stream(resp.iter_lines(), target)
    except StreamError as e:
        raise CLIError(e.message) from None
    finally:
        resp.conn.close()
        if quiet:
            target.close()


def pull(ctx: Ctx, opts: Options, args: list[str]) -> int:
    from dockyard.cli.common import split_repo_tag
    from dockyard.cli.reference import normalize, split
    from dockyard.cli.registry_auth import encoded_auth_for

    ref = args[0]
    split(ref)
    repo, tag = split_repo_tag(ref)
    query: dict[str, Any] = {"fromImage": repo}
    if opts["all-tags"]:
        if tag:
            raise CLIError("tag can't be used with --all-tags/-a")
    elif "@" not in repo:
        query["tag"] = tag or "latest"
        if not tag:
            sys.stdout.write("Using default tag: latest\n")
    if opts["platform"]:
        query["platform"] = opts["platform"]
    headers = {"X-Registry-Auth": encoded_auth_for(ctx.config_dir, ref)}
    resp = ctx.client.stream("POST", "/images/create", query, None, headers)
    _progress(resp, opts["quiet"])
    if not opts["all-tags"]:
        sys.stdout.write(normalize(ref) + "\n")
    return 0


def push(ctx: Ctx, opts: Options, args: list[str]) -> int:
    from dockyard.cli.common import split_repo_tag
    from dockyard.cli.reference import normalize, split
    from dockyard.cli.registry_auth import encoded_auth_for

    ref = args[0]
    split(ref)
    repo, tag = split_repo_tag(ref)
    if opts["all-tags"] and tag:
        raise CLIError("tag can't be used with --all-tags/-a")
    query: dict[str, Any] = {}
    if not opts["all-tags"]:
        if not tag:
            sys.stdout.write("Using default tag: latest\n")
        query["tag"] = tag or "latest"
    if opts["platform"]:
        query["platform"] = opts["platform"]
    headers = {"X-Registry-Auth": encoded_auth_for(ctx.config_dir, ref)}
    resp = ctx.client.stream("POST", f"/images/{_q(repo)}/push", query, None, headers)
    _progress(resp, opts["quiet"])
    if opts["quiet"]:
        sys.stdout.write(normalize(ref) + "\n")
    return 0


# ---- tag / rmi ----------------------------------------------------------------------------------

def tag(ctx: Ctx, opts: Options, args: list[str]) -> int:
    from dockyard.cli.common import split_repo_tag
    from dockyard.cli.reference import split

    source, target = args
    split(target)
    repo, t = split_repo_tag(target)
    if "@" in repo:
        raise CLIError("refusing to create a tag with a digest reference")
    ctx.client.post(f"/images/{_q(source)}/tag", {"repo": repo, "tag": t or "latest"})
    return 0


def rmi(ctx: Ctx, opts: Options, args: list[str]) -> int:
    query = {"force": "1" if opts["force"] else None, "noprune": "1" if opts["no-prune"] else None}
    errors = []
    for name in args:
        try:
            items = ctx.client.delete(f"/images/{_q(name)}", query) or []
        except APIError as e:
            errors.append(str(e))
            continue
        for item in items:
            if item.get("Untagged"):
                sys.stdout.write(f"Untagged: {item['Untagged']}\n")
            if item.get("Deleted"):
                sys.stdout.write(f"Deleted: {item['Deleted']}\n")
    if errors:
        sys.stdout.flush()
        raise CLIError("\n".join(errors))
    return 0


# ---- save / load / import -------------------------------------------------------------------------

def save(ctx: Ctx, opts: Options, args: list[str]) -> int:
    output = opts["output"]
    if not output and os.isatty(1):
        raise CLIError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    query: dict[str, Any] = {"names": list(args)}
    if opts["platform"]:
        query["platform"] = opts["platform"]
    resp = ctx.client.stream("GET", "/images/get", query)
    _copy_body(resp, output)
    return 0


def _copy_body(resp: Any, output: str) -> None:
    """Write a response body to a file (atomically, like Docker's -o) or to stdout."""
    if output:
        directory = os.path.dirname(os.path.abspath(output))
        tmp = os.path.join(directory, f".{os.path.basename(output)}.tmp{os.getpid()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as e:
            resp.conn.close()
            raise CLIError(f"failed to save image: invalid output path: {e.strerror}") from None
        try:
            for chunk in resp.iter_chunks():
                _write_all(fd, chunk)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        finally:
            resp.conn.close()
        os.close(fd)
        os.rename(tmp, output)
        return
    try:
        for chunk in resp.iter_chunks():
            _write_all(1, chunk)
    finally:
        resp.conn.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def load(ctx: Ctx, opts: Options, args: list[str]) -> int:
    if opts["input"]:
        try:
            src: Any = open(opts["input"], "rb")  # noqa: SIM115
        except OSError as e:
            raise CLIError(f"open {opts['input']}: {(e.strerror or '').lower()}") from None
    else:
        if os.isatty(0):
            raise CLIError("requested load from stdin, but stdin is empty")
        src = sys.stdin.buffer
    query: dict[str, Any] = {"quiet": "1" if opts["quiet"] or not os.isatty(1) else "0"}
    if opts["platform"]:
        query["platform"] = opts["platform"]
    try:
        resp = ctx.client.stream("POST", "/images/load", query, src, {"Content-Type": "application/x-tar"})
    finally:
        if opts["input"]:
            src.close()
    ctype = resp.headers.get("content-type", "")
    if "json" in ctype:
        _progress(resp, False)
    else:
        _copy_body(resp, "")
    return 0


def import_(ctx: Ctx, opts: Options, args: list[str]) -> int:
    from dockyard.cli.common import split_repo_tag

    source = args[0]
    query: dict[str, Any] = {}
    if len(args) > 1:
        from dockyard.cli.reference import split

        split(args[1])
        repo, t = split_repo_tag(args[1])
        query["repo"] = repo
        if t:
            query["tag"] = t
    if opts["message"]:
        query["message"] = opts["message"]
    if opts["change"]:
        query["changes"] = list(opts["change"])
    if opts["platform"]:
        query["platform"] = opts["platform"]
    body: Any = None
    close = None
    if source == "-":
        query["fromSrc"] = "-"
        body = sys.stdin.buffer
    elif "://" in source:
        query["fromSrc"] = source
    else:
        query["fromSrc"] = "-"
        try:
            body = close = open(source, "rb")  # noqa: SIM115
        except OSError as e:
            raise CLIError(f"open {source}: {(e.strerror or '').lower()}") from None
    try:
        resp = ctx.client.stream("POST", "/images/create", query, body if body is not None else b"",
                                 {"Content-Type": "application/x-tar"} if body is not None else None)
    finally:
        if close is not None:
            close.close()
    _progress(resp, False)
    return 0


# ---- history ------------------------------------------------------------------------------------

HISTORY_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                   "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}


class HistoryRow:
    def __init__(self, h: dict[str, Any], trunc: bool, human: bool, now: float) -> None:
        self.h, self.trunc, self.human, self.now = h, trunc, human, now

    def ID(self) -> str:  # noqa: N802
        ident = self.h.get("Id", "")
        if ident.startswith("<missing>"):
            return "<missing>"
        return truncate_id(ident) if self.trunc else ident

    def CreatedSince(self) -> str:  # noqa: N802
        created = self.h.get("Created", 0)
        if not self.human:
            return rfc3339(created, nano=False)
        return human_duration(self.now - created) + " ago"

    def CreatedAt(self) -> str:  # noqa: N802
        created = self.h.get("Created", 0)
        if self.human:
            return rfc3339(created, nano=False)
        return format_local(created)

    def CreatedBy(self) -> str:  # noqa: N802
        by = (self.h.get("CreatedBy") or "").replace("\t", " ")
        return ellipsis(by, 45) if self.trunc else by

    def Size(self) -> str:  # noqa: N802
        size = self.h.get("Size") or 0
        return human_size(size, 3) if self.human else str(size)

    def Comment(self) -> str:  # noqa: N802
        return self.h.get("Comment") or ""

    def to_json(self) -> dict[str, str]:
        return {name: getattr(self, name)() for name in sorted(HISTORY_HEADERS)}


def history(ctx: Ctx, opts: Options, args: list[str]) -> int:
    query = {"platform": opts["platform"]} if opts["platform"] else None
    items = ctx.client.get(f"/images/{_q(args[0])}/history", query) or []
    trunc = not opts["no-trunc"]
    now = time.time()
    rows = [HistoryRow(h, trunc, opts["human"], now) for h in items]
    fmt = opts["format"]
    if opts["quiet"] and (not fmt or fmt.startswith("table")):
        sys.stdout.write("".join(r.ID() + "\n" for r in rows))
        return 0
    if not fmt or fmt == "table":
        fmt = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
    headers = dict(HISTORY_HEADERS)
    if not opts["human"]:
        headers["CreatedSince"] = "CREATED AT"
    table.write_list(fmt, rows, headers)
    return 0


# ---- prune --------------------------------------------------------------------------------------

def image_prune_report(report: dict[str, Any]) -> tuple[list[str], int]:
    lines = []
    deleted = report.get("ImagesDeleted") or []
    if deleted:
        lines.append("Deleted Images:")
        for item in deleted:
            if item.get("Untagged"):
                lines.append(f"untagged: {item['Untagged']}")
            if item.get("Deleted"):
                lines.append(f"deleted: {item['Deleted']}")
    return lines, int(report.get("SpaceReclaimed") or 0)


def image_prune(ctx: Ctx, opts: Options, args: list[str]) -> int:
    warning = ("WARNING! This will remove all images without at least one container associated to them."
               if opts["all"] else "WARNING! This will remove all dangling images.")
    if not confirm(warning, opts["force"]):
        return 0
    filters = list(opts["filter"])
    filters.append("dangling=" + ("false" if opts["all"] else "true"))
    report = ctx.client.post("/images/prune", {"filters": filters_json(filters)}) or {}
    lines, space = image_prune_report(report)
    if lines:
        sys.stdout.write("\n".join(lines) + "\n\n")
    sys.stdout.write(f"Total reclaimed space: {human_size(space)}\n")
    return 0


PLATFORM = Flag("platform", help="Set platform if server is multi-platform capable")

IMAGES = Command("[OPTIONS] [REPOSITORY[:TAG]]", images, max_args=1, flags=[
    Flag("all", "a", kind="bool", help="Show all images (default hides intermediate images)"),
    Flag("digests", kind="bool", help="Show digests"),
    filter_flag(),
    format_flag(FORMAT_HELP),
    Flag("no-trunc", kind="bool", help="Don't truncate output"),
    Flag("quiet", "q", kind="bool", help="Only show image IDs"),
])
PULL = Command("[OPTIONS] NAME[:TAG|@DIGEST]", pull, min_args=1, max_args=1, flags=[
    Flag("all-tags", "a", kind="bool", help="Download all tagged images in the repository"),
    Flag("disable-content-trust", kind="bool", default=True, help="Skip image verification"),
    PLATFORM,
    Flag("quiet", "q", kind="bool", help="Suppress verbose output"),
])
PUSH = Command("[OPTIONS] NAME[:TAG]", push, min_args=1, max_args=1, flags=[
    Flag("all-tags", "a", kind="bool", help="Push all tags of an image to the repository"),
    Flag("disable-content-trust", kind="bool", default=True, help="Skip image signing"),
    Flag("platform", help="Push a platform-specific manifest as a single-platform image to the registry."),
    Flag("quiet", "q", kind="bool", help="Suppress verbose output"),
])
TAG = Command("SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", tag, min_args=2, max_args=2)
RMI = Command("[OPTIONS] IMAGE [IMAGE...]", rmi, min_args=1, flags=[
    Flag("force", "f", kind="bool", help="Force removal of the image"),
    Flag("no-prune", kind="bool", help="Do not delete untagged parents"),
])
SAVE = Command("[OPTIONS] IMAGE [IMAGE...]", save, min_args=1, flags=[
    Flag("output", "o", help="Write to a file, instead of STDOUT"),
    Flag("platform", help='Save only the given platform variant. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")'),
])
LOAD = Command("[OPTIONS]", load, max_args=0, flags=[
    Flag("input", "i", help="Read from tar archive file, instead of STDIN"),
    Flag("platform", help='Load only the given platform variant. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")'),
    Flag("quiet", "q", kind="bool", help="Suppress the load output"),
])
IMPORT = Command("[OPTIONS] file|URL|- [REPOSITORY[:TAG]]", import_, min_args=1, max_args=2, flags=[
    Flag("change", "c", kind="list", help="Apply Dockerfile instruction to the created image"),
    Flag("message", "m", help="Set commit message for imported image"),
    PLATFORM,
])
HISTORY = Command("[OPTIONS] IMAGE", history, min_args=1, max_args=1, flags=[
    format_flag(FORMAT_HELP),
    Flag("human", "H", kind="bool", default=True, help="Print sizes and dates in human readable format"),
    Flag("no-trunc", kind="bool", help="Don't truncate output"),
    Flag("platform", help='Show history for the given platform. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")'),
    Flag("quiet", "q", kind="bool", help="Only show image IDs"),
])
IMAGE_PRUNE = Command("[OPTIONS]", image_prune, max_args=0, flags=[
    Flag("all", "a", kind="bool", help="Remove all unused images, not just dangling ones"),
    Flag("filter", kind="filter", help='Provide filter values (e.g. "until=<timestamp>")'),
    Flag("force", "f", kind="bool", help="Do not prompt for confirmation"),
])
