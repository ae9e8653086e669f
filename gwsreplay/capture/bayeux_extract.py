"""Lenient Bayeux decoding for recording: never raises, recovers what it can.

``decode(text)`` returns ``(messages, error, rest)``:

* ``messages`` - every complete JSON object found (an array's elements, or a single object);
* ``error`` - None when the body was a well-formed Bayeux array/object, else why not
  (invalid JSON, truncated array, an element that is not an object, ...);
* ``rest`` - the damaged body text (for the ``raw`` column), or None when it was clean.

gwsreplay.core.bayeux decodes strictly (a client must refuse a bad body); a recorder
keeps what it can, hence this decoder.
"""

from __future__ import annotations

import json
from typing import Any

_decoder = json.JSONDecoder()
_WS = " \t\r\n"


def _local_decode(text: str) -> tuple[list[Any], str | None, str | None]:
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return _recover(text, f"invalid JSON: {exc}")
    if isinstance(obj, dict):
        return [obj], None, None
    if isinstance(obj, list):
        bad = [i for i, m in enumerate(obj) if not isinstance(m, dict)]
        if bad:
            return obj, f"elements {bad[:5]} are not objects", None
        return obj, None, None
    return [], f"not a Bayeux message: JSON {type(obj).__name__}", None


def _recover(text: str, error: str) -> tuple[list[Any], str | None, str | None]:
    """Salvage the complete leading objects of a truncated or damaged array."""
    i = 0
    n = len(text)
    while i < n and text[i] in _WS:
        i += 1
    if i >= n:
        return [], "empty body", None
    out: list[Any] = []
    if text[i] == "[":
        i += 1
    while i < n:
        while i < n and text[i] in _WS + ",":
            i += 1
        if i >= n or text[i] == "]":
            break
        try:
            obj, end = _decoder.raw_decode(text, i)
        except (ValueError, RecursionError):
            return out, error, text[i:]
        out.append(obj)
        i = end
    return out, error, None


def decode(text: str) -> tuple[list[Any], str | None, str | None]:
    """Lenient decode; when the body is damaged, ``rest`` is the whole text (for the raw column)."""
    msgs, err, _ = _local_decode(text)
    return msgs, err, (text if err else None)
