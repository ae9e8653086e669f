"""The wheel, installed away from the checkout, is the whole tool.

A wheel is built from a copy of the sources (offline: ``pip wheel --no-deps
--no-build-isolation``) and installed with ``--no-deps`` into a fresh venv under
tmp, outside the repository. The project's dependencies come from this test's
own venv through a ``.pth`` line: a ``.pth`` line only appends a folder to
sys.path, so the editable install's finder living there is NOT activated and
``gwsreplay`` is imported from the new venv (checked). From a working directory
outside the repository, the installed console script then runs ``sim`` (and the
desktop page with its CometD library), ``record`` in front of it with scripted
agents, ``replay`` against a fresh simulator and ``report``.

Also here: the wheel holds every source file and one top-level package, and the
desktop's vendored CometD library is byte-identical to the npm package
package-lock.json pins (``make vendor`` refreshes it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from urllib.request import urlopen

import duckdb
import pytest

from gwsreplay.cli.processes import child, free_port

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "gwsreplay" / "sim" / "server" / "desktop" / "vendor" / "cometd"
NODE_COMETD = ROOT / "node_modules" / "cometd"
# What the wheel is built from, and where each source folder lands in the package.
SOURCES = {"gwsreplay": "gwsreplay", "analysis": "gwsreplay/analysis", "notebooks": "gwsreplay/notebooks"}
SOURCE_SUFFIXES = {".py", ".sql", ".toml", ".json", ".html", ".js", ".css", ".ipynb", ""}
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
SIM_ARGS = ["--agents", "2", "--seed", "0", "--answer-delay", "0.3"]

pytestmark = pytest.mark.timeout(240)


@dataclass
class Installed:
    src: Path           # the copy of the sources the wheel was built from
    wheel: Path
    venv: Path
    work: Path          # the working directory of every command: outside the repository
    env: dict[str, str]

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bin / args[0]), *args[1:]], cwd=self.work, env=self.env,
                              capture_output=True, text=True, timeout=timeout)


def _run(args: list, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=180, **kw)
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    assert not base.is_relative_to(ROOT)
    assert int(metadata.version("setuptools").split(".")[0]) >= 68, "the dev extras install setuptools>=68"
    src = base / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for folder in SOURCES:
        shutil.copytree(ROOT / folder, src / folder, ignore=IGNORE)
    dist = base / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "--quiet", "-w", dist, src])
    (wheel,) = dist.glob("gwsreplay-*.whl")

    venv = base / "venv"
    _run([sys.executable, "-m", "venv", venv])
    python = venv / "bin" / "python"
    # Install before the .pth exists, so pip sees no other gwsreplay.
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", wheel])
    new_site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    # Every site-packages this test sees (its venv's, and any that venv itself appends by .pth).
    deps = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()]
    (new_site / "_test_dependencies.pth").write_text("\n".join(deps) + "\n")

    work = base / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "GWSREPLAY_COMETD_DIR", "PYTHONHOME")}
    env.update(PYTHONNOUSERSITE="1", PYTHONUNBUFFERED="1",
               PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    return Installed(src, wheel, venv, work, env)


def test_gwsreplay_is_imported_from_the_new_venv(installed):
    result = installed.run("python", "-c", "import gwsreplay, gwsreplay.analysis.report as r; "
                                           "print(gwsreplay.__file__); print(r.NOTEBOOK_DIR)")
    assert result.returncode == 0, result.stderr
    module, notebooks = (Path(line) for line in result.stdout.split())
    assert module.is_relative_to(installed.venv) and notebooks.is_relative_to(installed.venv)
    assert (notebooks / "latency.ipynb").is_file()


def test_pip_show_lists_one_top_level_package(installed):
    result = installed.run("pip", "show", "-f", "gwsreplay")
    assert result.returncode == 0, result.stderr
    location = Path(re.search(r"^Location: (.+)$", result.stdout, re.M).group(1))
    assert location.is_relative_to(installed.venv)
    files = [line.strip() for line in result.stdout.split("Files:", 1)[1].splitlines() if line.strip()]
    top = {f.split("/", 1)[0] for f in files if not f.startswith("..")}
    assert top == {"gwsreplay", "gwsreplay-0.1.0.dist-info"}, top
    # Outside site-packages: the console script only.
    assert [f for f in files if f.startswith("..")] == ["../../../bin/gwsreplay"]
    with zipfile.ZipFile(installed.wheel) as wheel:
        assert wheel.read("gwsreplay-0.1.0.dist-info/top_level.txt").decode().split() == ["gwsreplay"]


def test_wheel_ships_every_source_file(installed):
    """A sub-package missing from pyproject's list, or a data file no pattern matches, fails here."""
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    expected = set()
    for folder, package in SOURCES.items():
        for path in (installed.src / folder).rglob("*"):
            if path.is_file() and path.suffix in SOURCE_SUFFIXES and not path.name.startswith("."):
                expected.add(f"{package}/{path.relative_to(installed.src / folder).as_posix()}")
    assert expected - names == set()
    assert "gwsreplay/notebooks/latency.ipynb" in names
    assert "gwsreplay/sim/server/desktop/vendor/cometd/cometd.js" in names
    assert "gwsreplay/sim/server/desktop/vendor/cometd/LICENSE" in names


