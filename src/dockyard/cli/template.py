"""A subset of Go's text/template, enough for `--format` as people use it with Docker.

Owns: lexing `{{ }}` actions (with `{{-`/`-}}` trimming and `{{/* comments */}}`), parsing
pipelines, `if`/`else if`/`else`, `range` (with `$i, $v :=`, `else`, `break`, `continue`),
`with`, variables (`$x := ...`, `$`), field chains on dicts and objects (methods are called,
with arguments: `{{.Label "com.x"}}`), literals, parenthesised pipelines, and the functions of
Go's builtins (and, or, not, len, index, slice, eq, ne, lt, le, gt, ge, print, printf, println)
plus Docker's (json, split, join, title, lower, upper, pad, truncate). Values print as Go's fmt
`%v` does (maps as `map[k:v]`, slices as `[a b]`, a missing key as `<no value>`).
"""

from __future__ import annotations

from dockyard.cli.jsonfast import dumps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class TemplateError(Exception):
    pass


class _Missing:
    def __repr__(self) -> str:
        return "<no value>"


MISSING = _Missing()


# ---- value formatting (Go's %v) ----------------------------------------------------------

def go_float(v: float) -> str:
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "0"
    text = repr(v)
    mant, _, exp_s = text.partition("e")
    digits = mant.replace("-", "").replace(".", "").lstrip("0")
    if exp_s:
        exp = int(exp_s)
        if "." in mant:
            exp += len(mant.lstrip("-").split(".")[0]) - 1
    else:
        ip, _, fp = mant.lstrip("-").partition(".")
        if ip.strip("0"):
            exp = len(ip.lstrip("0")) - 1
        else:
            exp = -(len(fp) - len(fp.lstrip("0"))) - 1
    digits = digits.rstrip("0") or "0"
    sign = "-" if v < 0 else ""
    if exp < -4 or exp >= 6:
        m = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{m}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if float(v).is_integer() and abs(v) < 1e21:
        return f"{sign}{int(abs(v))}"
    return text


