"""Rows -> Arrow tables in a capture table's column order (the writer's batches).

Kept apart from the writer so that every module staging rows for DuckDB (the writer,
the Bayeux SQL) can use it without importing the writer.
"""

from __future__ import annotations

from typing import Any, Sequence

import pyarrow as pa

from gwsreplay.capture.schema import Columns, arrow_schema


def _string_array(values: Any) -> pa.Array:
    """Strings (str or UTF-8 bytes) -> large_string; via binary, much faster for big bodies."""
    vals = [v.encode("utf-8", "replace") if type(v) is str else v for v in values]
    try:
        return pa.array(vals, pa.large_binary()).cast(pa.large_string())
    except (pa.ArrowException, TypeError, ValueError):
        fixed = [None if v is None else
                 (v.decode("utf-8", "replace") if type(v) is bytes else
                  v if type(v) is str else str(v)).encode("utf-8", "replace")
                 for v in values]
        return pa.array(fixed, pa.large_binary()).cast(pa.large_string())


def rows_to_table(columns: Columns, rows: Sequence[tuple]) -> pa.Table:
    """Rows (tuples or the named rows of gwsreplay.capture.schema, in column order) -> Arrow."""
    arrow = arrow_schema(columns)
    cols = list(zip(*rows)) if rows else [()] * len(columns)
    arrays = []
    for (name, typ), values, fld in zip(columns, cols, arrow):
        if typ == "TIMESTAMP":
            arrays.append(pa.array(values, pa.int64()).cast(fld.type))
        elif fld.type == pa.large_string():
            arrays.append(_string_array(values))
        else:
            try:
                arrays.append(pa.array(values, fld.type))
            except (pa.ArrowException, OverflowError, TypeError, ValueError):
                lim = 2**31 - 1 if fld.type == pa.int32() else 2**63 - 1
                vals = [v if (v is None or (type(v) in (int, bool) and -lim <= v <= lim)) else None
                        for v in values]
                arrays.append(pa.array(vals, fld.type))
    return pa.Table.from_arrays(arrays, schema=arrow)
