"""What happened on one agent's desktop, in time order.

``agent_timeline`` merges the agent's REST requests, the notifications it
received and the CometD meta traffic worth seeing (handshakes, subscriptions,
failures) into one table with a lane per kind; ``state_bands`` turns the
state models' observations into intervals (agent state, DND, forwarding, the
state and DND of each media channel, each call and interaction) drawn as bands
under the events; ``channel_activity`` puts every agent's operations and
notifications on one lane per channel (voice, chat, email, ...).
"""

from __future__ import annotations

from typing import Iterable

import duckdb
import pandas as pd

from gwsreplay.analysis.coverage import observations_sql, resolve_models
from gwsreplay.analysis.db import WHOLE, Scope, query, scoped, sql_list, timestamp_literal
from gwsreplay.analysis.latency import CHANNEL_SQL

#: States after which a resource is gone from the agent's desk: their band has no length
#: (InWorkbin: parked, whoever pulls it next).
TERMINAL_STATES = ("Released", "Completed", "Canceled", "Sent", "Revoked", "InWorkbin")

#: The models drawn as bands by default: the agent (voice device and each media channel),
#: then its calls and interactions.
BAND_MODELS = ("agent_state", "dnd", "forwarding", "channel_state", "channel_dnd", "call", "im_session", "chat",
               "email", "workitem", "openmedia")


def agents(con: duckdb.DuckDBPyConnection, scope: Scope | None = None) -> pd.DataFrame:
    """Every agent in the capture (or in ``scope``) with its activity span and volumes."""
    return query(con, f"""
        WITH x AS (
            SELECT user_name, min(ts_request_start) AS first_ts, max(coalesce(ts_response_end, ts_request_start)) AS last_ts,
                   count(*) FILTER (WHERE NOT coalesce(is_bayeux, false)) AS rest_requests,
                   count(*) FILTER (WHERE operation_name IS NOT NULL AND NOT coalesce(is_bayeux, false)) AS operations,
                   count(*) FILTER (WHERE status >= 400 OR error IS NOT NULL
                                     OR coalesce(status_code, 0) NOT IN (0, 7)) AS failed_requests
            FROM {scoped('exchanges', scope)} WHERE user_name IS NOT NULL GROUP BY user_name
        ), m AS (
            SELECT user_name, min(ts) AS first_ts, max(ts) AS last_ts,
                   count(*) FILTER (WHERE direction = 's2c' AND message_type IS NOT NULL) AS notifications
            FROM {scoped('bayeux_messages', scope)} WHERE user_name IS NOT NULL GROUP BY user_name
        )
        SELECT coalesce(x.user_name, m.user_name) AS user_name,
               least(x.first_ts, m.first_ts) AS first_ts, greatest(x.last_ts, m.last_ts) AS last_ts,
               coalesce(x.rest_requests, 0) AS rest_requests, coalesce(x.operations, 0) AS operations,
               coalesce(m.notifications, 0) AS notifications, coalesce(x.failed_requests, 0) AS failed_requests
        FROM x FULL JOIN m USING (user_name)
        ORDER BY user_name
    """)


def agent_timeline(con: duckdb.DuckDBPyConnection, user: str, scope: Scope | None = None) -> pd.DataFrame:
    """One row per event of ``user``: ts, end_ts, lane, kind, label, detail, resource_id, ok.

    Lanes: ``REST`` (requests, from start to response end), one lane per
    notification channel, and ``CometD`` for meta traffic other than routine
    successful /meta/connect polls. ``scope``: only its time window applies (``user`` is the agent).
    """
    params: list = [user, user]
    return query(con, f"""
        WITH ev AS (
            SELECT ts_request_start AS ts, coalesce(ts_response_end, ts_response_start, ts_request_start) AS end_ts,
                   'REST' AS lane, 'request' AS kind,
                   coalesce(operation_name, method || ' ' || path) AS label,
                   method || ' ' || path || ' -> ' || coalesce(status::VARCHAR, error, '?')
                     || coalesce(' statusCode ' || status_code::VARCHAR, '')
                     || coalesce(' ' || status_message, '') AS detail,
                   resource_id,
                   error IS NULL AND coalesce(status, 0) < 400 AND coalesce(status_code, 0) IN (0, 7) AS ok,
                   id AS ref_id
            FROM exchanges
            WHERE user_name = ? AND NOT coalesce(is_bayeux, false)
            UNION ALL
            SELECT ts, ts AS end_ts,
                   CASE WHEN starts_with(channel, '/meta/') THEN 'CometD' ELSE channel END AS lane,
                   CASE WHEN starts_with(channel, '/meta/') THEN 'meta' ELSE 'notification' END AS kind,
                   CASE WHEN starts_with(channel, '/meta/')
                        THEN channel || CASE WHEN direction = 'c2s' THEN ' request' ELSE ' reply' END
                        ELSE coalesce(message_type, 'message')
                             || coalesce(' ' || notification_type, '')
                             || coalesce(': ' || resource_state, '') END AS label,
                   concat_ws(' ', resource_type, resource_id, error, error_message) AS detail,
                   resource_id,
                   coalesce(successful, true) AND message_type IS DISTINCT FROM 'ErrorMessage'
                     AND notification_type IS DISTINCT FROM 'Error' AS ok,
                   id AS ref_id
            FROM bayeux_messages
            WHERE user_name = ?
              AND (NOT starts_with(coalesce(channel, ''), '/meta/')
                   OR channel <> '/meta/connect' OR successful = false)
              AND (direction = 's2c' OR starts_with(coalesce(channel, ''), '/meta/'))
        )
        SELECT * FROM ev WHERE {(scope or WHOLE).where("ts", user=None)}
        ORDER BY ts, ref_id
    """, params)


