"""SQL text from Python values, for the few places DuckDB cannot bind a parameter.

DuckDB binds values in queries (``?``, ``$name``), but not in view definitions,
``ATTACH``/``COPY`` file names or DDL. There, a value goes in as a string literal
built here, once, so that a quote in a path or a name cannot end the literal.
"""

from __future__ import annotations

from typing import Iterable


def sql_literal(value: object) -> str:
    """``value`` as an SQL string literal: ``O'Brien`` -> ``'O''Brien'``."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_list(values: Iterable[object]) -> str:
    """Comma-separated string literals, for ``IN (...)``: ``'a', 'b'``."""
    return ", ".join(sql_literal(v) for v in values)
