"""Plotly figures over the analysis DataFrames.

Every function takes the DataFrame an analysis function returned and gives
back a ``plotly.graph_objects.Figure``: the notebooks only wire the two
together, and the report embeds the figures the notebooks displayed.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import plotly.io as pio

from gwsreplay.analysis.coverage import coverage_matrix
from gwsreplay.analysis.state_models import MODELS, NEW, StateModel
from gwsreplay.analysis.timeline import CHANNEL_ORDER

STATUS_COLORS = {"covered": "#2ca02c", "missing": "#d62728", "anomaly": "#ff7f0e", "not allowed": "#f0f0f0"}
SOURCE_COLORS = {"recorded": "#1f77b4", "replayed": "#ff7f0e"}
_TEMPLATE = "plotly_white"


def setup_notebook() -> None:
    """Display figures through plotly's MIME type: JupyterLab renders it natively and
    the report finds the figure JSON in the executed notebook (no plotly.js per cell)."""
    pio.renderers.default = "plotly_mimetype"
    pio.templates.default = _TEMPLATE


def _empty(title: str, message: str = "no data in this capture") -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font={"size": 16, "color": "#888"},
                       xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_layout(title=title, template=_TEMPLATE, height=260,
                      xaxis={"visible": False}, yaxis={"visible": False})
    return fig


def _metric_col(metric: str) -> str:
    return {"ack": "ack_latency_ms", "completion": "completion_latency_ms"}[metric]


def _completed(ops: pd.DataFrame, metric: str) -> pd.DataFrame:
    col = _metric_col(metric)
    df = ops[ops[col].notna()]
    return df[df["outcome"] == "completed"] if metric == "completion" else df


# ------------------------------------------------------------------------------ log axes

def log_ticks(lo: float, hi: float, max_ticks: int = 12) -> list[float]:
    """Round tick values (1, 2, 5, 10, 20, 50, ...) covering [lo, hi]; only 1, 10, 100, ... when
    that would be more than ``max_ticks``."""
    lo, hi = max(float(lo), 1e-3), max(float(hi), 1e-3)
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    for steps in ((1, 2, 5), (1,)):
        ticks = [m * 10.0 ** e for e in range(first, last + 1) for m in steps]
        ticks = [t for t in ticks if lo / 1.5 <= t <= hi * 1.5] or [10.0 ** first]
        if len(ticks) <= max_ticks:
            break
    return [round(t, 6) for t in ticks]


def tick_label(value: float) -> str:
    """``0.5``, ``20``, ``1,000``: what a person writes, no exponents."""
    return f"{value:,.0f}" if value >= 1 else f"{value:g}"


def readable_log_axis(fig: go.Figure, axis: str, values) -> go.Figure:
    """Make ``axis`` ("x" or "y") a log axis labelled 1, 2, 5, 10, 20, ... ms over ``values``,
    instead of plotly's default of small digits between exponents."""
    v = pd.to_numeric(pd.Series(np.ravel(values)), errors="coerce").dropna()
    v = v[v > 0]
    update = fig.update_xaxes if axis == "x" else fig.update_yaxes
    if v.empty:
        return update(type="log")
    ticks = log_ticks(v.min(), v.max())
    return update(type="log", tickmode="array", tickvals=ticks, ticktext=[tick_label(t) for t in ticks],
                  exponentformat="none")


# ------------------------------------------------------------------------------ latency

_BY_LABELS = {"operation_name": "operation", "user_name": "agent", "channel": "channel",
              "channel_operation": "operation"}


