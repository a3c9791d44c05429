"""Formatted output of lists: `--format` handling and column alignment as the Docker CLI does.

Owns: the elastic-tabstop column writer (Go's text/tabwriter with minwidth 10, padding 3, as
docker/cli configures it), and `write_list`, which turns a format (`table`, `table TEMPLATE`,
`json`, a custom template) plus row contexts into text: the header row comes from executing the
template over a header context with Docker's header functions.
"""

from __future__ import annotations

import sys

from dockyard.cli import template

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any


def _width(s: str) -> int:
    if s.isascii():
        return len(s)
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in s)


def tabwrite(text: str, minwidth: int = 10, padding: int = 3) -> str:
    """Align tab-terminated cells into columns (Go's tabwriter, padchar ' ', no flags)."""
    lines = text.split("\n")
    # cells per line; the last element of each line is the trailing (non-column) text
    table = [line.split("\t") for line in lines]
    out: list[str] = []
    widths: list[int] = []

    def write_lines(line0: int, line1: int) -> None:
        for i in range(line0, line1):
            cells = table[i]
            parts = []
            for j, c in enumerate(cells):
                parts.append(c)
                if j < len(widths) and j < len(cells) - 1:
                    parts.append(" " * (widths[j] - _width(c)))
            out.append("".join(parts))

    def fmt(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(table[this]) - 1:
                this += 1
                continue
            write_lines(line0, this)
            line0 = this
            width = minwidth
            while this < line1:
                cells = table[this]
                if column >= len(cells) - 1:
                    break
                w = _width(cells[column]) + padding
                if w > width:
                    width = w
                this += 1
            widths.append(width)
            fmt(line0, this)
            widths.pop()
            line0 = this
        write_lines(line0, line1)

    # a line with a single cell ends the block (tabwriter flushes there)
    start = 0
    for idx, cells in enumerate(table):
        if len(cells) == 1:
            fmt(start, idx + 1)
            start = idx + 1
    if start < len(table):
        fmt(start, len(table))
    return "\n".join(out)


class HeaderContext(dict):
    """The header row's data: field name -> column title; `.Label "a.b-c"` -> "b c"."""

    def Label(self, name: str) -> str:  # noqa: N802 - Go method name used in templates
        last = name.split(".")[-1]
        return last.replace("-", " ").replace("_", " ")


def prepare_format(fmt: str) -> tuple[str, bool]:
    """(template source, is_table) after Docker's pre-processing of a --format value."""
    is_table = fmt.startswith("table")
    if is_table:
        fmt = fmt[5:]
    elif fmt == "json":
        fmt = "{{json .}}"
    fmt = fmt.strip(" ")
    fmt = fmt.replace("\\t", "\t").replace("\\n", "\n")
    return fmt, is_table


def render_list(fmt: str, rows: Iterable[Any], header: dict[str, str] | None = None) -> str:
    src, is_table = prepare_format(fmt)
    tmpl = template.parse(src)
    body = []
    for row in rows:
        body.append(tmpl.execute(row))
        body.append("\n")
    if is_table:
        head = tmpl.execute(HeaderContext(header or {}), header=True)
        return tabwrite(head + "\n" + "".join(body))
    return "".join(body)


def write_list(fmt: str, rows: Iterable[Any], header: dict[str, str] | None = None) -> None:
    try:
        text = render_list(fmt, rows, header)
    except template.TemplateError as e:
        from dockyard.cli.command import CLIError

        raise CLIError(f"template parsing error: {e}") from None
    sys.stdout.write(text)