def gofmt(v: Any) -> str:
    if isinstance(v, str):
        return v
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "<nil>"
    if v is MISSING:
        return "<no value>"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, list | tuple):
        return "[" + " ".join(gofmt(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{gofmt(k)}:{gofmt(v[k])}" for k in sorted(v, key=str)) + "]"
    return str(v)


def truth(v: Any) -> bool:
    if v is None or v is MISSING or v is False:
        return False
    if isinstance(v, int | float | str | list | tuple | dict):
        return bool(v)
    return True


# ---- functions ----------------------------------------------------------------------------

def _go_maps_sorted(v: Any) -> Any:
    """Go's encoding/json sorts the keys of maps but keeps struct fields in order. The daemon's
    JSON has no types, so a dict whose keys are all CapitalizedNames is taken for a struct
    (Docker's field names) and anything else (labels, networks, ports...) for a map."""
    if isinstance(v, dict):
        items = [(k, _go_maps_sorted(x)) for k, x in v.items()]
        if not all(isinstance(k, str) and k[:1].isascii() and k[:1].isupper() for k in v):
            items.sort(key=lambda kv: str(kv[0]))
        return dict(items)
    if isinstance(v, list | tuple):
        return [_go_maps_sorted(x) for x in v]
    return v


def _json(v: Any) -> str:
    if v is MISSING:
        v = None
    if hasattr(v, "to_json"):
        # Docker's list rows implement MarshalJSON with json.Marshal, which escapes <, >, & even
        # though the template's json function does not
        from dockyard.cli.jsonfast import escape_html

        return escape_html(dumps(v.to_json()))
    return dumps(_go_maps_sorted(v))


def _index(v: Any, *keys: Any) -> Any:
    for k in keys:
        if v is None or v is MISSING:
            raise TemplateError("error calling index: index of untyped nil")
        if isinstance(v, dict):
            v = v.get(k, MISSING)
        elif isinstance(v, list | tuple | str):
            if not isinstance(k, int):
                raise TemplateError(f"error calling index: cannot index slice/array with type {type(k).__name__}")
            if not 0 <= k < len(v):
                raise TemplateError(f"error calling index: index out of range: {k}")
            v = v[k]
        else:
            raise TemplateError(f"error calling index: can't index item of type {type(v).__name__}")
    return v


def _slice(v: Any, *idx: int) -> Any:
    if len(idx) == 0:
        return v
    if len(idx) == 1:
        return v[idx[0]:]
    return v[idx[0]:idx[1]]


def _len(v: Any) -> int:
    try:
        return len(v)
    except TypeError:
        raise TemplateError(f"error calling len: len of type {type(v).__name__}") from None


def _cmp_args(a: Any, b: Any) -> tuple[Any, Any]:
    if isinstance(a, bool) or isinstance(b, bool):
        return a, b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a, b
    if type(a) is not type(b) and a is not None and b is not None and a is not MISSING:
        raise TemplateError("error calling eq: incompatible types for comparison")
    return a, b


def _eq(a: Any, *others: Any) -> bool:
    for b in others:
        x, y = _cmp_args(a, b)
        if x == y:
            return True
    return False


def _lt(a: Any, b: Any) -> bool:
    x, y = _cmp_args(a, b)
    return x < y


def _and(*args: Any) -> Any:
    for a in args:
        if not truth(a):
            return a
    return args[-1]


def _or(*args: Any) -> Any:
    for a in args:
        if truth(a):
            return a
    return args[-1]


def _print(*args: Any) -> str:
    # Go's fmt.Sprint: spaces between operands when neither is a string
    out = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(gofmt(a))
    return "".join(out)


def _println(*args: Any) -> str:
    return " ".join(gofmt(a) for a in args) + "\n"


def go_sprintf(fmt: str, *args: Any) -> str:
    out = []
    i = 0
    argi = 0
    n = len(fmt)
    while i < n:
        c = fmt[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        i += 1
        if i < n and fmt[i] == "%":
            out.append("%")
            i += 1
            continue
        flags = ""
        while i < n and fmt[i] in "-+# 0":
            flags += fmt[i]
            i += 1
        width = ""
        while i < n and fmt[i].isdigit():
            width += fmt[i]
            i += 1
        prec = ""
        if i < n and fmt[i] == ".":
            i += 1
            while i < n and fmt[i].isdigit():
                prec += fmt[i]
                i += 1
            prec = "." + (prec or "0")
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        a = args[argi]
        argi += 1
        spec = flags + width + prec
        if verb in "sv":
            text = gofmt(a)
            out.append(format(text, (("<" if "-" in flags else ">") + width + prec) if (width or prec) else ""))
        elif verb == "q":
            text = dumps(gofmt(a)) if not isinstance(a, int) or isinstance(a, bool) else repr(chr(a))
            out.append(format(text, (("<" if "-" in flags else ">") + width) if width else ""))
        elif verb == "d" and isinstance(a, int | float) and not isinstance(a, bool):
            out.append(format(int(a), spec.replace("-", "<") + "d"))
        elif verb in "xX" and isinstance(a, int):
            out.append(format(a, spec.replace("-", "<") + verb))
        elif verb in "xX" and isinstance(a, str):
            out.append(a.encode().hex() if verb == "x" else a.encode().hex().upper())
        elif verb in "feEgG" and isinstance(a, int | float) and not isinstance(a, bool):
            out.append(format(float(a), spec.replace("-", "<") + (verb if prec or verb not in "f" else ".6f")))
        elif verb == "t" and isinstance(a, bool):
            out.append(gofmt(a))
        else:
            out.append(f"%!{verb}({type(a).__name__}={gofmt(a)})")
    if argi < len(args):
        out.append("%!(EXTRA " + ", ".join(f"{type(a).__name__}={gofmt(a)}" for a in args[argi:]) + ")")
    return "".join(out)


def _pad(s: Any, prefix: int, suffix: int) -> str:
    s = gofmt(s)
    if s == "":
        return s
    return " " * prefix + s + " " * suffix


def _truncate(s: Any, length: int) -> str:
    s = gofmt(s)
    return s if len(s) < length else s[:length]


def _title(s: str) -> str:
    out = []
    prev = " "
    for ch in s:
        out.append(ch.upper() if not (prev.isalnum() or prev == "_" or prev == "'") else ch)
        prev = ch
    return "".join(out)


def _split(s: str, sep: str) -> list[str]:
    if sep == "":
        return list(s)
    return s.split(sep)


def _join(v: Any, sep: str) -> str:
    if v is None or v is MISSING:
        return ""
    if not isinstance(v, list | tuple):
        raise TemplateError(f"error calling join: wrong type for value; expected []string; got {type(v).__name__}")
    return sep.join(gofmt(x) for x in v)


FUNCS: dict[str, Callable[..., Any]] = {
    "and": _and, "or": _or, "not": lambda v: not truth(v), "len": _len, "index": _index,
    "slice": _slice, "eq": _eq, "ne": lambda a, b: not _eq(a, b), "lt": _lt,
    "le": lambda a, b: _lt(a, b) or _eq(a, b), "gt": lambda a, b: not (_lt(a, b) or _eq(a, b)),
    "ge": lambda a, b: not _lt(a, b), "print": _print, "printf": go_sprintf, "println": _println,
    "json": _json, "split": _split, "join": _join, "title": _title,
    "lower": lambda s: gofmt(s).lower(), "upper": lambda s: gofmt(s).upper(), "pad": _pad,
    "truncate": _truncate, "html": lambda s: gofmt(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),
}

HEADER_FUNCS: dict[str, Callable[..., Any]] = {
    "json": lambda v: v, "split": lambda v, _s: v, "join": lambda v, _s: v, "title": lambda v: v,
    "lower": lambda v: v, "upper": lambda v: v, "truncate": lambda v, _n: v,
}


# ---- lexer / parser -----------------------------------------------------------------------

class _Node:
    __slots__ = ()


class _Text(_Node):
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class _Action(_Node):
    __slots__ = ("pipe",)

    def __init__(self, pipe: _Pipe) -> None:
        self.pipe = pipe


class _Branch(_Node):
    __slots__ = ("kind", "pipe", "body", "else_body")

    def __init__(self, kind: str, pipe: _Pipe, body: list[_Node], else_body: list[_Node] | None) -> None:
        self.kind, self.pipe, self.body, self.else_body = kind, pipe, body, else_body


class _Control(_Node):
    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind


class _Pipe:
    __slots__ = ("decl", "assign", "cmds")

    def __init__(self, decl: list[str], assign: bool, cmds: list[list[Any]]) -> None:
        self.decl, self.assign, self.cmds = decl, assign, cmds


# operand tokens: ("field", base, [names]) base is "." or "$var" or a _Pipe (parenthesised)
#                 ("lit", value), ("ident", name)


def _lex_actions(src: str) -> list[tuple[str, str]]:
    """Split into ('text', s) and ('action', inner) items, applying trim markers."""
    items: list[tuple[str, str]] = []
    pos = 0
    n = len(src)
    while pos < n:
        start = src.find("{{", pos)
        if start < 0:
            items.append(("text", src[pos:]))
            break
        text = src[pos:start]
        inner_start = start + 2
        if src.startswith("- ", inner_start) or src.startswith("-\t", inner_start) or src.startswith("-\n", inner_start):
            text = text.rstrip(" \t\r\n")
            inner_start += 1
        if text:
            items.append(("text", text))
        # find the closing braces, skipping string literals
        i = inner_start
        end = -1
        while i < n:
            ch = src[i]
            if ch in "\"'`":
                j = i + 1
                while j < n and src[j] != ch:
                    if src[j] == "\\" and ch != "`":
                        j += 1
                    j += 1
                i = j + 1
                continue
            if src.startswith("}}", i):
                end = i
                break
            i += 1
        if end < 0:
            raise TemplateError("template: :1: unclosed action")
        inner = src[inner_start:end]
        pos = end + 2
        if inner.endswith(" -") or inner.endswith("\t-") or inner.endswith("\n-"):
            inner = inner[:-1]
            while pos < n and src[pos] in " \t\r\n":
                pos += 1
        stripped = inner.strip()
        if stripped.startswith("/*"):
            if not stripped.endswith("*/"):
                raise TemplateError("template: :1: unclosed comment")
            continue
        items.append(("action", inner))
    return items


def _tokenize(s: str) -> list[tuple[str, Any]]:
    toks: list[tuple[str, Any]] = []
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c in " \t\r\n":
            i += 1
            continue
        if c in "()|,":
            toks.append((c, c))
            i += 1
            continue
        if c == ":" and s.startswith(":=", i):
            toks.append((":=", ":="))
            i += 2
            continue
        if c == "=":
            toks.append(("=", "="))
            i += 1
            continue
        if c == '"':
            j = i + 1
            buf = []
            while j < n and s[j] != '"':
                if s[j] == "\\" and j + 1 < n:
                    esc = s[j + 1]
                    mapping = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0",
                               "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
                    if esc in mapping:
                        buf.append(mapping[esc])
                        j += 2
                        continue
                    if esc in "xuU":
                        width = {"x": 2, "u": 4, "U": 8}[esc]
                        buf.append(chr(int(s[j + 2:j + 2 + width], 16)))
                        j += 2 + width
                        continue
                    raise TemplateError(f"template: :1: invalid syntax: unknown escape \\{esc}")
                buf.append(s[j])
                j += 1
            if j >= n:
                raise TemplateError("template: :1: unterminated quoted string")
            toks.append(("lit", "".join(buf)))
            i = j + 1
            continue
        if c == "`":
            j = s.find("`", i + 1)
            if j < 0:
                raise TemplateError("template: :1: unterminated raw quoted string")
            toks.append(("lit", s[i + 1:j]))
            i = j + 1
            continue
        if c == "'":
            j = s.find("'", i + 1)
            if j < 0:
                raise TemplateError("template: :1: unterminated character constant")
            body = s[i + 1:j]
            toks.append(("lit", ord(body[-1]) if body else 0))
            i = j + 1
            continue
        if c == "." or c == "$":
            j = i + 1
            while j < n and (s[j].isalnum() or s[j] in "_."):
                j += 1
            word = s[i:j]
            toks.append(("ref", word))
            i = j
            continue
        if c.isdigit() or (c in "+-" and i + 1 < n and s[i + 1].isdigit()):
            j = i + 1
            while j < n and (s[j].isalnum() or s[j] in "._+-"):
                if s[j] in "+-" and s[j - 1] not in "eEpP":
                    break
                j += 1
            word = s[i:j].replace("_", "")
            try:
                value: Any = int(word, 0)
            except ValueError:
                try:
                    value = float(word)
                except ValueError:
                    raise TemplateError(f"template: :1: bad number syntax: {word!r}") from None
            toks.append(("lit", value))
            i = j
            continue
        if c.isalpha() or c == "_":
            j = i + 1
            while j < n and (s[j].isalnum() or s[j] == "_"):
                j += 1
            word = s[i:j]
            if word in ("true", "false"):
                toks.append(("lit", word == "true"))
            elif word == "nil":
                toks.append(("lit", None))
            else:
                toks.append(("ident", word))
            i = j
            continue
        raise TemplateError(f"template: :1: unexpected {c!r} in command")
    return toks


def _split_ref(word: str) -> tuple[str, list[str]]:
    """'.A.B' -> ('.', ['A','B']); '$x.A' -> ('$x', ['A']); '.' -> ('.', []); '$' -> ('$', [])."""
    if word.startswith("$"):
        base, _, rest = word.partition(".")
        return base, [p for p in rest.split(".") if p] if rest else []
    return ".", [p for p in word[1:].split(".") if p]


class _Parser:
    def __init__(self, toks: list[tuple[str, Any]]) -> None:
        self.toks = toks
        self.i = 0

    def peek(self) -> tuple[str, Any] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, Any]:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def pipeline(self, allow_decl: bool = True) -> _Pipe:
        decl: list[str] = []
        assign = False
        if allow_decl:
            j = self.i
            names = []
            while j < len(self.toks) and self.toks[j][0] == "ref" and self.toks[j][1].startswith("$") and "." not in self.toks[j][1]:
                names.append(self.toks[j][1])
                j += 1
                if j < len(self.toks) and self.toks[j][0] == ",":
                    j += 1
                    continue
                break
            if names and j < len(self.toks) and self.toks[j][0] in (":=", "="):
                assign = self.toks[j][0] == "="
                decl = names
                self.i = j + 1
        cmds: list[list[Any]] = []
        cmd: list[Any] = []
        while True:
            tok = self.peek()
            if tok is None or tok[0] == ")":
                break
            if tok[0] == "|":
                self.take()
                if not cmd:
                    raise TemplateError("template: :1: missing command")
                cmds.append(cmd)
                cmd = []
                continue
            cmd.append(self.operand())
        if cmd:
            cmds.append(cmd)
        elif cmds:
            raise TemplateError("template: :1: missing command")
        if not cmds:
            raise TemplateError("template: :1: missing value for command")
        return _Pipe(decl, assign, cmds)

    def operand(self) -> Any:
        kind, value = self.take()
        if kind == "(":
            inner = self.pipeline(allow_decl=False)
            if self.peek() is None or self.peek()[0] != ")":  # type: ignore[index]
                raise TemplateError("template: :1: unclosed left paren")
            self.take()
            nxt = self.peek()
            if nxt is not None and nxt[0] == "ref" and nxt[1].startswith(".") and nxt[1] != ".":
                # (pipeline).Field chain: only valid when adjacent; accept it
                self.take()
                return ("field", inner, [p for p in nxt[1].split(".") if p])
            return ("pipe", inner)
        if kind == "ref":
            base, names = _split_ref(value)
            return ("field", base, names)
        if kind == "lit":
            return ("lit", value)
        if kind == "ident":
            if value not in FUNCS and value not in ("block", "template", "define"):
                raise TemplateError(f'template: :1: function "{value}" not defined')
            return ("ident", value)
        raise TemplateError(f"template: :1: unexpected {value!r} in operand")


def _parse(src: str) -> list[_Node]:
    items = _lex_actions(src)
    pos = 0

    def parse_list(stop: tuple[str, ...]) -> tuple[list[_Node], str, str]:
        nonlocal pos
        nodes: list[_Node] = []
        while pos < len(items):
            kind, text = items[pos]
            pos += 1
            if kind == "text":
                nodes.append(_Text(text))
                continue
            toks = _tokenize(text)
            if not toks:
                raise TemplateError("template: :1: missing value for command")
            head = toks[0]
            if head[0] == "ident" and head[1] in ("if", "range", "with"):
                p = _Parser(toks[1:])
                pipe = p.pipeline()
                if p.peek() is not None:
                    raise TemplateError(f"template: :1: unexpected {p.peek()[1]!r} in {head[1]}")  # type: ignore[index]
                body, end_kind, end_text = parse_list(("else", "end"))
                else_body: list[_Node] | None = None
                if end_kind == "else":
                    else_body = _continue_else(end_text)
                nodes.append(_Branch(head[1], pipe, body, else_body))
                continue
            if head[0] == "ident" and head[1] in ("else", "end"):
                if head[1] in stop:
                    return nodes, head[1], text
                raise TemplateError(f"template: :1: unexpected {{{{{head[1]}}}}}")
            if head[0] == "ident" and head[1] in ("break", "continue"):
                nodes.append(_Control(head[1]))
                continue
            if head[0] == "ident" and head[1] in ("define", "template", "block"):
                raise TemplateError(f"template: :1: {{{{{head[1]}}}}} is not supported")
            p = _Parser(toks)
            pipe = p.pipeline()
            if p.peek() is not None:
                raise TemplateError(f"template: :1: unexpected {p.peek()[1]!r} in operand")  # type: ignore[index]
            nodes.append(_Action(pipe))
        if stop:
            raise TemplateError("template: :1: unexpected EOF")
        return nodes, "", ""

    def _continue_else(text: str) -> list[_Node]:
        rest = text.strip()[4:].strip()
        if rest.startswith("if ") or rest.startswith("with "):
            sub_kind = rest.split(None, 1)[0]
            sp = _Parser(_tokenize(rest[len(sub_kind):]))
            sub_pipe = sp.pipeline()
            sub_body, k2, t2 = parse_list(("else", "end"))
            return [_Branch(sub_kind, sub_pipe, sub_body, _continue_else(t2) if k2 == "else" else None)]
        body, _k, _t = parse_list(("end",))
        return body

    nodes, _k, _t = parse_list(())
    return nodes


# ---- execution ------------------------------------------------------------------------------

class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Template:
    """A parsed template. `execute(data)` returns the text; `header=True` uses Docker's header
    functions (json/upper/... leave the header names alone)."""

    def __init__(self, src: str) -> None:
        self.src = src
        self.nodes = _parse(src)

    def execute(self, data: Any, header: bool = False) -> str:
        out: list[str] = []
        funcs = dict(FUNCS, **HEADER_FUNCS) if header else FUNCS
        self._run(self.nodes, data, [("$", data)], out, funcs)
        return "".join(out)

    # variables: a list of (name, value) searched from the end (scopes push/pop)
    def _run(self, nodes: list[_Node], dot: Any, vars_: list[tuple[str, Any]], out: list[str],
             funcs: dict[str, Callable[..., Any]]) -> None:
        mark = len(vars_)
        for node in nodes:
            if isinstance(node, _Text):
                out.append(node.text)
            elif isinstance(node, _Action):
                value = self._pipe(node.pipe, dot, vars_, funcs)
                if not node.pipe.decl:
                    out.append(gofmt(value))
            elif isinstance(node, _Branch):
                self._branch(node, dot, vars_, out, funcs)
            elif isinstance(node, _Control):
                raise _Break() if node.kind == "break" else _Continue()
        del vars_[mark:]

    def _branch(self, node: _Branch, dot: Any, vars_: list[tuple[str, Any]], out: list[str],
                funcs: dict[str, Callable[..., Any]]) -> None:
        mark = len(vars_)
        if node.kind == "range":
            pipe = node.pipe
            decl = pipe.decl
            value = self._pipe(_Pipe([], False, pipe.cmds), dot, vars_, funcs)
            if isinstance(value, dict):
                items = [(k, value[k]) for k in sorted(value, key=str)]
            elif isinstance(value, list | tuple):
                items = list(enumerate(value))
            elif isinstance(value, int) and not isinstance(value, bool):
                items = [(i, i) for i in range(value)]
            elif value is None or value is MISSING:
                items = []
            else:
                raise TemplateError(f"template: :1: range can't iterate over {gofmt(value)}")
            if not items:
                if node.else_body is not None:
                    self._run(node.else_body, dot, vars_, out, funcs)
                return
            for k, v in items:
                if len(decl) == 1:
                    vars_.append((decl[0], v))
                elif len(decl) >= 2:
                    vars_.append((decl[0], k))
                    vars_.append((decl[1], v))
                try:
                    self._run(node.body, v, vars_, out, funcs)
                except _Continue:
                    pass
                except _Break:
                    del vars_[mark:]
                    break
                del vars_[mark:]
            return
        value = self._pipe(node.pipe, dot, vars_, funcs)
        if truth(value):
            self._run(node.body, value if node.kind == "with" else dot, vars_, out, funcs)
        elif node.else_body is not None:
            self._run(node.else_body, dot, vars_, out, funcs)
        del vars_[mark:]

    def _pipe(self, pipe: _Pipe, dot: Any, vars_: list[tuple[str, Any]],
              funcs: dict[str, Callable[..., Any]]) -> Any:
        value: Any = MISSING
        first = True
        for cmd in pipe.cmds:
            value = self._cmd(cmd, dot, vars_, funcs, None if first else (value,))
            first = False
        if pipe.decl:
            if pipe.assign:
                for idx in range(len(vars_) - 1, -1, -1):
                    if vars_[idx][0] == pipe.decl[0]:
                        vars_[idx] = (pipe.decl[0], value)
                        break
                else:
                    raise TemplateError(f"template: :1: undefined variable: {pipe.decl[0]}")
            else:
                vars_.append((pipe.decl[0], value))
        return value

    def _cmd(self, cmd: list[Any], dot: Any, vars_: list[tuple[str, Any]],
             funcs: dict[str, Callable[..., Any]], piped: tuple[Any, ...] | None) -> Any:
        head = cmd[0]
        extra = list(piped) if piped else []
        if head[0] == "ident":
            fn = funcs[head[1]]
            args = [self._arg(a, dot, vars_, funcs) for a in cmd[1:]] + extra
            try:
                return fn(*args)
            except TemplateError:
                raise
            except TypeError as e:
                raise TemplateError(f"template: :1: error calling {head[1]}: wrong number of args ({e})") from None
            except (ValueError, KeyError, IndexError, AttributeError) as e:
                raise TemplateError(f"template: :1: error calling {head[1]}: {e}") from None
        if head[0] == "field" and (len(cmd) > 1 or extra):
            args = [self._arg(a, dot, vars_, funcs) for a in cmd[1:]] + extra
            return self._field(head, dot, vars_, funcs, args)
        if len(cmd) > 1 or extra:
            raise TemplateError(f"template: :1: can't give argument to non-function {self._describe(head)}")
        return self._arg(head, dot, vars_, funcs)

    @staticmethod
    def _describe(op: Any) -> str:
        if op[0] == "lit":
            return gofmt(op[1])
        return str(op[1])

    def _arg(self, op: Any, dot: Any, vars_: list[tuple[str, Any]], funcs: dict[str, Callable[..., Any]]) -> Any:
        kind = op[0]
        if kind == "lit":
            return op[1]
        if kind == "field":
            return self._field(op, dot, vars_, funcs, None)
        if kind == "pipe":
            return self._pipe(op[1], dot, vars_, funcs)
        if kind == "ident":
            return self._cmd([op], dot, vars_, funcs, None)
        raise TemplateError("template: :1: bad operand")

    def _lookup_var(self, name: str, vars_: list[tuple[str, Any]]) -> Any:
        for idx in range(len(vars_) - 1, -1, -1):
            if vars_[idx][0] == name:
                return vars_[idx][1]
        raise TemplateError(f"template: :1: undefined variable: {name}")

    def _field(self, op: Any, dot: Any, vars_: list[tuple[str, Any]], funcs: dict[str, Callable[..., Any]],
               args: list[Any] | None) -> Any:
        base = op[1]
        if isinstance(base, _Pipe):
            value = self._pipe(base, dot, vars_, funcs)
        elif base == ".":
            value = dot
        else:
            value = self._lookup_var(base, vars_)
        names = op[2]
        for idx, name in enumerate(names):
            last = idx == len(names) - 1
            value = get_field(value, name, args if last else None)
        if not names and args:
            raise TemplateError(f"template: :1: can't give argument to non-function {base}")
        return value


def get_field(value: Any, name: str, args: list[Any] | None = None) -> Any:
    if isinstance(value, dict):
        if args:
            method = getattr(type(value), name, None)
            if callable(method):
                return method(value, *args)
            raise TemplateError(f"template: :1: can't give argument to non-function .{name}")
        return value.get(name, MISSING)
    if value is None or value is MISSING:
        raise TemplateError(f"template: :1: executing \"\" at <.{name}>: nil pointer evaluating interface {{}}.{name}")
    attr = getattr(value, name, MISSING) if not name.startswith("_") else MISSING
    if attr is MISSING:
        raise TemplateError(f'template: :1: executing "" at <.{name}>: can\'t evaluate field {name} in type {type(value).__name__}')
    if callable(attr):
        try:
            return attr(*(args or []))
        except TypeError as e:
            raise TemplateError(f"template: :1: wrong number of args for {name}: {e}") from None
    if args:
        raise TemplateError(f"template: :1: can't give argument to non-function .{name}")
    return attr


_cache: dict[str, Template] = {}


def parse(src: str) -> Template:
    t = _cache.get(src)
    if t is None:
        t = _cache[src] = Template(src)
    return t


def render(src: str, data: Any) -> str:
    return parse(src).execute(data)