def latency_histogram(ops: pd.DataFrame, metric: str = "completion", *, top: int = 8,
                      log_x: bool = True, by: str = "operation_name") -> go.Figure:
    """Distribution of one latency per operation (the ``top`` most frequent ones; ``by`` another
    column of ``operation_latencies``, e.g. ``channel`` or ``channel_operation``)."""
    label = _BY_LABELS.get(by, by)
    title = f"{metric.capitalize()} latency by {label} (ms)"
    df = _completed(ops, metric)
    if df.empty:
        return _empty(title)
    col = _metric_col(metric)
    keep = df[by].value_counts().index[:top]
    df = df[df[by].isin(keep)]
    x = np.log10(df[col].clip(lower=0.01)) if log_x else df[col]
    fig = px.histogram(df.assign(_x=x), x="_x", color=by, barmode="stack",
                       nbins=60, category_orders={by: list(keep)},
                       labels={"_x": "log10(ms)" if log_x else "ms", by: label})
    if log_x:
        # the bars are binned over log10(ms), so the ticks sit at log10 of round values
        ticks = log_ticks(df[col].clip(lower=0.01).min(), df[col].max())
        fig.update_xaxes(tickvals=[math.log10(v) for v in ticks], ticktext=[tick_label(v) for v in ticks],
                         title=f"{metric} latency (ms, log scale)")
    fig.update_layout(title=title, template=_TEMPLATE, height=420)
    return fig


def latency_box(ops: pd.DataFrame, metric: str = "completion", *, by: str = "operation_name") -> go.Figure:
    """Box plot of one latency per operation (or per agent with ``by="user_name"``, per channel
    with ``by="channel"``, per channel and operation with ``by="channel_operation"``)."""
    title = f"{metric.capitalize()} latency per {_BY_LABELS.get(by, by)} (ms)"
    df = _completed(ops, metric)
    if df.empty:
        return _empty(title)
    order = df.groupby(by)[_metric_col(metric)].median().sort_values(ascending=False).index.tolist()
    fig = px.box(df, x=by, y=_metric_col(metric), points="outliers", category_orders={by: order},
                 log_y=True, labels={_metric_col(metric): "ms (log scale)", by: ""},
                 hover_data=["user_name", "requested_at", "resource_id"])
    fig.update_layout(title=title, template=_TEMPLATE, height=440)
    return readable_log_axis(fig, "y", df[_metric_col(metric)])


def latency_percentile_bars(stats: pd.DataFrame, *, key: str = "operation_name",
                            title: str = "Latency percentiles (ms)") -> go.Figure:
    """p50/p90/p99 side by side per group (from ``latency.latency_stats``)."""
    df = stats.dropna(subset=["p50"])
    if df.empty:
        return _empty(title)
    fig = go.Figure()
    for p, color in (("p50", "#1f77b4"), ("p90", "#ff7f0e"), ("p99", "#d62728")):
        fig.add_bar(x=df[key], y=df[p], name=p, marker_color=color)
    fig.update_layout(barmode="group", title=title, template=_TEMPLATE, height=420,
                      yaxis_title="ms (log scale)")
    return readable_log_axis(fig, "y", df[["p50", "p90", "p99"]])


def latency_over_time(series: pd.DataFrame, *, by: str | None = None,
                      title: str = "Completion latency over time") -> go.Figure:
    """Percentile lines per time bucket (from ``latency.latency_over_time``).

    Without ``by``: p50, p90 and p99 of all operations. With ``by`` (for example
    "operation_name"): the p50 of each group.
    """
    df = series.dropna(subset=["p50"])
    if df.empty:
        return _empty(title)
    if by is None:
        fig = go.Figure()
        for p, dash in (("p50", "solid"), ("p90", "dash"), ("p99", "dot")):
            fig.add_scatter(x=df["bucket"], y=df[p], name=p, mode="lines+markers", line={"dash": dash})
    else:
        fig = px.line(df, x="bucket", y="p50", color=by, markers=True, labels={"p50": "p50 (ms)", "bucket": ""})
    fig.update_layout(title=title, template=_TEMPLATE, height=400, yaxis_title="ms (log scale)")
    return readable_log_axis(fig, "y", df[["p50", "p90", "p99"]] if by is None else df["p50"])


