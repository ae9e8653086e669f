"""Numbers as people read them: rounded milliseconds, one-decimal percentages, thousands separators.

Used by the report's headline and by the notebooks' tables (``notebook.setup`` registers
:func:`frame_html` as the HTML view of a DataFrame), so a p99 reads ``1,234 ms`` and not
``1234.0000001``.
"""

from __future__ import annotations

import math
from datetime import datetime

import pandas as pd


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def ms(value: float | None) -> str:
    """``4.2 ms`` below 10 ms, ``123 ms``, ``12,345 ms``; ``–`` when there is no value."""
    if _missing(value):
        return "–"
    return f"{value:,.1f} ms" if abs(value) < 10 else f"{value:,.0f} ms"


def pct(value: float | None) -> str:
    """``12.3 %``."""
    return "–" if _missing(value) else f"{value:,.1f} %"


def count(value: int | None) -> str:
    """``12,345``."""
    return "–" if _missing(value) else f"{int(value):,}"


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 operation``, ``1,234 operations``."""
    return f"{count(n)} {word if n == 1 else (words or word + 's')}"


def duration(seconds: float | None) -> str:
    """``850 ms``, ``6.2 s``, ``4 min 05 s``, ``2 h 03 min``."""
    if _missing(seconds):
        return "–"
    if seconds < 1:
        return ms(seconds * 1000)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def timestamp(value: datetime | None) -> str:
    """``2024-05-06 10:00:00.123`` (milliseconds, the capture's UTC)."""
    if _missing(value) or value is pd.NaT:
        return "–"
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _is_id(column: str) -> bool:
    name = str(column).lower()
    return name == "id" or name.endswith("_id")


def _float(value) -> str:
    return "" if _missing(value) else f"{value:,.1f}"


def _int(value) -> str:
    return "" if _missing(value) else f"{int(value):,}"


def _plain_number(value) -> str:
    return "" if _missing(value) else f"{value:.0f}" if isinstance(value, float) else str(value)


def _delta(value) -> str:
    return "" if _missing(value) or value is pd.NaT else duration(pd.Timedelta(value).total_seconds())


def formatters(df: pd.DataFrame) -> dict:
    """Per column: floats with one decimal and separators, integers with separators, ids as they are,
    time spans in words."""
    out = {}
    for col, dtype in df.dtypes.items():
        if _is_id(col) and pd.api.types.is_numeric_dtype(dtype):
            out[col] = _plain_number
        elif pd.api.types.is_bool_dtype(dtype):
            continue
        elif pd.api.types.is_integer_dtype(dtype):
            out[col] = _int
        elif pd.api.types.is_float_dtype(dtype):
            out[col] = _float
        elif pd.api.types.is_timedelta64_dtype(dtype):
            out[col] = _delta
    return out


def frame_html(df: pd.DataFrame, max_rows: int = 200) -> str:
    """A DataFrame as the HTML table a notebook shows, with the numbers rounded for people."""
    return df.to_html(formatters=formatters(df), max_rows=max_rows, border=0,
                      na_rep="", notebook=True)
