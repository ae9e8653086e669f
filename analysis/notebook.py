"""The one call a notebook makes before its analysis.

``setup`` does what every notebook used to repeat in its own setup cell: plotly's MIME
renderer, pandas display options and tables with numbers rounded for people, the capture
path resolved against the notebook's folder, the capture opened read-only, and the
``Scope`` its TIME_FROM / TIME_TO / AGENT parameters select. Interactively it shows what
was opened; the report hides the setup cell and shows the capture once, in its headline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pandas as pd
from IPython import get_ipython
from IPython.display import Markdown, display

from gwsreplay.analysis import db, figures, humanize


class Notebook(NamedTuple):
    """What the setup cell unpacks: ``con, scope, capture = notebook.setup(...)``."""
    con: duckdb.DuckDBPyConnection
    scope: db.Scope
    capture: Path


def display_options() -> None:
    """Figures through plotly's MIME type; DataFrames as tables with rounded, separated numbers."""
    figures.setup_notebook()
    pd.set_option("display.max_rows", 200)
    pd.set_option("display.max_colwidth", 120)
    pd.set_option("display.float_format", lambda v: f"{v:,.1f}")
    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, humanize.frame_html)


def setup(capture_db: str | Path, *, time_from: Any = None, time_to: Any = None, agent: str | None = None,
          base: str | Path | None = None, show: bool = True) -> Notebook:
    """Open ``capture_db`` (relative paths against ``base``, default the kernel's folder, which is the
    notebook's) and return the connection, the scope and the resolved path."""
    display_options()
    path = db.resolve_capture_path(capture_db, Path.cwd() if base is None else base)
    scope = db.Scope.of(time_from, time_to, agent)
    con = db.open_capture(path)
    if show:
        display(Markdown(f"**{path.name}**: {scope.describe()}"), db.capture_info(con, scope))
    return Notebook(con, scope, path)
