"""What a capture exercised: state transitions, operations and capabilities.

State-transition coverage compares the transitions seen in the notifications
with the reference models of ``state_models.py``:

1. every notification that carries a modelled resource gives one observation
   ``(agent, resource id, time, state)``;
2. consecutive observations of the same resource by the same agent, ordered by
   time (a DuckDB window), give transitions; repeats of a state collapse, and
   a resource's first observation counts as a transition from ``(new)`` when the
   model sees resources being born (calls, interactions) and the state is one they
   are born in (Ringing, Dialing...); it is skipped otherwise (devices and channels:
   the first notification shows where the agent already was; a call first seen Held
   or an interaction first seen Completed: the capture started mid-shift); after one of the model's terminal states (a chat Completed, an
   email Sent) the next StatusChange is a new participation, from ``(new)``;
3. observed transitions are matched against the model: covered, never reached
   (missing), or not allowed by the model (anomaly).

Operation coverage compares the operations requested with the documented ones
(``catalog.py``); capability coverage compares them with the operations GWS
offered in the ``capabilities`` of the resources it sent.
"""

from __future__ import annotations

from typing import Iterable

import duckdb
import pandas as pd
from gwsreplay.analysis import catalog
from gwsreplay.analysis.db import WHOLE, Scope, query, scoped, sql_list
from gwsreplay.analysis.state_models import ELEMENTS, MODELS, NEW, StateModel

from gwsreplay.core.sqltext import sql_literal


def resolve_models(models: str | Iterable[str] | None) -> list[StateModel]:
    """Model names (one, several, or None for all) -> StateModel objects."""
    if models is None:
        return list(MODELS.values())
    if isinstance(models, str):
        models = [models]
    return [MODELS[m] for m in models]


def _element_groups(models: list[StateModel]) -> dict[str, list[StateModel]]:
    """Element models by the list they read (``devices``, ``channels``), in model order."""
    groups: dict[str, list[StateModel]] = {}
    for m in models:
        if m.state_sql is not None:
            groups.setdefault(m.element or "devices", []).append(m)
    return groups


def _element_cte(element: str, models: list[StateModel], user_filter: str) -> str:
    """``el_<element>``: every object of that list in the models' messages, parsed once into a typed struct ``d``."""
    el = ELEMENTS[element]
    types = sorted({t for m in models for t in m.message_types})
    return f"""el_{element} AS MATERIALIZED (
            SELECT message_id, ts, user_name, unnest(doc.{element}) AS d
            FROM (SELECT m.id AS message_id, m.ts, m.user_name, from_json(m.data, '{el.structure}') AS doc
                  FROM bayeux_messages m
                  WHERE m.direction = 's2c' AND m.message_type IN {sql_list(types)}{user_filter})
        )"""


def _column_obs_sql(models: list[StateModel], user_filter: str, *, notification_type: bool = False) -> str:
    nt = ", m.notification_type" if notification_type else ""
    return "\nUNION ALL\n".join(f"""
            SELECT '{m.name}' AS model, m.id AS message_id, m.ts, m.user_name,
                   m.resource_id, trim(m.resource_state) AS state{nt}
            FROM bayeux_messages m
            WHERE m.direction = 's2c' AND m.message_type IN {sql_list(m.message_types)}
              AND m.resource_id IS NOT NULL AND m.resource_state IS NOT NULL{user_filter}""" for m in models)


def _user_filter(user: str | None) -> str:
    return f" AND m.user_name = {sql_literal(user)}" if user is not None else ""


def observations_sql(models: list[StateModel], user: str | None = None) -> str:
    """SELECT model, message_id, ts, user_name, resource_id, state for the given models.

    Column models read the recorder's resource columns; element models share one
    pass per list (devices, channels) that parses each message once (``from_json``
    into a typed struct) and unnests its objects.
    """
    uf = _user_filter(user)
    parts = []
    column_models = [m for m in models if m.state_sql is None]
    if column_models:
        parts.append(_column_obs_sql(column_models, uf))
    groups = _element_groups(models)
    for element, ms in groups.items():
        parts += [f"SELECT '{m.name}' AS model, message_id, ts, user_name, {ELEMENTS[element].id_sql} AS resource_id, "
                  f"{m.state_sql} AS state FROM el_{element}" for m in ms]
    ctes = [_element_cte(element, ms, uf) for element, ms in groups.items()]
    return (f"WITH {', '.join(ctes)}\n" if ctes else "") + "\nUNION ALL\n".join(parts)


