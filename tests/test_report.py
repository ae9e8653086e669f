"""The notebooks run headless against a capture, and the HTML report renders in a real browser.

The capture is the simulator's: the ``simulator_capture`` fixture in conftest.py
records scripted agents on every channel through the capture proxy, and replays
them next to it. The report is opened in
Debian's headless Chromium (``make chromium``); its screenshot is kept under
test-artifacts/.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import plotly.offline
import pytest

from gwsreplay.analysis import report
from gwsreplay import cli

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
    import duckdb
    duckdb.connect(str(other)).execute("CREATE TABLE t (x INTEGER)").close()
    code = cli.main(["report", "--db", str(other), "--out", str(tmp_path / "x.html")])
    assert code == 2
    assert "not a gwsreplay capture" in capsys.readouterr().err


def test_cli_report_unknown_notebook(capture, tmp_path, capsys):
    code = cli.main(["report", "--db", str(capture), "--out", str(tmp_path / "x.html"), "--notebooks", "nope"])
    assert code == 2
    assert "unknown notebooks" in capsys.readouterr().err
