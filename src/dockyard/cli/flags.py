"""Docker-style command-line flags (what spf13/pflag does for the Docker CLI), without argparse.

Owns: flag declarations (`Flag`), parsing an argument list into option values and positional
arguments, the parse error texts the Docker CLI prints, and the `--help` rendering of flags.

Supported syntax: `--name value`, `--name=value`, `--bool`, `--bool=false`, short clusters
`-it`, `-p8080:80`, `-e=FOO=bar`, repeatable list flags, `--` to end flags, and (for `run`,
`create`, `exec`) no interspersed flags after the first positional argument.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence


class FlagError(Exception):
    """Bad command line: printed with the usage line, exit status 125."""


class HelpRequested(Exception):
    """`--help` (or `-h` where the command has no -h flag) was given."""


_BOOL = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
         "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}

# the type names pflag prints in --help for each kind
_METAVAR = {"bool": "", "string": "string", "list": "list", "int": "int", "uint": "uint",
            "uint16": "uint16", "bytes": "bytes", "swapbytes": "bytes", "decimal": "decimal",
            "duration": "duration", "filter": "filter", "map": "map"}


class Flag:
    """One flag: long name, optional one-letter shorthand, kind, default and help text.

    Kinds: bool, string, list (repeatable, values collected in order), filter (repeatable),
    map (repeatable key=value), int, uint, uint16, bytes (memory size), swapbytes (size or -1),
    decimal (float), duration (Go duration, stored in seconds as a float).
    `metavar` overrides the type name shown in help (e.g. "mount", "ulimit", "network").
    """

    __slots__ = ("name", "short", "kind", "default", "help", "metavar", "hidden", "show_default")

    def __init__(self, name: str, short: str = "", kind: str = "string", default: object = None,
                 help: str = "", metavar: str | None = None, hidden: bool = False,
                 show_default: str | None = None) -> None:
        self.name = name
        self.short = short
        self.kind = kind
        self.default = default
        self.help = help
        self.metavar = _METAVAR.get(kind, kind) if metavar is None else metavar
        self.hidden = hidden
        self.show_default = show_default

    def display(self) -> str:
        return f"-{self.short}, --{self.name}" if self.short else f"--{self.name}"

    def initial(self) -> object:
        if self.kind in ("list", "filter"):
            return [] if self.default is None else list(self.default)  # type: ignore[call-overload]
        if self.kind == "map":
            return {}
        if self.default is None:
            return {"bool": False, "string": "", "int": 0, "uint": 0, "uint16": 0, "bytes": 0,
                    "swapbytes": 0, "decimal": 0.0, "duration": 0.0}.get(self.kind)
        return self.default


class Options(dict):
    """Parsed flag values by long name (dashes kept), plus `changed`: names given explicitly."""

    def __init__(self) -> None:
        super().__init__()
        self.changed: set[str] = set()

    def __getattr__(self, name: str) -> object:
        try:
            return self[name.replace("_", "-")]
        except KeyError:
            raise AttributeError(name) from None


def _go_int(text: str, bits: int = 64, unsigned: bool = False) -> int:
    fn = "ParseUint" if unsigned else "ParseInt"
    s = text
    neg = s.startswith("-")
    if s[:1] in "+-" and s:
        s = s[1:]
    base = 10
    low = s.lower()
    if low.startswith("0x"):
        base, s = 16, s[2:]
    elif low.startswith("0b"):
        base, s = 2, s[2:]
    elif low.startswith("0o"):
        base, s = 8, s[2:]
    elif len(s) > 1 and s.startswith("0"):
        base, s = 8, s[1:]
    s = s.replace("_", "")
    if not s or (unsigned and neg):
        raise ValueError(f'strconv.{fn}: parsing "{text}": invalid syntax')
    try:
        value = int(s, base)
    except ValueError:
        raise ValueError(f'strconv.{fn}: parsing "{text}": invalid syntax') from None
    value = -value if neg else value
    lo, hi = (0, (1 << bits) - 1) if unsigned else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    if not lo <= value <= hi:
        raise ValueError(f'strconv.{fn}: parsing "{text}": value out of range')
    return value


_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def parse_ram_size(text: str) -> int:
    """go-units RAMInBytes: '512m', '1g', '100k', '1.5GiB', plain bytes. Raises ValueError."""
    s = text.strip()
    i = 0
    while i < len(s) and (s[i].isdigit() or s[i] == "."):
        i += 1
    num, unit = s[:i], s[i:].strip().lower()
    if unit.endswith("ib"):
        unit = unit[:-2]
    elif unit.endswith("b") and len(unit) == 2:
        unit = unit[:-1]
    if not num or num.count(".") > 1 or unit not in _SIZE_UNITS:
        raise ValueError(f"invalid size: '{text}'")
    return int(float(num) * _SIZE_UNITS[unit])


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(text: str) -> float:
    """Go time.ParseDuration ('1h30m', '500ms', '-1.5s', '0') in seconds. Raises ValueError."""
    err = ValueError(f'time: invalid duration "{text}"')
    s = text
    sign = 1.0
    if s[:1] in "+-":
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise err
    total = 0.0
    while s:
        i = 0
        while i < len(s) and (s[i].isdigit() or s[i] == "."):
            i += 1
        num = s[:i]
        if not num or num == "." or num.count(".") > 1:
            raise err
        s = s[i:]
        j = 0
        while j < len(s) and not (s[j].isdigit() or s[j] == "."):
            j += 1
        unit = s[:j]
        s = s[j:]
        if not unit:
            raise ValueError(f'time: missing unit in duration "{text}"')
        if unit not in _DURATION_UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{text}"')
        total += float(num) * _DURATION_UNITS[unit]
    return sign * total


def format_go_duration(seconds: float) -> str:
    """Go's Duration.String() for whole-ish values: 0s, 1.5s, 1m30s, 2h0m0s, 500ms."""
    if seconds == 0:
        return "0s"
    neg = seconds < 0
    seconds = abs(seconds)
    if seconds < 1:
        for unit, scale in (("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
            if seconds >= scale:
                out = f"{seconds / scale:.9f}".rstrip("0").rstrip(".") + unit
                return "-" + out if neg else out
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    s_text = f"{s:.9f}".rstrip("0").rstrip(".") + "s"
    out = (f"{int(h)}h{int(m)}m" if h else f"{int(m)}m" if m else "") + s_text
    return "-" + out if neg else out


def _convert(flag: Flag, value: str) -> object:
    kind = flag.kind
    if kind == "bool":
        if value not in _BOOL:
            raise ValueError(f'strconv.ParseBool: parsing "{value}": invalid syntax')
        return _BOOL[value]
    if kind == "int":
        return _go_int(value)
    if kind == "uint":
        return _go_int(value, unsigned=True)
    if kind == "uint16":
        return _go_int(value, bits=16, unsigned=True)
    if kind == "bytes":
        return parse_ram_size(value)
    if kind == "swapbytes":
        return -1 if value == "-1" else parse_ram_size(value)
    if kind == "decimal":
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"failed to parse {value} as a rational number") from None
    if kind == "duration":
        return parse_go_duration(value)
    return value


class FlagSet:
    """The flags of one command. `parse(args)` returns (Options, positional args)."""

    def __init__(self, flags: Iterable[Flag] = (), interspersed: bool = True) -> None:
        self.flags: list[Flag] = list(flags)
        self.interspersed = interspersed
        self._long = {f.name: f for f in self.flags}
        self._short = {f.short: f for f in self.flags if f.short}

    def add(self, *flags: Flag) -> None:
        for f in flags:
            self.flags.append(f)
            self._long[f.name] = f
            if f.short:
                self._short[f.short] = f

    def _set(self, opts: Options, flag: Flag, value: str) -> None:
        try:
            converted = _convert(flag, value)
        except ValueError as e:
            raise FlagError(f'invalid argument "{value}" for "{flag.display()}" flag: {e}') from None
        if flag.kind in ("list", "filter"):
            opts[flag.name].append(converted)
        elif flag.kind == "map":
            key, _, val = value.partition("=")
            opts[flag.name][key] = val
        else:
            opts[flag.name] = converted
        opts.changed.add(flag.name)

    def parse(self, args: Sequence[str]) -> tuple[Options, list[str]]:
        opts = Options()
        for f in self.flags:
            opts[f.name] = f.initial()
        positional: list[str] = []
        i, n = 0, len(args)
        while i < n:
            arg = args[i]
            i += 1
            if arg == "--":
                positional.extend(args[i:])
                break
            if len(arg) < 2 or arg[0] != "-":
                positional.append(arg)
                if not self.interspersed:
                    positional.extend(args[i:])
                    break
                continue
            if arg[1] == "-":
                name, eq, value = arg[2:].partition("=")
                if name == "help":
                    raise HelpRequested()
                flag = self._long.get(name)
                if flag is None:
                    raise FlagError(f"unknown flag: --{name}")
                if eq:
                    self._set(opts, flag, value)
                elif flag.kind == "bool":
                    self._set(opts, flag, "true")
                elif i < n:
                    self._set(opts, flag, args[i])
                    i += 1
                else:
                    raise FlagError(f"flag needs an argument: --{name}")
                continue
            cluster = arg[1:]
            j = 0
            while j < len(cluster):
                c = cluster[j]
                flag = self._short.get(c)
                if flag is None:
                    if c == "h":
                        raise HelpRequested()
                    raise FlagError(f"unknown shorthand flag: '{c}' in -{cluster[j:]}")
                rest = cluster[j + 1:]
                if rest.startswith("="):
                    self._set(opts, flag, rest[1:])
                    break
                if flag.kind == "bool":
                    self._set(opts, flag, "true")
                    j += 1
                    continue
                if rest:
                    self._set(opts, flag, rest)
                elif i < n:
                    self._set(opts, flag, args[i])
                    i += 1
                else:
                    raise FlagError(f"flag needs an argument: '{c}' in -{c}")
                break
        return opts, positional

    # ---- help ---------------------------------------------------------------------------

    def usages(self, cols: int = 79) -> str:
        """The Options block of --help, laid out as pflag's FlagUsagesWrapped does."""
        lines: list[tuple[str, str]] = []
        maxlen = 0
        for f in sorted(self.flags, key=lambda f: f.name):
            if f.hidden:
                continue
            left = f"  -{f.short}, --{f.name}" if f.short else f"      --{f.name}"
            if f.metavar:
                left += " " + f.metavar
            maxlen = max(maxlen, len(left) + 1)
            text = f.help
            if f.show_default is not None:
                text += f" (default {f.show_default})"
            elif f.default not in (None, False, 0, 0.0, "", [], ()) and f.kind != "bool":
                d = f.default
                text += f' (default "{d}")' if f.kind == "string" else f" (default {d})"
            elif f.default is True:
                text += " (default true)"
            lines.append((left, text))
        out = []
        for left, text in lines:
            out.append(left + " " * (maxlen - len(left) + 1) + " " + _wrap(maxlen + 2, cols, text))
        return "\n".join(out)


def _wrap_n(i: int, slop: int, s: str) -> tuple[str, str]:
    if i + slop > len(s):
        return s, ""
    w = max(s.rfind(" ", 0, i), s.rfind("\t", 0, i), s.rfind("\n", 0, i))
    if w <= 0:
        return s, ""
    nl = s.rfind("\n", 0, i)
    if 0 < nl < w:
        return s[:nl], s[nl + 1:]
    return s[:w], s[w + 1:]


def _wrap(i: int, w: int, s: str) -> str:
    """pflag's wrap(): text in the column after `i`, lines at most `w` wide."""
    width = w - i
    r = ""
    if width < 24:
        i = 16
        width = w - i
        r += "\n" + " " * i
    if width < 24:
        return s.replace("\n", r)
    slop = 5
    width -= slop
    line, s = _wrap_n(width, slop, s)
    r += line.replace("\n", "\n" + " " * i)
    while s:
        line, s = _wrap_n(width, slop, s)
        r += "\n" + " " * i + line.replace("\n", "\n" + " " * i)
    return r

