"""`inspect` and the per-type `container/image/volume/network inspect` commands.

Owns: fetching objects by name or id (for plain `inspect`, trying container, image, network and
volume in turn, as Docker does), the output forms: an indented JSON array (4 spaces, the
daemon's key order), `--format json` (compact), or a Go template per object; Docker's errors
(`Error: No such object: x`, `template parsing error: ...` with status 64).
"""

from __future__ import annotations

import sys

from dockyard.cli.client import APIError
from dockyard.cli.command import CLIError, Command, Ctx, StatusError
from dockyard.cli.common import INSPECT_FORMAT_HELP
from dockyard.cli.flags import Flag, Options
from dockyard.cli.http import quote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

KINDS = {
    "container": ("/containers/{}/json", "container"),
    "image": ("/images/{}/json", "image"),
    "network": ("/networks/{}", "network"),
    "volume": ("/volumes/{}", "volume"),
}
ORDER = ("container", "image", "network", "volume")


def _fetch(ctx: Ctx, kind: str, ref: str, size: bool) -> Any:
    path = KINDS[kind][0].format(quote(ref, safe=":@/" if kind == "image" else ""))
    query = {"size": "1"} if size and kind == "container" else None
    return ctx.client.get(path, query)


def write_inspect(refs: list[str], fmt: str, get: Callable[[str], Any]) -> int:
    """Docker's inspect.Inspect: collect objects, print them, report errors (exit 1)."""
    from dockyard.cli import template
    from dockyard.cli.jsonfast import dumps, dumps_indent

    tmpl = None
    if fmt and fmt != "json":
        try:
            tmpl = template.parse(fmt)
        except template.TemplateError as e:
            raise StatusError(64, f"template parsing error: {e}") from None
    objects = []
    errors = []
    rendered = []
    for ref in refs:
        try:
            obj = get(ref)
        except CLIError as e:
            errors.append(e.message)
            continue
        if tmpl is not None:
            try:
                rendered.append(tmpl.execute(obj) + "\n")
            except template.TemplateError as e:
                errors.append(f"template parsing error: {e}")
            continue
        objects.append(obj)
    if tmpl is not None:
        sys.stdout.write("".join(rendered) if rendered else "\n")
    elif fmt == "json":
        sys.stdout.write(dumps(objects) + "\n")
    else:
        sys.stdout.write((dumps_indent(objects) if objects else "[]") + "\n")
    if errors:
        sys.stdout.flush()
        raise StatusError(1, "\n".join(errors))
    return 0


def _getter(ctx: Ctx, kinds: tuple[str, ...], size: bool) -> Callable[[str], Any]:
    def get(ref: str) -> Any:
        for kind in kinds:
            try:
                return _fetch(ctx, kind, ref, size)
            except APIError as e:
                if len(kinds) == 1:
                    raise CLIError(str(e)) from None
                if e.status in (404, 400):
                    continue
                raise CLIError(str(e)) from None
        what = kinds[0] if len(kinds) == 1 else "object"
        raise CLIError(f"Error: No such {what}: {ref}")

    return get


def inspect(ctx: Ctx, opts: Options, args: list[str]) -> int:
    kind = opts["type"]
    if kind and kind not in KINDS:
        raise CLIError(f'"{kind}" is not a valid value for --type')
    kinds = (kind,) if kind else ORDER
    return write_inspect(args, opts["format"], _getter(ctx, kinds, opts["size"]))


def _typed(kind: str) -> Callable[[Ctx, Options, list[str]], int]:
    def run(ctx: Ctx, opts: Options, args: list[str]) -> int:
        return write_inspect(args, opts["format"], _getter(ctx, (kind,), bool(opts.get("size"))))

    return run


FORMAT = Flag("format", "f", help=INSPECT_FORMAT_HELP)

INSPECT = Command("[OPTIONS] NAME|ID [NAME|ID...]", inspect, min_args=1, flags=[
    FORMAT,
    Flag("size", "s", kind="bool", help="Display total file sizes if the type is container"),
    Flag("type", help="Only inspect objects of the given type"),
])
CONTAINER_INSPECT = Command("[OPTIONS] CONTAINER [CONTAINER...]", _typed("container"), min_args=1, flags=[
    FORMAT, Flag("size", "s", kind="bool", help="Display total file sizes"),
])
IMAGE_INSPECT = Command("[OPTIONS] IMAGE [IMAGE...]", _typed("image"), min_args=1, flags=[
    FORMAT, Flag("platform", help="Inspect a specific platform of the multi-platform image.", hidden=True),
])
VOLUME_INSPECT = Command("[OPTIONS] VOLUME [VOLUME...]", _typed("volume"), min_args=1, flags=[FORMAT])
NETWORK_INSPECT = Command("[OPTIONS] NETWORK [NETWORK...]", _typed("network"), min_args=1, flags=[
    FORMAT, Flag("verbose", "v", kind="bool", help="Verbose output for diagnostics"),
])
