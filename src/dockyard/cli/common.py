"""Helpers shared by several commands.

Owns: `--filter` values to the API's `filters` query (Docker's encoding), Go's strconv.Quote,
Docker's "familiar" image names (`docker.io/library/busybox:latest` -> `busybox:latest`), the
per-target loop of multi-argument commands (`rm a b c`: print each success, collect errors,
exit 1 if any failed), and the `--format` help text.
"""

from __future__ import annotations

import sys

from dockyard.cli.command import CLIError
from dockyard.cli.flags import Flag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

FORMAT_HELP = ("Format output using a custom template:\n"
               "'table':            Print output in table format with column headers (default)\n"
               "'table TEMPLATE':   Print output in table format using the given Go template\n"
               "'json':             Print in JSON format\n"
               "'TEMPLATE':         Print output using the given Go template.\n"
               "Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates")

INSPECT_FORMAT_HELP = ("Format output using a custom template:\n"
                       "'json':             Print in JSON format\n"
                       "'TEMPLATE':         Print output using the given Go template.\n"
                       "Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates")


def format_flag(help_text: str = FORMAT_HELP) -> Flag:
    return Flag("format", help=help_text)


def filter_flag(help_text: str = "Filter output based on conditions provided") -> Flag:
    return Flag("filter", "f", kind="filter", help=help_text)


def filters_json(values: Iterable[str]) -> str | None:
    """['status=exited', 'label=a=b'] -> '{"label":{"a=b":true},"status":{"exited":true}}'."""
    from dockyard.cli.jsonfast import dumps

    out: dict[str, dict[str, bool]] = {}
    for v in values:
        if "=" not in v:
            raise CLIError(f'invalid argument "{v}" for "-f, --filter" flag: bad format of filter (expected name=value)', 125)
        key, _, val = v.partition("=")
        out.setdefault(key.strip().lower(), {})[val.strip()] = True
    return dumps(out) if out else None


def go_quote(s: str) -> str:
    """Go's strconv.Quote."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\a":
            out.append("\\a")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\v":
            out.append("\\v")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif o > 0x7F and not ch.isprintable():
            out.append(f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def familiar_name(ref: str) -> str:
    """Strip Docker Hub's `docker.io/` and `library/` prefixes."""
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/"):
        if ref.startswith(prefix):
            rest = ref[len(prefix):]
            return rest
    return ref


def split_repo_tag(ref: str) -> tuple[str, str]:
    """'host:5000/a/b:tag' -> ('host:5000/a/b', 'tag'); no tag -> (ref, ''). Digests stay in repo."""
    if "@" in ref:
        return ref, ""
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1:]
    return ref, ""


def for_each(names: Iterable[str], fn: Callable[[str], Any], echo: bool = True) -> int:
    """Apply fn to each name; print the name (or fn's result) on success, errors on stderr."""
    from dockyard.cli.client import APIError

    errors: list[str] = []
    for name in names:
        try:
            result = fn(name)
        except APIError as e:
            errors.append(str(e))
            continue
        except CLIError as e:
            errors.append(e.message)
            continue
        if echo:
            sys.stdout.write(f"{name if result is None else result}\n")
    if errors:
        sys.stdout.flush()
        raise CLIError("\n".join(errors), 1)
    return 0


def parse_key_values(items: Iterable[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def confirm(message: str, force: bool) -> bool:
    """Docker's prune prompt: 'Are you sure you want to continue? [y/N] '."""
    if force:
        return True
    sys.stdout.write(message + "\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")
