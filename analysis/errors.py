"""Everything that went wrong, by layer.

* GWS answers: ``statusCode`` other than 0 (7 is a partial success and is
  listed with its own flag) - protocol.md §4.1;
* HTTP: status >= 400, or no response at all (upstream refused, timeout,
  client gone: the ``error`` column);
* asynchronous failures: ``ErrorMessage`` notifications (voice, P§3.6) and
  ``notificationType: Error`` (multimedia, M§0);
* CometD: unsuccessful meta replies, ``402`` (unknown client: the server lost
  the session) and the re-handshakes that follow;
* long-poll gaps: time during which an agent had no /meta/connect outstanding,
  so notifications could only queue up (and GWS logs an agent out ~60 s after
  its CometD session goes away, P§3.8).
"""

from __future__ import annotations

import duckdb
import pandas as pd

from gwsreplay.analysis.db import Scope, query, scoped


def status_errors(con: duckdb.DuckDBPyConnection, scope: Scope | None = None) -> pd.DataFrame:
    """REST answers whose statusCode is not 0."""
    return query(con, f"""
        SELECT ts_request_start AS ts, user_name, method, path, operation_name, status,
               status_code, status_message, status_code = 7 AS partial_success
        FROM {scoped('exchanges', scope)}
        WHERE status_code IS NOT NULL AND status_code <> 0 AND NOT coalesce(is_bayeux, false)
        ORDER BY ts
    """)


def http_errors(con: duckdb.DuckDBPyConnection, scope: Scope | None = None) -> pd.DataFrame:
    """HTTP exchanges with status >= 400 or no response (with the recorder's error)."""
    return query(con, f"""
        SELECT ts_request_start AS ts, user_name, method, path, operation_name, status,
               status_code, status_message, error, coalesce(is_bayeux, false) AS is_bayeux
        FROM {scoped('exchanges', scope)}
        WHERE status >= 400 OR error IS NOT NULL OR (status IS NULL AND ts_response_start IS NULL)
        ORDER BY ts
    """)


def error_notifications(con: duckdb.DuckDBPyConnection, scope: Scope | None = None) -> pd.DataFrame:
    """ErrorMessage and notificationType=Error notifications."""
    return query(con, f"""
        SELECT ts, user_name, channel, message_type, notification_type, resource_type, resource_id,
               reference_id, error_message
        FROM {scoped('bayeux_messages', scope)}
        WHERE direction = 's2c' AND (message_type = 'ErrorMessage' OR notification_type = 'Error')
        ORDER BY ts
    """)


def cometd_failures(con: duckdb.DuckDBPyConnection, scope: Scope | None = None) -> pd.DataFrame:
    """Unsuccessful Bayeux meta replies, with the error code (402 = unknown client) and advice."""
    return query(con, f"""
        SELECT ts, user_name, session_key, client_id, channel, error,
               TRY_CAST(split_part(error, ':', 1) AS INTEGER) AS error_code,
               advice->>'$.reconnect' AS reconnect_advice
        FROM {scoped('bayeux_messages', scope)}
        WHERE direction = 's2c' AND starts_with(coalesce(channel, ''), '/meta/') AND successful = false
        ORDER BY ts
    """)


def handshakes(con: duckdb.DuckDBPyConnection, scope: Scope | None = None) -> pd.DataFrame:
    """Per agent: handshakes sent, how many were re-handshakes, and how many 402s preceded them."""
    return query(con, f"""
        SELECT user_name,
               count(*) FILTER (WHERE channel = '/meta/handshake' AND direction = 'c2s') AS handshakes,
               greatest(count(*) FILTER (WHERE channel = '/meta/handshake' AND direction = 'c2s') - 1, 0)
                   AS rehandshakes,
               count(*) FILTER (WHERE direction = 's2c' AND successful = false
                                  AND starts_with(coalesce(error, ''), '402')) AS unknown_client_402,
               list(ts ORDER BY ts) FILTER (WHERE channel = '/meta/handshake' AND direction = 'c2s')
                   AS handshake_times
        FROM {scoped('bayeux_messages', scope)}
        WHERE starts_with(coalesce(channel, ''), '/meta/')
        GROUP BY user_name
        ORDER BY user_name
    """)


def longpoll_gaps(con: duckdb.DuckDBPyConnection, threshold_s: float = 5.0,
                  scope: Scope | None = None) -> pd.DataFrame:
    """Intervals longer than ``threshold_s`` between a /meta/connect reply and the agent's next connect.

    With long-polling the client re-polls at once (advice interval 0), so any
    visible gap means the desktop (or the network) stalled.
    """
    return query(con, f"""
        WITH c AS (
            SELECT user_name, session_key, ts, direction, successful, error,
                   lead(ts) OVER w AS next_ts, lead(direction) OVER w AS next_direction
            FROM {scoped('bayeux_messages', scope)}
            WHERE channel = '/meta/connect' AND user_name IS NOT NULL
            WINDOW w AS (PARTITION BY user_name ORDER BY ts, id)
        )
        SELECT user_name, session_key, ts AS reply_ts, next_ts AS next_connect_ts,
               (epoch_us(next_ts) - epoch_us(ts)) / 1e6 AS gap_s,
               coalesce(successful, true) AS reply_successful, error
        FROM c
        WHERE direction = 's2c' AND next_direction = 'c2s'
          AND (epoch_us(next_ts) - epoch_us(ts)) / 1e6 > ?
        ORDER BY gap_s DESC
    """, [threshold_s])


def error_summary(con: duckdb.DuckDBPyConnection, gap_threshold_s: float = 5.0,
                  scope: Scope | None = None) -> pd.DataFrame:
    """One count per kind of error: the first table to look at."""
    meta = cometd_failures(con, scope)
    counts = {
        "statusCode != 0": len(status_errors(con, scope)),
        "HTTP errors": len(http_errors(con, scope)),
        "ErrorMessage / Error notifications": len(error_notifications(con, scope)),
        "CometD unsuccessful meta replies": len(meta),
        "CometD 402 (unknown client)": int(meta["error_code"].eq(402).sum()),
        "CometD re-handshakes": int(handshakes(con, scope)["rehandshakes"].sum()),
        f"long-poll gaps > {gap_threshold_s:g} s": len(longpoll_gaps(con, gap_threshold_s, scope)),
    }
    return pd.DataFrame({"kind": list(counts), "count": list(counts.values())})
