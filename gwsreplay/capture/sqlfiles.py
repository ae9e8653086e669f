"""The capture's static SQL, kept in ``gwsreplay/capture/sql/*.sql`` and shipped as package data.

Values go into queries as bound parameters (``$base``). Only what DuckDB cannot bind
(a view definition's constants, SQL generated from a rule table) is filled in, by
:func:`fill`: one named ``{{placeholder}}`` per value, every one required.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@functools.lru_cache(maxsize=None)
def load(name: str) -> str:
    """The text of ``sql/<name>`` (from the installed package)."""
    return resources.files("gwsreplay.capture").joinpath("sql", name).read_text(encoding="utf-8")


def fill(template: str, **values: str) -> str:
    """``template`` with each ``{{name}}`` replaced by ``values[name]`` (SQL text).

    Raises KeyError for a placeholder without a value and ValueError for a value without a
    placeholder, so a template and its caller cannot drift apart silently."""
    used: set[str] = set()

    def sub(m: re.Match) -> str:
        used.add(m.group(1))
        return values[m.group(1)]

    out = _PLACEHOLDER.sub(sub, template)
    unused = set(values) - used
    if unused:
        raise ValueError(f"no placeholder for {sorted(unused)}")
    return out


def statements(script: str) -> list[str]:
    """The statements of a script (separated by ``;`` at the end of a line)."""
    return [s.strip() for s in re.split(r";\s*\n", script) if s.strip()]