def outcome_bars(outcomes: pd.DataFrame, title: str = "Outcome per operation") -> go.Figure:
    """Stacked requests per operation and outcome (from ``latency.outcome_counts``)."""
    if outcomes.empty:
        return _empty(title)
    colors = {"completed": "#2ca02c", "acknowledged": "#98df8a", "no_notification": "#bcbd22", "failed": "#d62728",
              "error_message": "#e377c2", "http_error": "#8c564b"}
    x = next((c for c in ("channel_operation", "operation_name", "channel") if c in outcomes.columns),
             outcomes.columns[0])
    fig = px.bar(outcomes, x=x, y="requests", color="outcome", color_discrete_map=colors, labels={x: ""})
    fig.update_layout(title=title, template=_TEMPLATE, height=420, barmode="stack")
    return fig


# ------------------------------------------------------------------------------ coverage

def coverage_overview(summary: pd.DataFrame, title: str = "Transition coverage per state model") -> go.Figure:
    """Covered / missing / anomalous transitions per model (from ``coverage.coverage_summary``)."""
    if summary.empty:
        return _empty(title)
    fig = go.Figure()
    for status in ("covered", "missing", "anomalies"):
        key = "anomaly" if status == "anomalies" else status
        fig.add_bar(y=summary["model"], x=summary[status], name=status, orientation="h",
                    marker_color=STATUS_COLORS[key])
    fig.update_layout(barmode="stack", title=title, template=_TEMPLATE, height=120 + 40 * len(summary),
                      xaxis_title="transitions", yaxis={"autorange": "reversed"})
    return fig


def coverage_heatmap(coverage: pd.DataFrame, model: str) -> go.Figure:
    """From-state x to-state grid of one model: covered (green), never reached (red),
    anomalies (orange), not allowed and not seen (grey); cells show counts."""
    m = MODELS[model]
    mat = coverage_matrix(coverage, model)
    cov = coverage[coverage["model"] == model].set_index(["source", "target"])
    codes, text, hover = [], [], []
    for s in mat.index:
        row_c, row_t, row_h = [], [], []
        for t in mat.columns:
            if (s, t) in cov.index:
                r = cov.loc[(s, t)]
                status, count = r["status"], int(r["count"])
                triggers = r["triggers"] if isinstance(r["triggers"], str) else "not in the model"
                row_h.append(f"{s} → {t}<br>{status}, seen {count}×<br>{triggers}")
                row_t.append(str(count) if status != "missing" else "0")
            else:
                status = "not allowed"
                row_h.append(f"{s} → {t}<br>not in the model, not seen")
                row_t.append("")
            row_c.append(["not allowed", "missing", "covered", "anomaly"].index(status))
        codes.append(row_c)
        text.append(row_t)
        hover.append(row_h)
    scale = []
    for i, key in enumerate(["not allowed", "missing", "covered", "anomaly"]):
        scale += [[i / 4, STATUS_COLORS[key]], [(i + 1) / 4, STATUS_COLORS[key]]]
    fig = go.Figure(go.Heatmap(z=codes, x=list(mat.columns), y=list(mat.index), text=text,
                               texttemplate="%{text}", hovertext=hover, hoverinfo="text",
                               colorscale=scale, zmin=0, zmax=4, showscale=False, xgap=2, ygap=2))
    fig.update_layout(title=f"{m.title}: transitions (rows: from, columns: to)", template=_TEMPLATE,
                      height=140 + 45 * len(mat.index), width=None,
                      yaxis={"autorange": "reversed", "title": "from"}, xaxis={"title": "to", "side": "top"})
    return fig


