"""Run the notebooks headless against a capture and write one self-contained HTML report.

Each notebook is executed with nbclient after a papermill-style parameters
cell is injected right after its ``parameters``-tagged cell (``CAPTURE_DB``, the
scope's ``TIME_FROM``/``TIME_TO``/``AGENT`` and friends). The report opens with a
headline (``headline.py``) linking to the sections, then keeps the notebooks' prose,
tables and figures and drops the code and the setup cells' output: figures arrive as
plotly's MIME bundle and are re-rendered with plotly.js, inlined once in the page (the
file opens anywhere, offline), loaded from the CDN, or written beside the report.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Callable

import nbformat
import plotly.io as pio
import plotly.offline
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from gwsreplay.analysis import db, headline, sources

# The notebooks ship as package data (gwsreplay.notebooks, the top-level notebooks/ folder in a
# checkout), so the report runs from an installed wheel too. A real folder: the kernels run in it.
NOTEBOOK_DIR = Path(str(resources.files("gwsreplay.notebooks")))
#: Notebooks in report order.
NOTEBOOKS = ("latency.ipynb", "coverage.ipynb", "session_explorer.ipynb", "replay_comparison.ipynb")
PLOTLY_MIME = "application/vnd.plotly.v1+json"
#: How the page gets plotly.js: inlined (4.8 MB, works offline), from the CDN, or from a file
#: written beside the report (PLOTLY_FILE).
PLOTLY_MODES = ("inline", "cdn", "file")
PLOTLY_FILE = "plotly.min.js"


class ReportError(RuntimeError):
    """A notebook failed to run; the message names the notebook and the cell."""


@dataclass
class ExecutedNotebook:
    name: str
    notebook: nbformat.NotebookNode
    seconds: float
    figures: int = 0
    parameters: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------ execution

def inject_parameters(nb: nbformat.NotebookNode, parameters: dict) -> nbformat.NotebookNode:
    """Insert an ``injected-parameters`` cell after the ``parameters`` cell (papermill's convention)."""
    source = "# Parameters injected by gwsreplay report\n" + "\n".join(
        f"{k} = {v!r}" for k, v in parameters.items())
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["injected-parameters"]
    cell.id = "injected-parameters"
    cells = nb.cells
    nb.cells = [c for c in cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    idx = next((i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])), -1)
    nb.cells.insert(idx + 1, cell)
    return nb


async def _execute(path: Path, parameters: dict, timeout: float,
                   on_cell: Callable[[str], None] | None) -> ExecutedNotebook:
    nb = inject_parameters(nbformat.read(path, as_version=4), parameters)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    if on_cell is not None:
        client.on_cell_executed = lambda **kw: on_cell(path.name)
    started = asyncio.get_running_loop().time()
    try:
        # the kernel's own stderr (ipykernel's warning about local TCP, shutdown chatter) is noise
        # here: cell errors come back through the messaging protocol and fail the report
        await client.async_execute(stderr=subprocess.DEVNULL)
    except CellExecutionError as exc:
        raise ReportError(f"{path.name} failed:\n{exc}") from None
    return ExecutedNotebook(path.name, nb, asyncio.get_running_loop().time() - started,
                            figures=count_figures(nb), parameters=parameters)


