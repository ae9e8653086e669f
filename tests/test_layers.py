"""The package's layers are a checked contract (.importlinter), and no import hides a cycle.

import-linter reads the package from the file system, and gwsreplay.analysis lives in the
top-level analysis/ folder (installed under the package by pyproject's package-dir), so the
check runs on a copy laid out as the wheel lays it out.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def package_sources() -> dict[str, Path]:
    """Module name -> source file, for every module of the installed layout."""
    modules = {}
    for base, prefix in ((ROOT / "gwsreplay", "gwsreplay"), (ROOT / "analysis", "gwsreplay.analysis")):
        for path in sorted(base.rglob("*.py")):
            parts = path.relative_to(base).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((prefix, *parts))] = path
    return modules


def imported_modules(path: Path, module: str, known: set[str]):
    """(imported project module, line, inside a function?) for each import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def resolve(node: ast.ImportFrom) -> list[str]:
        if node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            stem = ".".join(base + ([node.module] if node.module else []))
        else:
            stem = node.module or ""
        names = [f"{stem}.{a.name}" for a in node.names]
        return [n if n in known else stem for n in names]

    def walk(node: ast.AST, in_function: bool):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.ImportFrom):
                targets = resolve(child)
            elif isinstance(child, ast.Import):
                targets = [a.name for a in child.names]
            else:
                yield from walk(child, inner)
                continue
            for target in targets:
                if target.startswith("gwsreplay"):
                    yield target, child.lineno, in_function

    yield from walk(tree, False)


def test_layers_contract_holds(tmp_path):
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} missing: import-linter is a dev dependency (make test installs it)")
    shutil.copytree(ROOT / "gwsreplay", tmp_path / "gwsreplay", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "analysis", tmp_path / "gwsreplay" / "analysis",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([str(LINT_IMPORTS), str(ROOT / ".importlinter"), "--no-cache"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


def test_no_import_inside_a_function():
    """Imports sit at the top of the module: a function-level import is how cycles hide."""
    modules = package_sources()
    found = [f"{path.relative_to(ROOT)}:{line}: {target}"
             for module, path in modules.items()
             for target, line, in_function in imported_modules(path, module, set(modules)) if in_function]
    assert not found, "function-level imports of the package:\n" + "\n".join(found)


def test_no_module_imports_its_importer():
    """The module import graph (every import, wherever it sits) has no cycle."""
    modules = package_sources()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for target, _, _ in imported_modules(path, module, set(modules)):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != module:
                graph[module].add(target)
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_a_users_analysis_module_does_not_shadow_the_package(tmp_path):
    """A notebook folder with the user's own analysis.py still runs the notebooks' imports."""
    (tmp_path / "analysis.py").write_text("raise ImportError('the user analysis module was imported')\n")
    setup = next(line for line in (ROOT / "notebooks" / "latency.ipynb").read_text().splitlines()
                 if "from gwsreplay.analysis import" in line)
    statement = ast.literal_eval(setup.strip().rstrip(","))
    result = subprocess.run([sys.executable, "-c", statement + "print(latency.__name__)"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "gwsreplay.analysis.latency"


def test_the_architecture_page_names_every_module():
    """docs/architecture.md is the layer diagram, one line per module: a new module gets its line."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [m for m, path in package_sources().items()
               if path.name != "__init__.py" and f"`{m}`" not in text and not m.endswith("__main__")]
    assert not missing, "modules missing from docs/architecture.md: " + ", ".join(missing)