# Hand-placed node positions (x, y) that keep the models' edges from crossing nodes.
_LAYOUTS: dict[str, dict[str, tuple[float, float]]] = {
    "call": {NEW: (0, 0), "Dialing": (1.2, 0.8), "Ringing": (1.2, -0.8), "Established": (2.4, 0),
             "Held": (3.6, 0), "Released": (2.4, -1.6)},
    "im_session": {NEW: (0, 0), "Initiating": (1.2, 0.8), "Alerting": (1.2, -0.8), "Talking": (2.4, 0),
                   "Completed": (3.6, 0)},
    "chat": {NEW: (0, 0), "Invited": (1.2, 0), "Chatting": (2.4, 0.9), "LeftChat": (3.6, 0.9),
             "Revoked": (2.4, -0.9), "Completed": (3.6, -0.6), "InWorkbin": (2.4, 2.0)},
    "email": {NEW: (0, 0), "Invited": (1.2, 0.9), "Composing": (1.2, -0.9), "Processing": (2.4, 0.9),
              "Sent": (2.4, -0.9), "Canceled": (2.4, -1.9), "Completed": (3.6, 0), "InWorkbin": (3.6, 1.6)},
    "workitem": {NEW: (0, 0), "Invited": (1.2, 0.8), "Processing": (2.4, 0), "Completed": (3.6, 0.8),
                 "InWorkbin": (2.4, -1.2)},
    "openmedia": {NEW: (0, 0), "Invited": (1.2, 0.8), "Processing": (2.4, 0), "Completed": (3.6, 0.8),
                  "InWorkbin": (2.4, -1.2)},
    "dnd": {"Off": (0, 0), "On": (1.6, 0)},
    "forwarding": {"Off": (0, 0), "On": (1.6, 0)},
    "channel_state": {"NotReady": (0, 0), "Ready": (2.4, 0), "LoggedOut": (1.2, -1.4)},
    "channel_dnd": {"Off": (0, 0), "On": (1.6, 0)},
}


def _layout(model: StateModel, states: list[str]) -> dict[str, tuple[float, float]]:
    """Node positions: the model's hand layout, else a circle with (new) on its left;
    states the model does not know (seen in anomalies) go on a row underneath."""
    pos = dict(_LAYOUTS.get(model.name, {}))
    if not pos:
        ring = [s for s in states if s != NEW and s in model.states]
        n = max(len(ring), 1)
        for i, s in enumerate(ring):
            a = math.pi / 2 - 2 * math.pi * i / n
            pos[s] = (1.3 * math.cos(a), 1.3 * math.sin(a))
        if NEW in states:
            pos[NEW] = (-2.4, 0.0)
    strays = [s for s in states if s not in pos]
    if strays:
        y = min(p[1] for p in pos.values()) - 1.0
        x0 = min(p[0] for p in pos.values())
        for i, s in enumerate(strays):
            pos[s] = (x0 + 1.2 * i, y)
    return pos


_NODE_R = 0.2   # node radius in axis units (markers are sized to match at the default height)


