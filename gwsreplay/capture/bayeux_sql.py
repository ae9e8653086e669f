"""Bayeux message explosion and classification in DuckDB (the writer's hot path).

The writer thread stages one row per Bayeux *body* (a long-poll request or
response, or a WebSocket frame) as an Arrow table ``_bayeux_bodies`` and
``sql/bayeux_insert.sql`` turns it into one ``bayeux_messages`` row per array element:
it unnests the array, parses every message once with ``json_transform`` and classifies
it by the rule table of :mod:`gwsreplay.core.notifications`, compiled here into SQL
(the Python classifier, :func:`gwsreplay.capture.classify.classify_bayeux`, evaluates
the same table; a differential test holds the two equal). Doing this in DuckDB's C++
instead of per-message Python is what lets the writer ingest well over 100,000 messages/s.

Message ``i`` of a staged body gets position ``pos0 + i`` and id ``$base + rank in
(seq, i) order`` (the writer binds ``base``).
"""

from __future__ import annotations

import pyarrow as pa

from gwsreplay.capture import sqlfiles
from gwsreplay.capture.arrow import rows_to_table
from gwsreplay.capture.schema import BAYEUX_MESSAGES, Columns, row_type
from gwsreplay.core import notifications as N
from gwsreplay.core.sqltext import sql_list, sql_literal
from gwsreplay.core.uris import id_from_uri_sql


#: One Bayeux body waiting for the SQL (a row of ``_bayeux_bodies``): seq (row number in the
#: batch), pos0 (position of its first message), ts (µs), where it was seen, who sent or got it,
#: and body (a JSON array of objects, not parsed in Python on the fast path).
STAGE_COLUMNS: Columns = [
    ("seq", "BIGINT"), ("pos0", "INTEGER"), ("ts", "TIMESTAMP"), ("direction", "VARCHAR"),
    ("transport", "VARCHAR"), ("exchange_id", "BIGINT"), ("flow_id", "VARCHAR"), ("frame_index", "INTEGER"),
    ("user_name", "VARCHAR"), ("session_key", "VARCHAR"), ("body", "VARCHAR"),
]
StagedBody = row_type("StagedBody", STAGE_COLUMNS)

#: The item columns (the interaction inside a WorkbinStateChangeMessage) this capture schema has:
#: notifications.ITEM_FIELDS once gwsreplay.capture.schema declares them, none before.
ITEM_COLUMNS: tuple[str, ...] = tuple(f for f in N.ITEM_FIELDS if f in dict(BAYEUX_MESSAGES))


# ----------------------------------------------------------------------------- rules -> SQL

def _sql(e, r: N.Rule) -> str:
    """SQL of a rule expression or condition over ``v`` (the rule's values), ``channel``, ``h``."""
    if isinstance(e, N.Val):
        return f"v[{r.paths().index(e.path) + 1}]"
    if isinstance(e, N.Uri):
        return id_from_uri_sql(f"v[{r.paths().index(e.path) + 1}]")
    if isinstance(e, N.Lit):
        return sql_literal(e.value)
    if isinstance(e, N.Ref):
        return _sql(r.expr(e.field), r)
    if isinstance(e, N.First):
        parts = [_sql(x, r) for x in e.options]
        return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"
    if isinstance(e, N.Case):
        whens = " ".join(f"WHEN {_sql(c, r)} THEN {_sql(x, r)}" for c, x in e.branches)
        default = f" ELSE {_sql(e.default, r)}" if e.default is not None else ""
        return f"CASE {whens}{default} END"
    if isinstance(e, N.Present):
        return f"({_sql(e.expr, r)}) IS NOT NULL"
    if isinstance(e, N.IsObject):
        return f"json_type(data_json, {sql_literal('$.' + e.path)}) = 'OBJECT'"
    if isinstance(e, N.IsHex16):
        return f"regexp_full_match({_sql(e.expr, r)}, '[0-9a-fA-F]{{16}}')"
    if isinstance(e, N.Equals):
        return f"({_sql(e.expr, r)}) = {sql_literal(e.value)}"
    if isinstance(e, N.OnChannel):
        return f"channel = {sql_literal(e.channel)}"
    if isinstance(e, N.NotificationIs):
        return f"h[2] = {sql_literal(e.value)}"
    if isinstance(e, N.AnyOf):
        return "(" + " OR ".join(f"({_sql(c, r)})" for c in e.conds) + ")"
    if isinstance(e, N.Not):
        return f"NOT coalesce(({_sql(e.cond, r)}), false)"
    raise TypeError(f"not a rule expression: {e!r}")


def _kind_sql() -> str:
    """The rule of a message: the first naming its messageType (or its channel)."""
    whens = ["WHEN h IS NULL THEN NULL"]
    for r in N.RULES:
        cond = f"mt IN ({sql_list(r.message_types)})"
        if r.channel is not None:
            cond += f" OR channel = {sql_literal(r.channel)}"
        whens.append(f"WHEN {cond} THEN {sql_literal(r.kind)}")
    return "CASE " + "\n        ".join(whens) + " END"


def _values_sql() -> str:
    """Per rule, the data paths it reads, in one json_extract_string call."""
    whens = [f"WHEN {sql_literal(r.kind)} THEN json_extract_string(data_json, "
             f"[{sql_list('$.' + p for p in r.paths())}])" for r in N.RULES if r.paths()]
    return "CASE kind " + "\n        ".join(whens) + " END"


def _field_sql(name: str) -> str:
    whens = [f"WHEN {sql_literal(r.kind)} THEN {_sql(e, r)}" for r in N.RULES if (e := r.expr(name)) is not None]
    return "CASE kind " + "\n        ".join(whens) + " END" if whens else "NULL"


def insert_sql(item_columns: tuple[str, ...] = ()) -> str:
    """The INSERT of sql/bayeux_insert.sql, filled with the rules (and the item columns wanted)."""
    columns = [f for f in N.FIELDS if f not in N.ITEM_FIELDS or f in item_columns]
    classified = "\n    ".join(f"{_field_sql(c)} AS {c}," for c in columns)
    return sqlfiles.fill(sqlfiles.load("bayeux_insert.sql"), kind=_kind_sql(), values=_values_sql(),
                         classified=classified)


INSERT_SQL = insert_sql(ITEM_COLUMNS)


def stage_table(rows: list) -> pa.Table:
    """Staged bodies (``StagedBody`` rows) as the Arrow table ``_bayeux_bodies``."""
    return rows_to_table(STAGE_COLUMNS, rows)