def _transitions_sql(models: list[StateModel], user: str | None = None) -> str:
    """Per-occurrence transitions (model, message_id, ts, user_name, resource_id, source, target).

    One window pass over the column models' observations, partitioned by
    resource, and one per element list, carrying every model of that list as its
    own column (so a device is sorted once, not once per model). ``lag(...
    IGNORE NULLS)`` keeps an element model's chain across notifications that do
    not show its field. Partition keys lead with their hash: sorting on one
    integer is much cheaper than on strings, which then only break hash ties.
    A column model's terminal state makes the next observation a transition
    from NEW (a new participation).
    """
    uf = _user_filter(user)
    column_models = [m for m in models if m.state_sql is None]
    ctes, selects = [], []
    if column_models:
        births = " OR ".join(f"(model = '{m.name}' AND state IN {sql_list(birth_states(m))})"
                             for m in column_models if m.observes_creation and birth_states(m)) or "false"
        terminal = [f"(model = '{m.name}' AND prev IN {sql_list(m.terminal_states)})"
                    for m in column_models if m.observes_creation and m.terminal_states]
        restart = (f"CASE WHEN ({' OR '.join(terminal)}) AND coalesce(notification_type, 'StatusChange') = "
                   f"'StatusChange' THEN '{NEW}' ELSE prev END") if terminal else "prev"
        ctes.append(f"""col_seq AS (
            SELECT *, lag(state) OVER (PARTITION BY hash(model, user_name, resource_id), model, user_name,
                                       resource_id ORDER BY ts, message_id) AS prev
            FROM ({_column_obs_sql(column_models, uf, notification_type=True)})
        )""")
        selects.append(f"""
        SELECT model, message_id, ts, user_name, resource_id, coalesce({restart}, '{NEW}') AS source,
               state AS target
        FROM col_seq
        WHERE prev IS DISTINCT FROM state AND (prev IS NOT NULL OR {births})""")
    for element, ms in _element_groups(models).items():
        ctes.append(_element_cte(element, ms, uf))
        states = ", ".join(f"{m.state_sql} AS s{i}" for i, m in enumerate(ms))
        lags = ", ".join(f"lag(s{i} IGNORE NULLS) OVER w AS p{i}" for i in range(len(ms)))
        rid = ELEMENTS[element].id_sql
        ctes.append(f"""seq_{element} AS (
            SELECT *, {lags}
            FROM (SELECT message_id, ts, user_name, {rid} AS resource_id, {states}
                  FROM el_{element} WHERE {rid} IS NOT NULL)
            WINDOW w AS (PARTITION BY hash(user_name, resource_id), user_name, resource_id
                         ORDER BY ts, message_id)
        )""")
        for i, m in enumerate(ms):
            born = birth_states(m) if m.observes_creation else ()
            first = f"coalesce(p{i}, '{NEW}')" if born else f"p{i}"
            skip_first = f" AND (p{i} IS NOT NULL OR s{i} IN {sql_list(born)})" if born else f" AND p{i} IS NOT NULL"
            selects.append(f"""
        SELECT '{m.name}' AS model, message_id, ts, user_name, resource_id, {first} AS source, s{i} AS target
        FROM seq_{element}
        WHERE s{i} IS NOT NULL AND p{i} IS DISTINCT FROM s{i}{skip_first}""")
    return "WITH " + ",\n".join(ctes) + "\n" + "\nUNION ALL\n".join(selects)


