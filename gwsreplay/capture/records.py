"""Raw capture records and their conversion into table rows (no I/O, no mitmproxy).

The proxy addon, the HAR importer and the mitm-file importer all produce the same
three raw records; :class:`RowBuilder` turns them into rows for ``exchanges``,
``bayeux_messages``, ``websocket_frames`` and ``websocket_connections``: it decodes
content-encodings, parses JSON, redacts, classifies, extracts every Bayeux message
and tracks which agent each session cookie and CometD clientId belongs to.

The conversion runs on the writer thread, never on mitmproxy's event loop.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import time
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from gwsreplay.capture import bayeux_extract
from gwsreplay.capture.classify import classify_http, classify_path
from gwsreplay.capture.redact import SESSION_COOKIES, Redactor, basic_user, cookie_value

Headers = list[tuple[str, str]] | list[tuple[bytes, bytes]]

DEFAULT_MAX_BODY = 1024 * 1024
# Bodies are decoded (gzip, br, ...) up to this many bytes; beyond, the rest is dropped
# and the body is marked truncated (protects against decompression bombs).
DECODE_LIMIT = 64 * 1024 * 1024


@dataclass(slots=True)
class HttpRecord:
    """One HTTP exchange as seen by the proxy (or read from a HAR / flow file)."""

    flow_id: str
    method: str
    scheme: str = "http"
    host: str = ""
    port: int | None = None
    path: str = "/"                          # path + "?" + query, as sent
    http_version: str | None = None
    request_headers: Headers = field(default_factory=list)
    request_body: bytes | None = None        # as on the wire (content-encoding applied) unless decoded=True
    status: int | None = None
    reason: str | None = None
    response_headers: Headers = field(default_factory=list)
    response_body: bytes | None = None
    ts_request_start: float | None = None
    ts_request_end: float | None = None
    ts_response_start: float | None = None
    ts_response_end: float | None = None
    client_addr: str | None = None
    server_addr: str | None = None
    error: str | None = None
    is_websocket: bool = False
    source: str = "proxy"
    decoded: bool = False                    # bodies already content-decoded (HAR)
    submitted: float = 0.0                   # time.monotonic() when handed to the writer


@dataclass(slots=True)
class WsFrameRecord:
    flow_id: str
    index: int
    ts: float
    from_client: bool
    is_text: bool
    content: bytes
    dropped: bool = False
    injected: bool = False
    submitted: float = 0.0


@dataclass(slots=True)
class WsEndRecord:
    flow_id: str
    ts_start: float | None
    ts_end: float | None
    frames: int
    closed_by_client: bool | None = None
    close_code: int | None = None
    close_reason: str | None = None
    error: str | None = None
    submitted: float = 0.0


@dataclass(slots=True)
class ErrorRecord:
    kind: str
    error: str
    flow_id: str | None = None
    count: int = 1
    ts: float = 0.0
    submitted: float = 0.0


# ------------------------------------------------------------------------ helpers

def _s(v: str | bytes) -> str:
    return v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else v


def _us(ts: float | None) -> int | None:
    return None if ts is None else int(round(ts * 1_000_000))


def header_list(headers: Headers) -> list[tuple[str, str]]:
    out = []
    for k, v in headers:
        k = k.decode("latin-1") if isinstance(k, bytes) else k
        if isinstance(v, bytes):
            try:
                v = v.decode("utf-8")
            except UnicodeDecodeError:
                v = v.decode("latin-1")
        out.append((k, v))
    return out


def get_header(headers: list[tuple[str, str]], name: str) -> str | None:
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def get_headers(headers: list[tuple[str, str]], name: str) -> list[str]:
    name = name.lower()
    return [v for k, v in headers if k.lower() == name]


def decode_content(raw: bytes, encoding: str | None, limit: int = DECODE_LIMIT) -> tuple[bytes, str | None, bool]:
    """Undo Content-Encoding. Returns (decoded, error, cut_at_limit); on error the raw bytes."""
    if not raw or not encoding:
        return raw, None, False
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
    data = raw
    cut = False
    for coding in reversed(codings):
        try:
            if coding in ("identity", "none"):
                continue
            if coding in ("gzip", "x-gzip", "deflate"):
                if coding == "deflate":
                    try:
                        d = zlib.decompressobj()
                        out = d.decompress(data, limit)
                    except zlib.error:
                        d = zlib.decompressobj(-zlib.MAX_WBITS)
                        out = d.decompress(data, limit)
                else:
                    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    out = d.decompress(data, limit)
                cut = cut or bool(d.unconsumed_tail)
                data = out
            elif coding == "br":
                import brotli  # type: ignore

                dec = brotli.Decompressor()
                data = dec.process(data)
                if len(data) > limit:
                    data, cut = data[:limit], True
            elif coding == "zstd":
                import zstandard  # type: ignore

                data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
                if len(data) > limit:
                    data, cut = data[:limit], True
            else:
                return raw, f"unknown content-encoding {coding!r}", False
        except Exception as exc:  # noqa: BLE001 - record, keep the raw bytes
            return raw, f"content-encoding {coding} failed: {exc}", False
    return data, None, cut


def _charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    for part in content_type.split(";")[1:]:
        k, _, v = part.strip().partition("=")
        if k.lower() == "charset" and v:
            return v.strip().strip('"')
    return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def parse_json(data: bytes | str) -> Any:
    return json.loads(data, parse_constant=_reject_constant)


_LONE_SURROGATE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}")


def fix_surrogates(text: str) -> str:
    """Replace lone UTF-16 surrogate escapes (valid for Python's json, not for DuckDB) by U+FFFD."""
    if "\\ud" not in text and "\\uD" not in text:
        return text
    return _LONE_SURROGATE.sub(r"\\ufffd", text)


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)


