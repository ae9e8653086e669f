"""Bayeux rows made in Python: small live batches, and bodies DuckDB rejected.

The writer's bulk path classifies Bayeux bodies in DuckDB (gwsreplay.capture.bayeux_sql).
Two cases are done here instead, with the same rules (gwsreplay.core.notifications,
through gwsreplay.capture.classify): a live batch of a few bodies, for which planning
the SQL would cost more than classifying in Python (:func:`python_bayeux_rows`), and a
body DuckDB refused to parse, whose complete messages are salvaged and whose damage is
recorded (:func:`recover_staged`, :func:`patch_exchanges`).
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from gwsreplay.capture import bayeux_extract, schema
from gwsreplay.capture.arrow import rows_to_table
from gwsreplay.capture.bayeux_sql import StagedBody
from gwsreplay.core.bayeux_classify import classify_bayeux
from gwsreplay.capture.records import dumps, fix_surrogates
from gwsreplay.capture.rows import Where, error_message_row
from gwsreplay.capture.schema import BayeuxMessageRow, ExchangeRow


_ENVELOPE_KEYS = frozenset(("channel", "clientId", "id", "successful", "error", "advice", "connectionType",
                            "subscription", "ext", "data"))


class _NotPlain(Exception):
    """A body the Python path leaves to DuckDB (floats: DuckDB renders them its own way)."""


def _no_float(text: str) -> float:
    raise _NotPlain(text)


def python_bayeux_rows(staged: list[StagedBody]) -> list[BayeuxMessageRow] | None:
    """``bayeux_messages`` rows (id None) for staged bodies, classified in Python exactly as
    the DuckDB statement of gwsreplay.capture.bayeux_sql would; None when any body is not plain
    (not a JSON array of objects, floats, NaN, lone surrogate escapes): those go to DuckDB."""
    out: list[BayeuxMessageRow] = []
    for sb in staged:
        body = sb.body
        if b"\\ud" in body or b"\\uD" in body:
            return None
        try:
            items = json.loads(body, parse_float=_no_float, parse_constant=_no_float)
        except (ValueError, RecursionError, _NotPlain):
            return None
        if type(items) is not list:
            return None
        for i, m in enumerate(items):
            if type(m) is not dict:
                return None
            c = classify_bayeux(m)
            rest = {k: v for k, v in m.items() if k not in _ENVELOPE_KEYS}
            extra = dumps(rest) if rest else None
            values = {
                "ts": sb.ts, "direction": sb.direction, "transport": sb.transport, "exchange_id": sb.exchange_id,
                "flow_id": sb.flow_id, "frame_index": sb.frame_index, "position": sb.pos0 + i,
                "advice": None if c.advice is None else dumps(c.advice),
                "ext": None if c.ext is None else dumps(c.ext),
                "data": None if c.data is None else dumps(c.data),
                "extra": extra, "user_name": sb.user_name, "session_key": sb.session_key,
                "parse_error": "message has no channel" if m.get("channel") is None else None,
            }
            out.append(BayeuxMessageRow(**{col: values[col] if col in values else getattr(c, col, None)
                                           for col in BayeuxMessageRow._fields}))
    return out


def patch_exchanges(tbl: pa.Table, fixes: dict[tuple[Any, str], tuple[str, str]]) -> pa.Table:
    """Put the raw text and the error of rejected Bayeux bodies back on their exchange."""
    rows = tbl.to_pylist()
    for row in rows:
        for direction, side in (("c2s", "request"), ("s2c", "response")):
            fix = fixes.get((row["id"], direction))
            if fix is not None and row[f"{side}_body_encoding"] == "bayeux":
                text, err = fix
                row[f"{side}_body_text"] = text
                row[f"{side}_body_encoding"] = "text"
                row[f"{side}_body_error"] = err
    names = [c for c, _ in schema.EXCHANGES]
    ts_cols = {c for c, typ in schema.EXCHANGES if typ == "TIMESTAMP"}
    table = rows_to_table(schema.EXCHANGES, [ExchangeRow(**{c: None if c in ts_cols else r[c] for c in names})
                                             for r in rows])
    # to_pylist turned timestamps into datetimes: take the original columns back
    for c, typ in schema.EXCHANGES:
        if typ == "TIMESTAMP":
            table = table.set_column(names.index(c), c, tbl.column(c))
    return table


def recover_staged(row: StagedBody, max_body: int
                   ) -> tuple[list[StagedBody], list[BayeuxMessageRow], tuple[str, str]]:
    """A staged Bayeux body DuckDB could not parse: salvage its complete messages (re-staged as
    one JSON array DuckDB accepts), describe the damage in an error row, and return the
    (raw text, error) its exchange should show."""
    body = row.body
    text = body.decode("utf-8", "replace") if type(body) is bytes else str(body)
    msgs, err, rest = bayeux_extract.decode(fix_surrogates(text))
    good = [m for m in msgs if type(m) is dict]
    restaged, errors = [], []
    if good and len(good) == len(msgs):
        clean = fix_surrogates(json.dumps(good, ensure_ascii=True, separators=(",", ":"), default=str))
        restaged.append(row._replace(body=clean.encode("ascii")))
    elif msgs:
        err = (err + "; " if err else "") + "elements are not all objects"
    if err is None and not restaged:
        err = "DuckDB rejected the JSON of this body"
    if err is not None:
        where = Where(row.direction, row.ts, row.exchange_id, row.flow_id, row.frame_index, row.transport)
        errors.append(error_message_row(where, row.pos0 + len(good), row.user_name, row.session_key, err[:500],
                                        (rest or text)[:max_body]))
    return restaged, errors, (text[:max_body], err or "JSON rejected by DuckDB (repaired)")