def birth_states(model: StateModel) -> tuple[str, ...]:
    """The states a resource of ``model`` can be born in (the targets of its transitions from NEW).
    A capture that starts mid-shift first sees some calls and interactions already Held, Released or
    Completed: such a first observation is not a birth and, like a device's, starts the chain without
    being a transition."""
    return tuple(sorted({t.target for t in model.transitions if t.source == NEW}))


def _in_scope(user: str | None, scope: Scope | None) -> tuple[str | None, str]:
    """The user to pre-filter observations by, and the predicate applied to transitions: a
    resource's history is read whole, then its transitions are kept when they fall in the window
    (so a call already Established when the window opens is not taken for a new one)."""
    scope = scope or WHOLE
    return (user if user is not None else scope.agent), scope.where("ts")


def state_observations(con: duckdb.DuckDBPyConnection, models: str | Iterable[str] | None = None, *,
                       user: str | None = None, scope: Scope | None = None) -> pd.DataFrame:
    """Every observation of a modelled resource's state (one row per notification and resource)."""
    user, where = _in_scope(user, scope)
    return query(con, f"SELECT * FROM ({observations_sql(resolve_models(models), user)}) WHERE {where} "
                      "ORDER BY ts, message_id")


def transition_occurrences(con: duckdb.DuckDBPyConnection, models: str | Iterable[str] | None = None, *,
                           user: str | None = None, scope: Scope | None = None) -> pd.DataFrame:
    """Every observed transition with its time, agent and resource, flagged allowed or not."""
    ms = resolve_models(models)
    user, where = _in_scope(user, scope)
    df = query(con, f"SELECT * FROM ({_transitions_sql(ms, user)}) WHERE {where} ORDER BY ts, message_id")
    edges = {(m.name, t.source, t.target) for m in ms for t in m.transitions}
    df["allowed"] = [(m, s, t) in edges for m, s, t in zip(df["model"], df["source"], df["target"])]
    return df


def observed_transitions(con: duckdb.DuckDBPyConnection, models: str | Iterable[str] | None = None, *,
                         user: str | None = None, scope: Scope | None = None) -> pd.DataFrame:
    """Observed transitions counted per (model, source, target), aggregated in DuckDB."""
    ms = resolve_models(models)
    user, where = _in_scope(user, scope)
    return query(con, f"""
        SELECT model, source, target, count(*) AS count,
               count(DISTINCT (user_name, resource_id)) AS resources,
               count(DISTINCT user_name) AS agents,
               min(ts) AS first_ts, max(ts) AS last_ts,
               arg_min(resource_id, ts) AS example_resource_id,
               arg_min(user_name, ts) AS example_user,
               arg_min(message_id, ts) AS example_message_id
        FROM ({_transitions_sql(ms, user)})
        WHERE {where}
        GROUP BY model, source, target
        ORDER BY model, source, target
    """)


def model_transitions(models: str | Iterable[str] | None = None) -> pd.DataFrame:
    """The reference transitions as a table (model, source, target, triggers, ref, inferred)."""
    rows = [{"model": m.name, "source": t.source, "target": t.target, "triggers": ", ".join(t.triggers),
             "ref": t.ref, "inferred": t.inferred}
            for m in resolve_models(models) for t in m.transitions]
    return pd.DataFrame(rows, columns=["model", "source", "target", "triggers", "ref", "inferred"])


def transition_coverage(con: duckdb.DuckDBPyConnection, models: str | Iterable[str] | None = None, *,
                        observed: pd.DataFrame | None = None, scope: Scope | None = None) -> pd.DataFrame:
    """Model and observation side by side, one row per transition in either.

    ``status`` is ``covered`` (in the model and seen), ``missing`` (in the model,
    never reached) or ``anomaly`` (seen, but the model does not allow it).
    Pass ``observed`` (from :func:`observed_transitions`) to avoid a second scan.
    """
    ms = resolve_models(models)
    model = model_transitions([m.name for m in ms])
    if observed is None:
        observed = observed_transitions(con, [m.name for m in ms], scope=scope)
    else:
        observed = observed[observed["model"].isin([m.name for m in ms])]
    out = model.merge(observed, on=["model", "source", "target"], how="outer", indicator=True)
    for c in ("count", "resources", "agents"):
        out[c] = out[c].fillna(0).astype("int64")
    out["in_model"] = out["_merge"] != "right_only"
    out["status"] = "covered"
    out.loc[out["count"] == 0, "status"] = "missing"
    out.loc[~out["in_model"], "status"] = "anomaly"
    out = out.drop(columns="_merge")
    order = {m.name: i for i, m in enumerate(ms)}
    out["_o"] = out["model"].map(order)
    return out.sort_values(["_o", "source", "target"]).drop(columns="_o").reset_index(drop=True)


