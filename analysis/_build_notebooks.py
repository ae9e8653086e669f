"""Writes notebooks/*.ipynb (without outputs) from the cell sources below.

The notebooks are thin: each cell calls one analysis function and shows its
table or figure. Keeping their source here makes them reviewable as Python and
regenerable: ``python -m gwsreplay.analysis._build_notebooks``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"

SETUP = """\
import pandas as pd
from gwsreplay.analysis import compare, coverage, db, errors, figures, health, latency, notebook, timeline

con, scope, capture = notebook.setup(CAPTURE_DB{scope_args})"""

SCOPE_ARGS = ", time_from=TIME_FROM, time_to=TIME_TO, agent=AGENT"


def _nb(title: str, intro: str, parameters: str, cells: list[tuple[str, str]], *,
        scoped: bool = True) -> nbformat.NotebookNode:
    """A notebook: title and intro, the ``parameters`` cell, the one ``setup`` cell (the report
    hides its output: the capture is summarised once, in the report's headline), then ``cells``."""
    nb = new_notebook()
    nb.metadata.update({
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
        "language_info": {"name": "python"},
    })
    nb.cells.append(new_markdown_cell(f"# {title}\n\n{intro}"))
    params = new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells.append(params)
    setup = new_code_cell(SETUP.format(scope_args=SCOPE_ARGS if scoped else ""))
    setup.metadata["tags"] = ["setup"]
    nb.cells.append(setup)
    for kind, src in cells:
        nb.cells.append(new_markdown_cell(src) if kind == "md" else new_code_cell(src))
    return nb


def md(src: str) -> tuple[str, str]:
    return "md", src


def code(src: str) -> tuple[str, str]:
    return "code", src


CAPTURE = ('# Parameters (papermill-style: `gwsreplay report` overrides them)\n'
           'CAPTURE_DB = "../captures/demo.duckdb"   # relative to this notebook\n')
PARAMS = CAPTURE + (
    'TIME_FROM = None   # e.g. "2024-05-06 10:40" (capture time, UTC; inclusive); None = from the start\n'
    'TIME_TO = None     # e.g. "2024-05-06 10:45" (exclusive); None = to the end\n'
    'AGENT = None       # one agent\'s user name; None = every agent')

LATENCY = _nb(
    "Operation latency",
    "How long each GWS operation takes, and where the time goes. GWS answers an operation at once with "
    "`statusCode` 0, which only means *sent to T-Server*; its effect arrives later as a CometD notification. "
    "So every operation has two latencies:\n\n"
    "* **ack**: request sent → HTTP response starts;\n"
    "* **completion**: request sent → first notification showing the effect (or the ErrorMessage reporting "
    "its failure).\n\n"
    "Percentiles are DuckDB's `quantile_cont`; completion percentiles count completed operations only, "
    "failures and operations that never completed are counted beside them.",
    PARAMS,
    [
        md("## Per channel\n\nVoice (calls, devices), chat, email, workitem, open media, IM, workbins, and "
           "`all channels` for the session and the agent-state operations of `/api/v2/me`; a media "
           "channel's own Ready/NotReady/DND count for that channel."),
        code("ops = latency.operation_latencies(con, scope=scope)\nlatency.latency_table(con, 'channel', scope=scope)"),
        code("figures.latency_box(ops, 'completion', by='channel')"),
        md("## Per operation\n\nOperations are named by channel (`chat Accept`, `email Accept`, "
           "`voice Answer`): the same operationName means different work on different channels."),
        code("latency.latency_table(con, 'channel_operation', scope=scope)"),
        code("figures.latency_box(ops, 'completion', by='channel_operation')"),
        code("figures.latency_histogram(ops, 'completion', by='channel_operation')"),
        code("figures.latency_box(ops, 'ack', by='channel_operation')"),
        code("figures.latency_percentile_bars(latency.latency_stats(con, 'channel_operation', scope=scope),\n"
             "                                 key='channel_operation',\n"
             "                                 title='Completion latency percentiles per operation (ms)')"),
        md("## Per agent"),
        code("latency.latency_table(con, 'agent', scope=scope)"),
        code("figures.latency_box(ops, 'completion', by='user_name')"),
        md("## Over time\n\nOne point per time bucket; a rising p99 with a flat p50 is a tail problem "
           "(a few slow requests), a rising p50 a general slowdown."),
        code("bucket = latency.auto_bucket_seconds(con, scope=scope)\n"
             "over_time = latency.latency_over_time(con, bucket, by=None, scope=scope)\n"
             "figures.latency_over_time(over_time, title=f'Completion latency over time ({bucket:g} s buckets)')"),
        code("per_channel = latency.latency_over_time(con, bucket, by='channel', scope=scope)\n"
             "figures.latency_over_time(per_channel, by='channel',\n"
             "                          title='Completion p50 per channel over time')"),
        md("## Failures and operations that never completed\n\n`acknowledged`: operations the reference "
           "documents without a notification (SetInFocus, CancelConsult, EndContactCenterSession, ...), "
           "complete on their HTTP answer."),
        code("figures.outcome_bars(latency.outcome_counts(con, by='channel_operation', scope=scope))"),
        code("latency.failed_operations(con, scope=scope)"),
        code("latency.never_completed(con, scope=scope)"),
    ],
)

COVERAGE = _nb(
    "State-transition and operation coverage",
    "Which states and transitions did this session exercise, and which did it never reach? The reference "
    "state models (`analysis/state_models.py`, derived from the GWS 8.6 reference with line citations) are "
    "compared with the transitions seen in consecutive notifications of each resource:\n\n"
    "* **covered**: allowed by the model and seen;\n"
    "* **missing**: allowed by the model, never reached;\n"
    "* **anomaly**: seen, but the model does not allow it (out-of-order delivery, a simulator bug, "
    "or a gap in the model).",
    PARAMS,
    [
        code("observed = coverage.observed_transitions(con, scope=scope)\n"
             "cov = coverage.transition_coverage(con, observed=observed)\n"
             "summary = coverage.coverage_summary(cov)\nsummary"),
        code("figures.coverage_overview(summary)"),
        md("## Voice: calls, agent state, DND, forwarding"),
        code("for model in ('call', 'agent_state', 'dnd', 'forwarding'):\n"
             "    figures.coverage_heatmap(cov, model).show()\n"
             "    figures.state_diagram(cov, model).show()"),
        md("## Agent state per media channel\n\nThe Channels API's Ready / NotReady / Offline and "
           "do-not-disturb of each media channel (ChannelStateChangeMessageV2 on `/v2/me/channels`); voice "
           "is the device above. One model for every channel; the table breaks it down per channel."),
        code("for model in ('channel_state', 'channel_dnd'):\n"
             "    figures.coverage_heatmap(cov, model).show()\n"
             "    figures.state_diagram(cov, model).show()"),
        code("coverage.channel_transitions(con, scope=scope)"),
        md("## Interactions: IM, chat, email, workitem, open media\n\nModels with no observation in this "
           "capture are listed but not drawn."),
        code("INTERACTIONS = ('im_session', 'chat', 'email', 'workitem', 'openmedia')\n"
             "media = [m for m in INTERACTIONS if (observed['model'] == m).any()]\n"
             "for model in media:\n"
             "    figures.coverage_heatmap(cov, model).show()\n"
             "    figures.state_diagram(cov, model).show()\n"
             "print('not seen in this capture:', [m for m in INTERACTIONS if m not in media] or 'none')"),
        md("## Transitions never reached"),
        code("coverage.missing_transitions(con, observed=observed)"),
        md("## Anomalies: observed transitions the model does not allow\n\n"
           "Open the session explorer on `example_user` around `first_ts` to see what happened."),
        code("coverage.anomalies(con, observed=observed)"),
        code("coverage.unknown_states(con, scope=scope)"),
        md("## Operations: documented vs exercised"),
        code("ops_cov = coverage.operation_coverage(con, scope=scope)\n"
             "ops_summary = coverage.operation_coverage_summary(ops_cov)\nops_summary"),
        code("figures.operation_coverage_bars(ops_summary)"),
        code("ops_cov[ops_cov['exercised']][['resource_family', 'operation_name', 'requests', 'completed', "
             "'acknowledged', 'failed', 'no_notification', 'documented']]"),
        md("## Capabilities: offered by GWS vs used by the desktop"),
        code("caps = coverage.capability_coverage(con, scope=scope)\nfigures.capability_bars(caps)"),
        code("caps[caps['status'] != 'used']"),
    ],
)

SESSION = _nb(
    "Session explorer",
    "What happened on the desktops: first every agent's activity on one lane per channel (voice, chat, "
    "email, workitem, open media, IM, workbins), then one agent's REST requests, notifications per CometD "
    "channel and CometD meta traffic on one time axis, with the agent state (voice and each media channel), "
    "DND, forwarding, calls and interactions as bands. Set `AGENT` (and optionally `TIME_FROM`/`TIME_TO`, "
    "e.g. `'2024-03-04 10:42'`) in the parameters cell; without `AGENT` the busiest agent is shown.",
    PARAMS,
    [
        md("## All agents, per channel"),
        code("figures.channel_activity(timeline.channel_activity(con, scope))"),
        md("## One agent"),
        code("agents = timeline.agents(con, scope)\nagents"),
        code("agent = AGENT or (agents.sort_values('operations', ascending=False)['user_name'].iloc[0]\n"
             "                 if len(agents) else None)\n"
             "events = timeline.agent_timeline(con, agent, scope) if agent else pd.DataFrame()\n"
             "bands = timeline.state_bands(con, agent, scope=scope) if agent else None\n"
             "figures.swimlane(events, bands, title=f'Session timeline: {agent}')"),
        md("### The agent's operations"),
        code("latency.operation_latencies(con, user=agent, scope=scope) if agent else None"),
        md("## Errors\n\nEvery agent's, or `AGENT`'s when it is set."),
        code("err = errors.error_summary(con, scope=scope)\nfigures.error_summary_bars(err)"),
        code("errors.http_errors(con, scope)"),
        code("errors.status_errors(con, scope)"),
        code("errors.error_notifications(con, scope)"),
        code("errors.cometd_failures(con, scope)"),
        code("errors.handshakes(con, scope)"),
        code("errors.longpoll_gaps(con, scope=scope)"),
        md("## Desktop health\n\nWhat breaks production desktops, each with the moment and the agent: away longer "
           "than CometD's maxInterval (network cut, sleeping laptop: the server dropped the session), "
           "`/meta/connect`s that never got a reply, `402 Unknown client` and the re-handshake after it, "
           "reconnect storms, two tabs (the server's `multiple-clients` advice, or two clients of one session "
           "connected at once), WebSocket fallbacks to long-polling, logouts the desktop did not ask for "
           "(GWS's user monitor logs an agent out 60 s after its CometD session went away), HTTP errors, "
           "and acknowledgements or completions far slower than the rest of their kind. "
           "`analysis/health.py` says how each is found."),
        code("trouble = health.events(con, scope)\nhealth.summary(trouble)"),
        code("figures.health_timeline(trouble)"),
        code("health.per_agent(trouble)"),
        code("trouble[['ts', 'until', 'user_name', 'label', 'detail', 'client_id']]"),
    ],
)

REPLAY = _nb(
    "Replay comparison",
    "Recorded against replayed: latency distributions per operation and where the replay diverged "
    "(request counts, outcomes, statusCodes). The replay is read from `REPLAY_DB` (default: "
    "`<capture>-replay.duckdb` next to the capture), or from replay runs stored in the capture itself "
    "(rows with a `run_id`). Without a replay the tables are empty and the figures say so. The comparison "
    "covers the whole capture: the replay has its own clock (and may map agents to other users), so a "
    "time window or agent does not carry over to it.",
    CAPTURE + "REPLAY_DB = None   # None: <capture>-replay.duckdb next to the capture, if it exists\n"
             "RUN_ID = None      # one replay run; None: all runs of the replay file (or the latest in-file run)",
    [
        code("replay_path = (db.resolve_capture_path(REPLAY_DB, '.') if REPLAY_DB\n"
             "               else capture.with_name(capture.stem + '-replay.duckdb'))\n"
             "alias = compare.attach_replay(con, replay_path)\n"
             "pair = compare.sides(con, alias, RUN_ID)\n"
             "print(f'replay: {replay_path}' if alias else f'no replay file at {replay_path}',\n"
             "      '| comparison available' if pair else '| nothing to compare with')\n"
             "compare.replay_runs(con, alias)"),
        code("compare.compare_latency(con, alias, RUN_ID)"),
        code("dist = compare.latency_distributions(con, alias, RUN_ID)\nfigures.compare_box(dist)"),
        code("figures.compare_ecdf(dist)"),
        code("figures.compare_box(dist, 'ack', title='Recorded vs replayed ack latency per operation')"),
        md("## Divergences"),
        code("compare.outcome_divergences(con, alias, RUN_ID)"),
        code("compare.replayer_divergences(con, alias)"),
    ],
    scoped=False,
)

NOTEBOOKS = {
    "latency.ipynb": LATENCY,
    "coverage.ipynb": COVERAGE,
    "session_explorer.ipynb": SESSION,
    "replay_comparison.ipynb": REPLAY,
}


def main() -> None:
    NOTEBOOK_DIR.mkdir(exist_ok=True)
    for name, nb in NOTEBOOKS.items():
        for i, cell in enumerate(nb.cells):
            cell.id = f"cell-{i:02d}"          # stable ids: regenerating gives no diff noise
        nbformat.validate(nb)
        nbformat.write(nb, NOTEBOOK_DIR / name)
        print(NOTEBOOK_DIR / name)


if __name__ == "__main__":
    main()
