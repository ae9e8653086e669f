"""Read a capture file into the recorded input of a replay plan (RecordedCapture).

The one module of the replay engine that does I/O: it queries the DuckDB capture
read-only and hands plain dataclasses (gwsreplay.replay.plan) to the sans-IO
plan builder.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import duckdb

from gwsreplay.core.errors import UserError
from gwsreplay.replay.plan import META_STEPS, Note, RawSession, RecordedCapture, ReplayPlan, Step, build_plan


def read_plan(path: str | Path, session_ids: Iterable[str] | None = None) -> ReplayPlan:
    """The replay plan of a capture file (all sessions, or the chosen ones)."""
    return build_plan(load_capture(path), session_ids)


def load_capture(path: str | Path) -> RecordedCapture:
    """Read a capture (read-only) into per-session raw steps and notes."""
    path = str(path)
    if not Path(path).is_file():
        raise FileNotFoundError(path)
    try:
        con = duckdb.connect(path, read_only=True)
    except duckdb.Error as exc:
        raise CaptureError(f"cannot open {path}: {exc}") from None
    try:
        return _load(con, path)
    except duckdb.CatalogException as exc:
        raise CaptureError(f"{path} is not a gwsreplay capture ({exc})") from None
    finally:
        con.close()


class CaptureError(UserError):
    """The file exists but cannot be read as a capture (not DuckDB, locked by a recorder, other schema)."""


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def _json(text: Any) -> Any:
    if text is None or not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return None


def _load(con: duckdb.DuckDBPyConnection, path: str) -> RecordedCapture:
    keys = _rows(con, """
        SELECT user_name, coalesce(session_key, new_session_key) AS skey, min(epoch_us(ts_request_start)) AS t
        FROM exchanges
        WHERE user_name IS NOT NULL AND starts_with(path, '/api/') AND ts_request_start IS NOT NULL
        GROUP BY ALL ORDER BY t, user_name""")
    t0 = min((k["t"] for k in keys), default=0)
    per_user: dict[str, int] = defaultdict(int)
    for k in keys:
        per_user[k["user_name"]] += 1
    seen: dict[str, int] = defaultdict(int)
    sessions = []
    for k in keys:
        seen[k["user_name"]] += 1
        sid = k["user_name"] if per_user[k["user_name"]] == 1 else f"{k['user_name']}#{seen[k['user_name']]}"
        sessions.append(_load_session(con, sid, k["user_name"], k["skey"], t0))
    control = [{
        "id": r["id"], "ts": (r["t"] - t0) / 1e6, "end_ts": ((r["t_end"] or r["t"]) - t0) / 1e6,
        "path": r["path"], "body": _json(r["request_body"]), "status": r["status"],
        "response": _json(r["response_body"]),
    } for r in _rows(con, """
        SELECT id, path, request_body, response_body, status, epoch_us(ts_request_start) AS t,
               epoch_us(coalesce(ts_response_end, ts_response_start)) AS t_end
        FROM exchanges WHERE method = 'POST' AND starts_with(path, '/sim/v1/')
        ORDER BY ts_request_start, id""")]
    origins = _recorded_origins(con)
    return RecordedCapture(path, t0, origins, sessions, control)


def _recorded_origins(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Where the capture was recorded from: the proxy's upstream and the hosts the exchanges went to."""
    origins: list[str] = []
    for (mode,) in con.execute("SELECT value FROM meta WHERE key = 'mode'").fetchall():
        for part in (mode or "").split(","):
            if part.startswith("reverse:"):
                origins.append(part[len("reverse:"):].rstrip("/"))
    for scheme, host, port in con.execute(
            "SELECT DISTINCT scheme, host, port FROM exchanges WHERE host IS NOT NULL AND host <> ''").fetchall():
        default = {"http": 80, "https": 443}.get(scheme or "http")
        origins.append(f"{scheme or 'http'}://{host}" + (f":{port}" if port and port != default else ""))
    return sorted(set(o.lower() for o in origins))


