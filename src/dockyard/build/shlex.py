"""Variable substitution in Dockerfile words, as moby's shell lexer does it.

    process_word(word, env, escape="\\") -> str         one word, quotes removed
    process_words(text, env, escape="\\") -> [str]      split on unquoted blanks, then as above

Understood: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:+alt}`, `${VAR+alt}`,
`${VAR:?message}`; single quotes are literal; in double quotes the escape character escapes only
`"`, `$` and itself; outside quotes it escapes any character (an escaped `$` stays a `$`). An
unset variable is the empty string. `env` is a mapping of names to values.
"""

from __future__ import annotations

from collections.abc import Mapping

from dockyard.errors import InvalidParameter


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str) -> None:
        self.s, self.i, self.env, self.esc = text, 0, env, escape

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def next(self) -> str:
        ch = self.peek()
        self.i += 1
        return ch

    # --- words ------------------------------------------------------------------------------------
    def words(self, split: bool) -> list[str]:
        out: list[str] = []
        cur: list[str] = []
        started = False
        while self.i < len(self.s):
            ch = self.peek()
            if split and ch in " \t\r\n":
                self.i += 1
                if started:
                    out.append("".join(cur))
                    cur, started = [], False
                continue
            started = True
            if ch == self.esc:
                self.i += 1
                nxt = self.next()
                cur.append(nxt if nxt else self.esc)
            elif ch == "'":
                self.i += 1
                cur.append(self.single())
            elif ch == '"':
                self.i += 1
                cur.append(self.double())
            elif ch == "$":
                self.i += 1
                cur.append(self.dollar())
            else:
                self.i += 1
                cur.append(ch)
        if started:
            out.append("".join(cur))
        return out

    def single(self) -> str:
        end = self.s.find("'", self.i)
        if end < 0:
            raise InvalidParameter("unexpected end of statement while looking for matching single-quote")
        text, self.i = self.s[self.i:end], end + 1
        return text

    def double(self) -> str:
        out: list[str] = []
        while True:
            ch = self.next()
            if ch == "":
                raise InvalidParameter("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                return "".join(out)
            if ch == self.esc:
                nxt = self.peek()
                if nxt in ('"', "$", self.esc) and nxt:
                    out.append(self.next())
                else:
                    out.append(ch)
            elif ch == "$":
                out.append(self.dollar())
            else:
                out.append(ch)

    def name(self) -> str:
        start = self.i
        while self.i < len(self.s) and (self.s[self.i].isalnum() or self.s[self.i] == "_"):
            self.i += 1
        return self.s[start:self.i]

    def dollar(self) -> str:
        ch = self.peek()
        if ch == "{":
            self.i += 1
            name = self.name()
            if not name:
                raise InvalidParameter("missing ':' in substitution" if self.peek() != "}" else "bad substitution")
            ch = self.next()
            if ch == "}":
                return self.env.get(name, "")
            colon = False
            if ch == ":":
                colon = True
                ch = self.next()
            if ch not in ("-", "+", "?"):
                raise InvalidParameter(f"unsupported modifier ({ch}) in substitution")
            word = self.until_brace()
            value = self.env.get(name)
            is_set = value is not None and (value != "" or not colon)
            if ch == "-":
                return value if is_set else word  # type: ignore[return-value]
            if ch == "+":
                return word if is_set else ""
            if not is_set:
                raise InvalidParameter(f"{name}: {word or 'is not allowed to be unset'}")
            return value  # type: ignore[return-value]
        name = self.name()
        if not name:
            return "$"
        return self.env.get(name, "")

    def until_brace(self) -> str:
        out: list[str] = []
        while True:
            ch = self.next()
            if ch == "":
                raise InvalidParameter("syntax error: missing '}'")
            if ch == "}":
                return "".join(out)
            if ch == self.esc:
                out.append(self.next())
            elif ch == "$":
                out.append(self.dollar())
            elif ch == "'":
                out.append(self.single())
            elif ch == '"':
                out.append(self.double())
            else:
                out.append(ch)


def process_word(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    return "".join(_Lexer(word, env, escape).words(split=False))


def process_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    return _Lexer(text, env, escape).words(split=True)
