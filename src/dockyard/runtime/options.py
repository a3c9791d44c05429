"""A tiny command-line parser with runc's (urfave/cli + Go flag) conventions.

Flags are written `-name`, `--name`, `--name=value` or `-n value`; boolean flags take no value
(or `=true`/`=false`); flags repeat for list options; parsing stops at the first positional
argument or at `--`. No `argparse` (15 ms to import) on the runtime's hot path.
"""

from __future__ import annotations

BOOL = "bool"
STR = "str"
INT = "int"
LIST = "list"


class UsageError(Exception):
    """Bad command line: printed with the verb's usage hint, exit status 1 (as runc)."""


class Flag:
    __slots__ = ("names", "kind", "default", "key")

    def __init__(self, names: str, kind: str = BOOL, default: object = None) -> None:
        self.names = names.split(",")
        self.kind = kind
        self.key = self.names[0].replace("-", "_")
        if default is None:
            default = False if kind == BOOL else [] if kind == LIST else None
        self.default = default


def parse(args: list[str], flags: list[Flag], stop_at_positional: bool = True) -> tuple[dict, list[str]]:
    """Parse `args` against `flags`; returns (values by flag key, positional arguments).

    With stop_at_positional=False, flags may also follow positional arguments (as for `kill`,
    `delete`); everything after `--` is positional either way.
    """
    table: dict[str, Flag] = {}
    for f in flags:
        for n in f.names:
            table[n] = f
    values: dict[str, object] = {f.key: (list(f.default) if f.kind == LIST else f.default) for f in flags}
    positional: list[str] = []
    i = 0
    n = len(args)
    while i < n:
        a = args[i]
        i += 1
        if a == "--":
            positional.extend(args[i:])
            break
        if len(a) < 2 or a[0] != "-" or (positional and stop_at_positional):
            positional.append(a)
            if stop_at_positional:
                positional.extend(args[i:])
                break
            continue
        name = a.lstrip("-")
        value: str | None = None
        if "=" in name:
            name, value = name.split("=", 1)
        f = table.get(name)
        if f is None:
            raise UsageError(f"flag provided but not defined: -{name}")
        if f.kind == BOOL:
            if value is None or value.lower() in ("true", "1", "t", "yes"):
                values[f.key] = True
            elif value.lower() in ("false", "0", "f", "no"):
                values[f.key] = False
            else:
                raise UsageError(f'invalid boolean value "{value}" for -{name}')
            continue
        if value is None:
            if i >= n:
                raise UsageError(f"flag needs an argument: -{name}")
            value = args[i]
            i += 1
        if f.kind == INT:
            try:
                values[f.key] = int(value, 0)
            except ValueError:
                raise UsageError(f'invalid value "{value}" for flag -{name}: parse error') from None
        elif f.kind == LIST:
            values[f.key].append(value)  # type: ignore[union-attr]
        else:
            values[f.key] = value
    return values, positional


def parse_size(text: str) -> int:
    """A byte count with an optional binary unit suffix (b, k, m, g, t; as `runc update`)."""
    s = text.strip().lower()
    if s in ("-1", "max"):
        return -1
    mult = 1
    units = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
    if s.endswith("ib"):
        s = s[:-2]
        mult = units.get(s[-1:], 0) if s[-1:] in units else 0
        s = s[:-1]
    elif s and s[-1] == "b" and len(s) > 1 and s[-2] in units:
        mult = units[s[-2]]
        s = s[:-2]
    elif s and s[-1] in units:
        mult = units[s[-1]]
        s = s[:-1]
    try:
        if not mult:
            raise ValueError
        return int(float(s) * mult)
    except ValueError:
        raise UsageError(f"invalid size: '{text}'") from None