def _load_session(con: duckdb.DuckDBPyConnection, sid: str, user: str, skey: str | None, t0: int) -> RawSession:
    key_sql = "coalesce(session_key, new_session_key) IS NOT DISTINCT FROM ?"
    exchanges = _rows(con, f"""
        SELECT id, method, path, query_params, request_body, response_body, status, status_code,
               operation_name, resource_type, resource_id,
               epoch_us(ts_request_start) AS t, epoch_us(coalesce(ts_response_end, ts_response_start)) AS t_end
        FROM exchanges
        WHERE user_name = ? AND {key_sql} AND starts_with(path, '/api/')
          AND NOT coalesce(is_bayeux, false) AND NOT coalesce(is_websocket, false)
          AND path NOT LIKE '/api/v2/notifications%'
        ORDER BY ts_request_start, id""", [user, skey])
    messages = _rows(con, """
        SELECT id, direction, transport, channel, msg_id, successful, subscription, ext, data, raw,
               message_type, notification_type, resource_type, resource_id, resource_state, call_id,
               epoch_us(ts) AS t
        FROM bayeux_messages
        WHERE user_name = ? AND session_key IS NOT DISTINCT FROM ? AND parse_error IS NULL
        ORDER BY ts, id""", [user, skey])
    steps: list[Step] = []
    for x in exchanges:
        steps.append(Step(
            index=0, kind="rest", ts=(x["t"] - t0) / 1e6, end_ts=((x["t_end"] or x["t"]) - t0) / 1e6,
            method=x["method"], path=x["path"], query=_json(x["query_params"]) or {},
            body=_json(x["request_body"]), operation=x["operation_name"], status=x["status"],
            status_code=x["status_code"], response=_json(x["response_body"]), exchange_id=x["id"]))
    replies = {(m["channel"], m["msg_id"]): m for m in messages if m["direction"] == "s2c" and m["msg_id"]}
    transport = "long-polling"
    notes: list[Note] = []
    for m in messages:
        if m["direction"] == "c2s":
            if m["transport"] == "websocket":
                transport = "websocket"
            if m["channel"] in META_STEPS:
                reply = replies.get((m["channel"], m["msg_id"]))
                message = {"channel": m["channel"]}
                if m["subscription"]:
                    message["subscription"] = m["subscription"]
                if m["ext"]:
                    message["ext"] = _json(m["ext"])
                steps.append(Step(
                    index=0, kind=m["channel"].rsplit("/", 1)[1], ts=(m["t"] - t0) / 1e6,
                    end_ts=((reply or m)["t"] - t0) / 1e6, operation=m["channel"], message=message,
                    successful=reply["successful"] if reply else None))
        elif m["channel"] and not m["channel"].startswith("/meta/") and m["data"] is not None:
            data = _json(m["data"])
            if not isinstance(data, dict):
                continue
            notes.append(Note(
                session=sid, index=len(notes), ts=(m["t"] - t0) / 1e6, channel=m["channel"], data=data,
                message_type=m["message_type"], notification_type=m["notification_type"],
                resource_type=m["resource_type"], resource_id=m["resource_id"], state=m["resource_state"],
                call_id=m["call_id"]))
    steps.sort(key=lambda s: s.ts)
    phones, devices = _agent_identity(steps, notes)
    return RawSession(sid, user, skey, transport, steps, notes, phones, devices)


def _agent_identity(steps: list[Step], notes: list[Note]) -> tuple[set[str], set[str]]:
    """The session's device ids and phone numbers, from device notifications and GET answers."""
    phones: set[str] = set()
    devices: set[str] = set()

    def take(device: Any) -> None:
        if isinstance(device, dict):
            if isinstance(device.get("id"), str):
                devices.add(device["id"])
            if isinstance(device.get("phoneNumber"), str) and device["phoneNumber"]:
                phones.add(device["phoneNumber"])

    for n in notes:
        if n.message_type == "DeviceStateChangeMessage":
            for d in n.data.get("devices") or []:
                take(d)
    for s in steps:
        body = s.response if isinstance(s.response, dict) else {}
        for d in (body.get("devices") or []) + ((body.get("user") or {}).get("devices") or []):
            take(d)
    return phones, devices