def state_bands(con: duckdb.DuckDBPyConnection, user: str,
                models: str | Iterable[str] | None = BAND_MODELS, scope: Scope | None = None) -> pd.DataFrame:
    """Intervals during which each modelled resource of ``user`` stayed in one state.

    A band runs from the first notification showing the state to the next
    change (or the agent's last activity); terminal states (Released,
    Completed, ...) end the resource and get no band. Bands come in the order of
    ``models`` (the agent first, then its calls and interactions), then by time.
    With a ``scope`` time window the bands are computed over the whole capture (a state
    entered before the window still shows) and cut to the window.
    """
    scope = scope or WHOLE
    lo = timestamp_literal(scope.time_from) if scope.time_from else "start"
    hi = timestamp_literal(scope.time_to) if scope.time_to else '"end"'
    ms = resolve_models(models)
    obs = observations_sql(ms, user) if ms else ""
    return query(con, f"""
        WITH obs AS ({obs}),
        seq AS (
            SELECT *, lag(state) OVER (PARTITION BY model, resource_id ORDER BY ts, message_id) AS prev
            FROM obs WHERE state IS NOT NULL
        ),
        changes AS (SELECT model, resource_id, state, ts FROM seq WHERE prev IS DISTINCT FROM state),
        last_seen AS (
            SELECT greatest((SELECT max(ts) FROM bayeux_messages WHERE user_name = $user),
                            (SELECT max(coalesce(ts_response_end, ts_request_start)) FROM exchanges
                             WHERE user_name = $user)) AS ts
        ),
        bands AS (
            SELECT model, resource_id, state, ts AS start,
                   lead(ts) OVER (PARTITION BY model, resource_id ORDER BY ts) AS next_change
            FROM changes
        )
        SELECT model, resource_id, state, greatest(start, {lo}) AS start, least("end", {hi}) AS "end"
        FROM (SELECT model, resource_id, state, start,
                     coalesce(next_change, (SELECT ts FROM last_seen)) AS "end"
              FROM bands WHERE state NOT IN {sql_list(TERMINAL_STATES)})
        WHERE "end" >= {lo} AND start <= {hi}
        ORDER BY list_position({[m.name for m in ms]}, model), start
    """, {"user": user}) if obs else pd.DataFrame(columns=["model", "resource_id", "state", "start", "end"])


#: Lane order of channel_activity: the channels first, then the rest.
CHANNEL_ORDER = ("voice", "chat", "email", "workitem", "openmedia", "im", "workbin", "all channels")


def channel_activity(con: duckdb.DuckDBPyConnection, scope: Scope | None = None) -> pd.DataFrame:
    """Every agent's operations and notifications on one time axis, one lane per channel.

    Columns: ts, channel (latency.CHANNEL_SQL over the request's or the notification's
    resource: voice, chat, email, workitem, openmedia, im, workbin, the channel of a
    ChannelStateChangeMessageV2, ...), user_name (``control API`` for the simulator's
    injections), kind (``request``, ``notification``, ``injection``), label, ok.
    """
    return query(con, f"""
        WITH ev AS (
            SELECT ts_request_start AS ts, {CHANNEL_SQL} AS channel,
                   coalesce(user_name, CASE WHEN api_area = 'sim' THEN 'control API' END) AS user_name,
                   CASE WHEN api_area = 'sim' THEN 'injection' ELSE 'request' END AS kind,
                   coalesce(operation_name, method || ' ' || path) AS label,
                   error IS NULL AND coalesce(status, 0) < 400 AND coalesce(status_code, 0) IN (0, 7) AS ok,
                   id AS ref_id
            FROM exchanges
            WHERE NOT coalesce(is_bayeux, false) AND resource_type IS NOT NULL
              AND (operation_name IS NOT NULL OR (api_area = 'sim' AND method = 'POST'))
            UNION ALL
            SELECT ts, {CHANNEL_SQL} AS channel, user_name, 'notification' AS kind,
                   message_type || coalesce(' ' || notification_type, '') || coalesce(': ' || resource_state, '')
                     AS label,
                   message_type IS DISTINCT FROM 'ErrorMessage' AND notification_type IS DISTINCT FROM 'Error' AS ok,
                   id AS ref_id
            FROM bayeux_messages
            WHERE direction = 's2c' AND message_type IS NOT NULL AND resource_type IS NOT NULL
        )
        SELECT ts, channel, user_name, kind, label, ok FROM ev WHERE {(scope or WHOLE).where("ts")}
        ORDER BY ts, ref_id
    """)
