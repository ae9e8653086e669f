"""Desktop health: what breaks production desktops, found in a capture, with the moment and the agent.

A GWS desktop keeps one CometD ``/meta/connect`` outstanding at all times. What goes wrong
leaves marks in the Bayeux traffic, and each detector below finds one kind:

* ``away``: the desktop sent no connect for longer than maxInterval after its last one ended
  (network cut, sleeping laptop, frozen tab): the server dropped its CometD session;
* ``stalled_connect``: a connect that got no reply (the desktop or the network gave up on it),
  or whose reply came long after the advised timeout;
* ``rehandshake``: a ``402::Unknown client`` (the server forgot the client) and the handshake
  that followed; ``reconnect_storm``: handshakes in quick succession;
* ``multiple_clients``: the server's ``advice.multiple-clients`` (two tabs on one browser), and
  ``concurrent_clients``: two CometD clients of one HTTP session connected at the same time;
* ``transport_fallback``: a desktop that connected over WebSocket, then long-polled;
* ``server_logout``: the agent logged out without asking (a LoggedOut notification no Offline
  or EndContactCenterSession request explains), or gone longer than GWS's user monitor allows
  (maxInterval + the logout timeout, 60 s by default) with no other client connected;
* ``http_error``: HTTP status >= 400 or no response; ``slow_ack`` / ``slow_completion``:
  operations far slower than the rest of their kind (beyond Q3 + 3 IQR and a floor).

A connect's reply is the ``s2c`` message of the same carrier (exchange) with the same channel
and message id, which names the client (replies carry no clientId). Every function returns a
DataFrame; ``events`` puts them all in one table (kind, ts, until, user_name, session_key,
client_id, detail) for the figure and the headline.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import duckdb
import pandas as pd

from gwsreplay.analysis.db import Scope, literal, query, scoped, sql_list
from gwsreplay.analysis.latency import CHANNEL_OPERATION_SQL


class Kind(NamedTuple):
    name: str
    label: str          # for people: "away longer than maxInterval"


KINDS = (
    Kind("away", "away longer than maxInterval"),
    Kind("stalled_connect", "stalled /meta/connect"),
    Kind("rehandshake", "402 unknown client and re-handshake"),
    Kind("reconnect_storm", "reconnect storm"),
    Kind("multiple_clients", "multiple-clients advice (two tabs)"),
    Kind("concurrent_clients", "two CometD clients at once on one session"),
    Kind("transport_fallback", "WebSocket fallback to long-polling"),
    Kind("server_logout", "logout the desktop did not ask for"),
    Kind("http_error", "HTTP error"),
    Kind("slow_ack", "slow acknowledgement"),
    Kind("slow_completion", "slow completion"),
)
LABELS = {k.name: k.label for k in KINDS}

#: CometD's defaults, used when the capture's advice does not say (GWS does not always send maxInterval).
DEFAULT_MAX_INTERVAL_S = 10.0
DEFAULT_TIMEOUT_S = 30.0
#: GWS's user monitor logs an agent out this long after its CometD session went away.
DEFAULT_LOGOUT_TIMEOUT_S = 60.0
#: Operations by which a desktop asks to be logged out (a LoggedOut after one of them is expected).
LOGOUT_OPERATIONS = ("Offline", "EndContactCenterSession", "Logout", "LogoutAgent")
#: Errors that say nothing about the desktop: the recorder stopped while a long-poll was held.
_CAPTURE_END = "capture ended before the response"

_SECONDS = "(epoch_us({b}) - epoch_us({a})) / 1e6"


def _seconds(a: str, b: str) -> str:
    return _SECONDS.format(a=a, b=b)


def _pairs_sql(scope: Scope | None) -> str:
    """CTEs ``m`` (the /meta messages in scope), ``pairs`` (each c2s meta message with its reply)
    and ``advised`` (per client: the largest maxInterval and timeout its server advised)."""
    cols = ("id, ts, direction, transport, exchange_id, channel, client_id, msg_id, successful, error, advice, "
            "user_name, session_key")
    # a request inside the window keeps its reply when that came after the window's end
    later = replace(scope, time_to=None) if scope is not None else None
    return f"""
        m AS (SELECT {cols} FROM {scoped('bayeux_messages', scope)}
              WHERE starts_with(coalesce(channel, ''), '/meta/')),
        rep AS (SELECT {cols} FROM {scoped('bayeux_messages', later)}
                WHERE direction = 's2c' AND starts_with(coalesce(channel, ''), '/meta/')
                QUALIFY row_number() OVER (PARTITION BY exchange_id, channel, msg_id ORDER BY ts, id) = 1),
        pairs AS (
            SELECT q.id, q.channel, q.ts AS sent_at, p.ts AS replied_at, q.user_name,
                   coalesce(q.session_key, p.session_key) AS session_key,
                   coalesce(q.client_id, p.client_id) AS client_id, q.transport, q.exchange_id,
                   p.successful, p.error, p.advice
            FROM m AS q LEFT JOIN rep AS p
              ON p.exchange_id = q.exchange_id AND p.channel = q.channel AND p.msg_id = q.msg_id
            WHERE q.direction = 'c2s'),
        advised AS (
            SELECT client_id, max(TRY_CAST(advice->>'$.maxInterval' AS DOUBLE)) / 1000 AS max_interval_s,
                   max(TRY_CAST(advice->>'$.timeout' AS DOUBLE)) / 1000 AS timeout_s
            FROM pairs WHERE client_id IS NOT NULL GROUP BY client_id)"""


def connect_cycles(con: duckdb.DuckDBPyConnection, scope: Scope | None = None) -> pd.DataFrame:
    """Every /meta/connect with its reply: who, which client and transport, sent, answered, how."""
    return query(con, f"""
        WITH {_pairs_sql(scope)}
        SELECT p.sent_at, p.replied_at, {_seconds('p.sent_at', 'p.replied_at')} AS held_s, p.user_name,
               p.session_key, p.client_id, p.transport, p.successful, p.error, p.advice,
               x.error AS http_error
        FROM pairs AS p LEFT JOIN exchanges AS x ON x.id = p.exchange_id
        WHERE p.channel = '/meta/connect'
        ORDER BY p.sent_at, p.id
    """)


def _away_sql(scope: Scope | None, max_interval_s: float | None) -> str:
    """CTE ``away``: per client, from the end of each connect (its reply, or the advised timeout
    after an unanswered one) to the client's next connect, or, when it sent none (and no
    disconnect), to its agent's next handshake; only gaps longer than maxInterval plus the
    interval the reply advised (CometD expires a session after both, e.g. two tabs told to wait)."""
    fixed = "NULL" if max_interval_s is None else repr(float(max_interval_s))
    return f"""{_pairs_sql(scope)},
        cyc AS (
            SELECT p.*, coalesce({fixed}, a.max_interval_s, {DEFAULT_MAX_INTERVAL_S}) AS max_interval_s,
                   coalesce(TRY_CAST(p.advice->>'$.interval' AS DOUBLE), 0) / 1000 AS interval_s,
                   coalesce(p.replied_at, p.sent_at + to_microseconds(CAST(
                       coalesce(a.timeout_s, {DEFAULT_TIMEOUT_S}) * 1e6 AS BIGINT))) AS ended_at,
                   lead(p.sent_at) OVER w AS next_at, lead(p.successful) OVER w AS next_successful,
                   lead(p.error) OVER w AS next_error
            FROM pairs AS p LEFT JOIN advised AS a USING (client_id)
            WHERE p.channel = '/meta/connect' AND p.client_id IS NOT NULL AND p.user_name IS NOT NULL
            WINDOW w AS (PARTITION BY p.client_id ORDER BY p.sent_at, p.id)),
        bye AS (SELECT client_id, min(sent_at) AS at FROM pairs WHERE channel = '/meta/disconnect'
                GROUP BY client_id),
        hs AS (SELECT user_name, sent_at AS at FROM pairs WHERE channel = '/meta/handshake'),
        back AS (
            SELECT c.*, hs.at AS handshake_at
            FROM (SELECT cyc.* FROM cyc LEFT JOIN bye USING (client_id)
                  WHERE cyc.next_at IS NOT NULL OR bye.at IS NULL OR bye.at < cyc.sent_at) AS c
            ASOF LEFT JOIN hs ON hs.user_name = c.user_name AND hs.at > c.ended_at),
        away AS (
            SELECT user_name, session_key, client_id, transport, ended_at AS away_from, interval_s,
                   coalesce(next_at, handshake_at) AS back_at,
                   {_seconds('ended_at', 'coalesce(next_at, handshake_at)')} AS gap_s, max_interval_s,
                   CASE WHEN next_at IS NOT NULL THEN 'connect' ELSE 'handshake' END AS came_back_with,
                   next_at IS NULL OR next_successful = false AS session_lost, next_error AS back_error
            FROM back
            WHERE coalesce(next_at, handshake_at) IS NOT NULL
              AND {_seconds('ended_at', 'coalesce(next_at, handshake_at)')} > max_interval_s + interval_s)"""


def away_gaps(con: duckdb.DuckDBPyConnection, max_interval_s: float | None = None,
              scope: Scope | None = None) -> pd.DataFrame:
    """Times a desktop was away longer than maxInterval (``max_interval_s`` when given, else the
    client's advice, else CometD's 10 s): from, back, how long, and whether it came back to a lost
    session (its connect refused, or a new handshake)."""
    return query(con, f"""
        WITH {_away_sql(scope, max_interval_s)}
        SELECT * FROM away ORDER BY away_from, user_name
    """)


def stalled_connects(con: duckdb.DuckDBPyConnection, slack_s: float = 5.0,
                     scope: Scope | None = None) -> pd.DataFrame:
    """Connects never answered (the exchange's error says why), or answered more than ``slack_s``
    after the advised timeout (the server or the network held them up)."""
    return query(con, f"""
        WITH {_pairs_sql(scope)}
        SELECT p.sent_at AS ts, p.replied_at, {_seconds('p.sent_at', 'p.replied_at')} AS held_s,
               coalesce(a.timeout_s, {DEFAULT_TIMEOUT_S}) AS timeout_s, p.user_name, p.session_key, p.client_id,
               p.transport, x.error AS http_error
        FROM pairs AS p LEFT JOIN advised AS a USING (client_id) LEFT JOIN exchanges AS x ON x.id = p.exchange_id
        WHERE p.channel = '/meta/connect' AND p.user_name IS NOT NULL
          AND ((p.replied_at IS NULL AND coalesce(x.error, '') <> '{_CAPTURE_END}')
               OR {_seconds('p.sent_at', 'p.replied_at')} > coalesce(a.timeout_s, {DEFAULT_TIMEOUT_S}) + ?)
        ORDER BY ts
    """, [slack_s])


def rehandshakes(con: duckdb.DuckDBPyConnection, scope: Scope | None = None) -> pd.DataFrame:
    """Each 402 (unknown client: the server no longer knows the desktop's session) and the
    agent's handshake that followed: how soon, and whether it succeeded."""
    return query(con, f"""
        WITH {_pairs_sql(scope)},
        hs AS (SELECT user_name, sent_at AS at, successful, client_id FROM pairs WHERE channel = '/meta/handshake'),
        f AS (SELECT * FROM pairs WHERE successful = false AND starts_with(coalesce(error, ''), '402'))
        SELECT f.replied_at AS ts, f.user_name, f.session_key, f.client_id, f.channel, f.transport, f.error,
               f.advice->>'$.reconnect' AS reconnect_advice, hs.at AS handshake_at,
               {_seconds('f.replied_at', 'hs.at')} AS after_s, hs.successful AS handshake_successful,
               hs.client_id AS new_client_id
        FROM f ASOF LEFT JOIN hs ON hs.user_name = f.user_name AND hs.at >= f.replied_at
        ORDER BY ts
    """)


def reconnect_storms(con: duckdb.DuckDBPyConnection, window_s: float = 30.0, min_handshakes: int = 4,
                     scope: Scope | None = None) -> pd.DataFrame:
    """Runs of at least ``min_handshakes`` handshakes by one agent, each within ``window_s`` of the
    previous one: the desktop keeps losing its session (or keeps being refused). Four, because
    two tabs and one re-handshake (three) are not yet a storm."""
    return query(con, f"""
        WITH {_pairs_sql(scope)},
        hs AS (SELECT user_name, sent_at, successful, id,
                      coalesce({_seconds('lag(sent_at) OVER w', 'sent_at')} > ?, true) AS starts
               FROM pairs WHERE channel = '/meta/handshake' AND user_name IS NOT NULL
               WINDOW w AS (PARTITION BY user_name ORDER BY sent_at, id)),
        runs AS (SELECT *, sum(starts::INT) OVER (PARTITION BY user_name ORDER BY sent_at, id) AS run FROM hs)
        SELECT user_name, min(sent_at) AS ts, max(sent_at) AS until, count(*) AS handshakes,
               count(*) FILTER (WHERE successful IS DISTINCT FROM true) AS refused_or_unanswered
        FROM runs GROUP BY user_name, run
        HAVING count(*) >= ?
        ORDER BY ts, user_name
    """, [window_s, min_handshakes])


def multiple_clients(con: duckdb.DuckDBPyConnection, scope: Scope | None = None) -> pd.DataFrame:
    """Connect replies advising ``multiple-clients`` (CometD saw a second long-poll from the same
    browser: two tabs), with the poll interval it imposed."""
    return query(con, f"""
        WITH {_pairs_sql(scope)}
        SELECT replied_at AS ts, user_name, session_key, client_id, transport,
               TRY_CAST(advice->>'$.interval' AS DOUBLE) AS interval_ms, advice->>'$.reconnect' AS reconnect
        FROM pairs
        WHERE channel = '/meta/connect' AND advice->>'$."multiple-clients"' = 'true'
        ORDER BY ts
    """)


def concurrent_clients(con: duckdb.DuckDBPyConnection, scope: Scope | None = None) -> pd.DataFrame:
    """Pairs of CometD clients of one agent and HTTP session that were connecting at the same time
    (first to last connect of each overlap): a second tab or window, with or without the advice."""
    return query(con, f"""
        WITH {_pairs_sql(scope)},
        span AS (SELECT user_name, session_key, client_id, min(sent_at) AS first_at,
                        max(coalesce(replied_at, sent_at)) AS last_at
                 FROM pairs WHERE channel = '/meta/connect' AND client_id IS NOT NULL AND user_name IS NOT NULL
                 GROUP BY ALL)
        SELECT greatest(a.first_at, b.first_at) AS ts, least(a.last_at, b.last_at) AS until, a.user_name,
               a.session_key, a.client_id, b.client_id AS other_client_id,
               {_seconds('greatest(a.first_at, b.first_at)', 'least(a.last_at, b.last_at)')} AS overlap_s
        FROM span AS a JOIN span AS b
          ON a.user_name = b.user_name AND a.session_key IS NOT DISTINCT FROM b.session_key
         AND a.client_id < b.client_id AND greatest(a.first_at, b.first_at) < least(a.last_at, b.last_at)
        ORDER BY ts
    """)


def transport_fallbacks(con: duckdb.DuckDBPyConnection, scope: Scope | None = None) -> pd.DataFrame:
    """An agent's connect over long-polling right after one over WebSocket (per HTTP session), with
    how the WebSocket before it ended (close code, reason, error) when the capture saw it end."""
    return query(con, f"""
        WITH {_pairs_sql(scope)},
        c AS (SELECT *, lag(transport) OVER w AS prev_transport, lag(sent_at) OVER w AS prev_at,
                     lag(client_id) OVER w AS prev_client_id, lag(exchange_id) OVER w AS prev_exchange_id
              FROM pairs WHERE channel = '/meta/connect' AND user_name IS NOT NULL
              WINDOW w AS (PARTITION BY user_name, session_key ORDER BY sent_at, id))
        SELECT c.sent_at AS ts, c.prev_at AS last_websocket_at, c.user_name, c.session_key,
               c.prev_client_id AS websocket_client_id, c.client_id, w.close_code, w.close_reason, w.error AS ws_error
        FROM c LEFT JOIN websocket_connections AS w ON w.exchange_id = c.prev_exchange_id
        WHERE c.prev_transport = 'websocket' AND c.transport = 'long-polling'
        ORDER BY ts
    """)


def server_logouts(con: duckdb.DuckDBPyConnection, *, logout_timeout_s: float = DEFAULT_LOGOUT_TIMEOUT_S,
                   max_interval_s: float | None = None, window_s: float = 10.0,
                   scope: Scope | None = None) -> pd.DataFrame:
    """Logouts the desktop did not ask for, one row per agent and moment:

    * ``notified``: LoggedOut notifications (voice device or a media channel) with no logout
      request (:data:`LOGOUT_OPERATIONS`) by the agent in the ``window_s`` before;
    * ``user monitor``: the agent's client was away longer than maxInterval + ``logout_timeout_s``
      and no other client of the agent connected meanwhile: GWS logged it out (unless a
      ``notified`` row already shows it)."""
    notified = query(con, f"""
        WITH lo AS (
            SELECT ts, user_name, session_key, resource_type, resource_id
            FROM {scoped('bayeux_messages', scope)}
            WHERE direction = 's2c' AND user_state = 'LoggedOut' AND user_name IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM exchanges AS x
                              WHERE x.user_name = bayeux_messages.user_name
                                AND x.operation_name IN {sql_list(LOGOUT_OPERATIONS)}
                                AND x.ts_request_start BETWEEN bayeux_messages.ts
                                        - to_microseconds(CAST(? * 1e6 AS BIGINT)) AND bayeux_messages.ts)),
        runs AS (SELECT *, coalesce({_seconds('lag(ts) OVER w', 'ts')} > ?, true) AS starts FROM lo
                 WINDOW w AS (PARTITION BY user_name ORDER BY ts)),
        g AS (SELECT *, sum(starts::INT) OVER (PARTITION BY user_name ORDER BY ts) AS run FROM runs)
        SELECT min(ts) AS ts, user_name, any_value(session_key) AS session_key, 'notified' AS evidence,
               string_agg(DISTINCT resource_type || ' ' || resource_id, ', ') AS detail
        FROM g GROUP BY user_name, run ORDER BY ts
    """, [window_s, window_s])
    monitor = query(con, f"""
        WITH {_away_sql(scope, max_interval_s)},
        x AS (SELECT *, away_from + to_microseconds(CAST((max_interval_s + ?) * 1e6 AS BIGINT)) AS logout_at
              FROM away WHERE gap_s > max_interval_s + ?)
        SELECT x.logout_at AS ts, x.user_name, x.session_key, 'user monitor' AS evidence,
               'client ' || x.client_id || ' away ' || round(x.gap_s, 1) || ' s' AS detail
        FROM x
        WHERE NOT EXISTS (SELECT 1 FROM pairs AS o
                          WHERE o.channel = '/meta/connect' AND o.user_name = x.user_name
                            AND o.client_id IS DISTINCT FROM x.client_id
                            AND o.sent_at BETWEEN x.away_from AND x.logout_at)
        ORDER BY ts
    """, [logout_timeout_s, logout_timeout_s])
    if len(notified) and len(monitor):
        near = pd.Timedelta(seconds=window_s + (max_interval_s or DEFAULT_MAX_INTERVAL_S) + logout_timeout_s)
        seen = monitor.apply(lambda r: bool(((notified["user_name"] == r["user_name"])
                                             & ((notified["ts"] - r["ts"]).abs() <= near)).any()), axis=1)
        monitor = monitor[~seen]
    out = pd.concat([df for df in (notified, monitor) if len(df)], ignore_index=True) if len(notified) + len(
        monitor) else notified
    return out.sort_values(["ts", "user_name"], ignore_index=True)


def http_errors(con: duckdb.DuckDBPyConnection, scope: Scope | None = None) -> pd.DataFrame:
    """Exchanges answered with HTTP >= 400 or not at all (not those the recorder's shutdown cut)."""
    return query(con, f"""
        SELECT ts_request_start AS ts, user_name, session_key, method, path, operation_name, status, error,
               coalesce(is_bayeux, false) AS is_bayeux
        FROM {scoped('exchanges', scope)}
        WHERE (status >= 400 OR (status IS NULL AND (error IS NOT NULL OR ts_response_start IS NULL)))
          AND coalesce(error, '') <> '{_CAPTURE_END}'
        ORDER BY ts
    """)


def slow_operations(con: duckdb.DuckDBPyConnection, metric: str = "completion", *, iqr_factor: float = 3.0,
                    floor_ms: float = 500.0, min_samples: int = 5, scope: Scope | None = None) -> pd.DataFrame:
    """Operations whose ``metric`` latency (``ack`` or ``completion``) is beyond Q3 + ``iqr_factor``
    IQR of their kind (channel and operationName, at least ``min_samples`` of them) and at
    least ``floor_ms``: the outliers a person notices, per agent."""
    col = {"ack": "ack_latency_ms", "completion": "completion_latency_ms"}[metric]
    only = "outcome = 'completed' AND " if metric == "completion" else ""
    # an agent's operations are compared with everyone's of the same kind in the window
    window = replace(scope, agent=None) if scope is not None else None
    agent = "TRUE" if scope is None or scope.agent is None else f"user_name = {literal(scope.agent)}"
    return query(con, f"""
        WITH o AS (SELECT requested_at, user_name, session_key, exchange_id, {CHANNEL_OPERATION_SQL} AS operation,
                          {col} AS latency_ms
                   FROM {scoped('operations', window)} WHERE {only}{col} IS NOT NULL),
        q AS (SELECT operation, count(*) AS n, quantile_cont(latency_ms, 0.5) AS median_ms,
                     quantile_cont(latency_ms, 0.25) AS q1, quantile_cont(latency_ms, 0.75) AS q3
              FROM o GROUP BY operation)
        SELECT o.requested_at AS ts, o.user_name, o.session_key, o.operation, o.exchange_id, o.latency_ms,
               q.median_ms, q.q3 + ? * (q.q3 - q.q1) AS fence_ms, q.n AS samples
        FROM o JOIN q USING (operation)
        WHERE {agent} AND q.n >= ? AND o.latency_ms > q.q3 + ? * (q.q3 - q.q1) AND o.latency_ms >= ?
        ORDER BY ts
    """, [iqr_factor, min_samples, iqr_factor, floor_ms])


# ------------------------------------------------------------------------------ all together

EVENT_COLUMNS = ["kind", "label", "ts", "until", "user_name", "session_key", "client_id", "detail"]


def _rows(kind: str, df: pd.DataFrame, detail, until: str | None = None, client: str | None = "client_id"
          ) -> pd.DataFrame:
    if df.empty:
        return pd.DataFrame(columns=EVENT_COLUMNS)
    return pd.DataFrame({
        "kind": kind, "label": LABELS[kind], "ts": df["ts"],
        "until": df[until] if until else pd.NaT, "user_name": df["user_name"],
        "session_key": df.get("session_key"),
        "client_id": df[client] if client else None,
        "detail": [detail(r) for r in df.itertuples()],
    })


def events(con: duckdb.DuckDBPyConnection, scope: Scope | None = None, *, max_interval_s: float | None = None,
           logout_timeout_s: float = DEFAULT_LOGOUT_TIMEOUT_S) -> pd.DataFrame:
    """Every health finding as one row: kind, label, ts (the moment), until (for spans), agent,
    session, client and a detail in words; in time order."""
    away = away_gaps(con, max_interval_s, scope).rename(columns={"away_from": "ts"})
    slow_ack, slow_done = slow_operations(con, "ack", scope=scope), slow_operations(con, "completion", scope=scope)
    parts = [
        _rows("away", away, lambda r: f"{r.gap_s:.1f} s without a connect (maxInterval {r.max_interval_s:g} s), "
                                      f"back with a {r.came_back_with}"
                                      + (" to a lost session" if r.session_lost else ""), until="back_at"),
        _rows("stalled_connect", stalled_connects(con, scope=scope),
              lambda r: f"no reply ({r.http_error or 'none recorded'})" if pd.isna(r.replied_at)
              else f"held {r.held_s:.1f} s (timeout {r.timeout_s:g} s)"),
        _rows("rehandshake", rehandshakes(con, scope),
              lambda r: f"{r.error} on {r.channel}, " + ("no handshake after" if pd.isna(r.handshake_at) else
                                                          f"handshake {r.after_s:.1f} s later")),
        _rows("reconnect_storm", reconnect_storms(con, scope=scope),
              lambda r: f"{r.handshakes} handshakes, {r.refused_or_unanswered} not successful", until="until",
              client=None),
        _rows("multiple_clients", multiple_clients(con, scope),
              lambda r: f"advice multiple-clients, interval {r.interval_ms:g} ms" if pd.notna(r.interval_ms)
              else "advice multiple-clients"),
        _rows("concurrent_clients", concurrent_clients(con, scope),
              lambda r: f"with client {r.other_client_id} for {r.overlap_s:.1f} s", until="until"),
        _rows("transport_fallback", transport_fallbacks(con, scope),
              lambda r: f"WebSocket client {r.websocket_client_id} -> long-polling"
                        + (f" (close {r.close_code:g})" if pd.notna(r.close_code) else "")),
        _rows("server_logout", server_logouts(con, logout_timeout_s=logout_timeout_s,
                                              max_interval_s=max_interval_s, scope=scope),
              lambda r: f"{r.evidence}: {r.detail}", client=None),
        _rows("http_error", http_errors(con, scope),
              lambda r: f"{r.method} {r.path} -> " + (f"{r.status:g}" if pd.notna(r.status) else
                                                       f"no response ({r.error})"), client=None),
        _rows("slow_ack", slow_ack, lambda r: f"{r.operation} ack {r.latency_ms:,.0f} ms "
                                              f"(median {r.median_ms:,.0f} ms)", client=None),
        _rows("slow_completion", slow_done, lambda r: f"{r.operation} completion {r.latency_ms:,.0f} ms "
                                                      f"(median {r.median_ms:,.0f} ms)", client=None),
    ]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=EVENT_COLUMNS)
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["ts", "kind"], kind="stable", ignore_index=True)


def summary(ev: pd.DataFrame) -> pd.DataFrame:
    """One row per kind (every kind, zero included): how many, how many agents, first and last."""
    rows = []
    for k in KINDS:
        part = ev[ev["kind"] == k.name]
        rows.append((k.name, k.label, len(part), part["user_name"].nunique(),
                     part["ts"].min() if len(part) else pd.NaT, part["ts"].max() if len(part) else pd.NaT))
    return pd.DataFrame(rows, columns=["kind", "label", "count", "agents", "first_ts", "last_ts"])


def per_agent(ev: pd.DataFrame) -> pd.DataFrame:
    """Agents by kind: counts, the worst desktops first."""
    if ev.empty:
        return pd.DataFrame(columns=["user_name", "total"])
    table = ev.pivot_table(index="user_name", columns="kind", values="ts", aggfunc="count", fill_value=0)
    table = table[[k.name for k in KINDS if k.name in table.columns]]
    table.insert(0, "total", table.sum(axis=1))
    return table.sort_values("total", ascending=False).reset_index().rename_axis(columns=None)