@dataclass(slots=True)
class Body:
    json_text: bytes | None = None   # the (redacted) JSON as UTF-8 bytes, when valid and not truncated
    text: str | None = None
    encoding: str | None = None      # json | text | base64 | None (empty)
    size: int = 0
    truncated: bool = False
    error: str | None = None
    parsed: Any = None
    ok_json: bool = False
    json_bytes: bytes | None = None  # full (redacted) JSON bytes, also when truncated for storage
    str_text: str | None = None      # full decoded text when not JSON (for lenient Bayeux extraction)
    fast: bytes | None = None        # Bayeux fast path: a complete-looking JSON array, not parsed in Python


_WS_BYTES = b" \t\r\n"


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def complete_json_array(data: bytes) -> bytes | None:
    """``data`` as a JSON array text if it looks complete (``[...]`` or ``{...}``), else None.

    A cheap bracket check, no parsing: DuckDB parses the array; truncated bodies fail
    this check and take the lenient Python path instead."""
    n = len(data)
    i = 0
    while i < n and data[i] in _WS_BYTES:
        i += 1
    j = n - 1
    while j > i and data[j] in _WS_BYTES:
        j -= 1
    if j <= i:
        return None
    a, b = data[i], data[j]
    if a == 0x5B and b == 0x5D:          # [ ... ]
        return data
    if a == 0x7B and b == 0x7D:          # { ... }
        return b"[" + data + b"]"
    return None


def make_body(raw: bytes | None, headers: list[tuple[str, str]], decoded: bool,
              max_body: int, redactor: Redactor, bayeux: bool = False) -> Body:
    """Decode, parse, redact and cap one body. ``bayeux``: a CometD body, whose messages
    go to bayeux_messages; when it looks complete and holds nothing to redact it is not
    parsed here (``Body.fast``) and is not stored again in exchanges."""
    b = Body()
    if not raw:
        return b
    errors: list[str] = []
    data = raw
    if not decoded:
        data, err, cut = decode_content(raw, get_header(headers, "content-encoding"))
        if err:
            errors.append(err)
        if cut:
            errors.append("decoded body exceeds the decode limit")
            b.truncated = True
    b.size = len(data)
    if bayeux and not b.truncated and not errors and not redactor.might_contain(data):
        fast = complete_json_array(data)
        if fast is not None and is_utf8(data):
            b.fast = fast
            b.encoding = "bayeux"
            return b
    ctype = (get_header(headers, "content-type") or "").lower()
    charset = _charset(ctype)
    head = data[:64].lstrip()
    looks_json = "json" in ctype or head[:1] in (b"[", b"{")
    if (looks_json and (charset is None or charset.lower().replace("-", "") == "utf8")
            and b"\x00" not in data[:4] and not data.startswith(b"\xef\xbb\xbf")):
        try:
            parsed = parse_json(data)
        except (ValueError, RecursionError) as exc:
            if "json" in ctype or head[:1] in (b"[", b"{"):
                errors.append(f"invalid JSON: {exc}"[:300])
        else:
            b.ok_json = True
            changed = False
            if redactor.might_contain(data):
                parsed, changed = redactor.json(parsed)
            b.parsed = parsed
            jb = dumps(parsed).encode("utf-8", "replace") if changed else data
            b.json_bytes = jb
            if len(jb) <= max_body and not b.truncated:
                b.json_text = jb
                b.encoding = "json"
            else:
                b.text = jb[:max_body].decode("utf-8", "ignore")
                b.encoding = "text"
                b.truncated = True
            b.error = "; ".join(errors) or None
            return b
    # not (valid) JSON: text if it decodes, else base64
    try:
        text = data.decode(charset or "utf-8")
    except (UnicodeDecodeError, LookupError):
        text = None
    if text is not None and "\x00" not in text:
        text = redactor.text(text)
        b.str_text = text
        b.encoding = "text"
        if len(text) > max_body:
            text, b.truncated = text[:max_body], True
        b.text = text
    else:
        if looks_json or ctype.startswith("text/"):
            errors.append("body is not valid UTF-8 text" if charset is None else f"body does not decode as {charset}")
        b.encoding = "base64"
        chunk = data[:max_body]
        if len(data) > max_body:
            b.truncated = True
        b.text = base64.b64encode(chunk).decode("ascii")
    b.error = "; ".join(errors) or None
    return b


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

