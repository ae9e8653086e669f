"""Raw capture records -> table rows (no I/O, no mitmproxy).

:class:`RowBuilder` turns the records of gwsreplay.capture.records into the named rows
of gwsreplay.capture.schema for ``exchanges``, ``websocket_frames``,
``websocket_connections`` and ``capture_errors``, and stages every Bayeux body for the
SQL that explodes it into ``bayeux_messages`` (gwsreplay.capture.bayeux_sql): it
decodes, parses, redacts, classifies, and tracks which agent each session cookie and
CometD clientId belongs to.
"""

from __future__ import annotations

import base64
import functools
import time
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from gwsreplay.capture import bayeux_extract
from gwsreplay.capture.bayeux_sql import StagedBody
from gwsreplay.capture.classify import classify_http, classify_path
from gwsreplay.capture.records import (DEFAULT_MAX_BODY, Body, ErrorRecord, Headers, HttpRecord, LateErrorRecord,
                                       WsEndRecord, WsFrameRecord, complete_json_array, dumps, get_header,
                                       get_headers, header_list, is_utf8, make_body, parse_json)
from gwsreplay.capture.records import us as _us
from gwsreplay.capture.redact import SESSION_COOKIES, Redactor, basic_user, cookie_value, split_set_cookie
from gwsreplay.capture.schema import (BayeuxMessageRow, CaptureErrorRow, ExchangeRow, WebsocketConnectionRow,
                                      WebsocketFrameRow)


# ------------------------------------------------------------------------ sessions

class SessionTracker:
    """Which agent a session cookie or a CometD clientId belongs to (in record order)."""

    def __init__(self) -> None:
        self.key_user: dict[str, str] = {}
        self.client_session: dict[str, tuple[str | None, str | None]] = {}

    def user_for(self, session_key: str | None) -> str | None:
        return self.key_user.get(session_key) if session_key else None

    def observe_exchange(self, auth_user: str | None, session_key: str | None,
                         new_session_key: str | None) -> str | None:
        user = auth_user or self.user_for(session_key) or self.user_for(new_session_key)
        if user:
            if session_key and session_key not in self.key_user:
                self.key_user[session_key] = user
            elif session_key and auth_user:
                self.key_user[session_key] = auth_user
            if new_session_key:
                self.key_user[new_session_key] = user
        return user

    def for_message(self, client_id: str | None, carrier_key: str | None,
                    carrier_user: str | None) -> tuple[str | None, str | None]:
        key, user = carrier_key, carrier_user or self.user_for(carrier_key)
        if client_id and (key is None or user is None):
            ck, cu = self.client_session.get(client_id, (None, None))
            key = key or ck
            user = user or cu or self.user_for(ck)
        return key, user

    def observe_handshake(self, client_id: str, key: str | None, user: str | None) -> None:
        self.client_session[client_id] = (key, user)


# ------------------------------------------------------------------------ rows

class Where(NamedTuple):
    """Where a Bayeux body was seen: shared by its messages' rows."""

    direction: str
    ts: int | None             # µs
    exchange_id: int | None
    flow_id: str
    frame_index: int | None
    transport: str


class LateError(NamedTuple):
    """An error for an exchange already written (``out["_late_errors"]``): the writer appends it."""

    exchange_id: int
    error: str


#: WebSocket close codes that end a connection normally (RFC 6455 7.4.1); 1005: no code given
NORMAL_CLOSE_CODES = frozenset((1000, 1001, 1005))


@functools.lru_cache(maxsize=4096)
def _is_bayeux_path(path: str) -> bool:
    return classify_path(path).is_bayeux



