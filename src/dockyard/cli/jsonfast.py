"""JSON for the CLI without importing `json` (which pulls in `re`, ~10 ms of start-up).

Owns: `loads` (CPython's C scanner from `_json`, driven directly), `dumps` (Go's encoding/json
style: compact, UTF-8 kept, no HTML escaping — what the Docker CLI's `{{json}}` prints), and
`dumps_indent` (4-space indentation as `docker inspect` prints, key order kept).
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class _Context:
    strict = False
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return float(name.replace("Infinity", "inf"))


_scan = _json.make_scanner(_Context())
_WS = " \t\n\r"


class JSONError(ValueError):
    pass


def loads(text: str | bytes) -> Any:
    if isinstance(text, bytes | bytearray):
        text = text.decode("utf-8", "replace")
    i = 0
    n = len(text)
    while i < n and text[i] in _WS:
        i += 1
    try:
        value, end = _scan(text, i)
    except StopIteration as e:
        raise JSONError(f"invalid JSON at offset {e.value}: {text[:80]!r}") from None
    while end < n and text[end] in _WS:
        end += 1
    if end != n:
        raise JSONError(f"extra data at offset {end}: {text[:80]!r}")
    return value


def _str(s: str) -> str:
    out = _json.encode_basestring(s)
    if "\u2028" in out or "\u2029" in out:
        out = out.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return out


def escape_html(text: str) -> str:
    """What Go's json.Marshal does to <, > and & (HTML-safe escapes) in encoded JSON text."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _num(v: float) -> str:
    if v != v or v in (float("inf"), float("-inf")):
        raise JSONError(f"json: unsupported value: {v}")
    if v == int(v) and abs(v) < 1e21:
        return str(int(v))
    text = repr(v)
    return text


def _encode(v: Any, parts: list[str], indent: str | None, level: int, sort_keys: bool) -> None:
    if isinstance(v, str):
        parts.append(_str(v))
    elif v is None:
        parts.append("null")
    elif v is True:
        parts.append("true")
    elif v is False:
        parts.append("false")
    elif isinstance(v, int):
        parts.append(str(v))
    elif isinstance(v, float):
        parts.append(_num(v))
    elif isinstance(v, dict):
        if not v:
            parts.append("{}")
            return
        items = sorted(v.items()) if sort_keys else v.items()
        if indent is None:
            parts.append("{")
            first = True
            for k, item in items:
                if not first:
                    parts.append(",")
                first = False
                parts.append(_str(str(k)))
                parts.append(":")
                _encode(item, parts, None, 0, sort_keys)
            parts.append("}")
        else:
            pad = "\n" + indent * (level + 1)
            parts.append("{")
            first = True
            for k, item in items:
                parts.append(pad if first else "," + pad)
                first = False
                parts.append(_str(str(k)))
                parts.append(": ")
                _encode(item, parts, indent, level + 1, sort_keys)
            parts.append("\n" + indent * level + "}")
    elif isinstance(v, list | tuple):
        if not v:
            parts.append("[]")
            return
        if indent is None:
            parts.append("[")
            for idx, item in enumerate(v):
                if idx:
                    parts.append(",")
                _encode(item, parts, None, 0, sort_keys)
            parts.append("]")
        else:
            pad = "\n" + indent * (level + 1)
            parts.append("[")
            for idx, item in enumerate(v):
                parts.append(pad if idx == 0 else "," + pad)
                _encode(item, parts, indent, level + 1, sort_keys)
            parts.append("\n" + indent * level + "]")
    elif hasattr(v, "to_json"):
        _encode(v.to_json(), parts, indent, level, sort_keys)
    else:
        parts.append(_str(str(v)))


def dumps(v: Any, sort_keys: bool = False) -> str:
    parts: list[str] = []
    _encode(v, parts, None, 0, sort_keys)
    return "".join(parts)


def dumps_indent(v: Any, indent: str = "    ") -> str:
    parts: list[str] = []
    _encode(v, parts, indent, 0, False)
    return "".join(parts)