def missing_transitions(con: duckdb.DuckDBPyConnection, models: str | Iterable[str] | None = None,
                        **kw) -> pd.DataFrame:
    """Transitions the model allows that the capture never reached."""
    cov = transition_coverage(con, models, **kw)
    return cov[cov["status"] == "missing"][["model", "source", "target", "triggers", "ref", "inferred"]] \
        .reset_index(drop=True)


def anomalies(con: duckdb.DuckDBPyConnection, models: str | Iterable[str] | None = None, **kw) -> pd.DataFrame:
    """Observed transitions the model does not allow, with where to look (first time, agent, resource)."""
    cov = transition_coverage(con, models, **kw)
    cols = ["model", "source", "target", "count", "resources", "first_ts", "example_user",
            "example_resource_id", "example_message_id"]
    return cov[cov["status"] == "anomaly"][cols].reset_index(drop=True)


def unknown_states(con: duckdb.DuckDBPyConnection, models: str | Iterable[str] | None = None, *,
                   scope: Scope | None = None) -> pd.DataFrame:
    """States seen in the capture that a model does not list (custom agent states, new GWS states)."""
    ms = resolve_models(models)
    user, where = _in_scope(None, scope)
    seen = query(con, f"""
        SELECT model, state, count(*) AS observations, count(DISTINCT resource_id) AS resources
        FROM ({observations_sql(ms, user)})
        WHERE state IS NOT NULL AND {where} GROUP BY ALL ORDER BY ALL
    """)
    known = {(m.name, s) for m in ms for s in m.states}
    mask = [(m, s) not in known for m, s in zip(seen["model"], seen["state"])]
    return seen[mask].reset_index(drop=True)


def coverage_matrix(coverage: pd.DataFrame, model: str) -> pd.DataFrame:
    """Source x target counts of one model (from :func:`transition_coverage`).

    Cells the model allows hold the count (0 when never reached); cells it does
    not allow are NaN unless observed (anomalies).
    """
    m = MODELS[model]
    cov = coverage[coverage["model"] == model]
    states = [NEW] if m.observes_creation else []
    states += list(m.states)
    extra = sorted((set(cov["source"]) | set(cov["target"])) - set(states))
    sources = states + extra
    targets = [s for s in sources if s != NEW]
    mat = pd.DataFrame(float("nan"), index=pd.Index(sources, name="from"), columns=pd.Index(targets, name="to"))
    for s, t, c in zip(cov["source"], cov["target"], cov["count"]):
        mat.loc[s, t] = c
    return mat


def coverage_summary(coverage: pd.DataFrame) -> pd.DataFrame:
    """Per model: transitions in the model, covered, missing, anomalies, coverage %."""
    g = coverage.groupby("model", sort=False)
    out = pd.DataFrame({
        "transitions": g["in_model"].sum().astype("int64"),
        "covered": g["status"].apply(lambda s: int((s == "covered").sum())),
        "missing": g["status"].apply(lambda s: int((s == "missing").sum())),
        "anomalies": g["status"].apply(lambda s: int((s == "anomaly").sum())),
        "observed_transitions": g["count"].sum().astype("int64"),
    })
    out["coverage_pct"] = (100.0 * out["covered"] / out["transitions"]).round(1)
    order = [m for m in MODELS if m in out.index]
    out = out.loc[order].reset_index()
    out.insert(1, "channel", [MODELS[m].channel if m in MODELS else None for m in out["model"]])
    return out