def declared_parameters(nb: nbformat.NotebookNode) -> set[str]:
    """Names the ``parameters`` cell assigns."""
    cell = next((c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    return set(re.findall(r"^([A-Za-z_]\w*)\s*=", cell.source, re.M)) if cell is not None else set()


def scope_parameters(scope: db.Scope | None) -> dict:
    """TIME_FROM, TIME_TO and AGENT as the notebooks' parameters cell spells them."""
    scope = scope or db.WHOLE
    return {"TIME_FROM": scope.time_from.isoformat(sep=" ") if scope.time_from else None,
            "TIME_TO": scope.time_to.isoformat(sep=" ") if scope.time_to else None,
            "AGENT": scope.agent}


def execute_notebooks(capture: Path, *, replay: Path | None = None, notebooks: tuple[str, ...] = NOTEBOOKS,
                      notebook_dir: Path = NOTEBOOK_DIR, timeout: float = 600,
                      on_cell: Callable[[str], None] | None = None,
                      extra: dict[str, dict] | None = None, scope: db.Scope | None = None) -> list[ExecutedNotebook]:
    """Execute the notebooks concurrently (one kernel each) against ``capture``; ``scope`` goes to
    the notebooks that declare TIME_FROM / TIME_TO / AGENT (not the replay comparison)."""
    params = {}
    for name in notebooks:
        declared = declared_parameters(nbformat.read(notebook_dir / name, as_version=4))
        p = {"CAPTURE_DB": str(capture)}
        p.update((k, v) for k, v in scope_parameters(scope).items() if k in declared)
        if name == "replay_comparison.ipynb" and replay is not None:
            p["REPLAY_DB"] = str(replay)
        p.update((extra or {}).get(name, {}))
        params[name] = p

    async def run_all():
        return await asyncio.gather(*(
            _execute(notebook_dir / name, params[name], timeout, on_cell) for name in notebooks))

    return list(asyncio.run(run_all()))


def count_cells(name: str, notebook_dir: Path = NOTEBOOK_DIR) -> int:
    """Code cells of a notebook, plus the injected parameters cell (for progress bars)."""
    nb = nbformat.read(notebook_dir / name, as_version=4)
    return sum(c.cell_type == "code" for c in nb.cells) + 1


def count_figures(nb: nbformat.NotebookNode) -> int:
    return sum(PLOTLY_MIME in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
               for o in c.get("outputs", []))


# ------------------------------------------------------------------------------ HTML

_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 0; color: #222; }
header { background: #1f3b57; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px 0; font-size: 24px; }
header p { margin: 2px 0; opacity: .85; }
nav { padding: 10px 32px; background: #f2f5f8; border-bottom: 1px solid #dde3ea; }
nav a { margin-right: 18px; color: #1f3b57; text-decoration: none; font-weight: 600; }
main { padding: 8px 32px 48px 32px; max-width: 1400px; }
section.notebook { border-top: 3px solid #1f3b57; margin-top: 28px; }
.output { margin: 10px 0; overflow-x: auto; }
.figure { margin: 14px 0; }
pre { background: #f7f7f7; padding: 8px 10px; border-radius: 4px; font-size: 12px; white-space: pre-wrap; }
table.dataframe { border-collapse: collapse; font-size: 12px; margin: 6px 0; }
table.dataframe th, table.dataframe td { border: 1px solid #dde3ea; padding: 3px 8px; text-align: right; }
table.dataframe th { background: #f2f5f8; }
table.dataframe tr:nth-child(even) td { background: #fafbfc; }
footer { color: #888; font-size: 12px; padding: 16px 32px; }
section.headline h2 { margin-top: 18px; }
table.summary { border-collapse: collapse; font-size: 14px; margin: 6px 0 12px 0; }
table.summary th { text-align: left; padding: 4px 18px 4px 0; color: #555; font-weight: 600; }
table.summary td { padding: 4px 0; }
.columns { display: flex; flex-wrap: wrap; gap: 8px 48px; }
.columns > div { flex: 1 1 300px; }
.columns h3 { font-size: 15px; margin: 8px 0 4px 0; }
.columns li { margin: 2px 0; }
a { color: #1f5f9a; }
"""


def plotly_cdn_url() -> str:
    """The CDN address of the plotly.js this plotly.py bundles."""
    return f"https://cdn.plot.ly/plotly-{plotly.offline.get_plotlyjs_version()}.min.js"


def plotly_script(mode: str) -> str:
    """The page's plotly.js: inlined, from the CDN, or from PLOTLY_FILE beside the page."""
    if mode == "inline":
        return f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>'
    if mode == "cdn":
        return f'<script type="text/javascript" charset="utf-8" src="{plotly_cdn_url()}"></script>'
    if mode == "file":
        return f'<script type="text/javascript" charset="utf-8" src="{PLOTLY_FILE}"></script>'
    raise ValueError(f"plotly mode must be one of {', '.join(PLOTLY_MODES)}, not {mode!r}")


_HEADING = re.compile(r"<h([1-4])>(.*?)</h\1>", re.S)


def _with_anchors(notebook: str, markup: str, used: set[str]) -> str:
    """Give every heading an id (headline.anchor of its text) so the headline can link to it."""
    def add(m: re.Match) -> str:
        text = html.unescape(re.sub(r"<[^>]+>", "", m.group(2)))
        ident, n = headline.anchor(notebook, text), 2
        while ident in used:
            ident, n = f"{headline.anchor(notebook, text)}-{n}", n + 1
        used.add(ident)
        return f'<h{m.group(1)} id="{ident}">{m.group(2)}</h{m.group(1)}>'
    return _HEADING.sub(add, markup)


def _markdown(src: str) -> str:
    try:
        from markdown_it import MarkdownIt
    except ImportError:       # rich depends on markdown-it-py, so this is only a safety net
        return "<pre>" + html.escape(src) + "</pre>"
    return MarkdownIt("commonmark").enable("table").render(src)


def _output_html(output: dict) -> tuple[str, bool]:
    """HTML for one cell output, and whether it is a figure."""
    kind = output.get("output_type")
    if kind == "stream":
        return f"<pre>{html.escape(''.join(output.get('text', '')))}</pre>", False
    if kind == "error":
        return f"<pre>{html.escape(output.get('ename', ''))}: {html.escape(output.get('evalue', ''))}</pre>", False
    data = output.get("data", {})
    if PLOTLY_MIME in data:
        fig = data[PLOTLY_MIME]
        if isinstance(fig, str):
            fig = json.loads(fig)
        div = pio.to_html(fig, include_plotlyjs=False, full_html=False, config={"displaylogo": False})
        return f'<div class="figure">{div}</div>', True
    if "text/html" in data:
        return "".join(data["text/html"]), False
    if "image/png" in data:
        return f'<img src="data:image/png;base64,{data["image/png"]}">', False
    if "image/svg+xml" in data:
        return "".join(data["image/svg+xml"]), False
    if "text/markdown" in data:
        return _markdown("".join(data["text/markdown"])), False
    if "text/plain" in data:
        text = "".join(data["text/plain"])
        return ("" if text in ("None",) else f"<pre>{html.escape(text)}</pre>"), False
    return "", False


def _notebook_section(ex: ExecutedNotebook, used: set[str]) -> str:
    anchor = ex.name.removesuffix(".ipynb")
    used.add(anchor)
    parts = [f'<section class="notebook" id="{anchor}">']
    for cell in ex.notebook.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if {"parameters", "injected-parameters", "setup"} & set(tags):
            continue
        if cell.cell_type == "markdown":
            parts.append(_with_anchors(anchor, _markdown(cell.source), used))
        elif cell.cell_type == "code":
            for out in cell.get("outputs", []):
                body, _ = _output_html(out)
                if body:
                    parts.append(f'<div class="output">{body}</div>')
    parts.append("</section>")
    return "\n".join(parts)


def render_html(executed: list[ExecutedNotebook], capture: Path, title: str | None = None, *,
                head: headline.Headline | None = None, plotly_mode: str = "inline") -> str:
    """One page: header, table of contents, the headline, each notebook's prose and outputs;
    plotly.js once (``plotly_mode``: inline, cdn or file)."""
    script = plotly_script(plotly_mode)
    names = [p.name for p in sources.split(capture)]
    title = title or f"gwsreplay report: {' + '.join(names)}"
    nav = ('<a href="#headline">Headline</a>' if head is not None else "") + "".join(
        f'<a href="#{e.name.removesuffix(".ipynb")}">'
        f'{html.escape(e.notebook.cells[0].source.splitlines()[0].lstrip("# "))}</a>' for e in executed)
    used: set[str] = {"headline"}
    sections = "\n".join(_notebook_section(e, used) for e in executed)
    top = headline.to_html(head, used) if head is not None else ""
    scope = head.scope.describe() if head is not None else "whole capture"
    figures = sum(e.figures for e in executed)
    where = {"inline": "inlined", "cdn": "loaded from its CDN", "file": f"loaded from {PLOTLY_FILE}"}[plotly_mode]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_CSS}</style>
{script}
</head><body>
<header><h1>{html.escape(title)}</h1>
<p>Capture: {html.escape(str(capture))} ({html.escape(scope)})</p>
<p>Generated {datetime.now():%Y-%m-%d %H:%M:%S} from {len(executed)} notebooks, {figures} figures.</p></header>
<nav>{nav}</nav>
<main>
{top}
{sections}
</main>
<footer>gwsreplay: analysis notebooks executed headless; interactive figures by plotly.js ({where}).</footer>
</body></html>
"""


def build_report(capture: str | Path, out: str | Path, *, replay: str | Path | None = None,
                 notebooks: tuple[str, ...] = NOTEBOOKS, timeout: float = 600,
                 on_cell: Callable[[str], None] | None = None,
                 extra: dict[str, dict] | None = None, scope: db.Scope | None = None,
                 plotly_mode: str = "inline") -> tuple[Path, list[ExecutedNotebook]]:
    """Execute the notebooks against ``capture`` (restricted to ``scope``) and write the report to
    ``out``, with plotly.js per ``plotly_mode`` (``file`` also writes PLOTLY_FILE beside it)."""
    plotly_script(plotly_mode)                      # an unknown mode fails before any kernel starts
    parts = [p.resolve() for p in sources.split(capture)]
    missing = [p for p in parts if not p.exists()]
    if missing or (len(parts) == 1 and not (parts[0].is_file() or parts[0].is_dir())):
        raise FileNotFoundError(f"capture not found: {(missing or parts)[0]}")
    capture = Path(sources.join(parts))             # several captures / an export directory: read as one
    executed = execute_notebooks(capture, replay=Path(replay).resolve() if replay else None,
                                 notebooks=notebooks, timeout=timeout, on_cell=on_cell, extra=extra, scope=scope)
    con = db.open_capture(capture)
    try:
        head = headline.compute(con, scope)
    finally:
        con.close()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if plotly_mode == "file":
        (out.parent / PLOTLY_FILE).write_text(plotly.offline.get_plotlyjs(), encoding="utf-8")
    out.write_text(render_html(executed, capture, head=head, plotly_mode=plotly_mode), encoding="utf-8")
    return out, executed