def state_diagram(coverage: pd.DataFrame, model: str) -> go.Figure:
    """The model as a graph: observed edges green (width by count), never reached red dashed,
    anomalies (observed, not allowed) orange. Hover an edge's midpoint for triggers and counts."""
    m = MODELS[model]
    cov = coverage[coverage["model"] == model]
    states = ([NEW] if m.observes_creation else []) + list(m.states)
    states += sorted((set(cov["source"]) | set(cov["target"])) - set(states))
    pos = _layout(m, states)
    fig = go.Figure()
    max_count = max(int(cov["count"].max()) if len(cov) else 1, 1)
    mids = {"x": [], "y": [], "text": [], "color": []}
    for _, r in cov.iterrows():
        (x0, y0), (x1, y1) = pos[r["source"]], pos[r["target"]]
        dx, dy = x1 - x0, y1 - y0
        length = math.hypot(dx, dy) or 1.0
        # bend every edge to its left, so A->B and B->A do not overlap
        cx, cy = (x0 + x1) / 2 - dy / length * 0.18 * length, (y0 + y1) / 2 + dx / length * 0.18 * length
        ts = np.linspace(0.0, 1.0, 80)
        bx = (1 - ts) ** 2 * x0 + 2 * (1 - ts) * ts * cx + ts ** 2 * x1
        by = (1 - ts) ** 2 * y0 + 2 * (1 - ts) * ts * cy + ts ** 2 * y1
        # stop the curve at the node circles, so the arrowhead stays visible
        outside = (np.hypot(bx - x0, by - y0) > _NODE_R) & (np.hypot(bx - x1, by - y1) > _NODE_R * 1.15)
        bx, by = bx[outside], by[outside]
        color = STATUS_COLORS[r["status"]]
        width = 1.5 if r["status"] == "missing" else 1.5 + 5 * math.log1p(r["count"]) / math.log1p(max_count)
        fig.add_scatter(x=bx, y=by, mode="lines", hoverinfo="skip", showlegend=False,
                        line={"color": color, "width": width, "dash": "dash" if r["status"] == "missing" else "solid"})
        # arrowhead near the target
        fig.add_annotation(x=bx[-1], y=by[-1], ax=bx[-4], ay=by[-4], xref="x", yref="y", axref="x", ayref="y",
                           showarrow=True, arrowhead=3, arrowsize=1.2, arrowwidth=max(width * 0.6, 1.2),
                           arrowcolor=color, text="")
        triggers = r["triggers"] if isinstance(r["triggers"], str) else "not in the model"
        mids["x"].append(0.25 * x0 + 0.5 * cx + 0.25 * x1)
        mids["y"].append(0.25 * y0 + 0.5 * cy + 0.25 * y1)
        mids["text"].append(f"<b>{r['source']} → {r['target']}</b><br>{r['status']}, seen {int(r['count'])}×"
                            f"<br>{triggers}" + (f"<br>ref {r['ref']}" if isinstance(r.get("ref"), str) else ""))
        mids["color"].append(color)
    fig.add_scatter(x=mids["x"], y=mids["y"], mode="markers", hovertext=mids["text"], hoverinfo="text",
                    marker={"size": 9, "color": mids["color"], "line": {"width": 1, "color": "white"}},
                    showlegend=False)
    seen = set(cov.loc[cov["count"] > 0, "source"]) | set(cov.loc[cov["count"] > 0, "target"])
    fig.add_scatter(x=[pos[s][0] for s in states], y=[pos[s][1] for s in states], mode="markers+text",
                    text=[st.replace("+", "+<br>") for st in states], textposition="middle center", hoverinfo="text", showlegend=False,
                    marker={"size": 58, "symbol": "circle",
                            "color": ["#dbe9f6" if s in seen else "#f5f5f5" for s in states],
                            "line": {"width": [2 if s in m.states or s == NEW else 3 for s in states],
                                     "color": ["#1f77b4" if s in m.states or s == NEW else "#ff7f0e"
                                               for s in states]}},
                    textfont={"size": 11})
    for status in ("covered", "missing", "anomaly"):
        fig.add_scatter(x=[None], y=[None], mode="lines", name=status,
                        line={"color": STATUS_COLORS[status], "width": 3,
                              "dash": "dash" if status == "missing" else "solid"})
    xs, ys = [p[0] for p in pos.values()], [p[1] for p in pos.values()]
    fig.update_layout(title=f"{m.title}: state diagram", template=_TEMPLATE,
                      height=int(220 + 150 * (max(ys) - min(ys) + 0.9)),
                      xaxis={"visible": False, "range": [min(xs) - 0.5, max(xs) + 0.5]},
                      yaxis={"visible": False, "range": [min(ys) - 0.45, max(ys) + 0.45], "scaleanchor": "x"},
                      legend={"orientation": "h", "y": -0.02})
    return fig


