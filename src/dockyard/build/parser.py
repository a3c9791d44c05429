"""The Dockerfile parser (pure): text -> directives and instructions, as moby's parser reads it.

    parse(text) -> Dockerfile(escape, instructions=[Instruction(...)], args_before_from)

Understood: parser directives at the top (`# escape=` and `# syntax=`, the latter ignored),
comments (a line whose first non-blank is `#`, also inside a continuation), line continuations
with the escape character, instruction names in any case, leading `--flag[=value]` options, JSON
(exec) form for the instructions that have one, and Docker's parse errors:
`dockerfile parse error line 3: unknown instruction: FOO`, `Dockerfile parse error line 1: FROM
requires either one or three arguments`. Variable substitution happens later, when the builder
dispatches an instruction (build/shlex.py).

    parse_words(text) -> [str]        split on blanks outside quotes, quotes kept (moby's parseWords)
    parse_kv(inst, what) -> [(k, v)]  ENV/LABEL arguments, both the `k v` and the `k=v ...` forms
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from dockyard.errors import InvalidParameter

INSTRUCTIONS = {
    "add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck", "label",
    "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume", "workdir",
}  # fmt: skip
JSON_FORM = {"run", "cmd", "entrypoint", "shell", "copy", "add", "volume"}
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")


@dataclass
class Instruction:
    line: int  # first line of the instruction, 1-based
    name: str  # lower case
    original: str  # the whole instruction as written, continuations joined
    rest: str  # the arguments after the flags, as written
    flags: dict[str, str] = field(default_factory=dict)  # --name=value ("" for a bare --name)
    json: list[str] | None = None  # exec form arguments

    def error(self, msg: str) -> InvalidParameter:
        return InvalidParameter(f"Dockerfile parse error line {self.line}: {msg}")


@dataclass
class Dockerfile:
    escape: str
    instructions: list[Instruction]


def parse(text: str) -> Dockerfile:
    lines = text.replace("\r\n", "\n").split("\n")
    escape = "\\"
    seen: set[str] = set()
    start = 0
    for i, raw in enumerate(lines):
        m = _DIRECTIVE.match(raw.strip())
        if not m:
            break
        key = m.group(1).lower()
        if key not in ("escape", "syntax", "check"):
            break
        if key in seen:
            raise InvalidParameter(f"only one {key} parser directive can be used")
        seen.add(key)
        if key == "escape":
            if m.group(2) not in ("\\", "`"):
                raise InvalidParameter(f"invalid escape token '{m.group(2)}' does not match ` or \\")
            escape = m.group(2)
        start = i + 1
    out: list[Instruction] = []
    i = start
    cont = re.compile(re.escape(escape) + r"[ \t]*$")
    while i < len(lines):
        raw = lines[i]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        first = i + 1
        parts: list[str] = []
        cur = raw.lstrip()
        while True:
            m = cont.search(cur)
            if not m:
                parts.append(cur)
                i += 1
                break
            parts.append(cur[: m.start()])
            i += 1
            # following lines: comments and blank lines inside a continuation are skipped
            while i < len(lines) and (not lines[i].strip() or lines[i].strip().startswith("#")):
                i += 1
            if i >= len(lines):
                break
            cur = lines[i]
        joined = "".join(parts)
        out.append(parse_instruction(first, joined))
    return Dockerfile(escape, out)


def parse_instruction(line: int, text: str) -> Instruction:
    """One instruction from its text (continuations already joined)."""
    text = text.strip()
    m = re.match(r"(\S+)\s*(.*)$", text, re.S)
    assert m is not None
    word, rest = m.group(1), m.group(2)
    name = word.lower()
    if name not in INSTRUCTIONS:
        raise InvalidParameter(f"dockerfile parse error line {line}: unknown instruction: {word.upper()}")
    inst = Instruction(line, name, text, rest)
    if name != "onbuild":
        while True:
            fm = re.match(r"--([A-Za-z0-9-]+)(?:=(\S*))?(?:\s+|$)", inst.rest)
            if not fm:
                break
            inst.flags[fm.group(1)] = fm.group(2) if fm.group(2) is not None else ""
            inst.rest = inst.rest[fm.end():]
    inst.rest = inst.rest.strip()
    if name in JSON_FORM and inst.rest.startswith("["):
        try:
            value = json.loads(inst.rest)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            inst.json = value
    _validate(inst)
    return inst


def _validate(inst: Instruction) -> None:
    n = inst.name
    words = parse_words(inst.rest)
    if n == "from":
        if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
            raise inst.error("FROM requires either one or three arguments")
    elif n in ("run", "cmd", "entrypoint", "shell", "onbuild", "maintainer", "workdir", "user",
               "stopsignal", "expose", "volume", "label", "env", "arg", "healthcheck"):  # fmt: skip
        if not inst.rest and n not in ("cmd", "entrypoint", "run"):
            raise inst.error(f"{n.upper()} requires at least one argument" if n not in (
                "workdir", "user", "stopsignal", "maintainer") else f"{n.upper()} requires exactly one argument")
        if n == "run" and not inst.rest:
            raise inst.error("RUN requires at least one argument")
        if n == "shell" and inst.json is None:
            raise inst.error("SHELL requires the arguments to be in JSON form")
        if n in ("workdir", "stopsignal") and len(words) != 1:
            raise inst.error(f"{n.upper()} requires exactly one argument")
        if n == "env":
            parse_kv(inst, "ENV")
        if n == "label":
            parse_kv(inst, "LABEL")
        if n == "arg" and len(words) != 1:
            raise inst.error("ARG requires exactly one argument")
        if n == "onbuild":
            trig = inst.rest.split(None, 1)[0].lower() if inst.rest else ""
            if trig in ("onbuild",):
                raise inst.error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
            if trig in ("maintainer", "from"):
                raise inst.error(f"{trig.upper()} isn't allowed as an ONBUILD trigger")
    elif n in ("copy", "add"):
        args = inst.json if inst.json is not None else words
        if len(args) < 2:
            raise inst.error(f"{n.upper()} requires at least two arguments, but only one was provided. "
                             "Destination could not be determined.")  # fmt: skip


def parse_words(text: str) -> list[str]:
    """moby's parseWords: split on blanks outside quotes (backslash escapes kept), quotes kept."""
    words: list[str] = []
    cur: list[str] = []
    quote = ""
    blank = True
    i = 0
    while i < len(text):
        ch = text[i]
        if blank:
            if ch.isspace():
                i += 1
                continue
            blank = False
        if not quote and ch.isspace():
            words.append("".join(cur))
            cur, blank = [], True
            i += 1
            continue
        if ch == "\\" and i + 1 < len(text):
            cur.append(ch + text[i + 1])
            i += 2
            continue
        if quote and ch == quote:
            quote = ""
        elif not quote and ch in ("'", '"'):
            quote = ch
        cur.append(ch)
        i += 1
    if not blank:
        words.append("".join(cur))
    return words


def parse_kv(inst: Instruction, what: str) -> list[tuple[str, str]]:
    """(key, raw value) pairs of ENV or LABEL; values still quoted (substitute them later)."""
    words = parse_words(inst.rest)
    if not words:
        raise inst.error(f"{what} requires at least one argument")
    if "=" not in words[0]:
        # legacy form: KEY value with spaces
        parts = re.split(r"\s+", inst.rest.strip(), maxsplit=1)
        if len(parts) < 2 or not parts[1]:
            raise inst.error(f"{what} must have two arguments")
        return [(parts[0], parts[1])]
    out = []
    for w in words:
        if "=" not in w:
            raise inst.error(f"Syntax error - can't find = in \"{w}\". Must be of the form: name=value")
        k, v = w.split("=", 1)
        if not k:
            raise inst.error(f"{what} names can not be blank")
        out.append((k, v))
    return out
