"""JSON for the runtime's hot path, straight from the C accelerator `_json`.

`import json` pulls in `re` and costs ~10 ms per runtime invocation; `_json` alone costs nothing
measurable. `loads` accepts exactly what `json.loads` accepts for configs and state files;
`dumps` writes compact JSON, `dumps_pretty` the tab- or space-indented form runc prints.
"""

from __future__ import annotations

import _json


class _Ctx:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # NaN, Infinity, -Infinity
    memo: dict = {}


_scan = _json.make_scanner(_Ctx())
_encode = _json.make_encoder(None, None, _json.encode_basestring_ascii, None, ":", ",", False, False, True)
_WS = " \t\n\r"


def loads(s: str | bytes) -> object:
    """Parse one JSON document. Raises ValueError with the position on bad input."""
    if isinstance(s, bytes | bytearray):
        s = s.decode()  # (not "utf-8-sig": that codec is a module import of its own)
    if s.startswith("\ufeff"):
        s = s[1:]
    i = 0
    n = len(s)
    while i < n and s[i] in _WS:
        i += 1
    try:
        obj, end = _scan(s, i)
    except StopIteration as e:
        raise ValueError(f"invalid JSON: expecting value at char {e.value}") from None
    while end < n and s[end] in _WS:
        end += 1
    if end != n:
        raise ValueError(f"invalid JSON: extra data at char {end}")
    return obj


def dumps(obj: object) -> str:
    """Compact JSON (no spaces), ASCII-safe."""
    return "".join(_encode(obj, 0))


def dumps_pretty(obj: object, indent: str = "  ", _level: int = 0) -> str:
    """Indented JSON like `json.dumps(obj, indent=...)`."""
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        pad = indent * (_level + 1)
        items = [f"{pad}{_json.encode_basestring_ascii(str(k))}: {dumps_pretty(v, indent, _level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent * _level + "}"
    if isinstance(obj, list | tuple):
        if not obj:
            return "[]"
        pad = indent * (_level + 1)
        return "[\n" + ",\n".join(pad + dumps_pretty(v, indent, _level + 1) for v in obj) + "\n" + indent * _level + "]"
    return dumps(obj)
