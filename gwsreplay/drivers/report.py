"""What a replay did: the divergence report (terminal table, JSON) and normalised transcripts.

A transcript is the replay told without anything that changes from run to
run: per session and step, the live answer (HTTP status, statusCode, Bayeux
success) and the live notifications matched to the step's recorded ones,
normalised (`compare.normalize`) and in recorded order. Two faithful replays
of one capture give identical transcripts, whatever their ids and timing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gwsreplay.replay.compare import Symbols, normalize, normalize_path
from gwsreplay.replay.engine import EXTERNAL_KINDS
from gwsreplay.drivers.runner import LiveStats, ReplayResult

MISSING = "<missing>"


def transcript(result: ReplayResult, copy: int = 0) -> list[dict]:
    """The normalised transcript of one copy of the plan (all its sessions, in plan order)."""
    symbols = Symbols()
    state = result.states[copy]
    out = []
    for run in (r for r in result.runs if r.copy == copy):
        matcher = state.matchers[run.plan.id]
        steps = []
        for outcome in run.engine.outcomes:
            step = outcome.step
            notes = []
            for note in run.plan.notes:
                if note.step == step.index or (step.index == 0 and note.step < 0):
                    live = matcher.matched.get(note.index)
                    notes.append(normalize(state.idmap.unmap(live.data), symbols) if live else MISSING)
            unexpected = [normalize(state.idmap.unmap(live.data), symbols)
                          for live, at in matcher.unexpected if max(at, 0) == step.index]
            entry: dict[str, Any] = {"step": step.index, "kind": step.kind, "operation": step.operation}
            if step.kind == "rest":
                entry.update(method=step.method, path=normalize_path(step.path or "", None, symbols),
                             status=outcome.status, statusCode=outcome.status_code)
            elif step.kind in EXTERNAL_KINDS:
                entry.update(status=outcome.status, statusCode=outcome.status_code, skipped=outcome.skipped)
            else:
                entry.update(successful=outcome.successful)
            entry["notifications"] = notes
            if unexpected:
                entry["unexpected"] = unexpected
            steps.append(entry)
        out.append({"session": run.plan.id, "steps": steps})
    return out


def summary(result: ReplayResult) -> dict:
    stats = result.stats
    by_kind: dict[str, int] = {}
    for d in result.divergences:
        by_kind[d.kind] = by_kind.get(d.kind, 0) + 1
    return {
        "run_id": result.run_id, "capture": result.plan.capture, "target": result.target,
        "simulator": result.simulator, "sessions": len(result.runs),
        "copies": len(result.states), "concurrent_peak": stats.active_peak, "duration_s": round(result.ended_at - result.started_at, 3),
        "operations": stats.operations, "notifications": stats.notifications,
        "ops_per_s": round(stats.operations / max(result.ended_at - result.started_at, 1e-9), 1),
        "latency_p50_ms": _round(stats.percentile(50)), "latency_p99_ms": _round(stats.percentile(99)),
        "divergences": len(result.divergences), "divergences_by_kind": by_kind,
        "external_events_waited_for": result.announcements,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def report_json(result: ReplayResult) -> dict:
    """Everything for --report FILE: summary, divergences, and per step recorded vs live."""
    sessions = []
    for run in result.runs:
        steps = []
        for outcome in run.engine.outcomes:
            step = outcome.step
            recorded_notes = [n.label() for n in run.plan.notes if n.step == step.index]
            matcher = result.states[run.copy].matchers[run.plan.id]
            live_notes = [matcher.matched[n.index].label() if n.index in matcher.matched else MISSING
                          for n in run.plan.notes if n.step == step.index]
            steps.append({
                "step": step.index, "label": step.label(), "kind": step.kind,
                "recorded": {"status": step.status, "statusCode": step.status_code, "successful": step.successful,
                             "notifications": recorded_notes},
                "live": {"status": outcome.status, "statusCode": outcome.status_code,
                         "successful": outcome.successful, "error": outcome.error, "skipped": outcome.skipped,
                         "notifications": live_notes},
                "divergences": [d.as_dict() for d in outcome.divergences],
            })
        sessions.append({"copy": run.copy, "session": run.plan.id, "recorded_user": run.plan.user_name,
                         "live_user": run.credentials.user, "transport": run.plan.transport,
                         "finished": run.engine.finish_reason, "steps": steps})
    return {"summary": summary(result), "divergences": result.divergence_rows(), "sessions": sessions}


def write_report(result: ReplayResult, path: str | Path) -> None:
    Path(path).write_text(json.dumps(report_json(result), indent=2, default=str))


def print_report(result: ReplayResult, console=None, *, limit: int = 40) -> None:
    """The divergence table (or a one-line all-clear) and the summary figures."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    info = summary(result)
    rows = result.divergence_rows()
    if rows:
        table = Table(title=f"Divergences ({len(rows)})", show_lines=False)
        for column in ("session", "step", "what", "kind", "detail"):
            table.add_column(column, overflow="fold")
        for d in rows[:limit]:
            session = d["session"] if len(result.states) == 1 else f"{d['session']} (copy {d['copy']})"
            table.add_row(session, "" if d["step"] is None else str(d["step"]), d.get("label") or "",
                          d["kind"], d["detail"])
        console.print(table)
        if len(rows) > limit:
            console.print(f"... and {len(rows) - limit} more (see --report FILE)")
    for text in result.announcements[:10]:
        console.print(f"[yellow]{text}[/]")
    verdict = "[green]no divergence[/]" if not rows else f"[red]{len(rows)} divergence(s)[/]"
    console.print(
        f"replayed {info['sessions']} session(s) against {result.target} in {info['duration_s']:.1f}s: "
        f"{info['operations']} operations ({info['ops_per_s']}/s, p50 {info['latency_p50_ms']} ms, "
        f"p99 {info['latency_p99_ms']} ms), {info['notifications']} notifications, {verdict}")


def progress_line(stats: LiveStats) -> str:
    p50, p99 = stats.percentile(50), stats.percentile(99)
    lat = f"p50 {p50:.1f} ms  p99 {p99:.1f} ms" if p50 is not None else "p50 -  p99 -"
    return (f"agents {stats.active} active  sessions {stats.sessions_done}/{stats.sessions_total}  "
            f"ops {stats.operations} ({stats.ops_per_second():.0f}/s)  {lat}  "
            f"notifications {stats.notifications}  divergences {stats.divergences}")