def channel_transitions(con: duckdb.DuckDBPyConnection, *, user: str | None = None,
                        scope: Scope | None = None) -> pd.DataFrame:
    """The per-channel agent models (state, DND) broken down by channel: one row per
    (model, channel, source, target) with its count, agents and ``allowed``."""
    occ = transition_occurrences(con, [m.name for m in MODELS.values() if m.element == "channels"], user=user,
                                 scope=scope)
    cols = ["model", "channel", "source", "target", "count", "agents", "allowed"]
    if occ.empty:
        return pd.DataFrame(columns=cols)
    out = occ.groupby(["model", "resource_id", "source", "target", "allowed"], as_index=False).agg(
        count=("message_id", "size"), agents=("user_name", "nunique"))
    return out.rename(columns={"resource_id": "channel"})[cols].sort_values(cols[:4]).reset_index(drop=True)


# ------------------------------------------------------------------ operations and capabilities

def operations_used(con: duckdb.DuckDBPyConnection, scope: Scope | None = None) -> pd.DataFrame:
    """Requested operations per (resource type, API area, operationName) with their outcomes.

    ``acknowledged``: operations documented without a notification, complete on their HTTP answer
    (the capture's ``ack_only`` rule); ``no_notification``: a notification was expected, none came.
    """
    return query(con, f"""
        SELECT resource_type, api_area, operation_name, count(*) AS requests,
               count(*) FILTER (WHERE outcome = 'completed') AS completed,
               count(*) FILTER (WHERE outcome = 'acknowledged') AS acknowledged,
               count(*) FILTER (WHERE outcome IN ('failed', 'error_message', 'http_error')) AS failed,
               count(*) FILTER (WHERE outcome = 'no_notification') AS no_notification,
               count(DISTINCT user_name) AS agents,
               min(requested_at) AS first_used
        FROM {scoped('operations', scope)}
        GROUP BY ALL ORDER BY ALL
    """)


def _families(used: pd.DataFrame) -> list:
    return [catalog.resource_family(t, a) for t, a in zip(used["resource_type"], used["api_area"])]


def operation_coverage(con: duckdb.DuckDBPyConnection, scope: Scope | None = None) -> pd.DataFrame:
    """Documented operations against requested ones.

    One row per documented (resource family, operation), plus rows for
    operations requested that the catalog does not document (``documented`` False).
    """
    used = operations_used(con, scope)
    used["resource_family"] = _families(used)
    used = used.groupby(["resource_family", "operation_name"], as_index=False, dropna=False).agg(
        requests=("requests", "sum"), completed=("completed", "sum"), acknowledged=("acknowledged", "sum"),
        failed=("failed", "sum"), no_notification=("no_notification", "sum"), agents=("agents", "max"))
    doc = catalog.documented_operations()
    out = doc.merge(used, on=["resource_family", "operation_name"], how="outer", indicator=True)
    out["documented"] = out["_merge"] != "right_only"
    for c in ("requests", "completed", "acknowledged", "failed", "no_notification", "agents"):
        out[c] = out[c].fillna(0).astype("int64")
    out["exercised"] = out["requests"] > 0
    return out.drop(columns="_merge").sort_values(["resource_family", "operation_name"]).reset_index(drop=True)


def operation_coverage_summary(cov: pd.DataFrame) -> pd.DataFrame:
    """Per resource family: documented operations, how many were exercised."""
    doc = cov[cov["documented"]]
    g = doc.groupby("resource_family")
    out = pd.DataFrame({"documented": g.size(), "exercised": g["exercised"].sum()})
    out["coverage_pct"] = (100.0 * out["exercised"] / out["documented"]).round(1)
    undocumented = cov[~cov["documented"]].groupby("resource_family").size()
    out["undocumented_used"] = undocumented.reindex(out.index).fillna(0).astype("int64")
    return out.reset_index()


