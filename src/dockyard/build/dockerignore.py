"""`.dockerignore` with Docker's semantics (moby/patternmatcher), standard library only: the CLI
uses it to pack a context and the daemon applies it again to what it receives.

    read_patterns(text) -> [str]           comments, blanks dropped; cleaned; '!' kept in front
    Matcher(patterns).excluded(path) -> bool  path relative to the context, '/' separated
    Matcher.has_exceptions                 whether any '!' pattern exists (walk excluded dirs then)

A pattern matches a path or any of its parent directories; the last matching pattern wins, and
a `!` pattern re-includes. `*` and `?` do not cross `/`, `**` matches any number of directories,
`[...]` is a character class, the escape `\\` quotes the next character.
"""

from __future__ import annotations

import posixpath
import re


def read_patterns(text: str) -> list[str]:
    out: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        p = line.strip()
        if not p:
            continue
        invert = p.startswith("!")
        if invert:
            p = p[1:].strip()
        if p:
            p = posixpath.normpath(p)
            if len(p) > 1 and p.startswith("/"):
                p = p.lstrip("/") or "/"
        out.append(("!" if invert else "") + p)
    return out


def _regex(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 2
                if i < n and pattern[i] == "/":
                    i += 1
                    out.append("(.*/)?")
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1:end]
                if body.startswith("^") or body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    try:
        return re.compile("".join(out), re.S)
    except re.error:
        from dockyard.errors import InvalidParameter

        raise InvalidParameter(f"syntax error in pattern: {pattern}") from None


class Matcher:
    def __init__(self, patterns: list[str]) -> None:
        self.rules: list[tuple[bool, re.Pattern[str]]] = []
        for p in patterns:
            neg = p.startswith("!")
            body = p[1:] if neg else p
            if not body:
                continue
            self.rules.append((neg, _regex(body)))
        self.has_exceptions = any(neg for neg, _ in self.rules)

    def excluded(self, path: str) -> bool:
        path = posixpath.normpath(path).lstrip("/")
        parents: list[str] = []
        p = posixpath.dirname(path)
        while p and p != ".":
            parents.append(p)
            p = posixpath.dirname(p)
        matched = False
        for neg, rx in self.rules:
            hit = bool(rx.match(path)) or any(rx.match(q) for q in parents)
            if hit:
                matched = not neg
        return matched
