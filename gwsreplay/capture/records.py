"""Raw capture records and body decoding (no I/O, no mitmproxy).

The proxy addon, the HAR importer and the mitm-file importer all produce the same
raw records; ``gwsreplay.capture.rows.RowBuilder`` turns them into table rows, with
the helpers here: content-encodings undone, JSON parsed and redacted, bodies capped
(:func:`make_body`).

The conversion runs on the writer thread, never on mitmproxy's event loop.
"""

from __future__ import annotations

import base64
import io
import json
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

import brotli
import zstandard

from gwsreplay.capture.redact import Redactor

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
class LateErrorRecord:
    """An error that came after the exchange was recorded (the client abandoned the response):
    appended to that exchange's ``error``."""

    flow_id: str
    error: str
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


def us(ts: float | None) -> int | None:
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


def _inflate(data: bytes, wbits: int, limit: int) -> tuple[bytes, bool]:
    d = zlib.decompressobj(wbits)
    out = d.decompress(data, limit)
    return out, bool(d.unconsumed_tail)


def _unbrotli(data: bytes, limit: int) -> tuple[bytes, bool]:
    """Brotli in small input steps: one step yields at most a few MiB, so a bomb stops at
    ``limit`` (+ one step) instead of expanding whole (brotli 1.1 has no output cap)."""
    dec = brotli.Decompressor()
    out = bytearray()
    for i in range(0, len(data), _BR_STEP):
        out += dec.process(data[i:i + _BR_STEP])
        if len(out) > limit:
            del out[limit:]
            return bytes(out), True
    return bytes(out), False


def _unzstd(data: bytes, limit: int) -> tuple[bytes, bool]:
    """zstd through a stream reader read in bounded pieces (never the whole frame at once)."""
    out = bytearray()
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True) as reader:
        while len(out) <= limit:
            piece = reader.read(min(1 << 20, limit + 1 - len(out)))
            if not piece:
                return bytes(out), False
            out += piece
    del out[limit:]
    return bytes(out), True


_BR_STEP = 16


def decode_content(raw: bytes, encoding: str | None, limit: int = DECODE_LIMIT) -> tuple[bytes, str | None, bool]:
    """Undo Content-Encoding. Returns (decoded, error, cut_at_limit); on error the raw bytes.

    Every decoder streams with a bounded output: at most ``limit`` bytes (plus one small
    step) are ever produced, whatever the compression ratio (decompression bombs)."""
    if not raw or not encoding:
        return raw, None, False
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
    data = raw
    cut = False
    for coding in reversed(codings):
        try:
            if coding in ("identity", "none"):
                continue
            if coding in ("gzip", "x-gzip"):
                data, c = _inflate(data, 16 + zlib.MAX_WBITS, limit)
            elif coding == "deflate":
                try:
                    data, c = _inflate(data, zlib.MAX_WBITS, limit)
                except zlib.error:
                    data, c = _inflate(data, -zlib.MAX_WBITS, limit)
            elif coding == "br":
                data, c = _unbrotli(data, limit)
            elif coding == "zstd":
                data, c = _unzstd(data, limit)
            else:
                return raw, f"unknown content-encoding {coding!r}", False
            cut = cut or c
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