class RowBuilder:
    """Turns raw records into rows: the named rows of gwsreplay.capture.schema (``ExchangeRow``...)
    and the Bayeux bodies to stage for the SQL (``StagedBody``), appended to ``out[table]``."""

    def __init__(self, redactor: Redactor | None = None, *, max_body: int = DEFAULT_MAX_BODY,
                 next_ids: dict[str, int] | None = None) -> None:
        self.redactor = redactor or Redactor()
        self.max_body = max_body
        ids = next_ids or {}
        self.next_exchange = ids.get("exchanges", 1)
        self.next_frame = ids.get("websocket_frames", 1)
        self.sessions = SessionTracker()
        # websocket flow id -> (exchange id, session key, user, ts of upgrade)
        self.ws_flows: dict[str, tuple[int | None, str | None, str | None, float | None]] = {}
        self._req_headers: dict[tuple, tuple] = {}
        self._resp_headers: dict[tuple, tuple] = {}
        self.flow_exchange: dict[str, int] = {}

    # ---------------------------------------------------------------- http
    def _headers(self, fields: Headers, request: bool) -> tuple:
        """(headers as str pairs, redacted JSON, auth user, session key) of a request, or
        (headers, redacted JSON, None, key of the session cookie set) of a response. Memoised:
        an agent's requests repeat the same headers (cookie, token, authorization) all day."""
        cache = self._req_headers if request else self._resp_headers
        try:
            key = tuple(fields)
            hit = cache.get(key)
        except TypeError:      # unhashable (lists): no memo
            key, hit = None, None
        if hit is not None:
            return hit
        rd = self.redactor
        h = header_list(fields)
        user = session_key = None
        if request:
            user = basic_user(get_header(h, "authorization"))
            for cv in get_headers(h, "cookie"):
                for name in SESSION_COOKIES:
                    v = cookie_value(cv, name)
                    if v:
                        session_key = rd.hash(v)
        else:
            for sc in get_headers(h, "set-cookie"):
                for one in split_set_cookie(sc):
                    first = one.split(";", 1)[0]
                    for name in SESSION_COOKIES:
                        v = cookie_value(first, name)
                        if v:
                            session_key = rd.hash(v)
        hit = (h, dumps(rd.headers(h)), user, session_key)
        if key is not None:
            if len(cache) >= 4096:
                cache.clear()
            cache[key] = hit
        return hit

    def http(self, rec: HttpRecord, out: dict[str, list]) -> None:
        rd = self.redactor
        req_h, req_h_json, auth_user, session_key = self._headers(rec.request_headers, True)
        resp_h, resp_h_json, _, new_session_key = self._headers(rec.response_headers, False)
        path, _, query = rec.path.partition("?")
        query_r = rd.query(query)
        qp: dict[str, Any] = {}
        for k, v in parse_qsl(query_r, keep_blank_values=True):
            if k in qp:
                qp[k] = qp[k] if isinstance(qp[k], list) else [qp[k]]
                qp[k].append(v)
            else:
                qp[k] = v

        bayeux = _is_bayeux_path(path) and not rec.is_websocket
        req = make_body(rec.request_body, req_h, rec.decoded, self.max_body, rd, bayeux)
        resp = make_body(rec.response_body, resp_h, rec.decoded, self.max_body, rd, bayeux)
        cls = classify_http(rec.method, path, req.parsed, resp.parsed)

        user = self.sessions.observe_exchange(auth_user, session_key, new_session_key)

        ex_id = self.next_exchange
        self.next_exchange += 1
        self.flow_exchange[rec.flow_id] = ex_id
        if len(self.flow_exchange) > 100_000:
            self.flow_exchange.clear()

        if bayeux:
            self._bayeux_body(req, "c2s", rec.ts_request_start, ex_id, rec.flow_id, session_key, user, out)
            self._bayeux_body(resp, "s2c", rec.ts_response_start or rec.ts_response_end,
                              ex_id, rec.flow_id, session_key or new_session_key, user, out)
        if rec.is_websocket:
            self.ws_flows[rec.flow_id] = (ex_id, session_key or new_session_key, user, rec.ts_response_start)

        host_port = rec.host + (f":{rec.port}" if rec.port and not (
            (rec.scheme == "http" and rec.port == 80) or (rec.scheme == "https" and rec.port == 443)) else "")
        url = f"{rec.scheme}://{host_port}{path}" + (f"?{query_r}" if query_r else "")
        if bayeux:
            # the messages of a clean Bayeux body live in bayeux_messages (one row each, by
            # position): do not store them twice
            for b in (req, resp):
                if b.ok_json:
                    b.json_text, b.text, b.encoding, b.truncated = None, None, "bayeux", False
        out["exchanges"].append(ExchangeRow(
            id=ex_id, flow_id=rec.flow_id, source=rec.source, method=rec.method, scheme=rec.scheme,
            host=rec.host, port=rec.port, url=url, path=path, query=query_r or None,
            query_params=dumps(qp) if qp else None, http_version=rec.http_version, status=rec.status,
            reason=rec.reason, request_headers=req_h_json,
            response_headers=resp_h_json if (resp_h or rec.status is not None) else None,
            request_content_type=get_header(req_h, "content-type"),
            request_body=req.json_text, request_body_text=req.text, request_body_encoding=req.encoding,
            request_body_size=req.size, request_body_truncated=req.truncated, request_body_error=req.error,
            response_content_type=get_header(resp_h, "content-type"),
            response_body=resp.json_text, response_body_text=resp.text, response_body_encoding=resp.encoding,
            response_body_size=resp.size, response_body_truncated=resp.truncated, response_body_error=resp.error,
            ts_request_start=_us(rec.ts_request_start), ts_request_end=_us(rec.ts_request_end),
            ts_response_start=_us(rec.ts_response_start), ts_response_end=_us(rec.ts_response_end),
            client_addr=rec.client_addr, server_addr=rec.server_addr, error=rec.error,
            is_websocket=rec.is_websocket, is_bayeux=cls.is_bayeux,
            api_version=cls.api_version, api_area=cls.api_area, resource_type=cls.resource_type,
            resource_id=cls.resource_id, sub_resource=cls.sub_resource, owner_id=cls.owner_id,
            operation_name=cls.operation_name, status_code=cls.status_code, status_message=cls.status_message,
            reference_id=cls.reference_id,
            auth_user=auth_user, user_name=user, session_key=session_key, new_session_key=new_session_key,
        ))

    def _bayeux_body(self, body: Body, direction: str, ts: float | None, ex_id: int | None,
                     flow_id: str, key: str | None, user: str | None, out: dict[str, list],
                     transport: str = "long-polling", frame_index: int | None = None) -> None:
        if body.size == 0 and body.encoding is None:
            return
        where = Where(direction, _us(ts), ex_id, flow_id, frame_index, transport)
        if body.fast is not None:
            self._fast(body.fast, where, key, user, out)
        elif body.ok_json:
            self._parsed(body.parsed, body.json_bytes or b"", where, key, user, out)
        elif body.str_text is not None:
            msgs, err, rest = bayeux_extract.decode(body.str_text)
            self._recovered(msgs, err, rest, where, key, user, out)
        else:
            self._error_row(out, where, 0, key, user, body.error or "binary body", None)

    def _fast(self, text: bytes, where: Where, key: str | None, user: str | None, out: dict[str, list]) -> None:
        """A complete-looking array nobody needs to look inside: DuckDB explodes it."""
        if key is None or (where.direction == "s2c" and b"/meta/handshake" in text):
            try:
                parsed = parse_json(text)
            except (ValueError, RecursionError):
                pass      # DuckDB will reject it too; the writer's fallback decodes it leniently
            else:
                self._parsed(parsed, text, where, key, user, out)
                return
        self._stage(out, text, 0, where, key, user)

    def _resolve(self, items: list, key: str | None, user: str | None) -> tuple[str | None, str | None]:
        if key is not None and user is not None:
            return key, user
        cid = None
        for m in items:
            if type(m) is dict and m.get("clientId") is not None:
                cid = str(m.get("clientId"))
                break
        return self.sessions.for_message(cid, key, user)

    def _observe(self, items: list, direction: str, text: bytes, key: str | None, user: str | None) -> None:
        if direction == "s2c" and b"/meta/handshake" in text:
            for m in items:
                if (type(m) is dict and m.get("channel") == "/meta/handshake" and m.get("clientId") is not None
                        and m.get("successful") is not False):
                    self.sessions.observe_handshake(str(m["clientId"]), key, user)

    def _stage(self, out: dict[str, list], text: bytes, pos0: int, where: Where,
               key: str | None, user: str | None) -> None:
        rows = out["_bayeux_bodies"]
        rows.append(StagedBody(seq=len(rows), pos0=pos0, ts=where.ts, direction=where.direction,
                               transport=where.transport, exchange_id=where.exchange_id, flow_id=where.flow_id,
                               frame_index=where.frame_index, user_name=user, session_key=key, body=text))

    def _parsed(self, parsed: Any, text: bytes | str, where: Where, key: str | None, user: str | None,
                out: dict[str, list]) -> None:
        """A body that parsed as JSON (text: its, possibly redacted, JSON text as UTF-8 bytes)."""
        if type(text) is str:
            text = text.encode("utf-8", "replace")
        if type(parsed) is dict:
            items, text = [parsed], b"[" + text + b"]"
        elif type(parsed) is list:
            items = parsed
        else:
            self._error_row(out, where, 0, key, user, f"not a Bayeux message: JSON {type(parsed).__name__}", None)
            return
        key, user = self._resolve(items, key, user)
        self._observe(items, where.direction, text, key, user)
        if all(type(m) is dict for m in items):
            if items:
                self._stage(out, text, 0, where, key, user)
            return
        for pos, m in enumerate(items):
            if type(m) is dict:
                self._stage(out, ("[" + dumps(m) + "]").encode("utf-8", "replace"), pos, where, key, user)
            else:
                self._error_row(out, where, pos, key, user, "element is not an object",
                                dumps(m)[: self.max_body])

    def _recovered(self, msgs: list, err: str | None, rest: str | None, where: Where, key: str | None,
                   user: str | None, out: dict[str, list]) -> None:
        """Messages salvaged from a damaged body, plus one row carrying the error and the raw text."""
        if msgs and self.redactor.enabled:
            msgs, _ = self.redactor.json(msgs)
        if msgs:
            self._parsed(msgs, dumps(msgs), where, key, user, out)
        if err is not None:
            raw = self.redactor.text(rest)[: self.max_body] if rest else None
            k, u = self._resolve(msgs, key, user)
            self._error_row(out, where, len(msgs), k, u, err, raw)

    def _error_row(self, out: dict[str, list], where: Where, pos: int, key: str | None, user: str | None,
                   err: str, raw: str | None) -> None:
        out["bayeux_messages"].append(error_message_row(where, pos, user, key, err[:500], raw))

    # ---------------------------------------------------------------- websocket
    def ws_frame(self, rec: WsFrameRecord, out: dict[str, list]) -> None:
        ex_id, key, user, _ = self.ws_flows.get(rec.flow_id, (self.flow_exchange.get(rec.flow_id), None, None, None))
        direction = "c2s" if rec.from_client else "s2c"
        where = Where(direction, _us(rec.ts), ex_id, rec.flow_id, rec.index, "websocket")
        fid = self.next_frame
        self.next_frame += 1
        content = rec.content or b""
        stored = stored_enc = parse_error = None
        truncated = False
        if rec.is_text:
            fast = None
            if b"\x00" not in content[:4] and not self.redactor.might_contain(content) and is_utf8(content):
                fast = complete_json_array(content)
            if fast is not None:
                self._fast(fast, where, key, user, out)
            else:
                try:
                    if b"\x00" in content[:4] or content.startswith(b"\xef\xbb\xbf"):
                        raise ValueError("not UTF-8 JSON")
                    parsed = parse_json(content)
                except (ValueError, RecursionError):
                    text = content.decode("utf-8", "replace")
                    msgs, parse_error, rest = bayeux_extract.decode(text)
                    self._recovered(msgs, parse_error, rest, where, key, user, out)
                    stored, stored_enc = self.redactor.text(text), "text"
                else:
                    text = content
                    if self.redactor.might_contain(content):
                        parsed, changed = self.redactor.json(parsed)
                        if changed:
                            text = dumps(parsed).encode("utf-8", "replace")
                    if type(parsed) not in (dict, list):
                        parse_error = f"not a Bayeux message: JSON {type(parsed).__name__}"
                        stored, stored_enc = text.decode("utf-8", "replace"), "text"
                    elif type(parsed) is list and not all(type(m) is dict for m in parsed):
                        parse_error = "elements are not all objects"
                    self._parsed(parsed, text, where, key, user, out)
        else:
            parse_error = "binary frame"
            stored, stored_enc = base64.b64encode(content[: self.max_body]).decode("ascii"), "base64"
            self._error_row(out, where, 0, key, user, parse_error, None)
        if stored is not None and len(stored) > self.max_body:
            stored, truncated = stored[: self.max_body], True
        out["websocket_frames"].append(WebsocketFrameRow(
            id=fid, flow_id=rec.flow_id, exchange_id=ex_id, frame_index=rec.index, ts=_us(rec.ts),
            direction=direction, opcode="text" if rec.is_text else "binary", size=len(content), content=stored,
            content_encoding=stored_enc, truncated=truncated, parse_error=parse_error, dropped=rec.dropped,
            injected=rec.injected,
        ))

    def ws_end(self, rec: WsEndRecord, out: dict[str, list]) -> None:
        ex_id, _, _, ts_up = self.ws_flows.pop(rec.flow_id, (self.flow_exchange.get(rec.flow_id), None, None, None))
        error = rec.error
        code = rec.close_code
        if error is None and code is not None and code not in NORMAL_CLOSE_CODES and code < 3000:
            error = ("connection closed abnormally (1006: no close frame)" if code == 1006 else
                     f"connection closed with code {code}" + (f": {rec.close_reason}" if rec.close_reason else ""))
        out["websocket_connections"].append(WebsocketConnectionRow(
            flow_id=rec.flow_id, exchange_id=ex_id, ts_start=_us(rec.ts_start or ts_up), ts_end=_us(rec.ts_end),
            frames=rec.frames, closed_by_client=rec.closed_by_client, close_code=code,
            close_reason=rec.close_reason, error=error,
        ))

    def late_error(self, rec: LateErrorRecord, out: dict[str, list]) -> None:
        ex_id = self.flow_exchange.get(rec.flow_id)
        if ex_id is None:
            out["capture_errors"].append(CaptureErrorRow(ts=_us(time.time()), kind="late_error", flow_id=rec.flow_id,
                                                         count=1, error=rec.error[:2000]))
        else:
            out["_late_errors"].append(LateError(ex_id, rec.error[:2000]))

    def error(self, rec: ErrorRecord, out: dict[str, list]) -> None:
        out["capture_errors"].append(CaptureErrorRow(ts=_us(rec.ts or time.time()), kind=rec.kind, flow_id=rec.flow_id,
                                                     count=rec.count, error=rec.error[:2000]))


def error_message_row(where: Where, position: int, user: str | None, key: str | None, error: str,
                      raw: str | None) -> BayeuxMessageRow:
    """A ``bayeux_messages`` row for what could not be read as a message (id given at insert)."""
    return BayeuxMessageRow(ts=where.ts, direction=where.direction, transport=where.transport,
                            exchange_id=where.exchange_id, flow_id=where.flow_id, frame_index=where.frame_index,
                            position=position, user_name=user, session_key=key, parse_error=error, raw=raw)