def capability_bars(cap: pd.DataFrame, title: str = "Capabilities offered vs used") -> go.Figure:
    """Per resource type: capabilities used, offered but never used, used but never offered."""
    if cap.empty:
        return _empty(title)
    counts = cap.groupby(["resource_type", "status"]).size().reset_index(name="operations")
    colors = {"used": "#2ca02c", "offered, never used": "#d62728", "used, never offered": "#9467bd"}
    fig = px.bar(counts, x="resource_type", y="operations", color="status", color_discrete_map=colors,
                 hover_data={"operations": True})
    fig.update_layout(title=title, template=_TEMPLATE, height=380, barmode="stack")
    return fig


def operation_coverage_bars(summary: pd.DataFrame, title: str = "Documented operations exercised") -> go.Figure:
    """Exercised vs documented operations per resource family."""
    if summary.empty:
        return _empty(title)
    fig = go.Figure()
    fig.add_bar(x=summary["resource_family"], y=summary["exercised"], name="exercised", marker_color="#2ca02c")
    fig.add_bar(x=summary["resource_family"], y=summary["documented"] - summary["exercised"],
                name="never exercised", marker_color="#d9d9d9")
    fig.update_layout(barmode="stack", title=title, template=_TEMPLATE, height=380, yaxis_title="operations")
    return fig


# ------------------------------------------------------------------------------ timeline

_STATE_PALETTE = {
    "Ready": "#2ca02c", "NotReady": "#d62728", "NotReady+AfterCallWork": "#ff9896", "NotReady+AuxWork": "#c5b0d5",
    "LoggedOut": "#7f7f7f", "On": "#ff7f0e", "Off": "#e0e0e0", "Dialing": "#aec7e8", "Ringing": "#ffbb78",
    "Established": "#1f77b4", "Held": "#9467bd", "Talking": "#17becf", "Initiating": "#aec7e8",
    "Alerting": "#ffbb78", "Invited": "#ffbb78", "Chatting": "#17becf", "LeftChat": "#c7c7c7",
    "Processing": "#17becf", "Composing": "#9edae5", "InWorkbin": "#dbdb8d",
}
_BAND_LANES = {"agent_state": "agent state", "dnd": "do not disturb", "forwarding": "forwarding"}


def _band_lane(model: str, resource_id: str) -> str:
    if model in _BAND_LANES:
        return _BAND_LANES[model]
    if model == "channel_state":
        return f"{resource_id} channel"
    if model == "channel_dnd":
        return f"{resource_id} do not disturb"
    return f"{model.replace('_', ' ')} …{str(resource_id)[-6:]}"