# messageType -> (resource type, JSON path of the capabilities list or lists)
CAPABILITY_PATHS: dict[str, tuple[str, str]] = {
    "CallStateChangeMessage": ("call", "$.call.capabilities"),
    "DeviceStateChangeMessage": ("device", "$.devices[*].capabilities"),
    "IMSessionStateChangeMessage": ("im-session", "$.imSession.capabilities"),
    "ChatStateChangeMessage": ("chat", "$.chat.capabilities"),
    "EmailStateChangeMessage": ("email", "$.email.capabilities"),
    "WorkitemStateChangeMessage": ("workitem", "$.workitem.capabilities"),
    "OpenmediaStateChangeMessage": ("openmedia", "$.openmedia.capabilities"),
}


#: Operation and capability names that differ for the same operation (media.md §0): the chat
#: operation SendStopTypingToAgentNotification is offered as SendStopTypingToAgentsNotification,
#: older samples list InFocus for SetInFocus and SendURL for SendUrl. Both sides are compared by
#: the name on the right.
CAPABILITY_ALIASES = {"SendStopTypingToAgentNotification": "SendStopTypingToAgentsNotification",
                      "InFocus": "SetInFocus", "SendURL": "SendUrl"}


def capabilities_offered(con: duckdb.DuckDBPyConnection, scope: Scope | None = None) -> pd.DataFrame:
    """Operations GWS offered in resources' ``capabilities``: how often, on how many resources."""
    parts = []
    for mtype, (rtype, path) in CAPABILITY_PATHS.items():
        if path.endswith("[*].capabilities"):
            # a list of lists (one per device): flatten
            expr = f"flatten(CAST(json_extract(data, '{path}') AS VARCHAR[][]))"
        else:
            expr = f"CAST(json_extract(data, '{path}') AS VARCHAR[])"
        parts.append(f"""
            SELECT '{rtype}' AS resource_type, id, resource_id, unnest({expr}) AS capability
            FROM {scoped('bayeux_messages', scope)} WHERE direction = 's2c' AND message_type = '{mtype}'""")
    return query(con, f"""
        SELECT resource_type, capability, count(DISTINCT id) AS messages,
               count(DISTINCT resource_id) AS resources
        FROM ({" UNION ALL ".join(parts)})
        WHERE capability IS NOT NULL
        GROUP BY ALL ORDER BY ALL
    """)


def capability_coverage(con: duckdb.DuckDBPyConnection, scope: Scope | None = None) -> pd.DataFrame:
    """Offered capabilities against operations used.

    ``status``: ``used`` (offered and requested on that resource type),
    ``offered, never used``, or ``used, never offered`` (requested on a resource
    type whose notifications never listed it: either capabilities do not govern
    it, as for agent-state operations, or the desktop ignores them).
    """
    offered = capabilities_offered(con, scope).rename(columns={"capability": "operation_name"})
    offered["operation_name"] = offered["operation_name"].map(lambda c: CAPABILITY_ALIASES.get(c, c))
    offered = offered.groupby(["resource_type", "operation_name"], as_index=False).agg(
        messages=("messages", "sum"), resources=("resources", "max"))
    used = operations_used(con, scope)
    used["resource_type"] = _families(used)
    used["operation_name"] = used["operation_name"].map(lambda c: CAPABILITY_ALIASES.get(c, c))
    used = used.groupby(["resource_type", "operation_name"], as_index=False).agg(
        requests=("requests", "sum"), failed=("failed", "sum"))
    used = used[used["resource_type"].isin(offered["resource_type"].unique())]
    out = offered.merge(used, on=["resource_type", "operation_name"], how="outer")
    for c in ("messages", "resources", "requests", "failed"):
        out[c] = out[c].fillna(0).astype("int64")
    out["status"] = "used"
    out.loc[out["requests"] == 0, "status"] = "offered, never used"
    out.loc[out["messages"] == 0, "status"] = "used, never offered"
    return out.sort_values(["resource_type", "operation_name"]).reset_index(drop=True)