@pytest.mark.skipif(not (NODE_COMETD / "cometd.js").is_file(), reason="node_modules/cometd is missing (run `make node`)")
def test_vendored_cometd_is_the_locked_npm_package():
    """package-lock.json stays the one source of the version: `make vendor` copies, this compares."""
    vendored = {p.name for p in VENDOR.iterdir()}
    assert vendored == {p.name for p in NODE_COMETD.glob("*.js")} | {"LICENSE", "package.json"}
    for name in sorted(vendored):
        assert (VENDOR / name).read_bytes() == (NODE_COMETD / name).read_bytes(), \
            f"{name} differs from node_modules/cometd: run `make vendor`"
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert json.loads((VENDOR / "package.json").read_text())["version"] == \
        lock["packages"]["node_modules/cometd"]["version"]


def test_vendored_cometd_is_complete():
    """Every module the page reaches from desktop.js's import is vendored."""
    desktop_js = (VENDOR.parents[1] / "desktop.js").read_text()
    assert 'from "./vendor/cometd/cometd.js"' in desktop_js
    assert _module_closure(lambda name: (VENDOR / name).read_text()) >= {"cometd.js", "Client.js"}


def _module_closure(read) -> set[str]:
    """cometd.js and every module it reaches through relative imports (the library's files are flat)."""
    seen, todo = set(), ["cometd.js"]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += re.findall(r'from\s+"\./([\w.]+\.js)"', read(name))
    return seen


def _get(url: str) -> tuple[int, str, bytes]:
    with urlopen(url, timeout=10) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()


def _count(db: Path, table: str) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


def test_installed_tool_end_to_end(installed):
    """sim + desktop page, record with scripted agents, replay, report: all from the wheel, cwd outside the repo."""
    work, env = installed.work, installed.env
    assert not work.is_relative_to(ROOT)
    gwsreplay = str(installed.bin / "gwsreplay")
    result = installed.run("gwsreplay", "--help")
    assert result.returncode == 0 and "replay" in result.stdout, result.stderr

    sim_port, proxy_port = free_port(), free_port()
    sim_url, proxy_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{proxy_port}"
    db = work / "shift.duckdb"
    with child([gwsreplay, "sim", "--port", str(sim_port), *SIM_ARGS], f"{sim_url}/api/v2/diagnostics/version",
               log=work / "sim.log", cwd=work, env=env):
        status, _, body = _get(f"{sim_url}/api/v2/diagnostics/version")
        assert status == 200 and json.loads(body)
        status, ctype, page = _get(f"{sim_url}/sim/desktop/")
        assert (status, ctype) == (200, "text/html") and b'src="desktop.js"' in page
        status, _, script = _get(f"{sim_url}/sim/desktop/desktop.js")
        assert status == 200 and b'from "./vendor/cometd/cometd.js"' in script
        served: dict[str, bytes] = {}

        def fetch(name: str) -> str:
            status, ctype, served[name] = _get(f"{sim_url}/sim/desktop/vendor/cometd/{name}")
            assert (status, ctype) == (200, "text/javascript"), name
            return served[name].decode()

        modules = _module_closure(fetch)
        assert {"cometd.js", "Client.js", "LongPollingTransport.js", "WebSocketTransport.js"} <= modules
        with zipfile.ZipFile(installed.wheel) as wheel:
            for name, content in served.items():
                assert content == wheel.read(f"gwsreplay/sim/server/desktop/vendor/cometd/{name}"), name

        with child([gwsreplay, "record", "--upstream", sim_url, "--listen-port", str(proxy_port),
                    "--db", str(db), "--quiet"], f"{proxy_url}/api/v2/diagnostics/version",
                   log=work / "record.log", cwd=work, env=env, stop_signal=signal.SIGINT) as proxy:
            agents = installed.run("gwsreplay", "agents", "--target", proxy_url, "--agents", "2",
                                   "--duration", "4", "--think-time", "0.2", timeout=60)
            assert agents.returncode == 0, agents.stdout + agents.stderr
        assert proxy.returncode == 0, (work / "record.log").read_text()
    assert _count(db, "exchanges") > 0 and _count(db, "bayeux_messages") > 0
    assert _count(db, "operations") > 0

    replay_port = free_port()
    replay_url = f"http://127.0.0.1:{replay_port}"
    replayed = work / "shift-replay.duckdb"
    with child([gwsreplay, "sim", "--port", str(replay_port), *SIM_ARGS], f"{replay_url}/api/v2/diagnostics/version",
               log=work / "replay-sim.log", cwd=work, env=env):
        result = installed.run("gwsreplay", "replay", "--db", "shift.duckdb", "--target", replay_url,
                               "--speed", "max", "--quiet", timeout=90)
    # 0: nothing diverged; 1: divergences reported (replay fidelity is tested elsewhere). Anything else is a crash.
    assert result.returncode in (0, 1) and "replayed 2 session(s)" in result.stdout, result.stdout + result.stderr
    assert replayed.is_file() and _count(replayed, "exchanges") > 0

    result = installed.run("gwsreplay", "report", "--db", "shift.duckdb", "--out", "x.html", timeout=150)
    assert result.returncode == 0, result.stdout + result.stderr
    report = work / "x.html"
    assert report.is_file() and report.stat().st_size > 0
    assert "latency" in report.read_text(encoding="utf-8").lower()