def swimlane(events: pd.DataFrame, bands: pd.DataFrame | None = None, *, title: str = "Session timeline") -> go.Figure:
    """One agent's session: state bands on top, then REST requests, notifications per channel,
    and CometD meta traffic (from ``timeline.agent_timeline`` and ``timeline.state_bands``)."""
    if events.empty and (bands is None or bands.empty):
        return _empty(title)
    fig = go.Figure()
    lanes: list[str] = []
    if bands is not None and not bands.empty:
        # a media channel whose do-not-disturb never turned on is not worth a lane
        quiet = bands[bands["model"] == "channel_dnd"].groupby("resource_id")["state"].apply(
            lambda s: set(s) <= {"Off"})
        bands = bands[~((bands["model"] == "channel_dnd") & bands["resource_id"].isin(quiet[quiet].index))]
    if bands is not None and not bands.empty:
        b = bands.assign(lane=[_band_lane(m, r) for m, r in zip(bands["model"], bands["resource_id"])])
        b["duration_ms"] = (b["end"] - b["start"]).dt.total_seconds() * 1000
        for lane in dict.fromkeys(b["lane"]):
            lanes.append(lane)
        for state, g in b.groupby("state", sort=False):
            fig.add_bar(base=g["start"], x=g["duration_ms"], y=g["lane"], orientation="h", name=state,
                        marker_color=_STATE_PALETTE.get(state, "#bcbd22"), legendgroup="states",
                        hovertext=[f"{state}<br>{s:%H:%M:%S.%f}"[:-3] + f" → {e:%H:%M:%S}"
                                   for s, e in zip(g["start"], g["end"])], hoverinfo="text")
    if not events.empty:
        ev = events.copy()
        ev_lanes = ["REST"] + sorted(set(ev["lane"]) - {"REST", "CometD"}) + ["CometD"]
        lanes += [lane for lane in ev_lanes if lane in set(ev["lane"])]
        for kind, ok, name, symbol, color, size in (
                ("request", True, "REST request", "line-ns-open", "#1f77b4", 14),
                ("request", False, "failed request", "x", "#d62728", 11),
                ("notification", True, "notification", "diamond", "#444", 8),
                ("notification", False, "error notification", "x", "#d62728", 11),
                ("meta", True, "CometD meta", "circle-open", "#444", 8),
                ("meta", False, "CometD failure", "x", "#d62728", 11)):
            g = ev[(ev["kind"] == kind) & (ev["ok"] == ok)]
            if g.empty:
                continue
            fig.add_scatter(x=g["ts"], y=g["lane"], mode="markers", name=name,
                            marker={"symbol": symbol, "size": size, "color": color, "line": {"width": 2}},
                            hovertext=g["label"] + "<br>" + g["detail"].fillna(""), hoverinfo="text")
    fig.update_layout(title=title, template=_TEMPLATE, barmode="overlay", bargap=0.35,
                      height=max(420, 160 + 26 * len(lanes)), xaxis={"type": "date", "title": ""},
                      yaxis={"categoryorder": "array", "categoryarray": list(reversed(lanes)), "title": ""})
    return fig


def channel_activity(activity: pd.DataFrame, title: str = "Activity per channel (all agents)") -> go.Figure:
    """Every agent's requests and notifications, one lane per channel, coloured by agent
    (from ``timeline.channel_activity``); failures are crosses."""
    if activity.empty:
        return _empty(title)
    lanes = [c for c in CHANNEL_ORDER if c in set(activity["channel"])]
    lanes += sorted(set(activity["channel"]) - set(lanes))
    symbols = {"request": "line-ns-open", "notification": "diamond", "injection": "star"}
    fig = go.Figure()
    for (user, kind), g in activity.groupby(["user_name", "kind"], sort=True, dropna=False):
        ok, bad = g[g["ok"]], g[~g["ok"]]
        for part, symbol in ((ok, symbols.get(kind, "circle")), (bad, "x")):
            if part.empty:
                continue
            fig.add_scatter(x=part["ts"], y=part["channel"], mode="markers", name=f"{user} {kind}",
                            legendgroup=str(user), marker={"symbol": symbol, "size": 9 if kind != "request" else 12,
                                                           "line": {"width": 1.5}},
                            hovertext=str(user) + ": " + part["label"], hoverinfo="text")
    fig.update_layout(title=title, template=_TEMPLATE, height=max(360, 140 + 42 * len(lanes)),
                      xaxis={"type": "date", "title": ""},
                      yaxis={"categoryorder": "array", "categoryarray": list(reversed(lanes)), "title": ""})
    return fig


# ------------------------------------------------------------------------------ errors

def error_summary_bars(summary: pd.DataFrame, title: str = "Errors by kind") -> go.Figure:
    if summary.empty:
        return _empty(title)
    fig = px.bar(summary, y="kind", x="count", orientation="h", text="count", labels={"kind": ""})
    fig.update_traces(marker_color="#d62728")
    fig.update_layout(title=title, template=_TEMPLATE, height=120 + 35 * len(summary),
                      yaxis={"autorange": "reversed"})
    return fig


# ------------------------------------------------------------------------------ desktop health