@functools.lru_cache(maxsize=4096)
def _is_bayeux_path(path: str) -> bool:
    return classify_path(path).is_bayeux



class RowBuilder:
    """Turns raw records into rows (tuples in the column order of gwsreplay.capture.schema)."""

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
                first = sc.split(";", 1)[0]
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
        out["exchanges"].append((
            ex_id, rec.flow_id, rec.source, rec.method, rec.scheme, rec.host, rec.port, url, path,
            query_r or None, dumps(qp) if qp else None, rec.http_version, rec.status, rec.reason,
            req_h_json, resp_h_json if (resp_h or rec.status is not None) else None,
            get_header(req_h, "content-type"),
            req.json_text, req.text, req.encoding, req.size, req.truncated, req.error,
            get_header(resp_h, "content-type"),
            resp.json_text, resp.text, resp.encoding, resp.size, resp.truncated, resp.error,
            _us(rec.ts_request_start), _us(rec.ts_request_end), _us(rec.ts_response_start), _us(rec.ts_response_end),
            rec.client_addr, rec.server_addr, rec.error, rec.is_websocket, cls.is_bayeux,
            cls.api_version, cls.api_area, cls.resource_type, cls.resource_id, cls.sub_resource, cls.owner_id,
            cls.operation_name, cls.status_code, cls.status_message, cls.reference_id,
            auth_user, user, session_key, new_session_key,
        ))

    def _bayeux_body(self, body: Body, direction: str, ts: float | None, ex_id: int | None,
                     flow_id: str, key: str | None, user: str | None, out: dict[str, list],
                     transport: str = "long-polling", frame_index: int | None = None) -> None:
        if body.size == 0 and body.encoding is None:
            return
        where = (direction, _us(ts), ex_id, flow_id, frame_index, transport)
        if body.fast is not None:
            self._fast(body.fast, where, key, user, out)
        elif body.ok_json:
            self._parsed(body.parsed, body.json_bytes or b"", where, key, user, out)
        elif body.str_text is not None:
            msgs, err, rest = bayeux_extract.decode(body.str_text)
            self._recovered(msgs, err, rest, where, key, user, out)
        else:
            self._error_row(out, where, 0, key, user, body.error or "binary body", None)

    def _fast(self, text: bytes, where: tuple, key: str | None, user: str | None, out: dict[str, list]) -> None:
        """A complete-looking array nobody needs to look inside: DuckDB explodes it."""
        if key is None or (where[0] == "s2c" and b"/meta/handshake" in text):
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

    def _stage(self, out: dict[str, list], text: bytes, pos0: int, where: tuple,
               key: str | None, user: str | None) -> None:
        direction, ts_us, ex_id, flow_id, frame_index, transport = where
        rows = out["_bayeux_bodies"]
        rows.append((len(rows), pos0, ts_us, direction, transport, ex_id, flow_id, frame_index, user, key, text))

    def _parsed(self, parsed: Any, text: bytes | str, where: tuple, key: str | None, user: str | None,
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
        self._observe(items, where[0], text, key, user)
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

    def _recovered(self, msgs: list, err: str | None, rest: str | None, where: tuple, key: str | None,
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

    def _error_row(self, out: dict[str, list], where: tuple, pos: int, key: str | None, user: str | None,
                   err: str, raw: str | None) -> None:
        direction, ts_us, ex_id, flow_id, frame_index, transport = where
        out["bayeux_messages"].append((None, ts_us, direction, transport, ex_id, flow_id, frame_index, pos)
                                      + (None,) * 22 + (user, key, err[:500], raw))

    # ---------------------------------------------------------------- websocket
    def ws_frame(self, rec: WsFrameRecord, out: dict[str, list]) -> None:
        ex_id, key, user, _ = self.ws_flows.get(rec.flow_id, (self.flow_exchange.get(rec.flow_id), None, None, None))
        direction = "c2s" if rec.from_client else "s2c"
        where = (direction, _us(rec.ts), ex_id, rec.flow_id, rec.index, "websocket")
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
        out["websocket_frames"].append((
            fid, rec.flow_id, ex_id, rec.index, _us(rec.ts), direction, "text" if rec.is_text else "binary",
            len(content), stored, stored_enc, truncated, parse_error, rec.dropped, rec.injected,
        ))

    def ws_end(self, rec: WsEndRecord, out: dict[str, list]) -> None:
        ex_id, _, _, ts_up = self.ws_flows.pop(rec.flow_id, (self.flow_exchange.get(rec.flow_id), None, None, None))
        out["websocket_connections"].append((
            rec.flow_id, ex_id, _us(rec.ts_start or ts_up), _us(rec.ts_end), rec.frames, rec.closed_by_client,
            rec.close_code, rec.close_reason, rec.error,
        ))

    def error(self, rec: ErrorRecord, out: dict[str, list]) -> None:
        out["capture_errors"].append((_us(rec.ts or time.time()), rec.kind, rec.flow_id, rec.count, rec.error[:2000]))
