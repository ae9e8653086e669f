"""Resource ids in GWS URIs and JSON values as text: one definition for Python and SQL.

A notification or a request names a resource by URI or path (``callUri``,
``deviceUri``, ``parentCallPath``...); its id is the last path segment. The capture
classifies in Python and in DuckDB, so the rule is given here both ways, from the
same regular expression (valid for Python's ``re`` and for DuckDB's RE2).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

from gwsreplay.core.sqltext import sql_literal

#: The last path segment of a uri or path, before any query or fragment.
ID_FROM_URI_PATTERN = r"/([^/?#]+)/?(?:[?#].*)?$"
_ID_FROM_URI = re.compile(ID_FROM_URI_PATTERN)


def jtext(v: Any) -> str | None:
    """A JSON value as DuckDB renders it into VARCHAR (json_transform, json_extract_string):
    strings as they are, numbers and booleans as JSON text, objects and arrays as compact JSON."""
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def id_from_uri(uri: Any) -> str | None:
    """Last path segment of a uri or path ("http://h/api/v2/calls/ID" -> "ID"), URL-decoded."""
    uri = jtext(uri)
    if not uri:
        return None
    m = _ID_FROM_URI.search(uri)
    return unquote(m.group(1)) if m else None


def resource_id(value: Any) -> str | None:
    """The id a request names: the last segment of a URI or path, or the value itself when it is
    a bare id (bodies carry both forms: ``"otherCallUri": ".../calls/ID"`` and ``"ID"``)."""
    text = jtext(value)
    if not text:
        return None
    return id_from_uri(text) if "/" in text else text


def id_from_uri_sql(expr: str) -> str:
    """The SQL (DuckDB) of :func:`id_from_uri` applied to the VARCHAR expression ``expr``."""
    return f"url_decode(nullif(regexp_extract({expr}, {sql_literal(ID_FROM_URI_PATTERN)}, 1), ''))"