#: Marker per health kind (health.KINDS): spans (away, two clients at once, storms) are drawn as bars.
HEALTH_STYLE = {"away": ("#d62728", "line-ew"), "stalled_connect": ("#ff7f0e", "hourglass"),
                "rehandshake": ("#9467bd", "diamond"), "reconnect_storm": ("#8c564b", "star"),
                "multiple_clients": ("#e377c2", "square"), "concurrent_clients": ("#e377c2", "line-ew"),
                "transport_fallback": ("#17becf", "triangle-down"), "server_logout": ("#000000", "x"),
                "http_error": ("#bcbd22", "circle"), "slow_ack": ("#7f7f7f", "triangle-up"),
                "slow_completion": ("#1f77b4", "triangle-up")}


def health_timeline(events: pd.DataFrame, title: str = "Desktop health: what went wrong, when, for whom"
                    ) -> go.Figure:
    """One lane per agent, the moments of each kind of trouble (from ``health.events``); spans
    (away, concurrent clients, storms) from their start to ``until``. Hover says what happened."""
    if events.empty:
        return _empty(title, "no desktop trouble found")
    agents = sorted(events["user_name"].dropna().astype(str).unique())
    fig = go.Figure()
    for kind, part in events.groupby("kind", sort=False):
        color, symbol = HEALTH_STYLE.get(kind, ("#444444", "circle"))
        label = str(part["label"].iloc[0])
        hover = part["user_name"].astype(str) + ": " + part["detail"].astype(str)
        spans = part[part["until"].notna()]
        if len(spans):
            xs, ys = [], []
            for r in spans.itertuples():
                xs += [r.ts, r.until, None]
                ys += [str(r.user_name)] * 2 + [None]
            fig.add_scatter(x=xs, y=ys, mode="lines", line={"color": color, "width": 8}, opacity=0.45,
                            name=label, legendgroup=kind, showlegend=False, hoverinfo="skip")
        fig.add_scatter(x=part["ts"], y=part["user_name"].astype(str), mode="markers", name=label,
                        legendgroup=kind, marker={"color": color, "symbol": symbol, "size": 11,
                                                  "line": {"width": 1.5, "color": color}},
                        hovertext=hover, hoverinfo="text+x")
    fig.update_layout(title=title, template=_TEMPLATE, height=max(320, 160 + 40 * len(agents)),
                      xaxis={"type": "date", "title": ""},
                      yaxis={"categoryorder": "array", "categoryarray": list(reversed(agents)), "title": ""})
    return fig


# ------------------------------------------------------------------------------ replay comparison

def compare_box(dist: pd.DataFrame, metric: str = "completion",
                title: str = "Recorded vs replayed latency per operation") -> go.Figure:
    """Side-by-side boxes per operation (from ``compare.latency_distributions``)."""
    df = _completed(dist, metric) if not dist.empty else dist
    if df.empty:
        return _empty(title, "no replay of this capture found")
    x = "channel_operation" if "channel_operation" in df.columns else "operation_name"
    fig = px.box(df, x=x, y=_metric_col(metric), color="source", log_y=True,
                 color_discrete_map=SOURCE_COLORS, labels={_metric_col(metric): "ms (log scale)", x: ""})
    fig.update_layout(title=title, template=_TEMPLATE, height=440, boxmode="group")
    return readable_log_axis(fig, "y", df[_metric_col(metric)])


def compare_ecdf(dist: pd.DataFrame, metric: str = "completion",
                 title: str = "Latency distribution, recorded vs replayed") -> go.Figure:
    """Cumulative distributions of one latency over all operations."""
    df = _completed(dist, metric) if not dist.empty else dist
    if df.empty:
        return _empty(title, "no replay of this capture found")
    fig = px.ecdf(df, x=_metric_col(metric), color="source", log_x=True, color_discrete_map=SOURCE_COLORS,
                  labels={_metric_col(metric): "ms (log scale)"})
    fig.update_layout(title=title, template=_TEMPLATE, height=400)
    return readable_log_axis(fig, "x", df[_metric_col(metric)])
