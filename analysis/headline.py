"""What the report says first: the capture in one table, the worst operations, and what to look at.

``compute`` asks the analysis modules the questions a reader has before scrolling (how long,
who, how much, how many failed, how fast at the median and in the tail, which operations are
worst, what looks wrong) and returns a ``Headline``; ``to_html`` renders it with links to the
report's sections. The error rate is failed operations (HTTP error or statusCode other than
0/7, ErrorMessage, Error notification) over all operations; operations without an outcome
(no notification ever showed their effect) are a finding of their own, not failures.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import duckdb
import pandas as pd

from gwsreplay.analysis import coverage, db, errors, health, humanize, latency


class OperationRow(NamedTuple):
    operation: str          # channel and operationName: "voice Hold"
    requests: int
    completed: int
    failed: int
    never_completed: int
    p99_ms: float | None    # completion p99 of the completed ones


class Anomaly(NamedTuple):
    model: str
    source: str
    target: str
    count: int
    first_ts: datetime | None
    example_user: str | None


class Finding(NamedTuple):
    count: int
    text: str               # "3 operations never completed (no notification showed their effect)"
    section: str            # anchor of the report section that explains it


#: Report sections the headline links to: (notebook, heading) -> anchor, see :func:`anchor`.
SECTIONS = {
    "latency": ("latency", None),
    "per_operation": ("latency", "Per operation"),
    "failures": ("latency", "Failures and operations that never completed"),
    "anomalies": ("coverage", "Anomalies: observed transitions the model does not allow"),
    "operations_coverage": ("coverage", "Operations: documented vs exercised"),
    "errors": ("session_explorer", "Errors"),
    "health": ("session_explorer", "Desktop health"),
}


def anchor(notebook: str, heading: str | None = None) -> str:
    """The id of a notebook's section in the report (``latency``) or of one of its headings
    (``latency-per-operation``): lower case, runs of other characters become one dash."""
    if heading is None:
        return notebook
    return notebook + "-" + re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")


def section(key: str) -> str:
    return anchor(*SECTIONS[key])


@dataclass(frozen=True)
class Headline:
    scope: db.Scope
    started_at: datetime | None
    ended_at: datetime | None
    duration_s: float | None
    agents: int
    sessions: int
    exchanges: int
    bayeux_messages: int
    operations: int
    completed: int
    failed: int
    never_completed: int
    error_rate_pct: float | None
    ack_p50_ms: float | None
    ack_p99_ms: float | None
    completion_p50_ms: float | None
    completion_p99_ms: float | None
    slowest: tuple[OperationRow, ...]
    most_failed: tuple[OperationRow, ...]
    anomalies: tuple[Anomaly, ...]
    findings: tuple[Finding, ...]


def _num(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _op_rows(stats: pd.DataFrame) -> list[OperationRow]:
    return [OperationRow(r.channel_operation, int(r.requests), int(r.n), int(r.failed), int(r.never_completed),
                         _num(r.p99)) for r in stats.itertuples()]


def _findings(con: duckdb.DuckDBPyConnection, scope: db.Scope, never: int, failed: int, anomalies: int,
              unknown: pd.DataFrame, undocumented: int) -> list[Finding]:
    out = []
    if never:
        out.append(Finding(never, f"{humanize.plural(never, 'operation')} without an outcome "
                                  "(no notification showed their effect)", section("failures")))
    if failed:
        out.append(Finding(failed, f"{humanize.plural(failed, 'failed operation')}", section("failures")))
    if anomalies:
        out.append(Finding(anomalies, f"{humanize.plural(anomalies, 'kind')} of state transition the reference "
                                      "models do not allow", section("anomalies")))
    if len(unknown):
        names = ", ".join(f"{m} {s}" for m, s in zip(unknown["model"], unknown["state"]))
        out.append(Finding(len(unknown), f"{humanize.plural(len(unknown), 'state')} the models do not know: {names}",
                           section("anomalies")))
    if undocumented:
        out.append(Finding(undocumented, f"{humanize.plural(undocumented, 'operation')} used that the reference "
                                         "does not document",
                           section("operations_coverage")))
    for kind, n in errors.error_summary(con, scope=scope).itertuples(index=False):
        if n:
            out.append(Finding(int(n), f"{humanize.count(n)} × {kind}", section("errors")))
    trouble = health_finding(health.events(con, scope))
    if trouble is not None:
        out.append(trouble)
    return out


def health_finding(events: pd.DataFrame) -> Finding | None:
    """One line for the desktop-health events (health.events): how many, on how many agents, by kind."""
    if events.empty:
        return None
    counts = health.summary(events)
    kinds = ", ".join(f"{humanize.count(r.count)} × {r.label}" for r in counts.itertuples() if r.count)
    agents = events["user_name"].nunique()
    return Finding(len(events), f"{humanize.plural(len(events), 'desktop-health event')} on "
                                f"{humanize.plural(agents, 'agent')}: {kinds}", section("health"))


def compute(con: duckdb.DuckDBPyConnection, scope: db.Scope | None = None, top: int = 5) -> Headline:
    """The headline of a capture (or of the part ``scope`` selects)."""
    scope = scope or db.WHOLE
    info = db.capture_info(con, scope).iloc[0]
    ack = latency.latency_stats(con, None, metric="ack", scope=scope).iloc[0]
    done = latency.latency_stats(con, None, metric="completion", scope=scope).iloc[0]
    per_op = latency.latency_stats(con, "channel_operation", scope=scope)
    slow = per_op[per_op["n"] > 0].sort_values(["p99", "requests"], ascending=[False, False]).head(top)
    bad = per_op[per_op["failed"] > 0].sort_values(["failed", "requests"], ascending=[False, False]).head(top)
    anomalies = coverage.anomalies(con, scope=scope).sort_values("count", ascending=False, kind="stable")
    unknown = coverage.unknown_states(con, scope=scope)
    ops_cov = coverage.operation_coverage(con, scope=scope)
    undocumented = int((~ops_cov["documented"] & ops_cov["exercised"]).sum())
    operations, failed = int(ack["requests"]), int(ack["failed"])
    never = int(ack["never_completed"])
    return Headline(
        scope=scope,
        started_at=None if pd.isna(info["started_at"]) else info["started_at"].to_pydatetime(),
        ended_at=None if pd.isna(info["ended_at"]) else info["ended_at"].to_pydatetime(),
        duration_s=_num(info["duration_s"]), agents=int(info["agents"]), sessions=int(info["sessions"]),
        exchanges=int(info["exchanges"]), bayeux_messages=int(info["bayeux_messages"]),
        operations=operations, completed=int(done["n"]), failed=failed, never_completed=never,
        error_rate_pct=100.0 * failed / operations if operations else None,
        ack_p50_ms=_num(ack["p50"]), ack_p99_ms=_num(ack["p99"]),
        completion_p50_ms=_num(done["p50"]), completion_p99_ms=_num(done["p99"]),
        slowest=tuple(_op_rows(slow)), most_failed=tuple(_op_rows(bad)),
        anomalies=tuple(Anomaly(r.model, r.source, r.target, int(r.count),
                                None if pd.isna(r.first_ts) else r.first_ts, r.example_user)
                        for r in anomalies.head(top).itertuples()),
        findings=tuple(_findings(con, scope, never, failed, len(anomalies), unknown, undocumented)),
    )


def summary_table(h: Headline) -> pd.DataFrame:
    """The headline's one summary table: (what, value) rows, numbers rounded for people."""
    span = "–"
    if h.started_at is not None:
        end = humanize.timestamp(h.ended_at)
        if h.ended_at is not None and h.ended_at.date() == h.started_at.date():
            end = end[11:]
        span = f"{humanize.timestamp(h.started_at)} → {end} UTC ({humanize.duration(h.duration_s)})"
    rows = [
        ("Scope", h.scope.describe()),
        ("Capture span", span),
        ("Agents, sessions", f"{humanize.plural(h.agents, 'agent')}, {humanize.plural(h.sessions, 'session')}"),
        ("Traffic", f"{humanize.count(h.exchanges)} HTTP exchanges, "
                    f"{humanize.count(h.bayeux_messages)} Bayeux messages"),
        ("Operations", f"{humanize.count(h.operations)}: {humanize.count(h.completed)} completed, "
                       f"{humanize.count(h.failed)} failed, {humanize.count(h.never_completed)} without outcome"),
        ("Error rate", f"{humanize.pct(h.error_rate_pct)} of operations failed"),
        ("Ack latency", f"p50 {humanize.ms(h.ack_p50_ms)}, p99 {humanize.ms(h.ack_p99_ms)}"),
        ("Completion latency", f"p50 {humanize.ms(h.completion_p50_ms)}, p99 {humanize.ms(h.completion_p99_ms)}"),
    ]
    return pd.DataFrame(rows, columns=["what", "value"])


