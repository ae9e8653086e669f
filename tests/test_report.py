"""The notebooks run headless against a capture, and the HTML report renders in a real browser.

The capture is the simulator's: the ``simulator_capture`` fixture in conftest.py
records scripted agents on every channel through the capture proxy, and replays
them next to it. The report is opened in
Debian's headless Chromium (``make chromium``); its screenshot is kept under
test-artifacts/.
"""

from __future__ import annotations

import html
import math
import re
import shutil
import subprocess
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import nbformat
import plotly.offline
import pytest

from gwsreplay import cli
from gwsreplay.analysis import db, headline, humanize, report

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
# figures each notebook must show on a capture with voice and multimedia traffic
MIN_FIGURES = {"latency.ipynb": 7, "coverage.ipynb": 15, "session_explorer.ipynb": 2, "replay_comparison.ipynb": 3}


@pytest.fixture(scope="module")
def capture(simulator_capture) -> Path:
    return Path(simulator_capture)


@pytest.fixture(scope="module")
def built(capture, tmp_path_factory):
    out = tmp_path_factory.mktemp("html") / "report.html"
    seen: list[str] = []
    path, executed = report.build_report(capture, out, on_cell=seen.append)
    return path, executed, seen


def test_notebooks_execute_without_errors(built):
    _, executed, seen = built
    assert [e.name for e in executed] == list(report.NOTEBOOKS)
    for ex in executed:
        errors = [o for c in ex.notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        assert not errors, f"{ex.name}: {errors}"
        # every code cell ran, the injected parameters cell included
        assert seen.count(ex.name) == report.count_cells(ex.name)
        injected = [c for c in ex.notebook.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert len(injected) == 1 and "CAPTURE_DB" in injected[0].source


def test_notebooks_show_their_figures(built):
    _, executed, _ = built
    for ex in executed:
        assert ex.figures >= MIN_FIGURES[ex.name], (ex.name, ex.figures)


def test_committed_notebooks_have_no_outputs():
    for name in report.NOTEBOOKS:
        nb = nbformat.read(report.NOTEBOOK_DIR / name, as_version=4)
        nbformat.validate(nb)
        params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1 and 'CAPTURE_DB = "../captures/demo.duckdb"' in params[0].source
        declared = report.declared_parameters(nb)
        if name != "replay_comparison.ipynb":      # the replay has its own clock and users
            assert {"CAPTURE_DB", "TIME_FROM", "TIME_TO", "AGENT"} <= declared, name
        # the setup is one call into the package, in one cell; no path juggling in the notebook
        setup = [c for c in nb.cells if "setup" in c.metadata.get("tags", [])]
        assert len(setup) == 1 and setup[0].source.count("notebook.setup(") == 1, name
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert "sys.path" not in code and "open_capture" not in code and "setup_notebook" not in code, name
        for c in nb.cells:
            if c.cell_type == "code":
                assert not c.outputs and c.execution_count is None, name


def test_report_is_self_contained(built):
    path, executed, _ = built
    text = path.read_text(encoding="utf-8")
    # plotly.js inlined exactly once (its banner), nothing fetched from a CDN or any other host
    assert text.count(plotly.offline.get_plotlyjs()[:60]) == 1
    assert not re.search(r"<script[^>]+src=", text)
    page = text.replace(plotly.offline.get_plotlyjs(), "")     # the bundle names a CDN for geo maps only
    assert "cdn.plot.ly" not in page and "cdn.jsdelivr" not in page and "https://" not in page
    assert text.count('class="plotly-graph-div"') == sum(e.figures for e in executed)
    assert "Traceback" not in text


class _Tags(HTMLParser):
    """Start tags with their attributes, and whether every opened html/head/body/script closed."""
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.open = {"html": 0, "head": 0, "body": 0, "script": 0, "section": 0, "table": 0}

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in self.open:
            self.open[tag] += 1

    def handle_endtag(self, tag):
        if tag in self.open:
            self.open[tag] -= 1


def _parse(text: str) -> _Tags:
    p = _Tags()
    p.feed(text)
    p.close()
    return p


def test_report_opens_with_a_linked_headline(built, capture):
    path, _, _ = built
    text = path.read_text(encoding="utf-8").replace(plotly.offline.get_plotlyjs(), "")
    tags = _parse(text)
    ids = [a["id"] for _, a in tags.tags if "id" in a]
    assert len(ids) == len(set(ids)), "ids are unique"
    # the headline comes first, before any notebook section
    assert text.index('id="headline"') < text.index('class="notebook"')
    links = [a["href"][1:] for t, a in tags.tags if t == "a" and a.get("href", "").startswith("#")]
    assert set(links) <= set(ids), set(links) - set(ids)
    for key in ("per_operation", "failures", "anomalies", "errors"):
        assert headline.section(key) in ids, key
    # one summary table: the capture is described once, not once per notebook (setup outputs hidden)
    assert text.count('class="summary"') == 1 and "schema_version" not in text
    con = db.open_capture(capture)
    try:
        h = headline.compute(con)
    finally:
        con.close()
    head = text[text.index('id="headline"'):text.index('class="notebook"')]
    for what, value in headline.summary_table(h).itertuples(index=False):
        assert f"<th>{what}</th>" in head and html.escape(value) in head, (what, value)
    assert f"{humanize.plural(h.agents, 'agent')}" in head and humanize.pct(h.error_rate_pct) in head
    assert f"p99 {humanize.ms(h.completion_p99_ms)}" in head
    assert h.operations > 0 and h.completion_p99_ms is not None
    # numbers rounded for people in the notebooks' tables: no float with more than one decimal
    tables = re.findall(r'<table class="dataframe">.*?</table>', text, re.S)
    assert tables
    assert not any(re.search(r"<td>-?[\d,]+\.\d{2,}</td>", t) for t in tables)


def test_report_plotly_from_the_cdn(built, capture, tmp_path):
    path, executed, _ = built
    inline = path.stat().st_size
    page = report.render_html(executed, capture, plotly_mode="cdn")
    tags = _parse(page)
    assert all(v == 0 for v in tags.open.values()), tags.open
    scripts = [a for t, a in tags.tags if t == "script" and "src" in a]
    assert [s["src"] for s in scripts] == [report.plotly_cdn_url()]
    assert report.plotly_cdn_url().startswith("https://cdn.plot.ly/plotly-")
    assert plotly.offline.get_plotlyjs()[:60] not in page
    assert len(page.encode()) < inline - 4_000_000
    assert page.count('class="plotly-graph-div"') == sum(e.figures for e in executed)
    with pytest.raises(ValueError, match="plotly mode"):
        report.render_html(executed, capture, plotly_mode="nope")


@pytest.fixture(scope="module")
def scoped_file_report(capture, tmp_path_factory):
    """`gwsreplay report --plotly file` for one agent from one second into the capture."""
    con = db.open_capture(capture)
    try:
        agent = con.execute("SELECT user_name FROM operations GROUP BY 1 "
                            "ORDER BY count(*) DESC, 1 LIMIT 1").fetchone()[0]
        start = db.capture_info(con).loc[0, "started_at"].to_pydatetime() + timedelta(seconds=1)
        scope = db.Scope(start, None, agent)
        whole, part = headline.compute(con), headline.compute(con, scope)
    finally:
        con.close()
    out = tmp_path_factory.mktemp("file-mode") / "scoped.html"
    code = cli.main(["report", "--db", str(capture), "--out", str(out), "--notebooks", "latency,session_explorer",
                     "--plotly", "file", "--agent", agent, "--from", str(start)])
    assert code == 0
    return out, scope, whole, part


def test_cli_report_scope_and_plotly_file(scoped_file_report):
    out, scope, whole, part = scoped_file_report
    assert (out.parent / report.PLOTLY_FILE).read_text(encoding="utf-8") == plotly.offline.get_plotlyjs()
    text = out.read_text(encoding="utf-8")
    assert out.stat().st_size < 2_000_000
    scripts = [a["src"] for t, a in _parse(text).tags if t == "script" and "src" in a]
    assert scripts == [report.PLOTLY_FILE]              # relative: the pair can be moved together
    # the scope reached the headline and the notebooks
    assert scope.describe() in text and part.agents == 1
    assert part.operations < whole.operations
    assert f"<th>Operations</th><td><a href=\"#latency\">{humanize.count(part.operations)}:" in text
    assert f"Session timeline: {scope.agent}" in text


def test_cli_report_unknown_agent_and_bad_time(capture, tmp_path, capsys):
    code = cli.main(["report", "--db", str(capture), "--out", str(tmp_path / "x.html"), "--agent", "nobody"])
    assert code == 2
    assert "--agent nobody: no such agent" in capsys.readouterr().err
    code = cli.main(["report", "--db", str(capture), "--out", str(tmp_path / "x.html"), "--from", "yesterday-ish"])
    assert code == 2
    assert "--from/--to" in capsys.readouterr().err
    code = cli.main(["report", "--db", str(capture), "--out", str(tmp_path / "x.html"),
                     "--from", "2024-05-06 10:45", "--to", "2024-05-06 10:40"])
    assert code == 2
    assert "empty time window" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium_cmd(exe: str, profile: Path) -> list[str]:
    return [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", f"--user-data-dir={profile}"]


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (run `make chromium`)")
def test_report_renders_in_headless_chromium(built, tmp_path):
    path, executed, _ = built
    n_figures = sum(e.figures for e in executed)
    exe = _chromium()
    url = path.resolve().as_uri()
    dom = subprocess.run(_chromium_cmd(exe, tmp_path / "p1") + ["--virtual-time-budget=15000", "--dump-dom", url],
                         capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    # plotly.js replaces each empty figure div with a rendered plot: a plot-container holding main-svg layers
    assert html.count('class="plot-container plotly"') == n_figures
    assert html.count('class="main-svg"') >= 2 * n_figures
    for chunk in html.split('class="plotly-graph-div')[1:]:
        assert 'class="main-svg"' in chunk[:20000]

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    run = subprocess.run(_chromium_cmd(exe, tmp_path / "p2") + [
        "--virtual-time-budget=15000", "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1400,3000", url],
        capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.is_file() and shot.stat().st_size > 50_000
    shutil.copy(path, ARTIFACTS / "report.html")


def test_cli_report(capture, tmp_path, capsys):
    out = tmp_path / "cli.html"
    code = cli.main(["report", "--db", str(capture), "--out", str(out), "--notebooks", "latency,coverage"])
    assert code == 0
    assert str(out.resolve()) in capsys.readouterr().out
    text = out.read_text(encoding="utf-8")
    assert 'id="latency"' in text and 'id="coverage"' in text and 'id="session_explorer"' not in text


def test_cli_report_missing_capture(tmp_path, capsys):
    code = cli.main(["report", "--db", str(tmp_path / "nope.duckdb"), "--out", str(tmp_path / "x.html")])
    assert code == 2
    assert "capture not found" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


def test_cli_report_not_a_capture(tmp_path, capsys):
    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).execute("CREATE TABLE t (x INTEGER)").close()
    code = cli.main(["report", "--db", str(other), "--out", str(tmp_path / "x.html")])
    assert code == 2
    assert "not a gwsreplay capture" in capsys.readouterr().err


def test_cli_report_unknown_notebook(capture, tmp_path, capsys):
    code = cli.main(["report", "--db", str(capture), "--out", str(tmp_path / "x.html"), "--notebooks", "nope"])
    assert code == 2
    assert "unknown notebooks" in capsys.readouterr().err


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (run `make chromium`)")
def test_cli_report_plotly_file_renders_in_headless_chromium(scoped_file_report, tmp_path):
    out, *_ = scoped_file_report
    exe = _chromium()
    n_figures = out.read_text(encoding="utf-8").count('class="plotly-graph-div"')
    assert n_figures >= 3
    dom = subprocess.run(_chromium_cmd(exe, tmp_path / "p") + ["--virtual-time-budget=15000", "--dump-dom",
                                                               out.resolve().as_uri()],
                         capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count('class="plot-container plotly"') == n_figures
    # log axes read 1, 2, 5, 10, ... ms: every numeric axis counts up in plain numbers (plotly's
    # default log labels go "10, 2, 5, 100" and write large powers as 10 with a superscript tspan)
    axes = [re.findall(r'data-unformatted="([^"]*)"', a) for a in
            re.findall(r'<g class="yaxislayer-above">((?:<g class="ytick">.*?</g>)*)</g>', dom.stdout)]
    assert axes and "<tspan" not in "".join(re.findall(r'<g class="ytick">(.*?)</g>', dom.stdout))
    numeric = [[float(v.replace(",", "")) for v in a] for a in axes
               if a and all(re.fullmatch(r"-?[0-9][0-9,]*(\.[0-9]+)?", v) for v in a)]
    assert numeric and all(a == sorted(set(a)) for a in numeric), axes
    # the latency axes are logarithmic: their ticks are 1, 2 or 5 times a power of ten (how many of
    # them show depends on the spread of the recorded latencies, so no run of three is required)
    log_axes = [a for a in numeric if a and all(_one_two_five(v) for v in a)]
    assert log_axes, axes


def _one_two_five(value: float) -> bool:
    if value <= 0:
        return False
    mantissa = value / 10 ** math.floor(math.log10(value))
    return any(abs(mantissa - k) < 1e-9 for k in (1, 2, 5))


def test_cli_report_on_several_captures(capture, tmp_path, capsys):
    """--db given twice reports on both captures as one: every count of the headline doubles."""
    copy = tmp_path / "second-proxy.duckdb"
    shutil.copy(capture, copy)
    single = db.open_capture(capture)
    try:
        one = headline.compute(single)
    finally:
        single.close()
    out = tmp_path / "both.html"
    code = cli.main(["report", "--db", str(capture), "--db", str(copy), "--out", str(out), "--notebooks", "latency"])
    assert code == 0, capsys.readouterr().err
    text = out.read_text(encoding="utf-8")
    assert f"{capture.name} + {copy.name}" in text
    both = db.open_capture([capture, copy])
    try:
        two = headline.compute(both)
    finally:
        both.close()
    assert (two.operations, two.agents) == (2 * one.operations, one.agents)
    assert humanize.count(two.operations) in text