# ------------------------------------------------------------------------------ HTML

_LINKS = {"Operations": "latency", "Error rate": "failures", "Ack latency": "per_operation",
          "Completion latency": "per_operation"}


def _link(text: str, target: str, anchors: set[str]) -> str:
    """``text`` linked to ``#target`` when the report has that section (a report of some notebooks
    only has some), else plain."""
    body = html.escape(text)
    return f'<a href="#{target}">{body}</a>' if target in anchors else body


def _op_item(r: OperationRow, what: str, anchors: set[str]) -> str:
    if what == "p99":
        tail = f"p99 {humanize.ms(r.p99_ms)} over {humanize.count(r.completed)} completed"
    else:
        tail = f"{humanize.count(r.failed)} of {humanize.count(r.requests)} failed"
    return f"<li>{_link(r.operation, section('per_operation'), anchors)}: {html.escape(tail)}</li>"


def to_html(h: Headline, anchors: set[str]) -> str:
    """The headline section; ``anchors`` are the ids the report has (links go only to those)."""
    rows = []
    for what, value in summary_table(h).itertuples(index=False):
        link = _LINKS.get(what)
        cell = _link(value, section(link), anchors) if link else html.escape(value)
        rows.append(f"<tr><th>{html.escape(what)}</th><td>{cell}</td></tr>")
    slow = "".join(_op_item(r, "p99", anchors) for r in h.slowest) or "<li>no completed operation</li>"
    bad = "".join(_op_item(r, "failed", anchors) for r in h.most_failed) or "<li>none failed</li>"
    found = "".join(f"<li>{_link(f.text, f.section, anchors)}</li>" for f in h.findings) \
        or "<li>nothing: no failures, anomalies or CometD trouble</li>"
    anomalies = "".join(
        f"<li>{html.escape(a.model)}: {html.escape(a.source)} → {html.escape(a.target)} "
        f"({humanize.count(a.count)}×, first {humanize.timestamp(a.first_ts)[11:]} by "
        f"{html.escape(str(a.example_user))})</li>" for a in h.anomalies)
    anomalies = (f"<p>{_link('Transitions the models do not allow', section('anomalies'), anchors)}:</p>"
                 f"<ul>{anomalies}</ul>") if anomalies else ""
    return f"""<section id="headline" class="headline">
<h2>Headline</h2>
<table class="summary">{''.join(rows)}</table>
<div class="columns">
<div><h3>Slowest operations (completion p99)</h3><ol>{slow}</ol></div>
<div><h3>Most failures</h3><ol>{bad}</ol></div>
<div><h3>Anomalies and findings</h3><ul>{found}</ul>{anomalies}</div>
</div>
</section>"""
