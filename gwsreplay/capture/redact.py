"""Redaction of secrets before anything reaches the capture file.

Defaults (``Redactor()``):

* ``Authorization: Basic ...`` keeps the user name and drops the password:
  ``Basic agent1:<redacted>``. Other schemes keep the scheme and hash the credentials.
* ``Cookie`` / ``Set-Cookie`` values, ``X-CSRF-TOKEN`` and any extra header named in
  ``headers`` become keyed hashes ``hmac:<16 hex>``. The HMAC key is random per
  Redactor (per capture), held in memory only and never written anywhere, so the same
  cookie or token hashes to the same value within one capture (sessions still
  correlate) and cannot be brute-forced from the file afterwards.
* JSON body fields named ``password`` / ``agentLoginPassword`` (at any depth, case-
  insensitive) and user-added JSON paths are replaced by ``"<redacted>"``; the same
  names are masked in query strings, form bodies and in text that failed to parse.

``Redactor(enabled=False)`` is the explicit opt-out: headers and bodies are kept
verbatim (session keys are still derived, as hashes, for grouping).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from typing import Any, Iterable
from urllib.parse import parse_qsl, urlencode

MASK = "<redacted>"
DEFAULT_BODY_FIELDS = ("password", "agentLoginPassword")
#: any field, query parameter or header whose name contains one of these is a secret too
SECRET_NAME_PARTS = ("password", "passwd", "passw", "token", "secret", "apikey", "api-key", "api_key")
_SECRET_PART_RE = "|".join(re.escape(x) for x in SECRET_NAME_PARTS)
# headers whose value is a URL (its query may carry ?password=...)
URL_HEADERS = ("referer", "location", "content-location", "origin", "link")
DEFAULT_HASH_HEADERS = ("x-csrf-token",)
SESSION_COOKIES = ("jsessionid",)


class Redactor:
    def __init__(
        self,
        enabled: bool = True,
        *,
        headers: Iterable[str] = (),
        json_paths: Iterable[str] = (),
        body_fields: Iterable[str] = DEFAULT_BODY_FIELDS,
        key: bytes | None = None,
    ) -> None:
        self.enabled = enabled
        self._key = key if key is not None else os.urandom(32)
        self.hash_headers = {h.lower() for h in DEFAULT_HASH_HEADERS} | {h.strip().lower() for h in headers if h.strip()}
        self.field_names = {f.lower() for f in body_fields}
        self.paths: list[list[str]] = []
        for p in json_paths:
            parts = _parse_path(p)
            if len(parts) == 1 and parts[0] != "*":
                self.field_names.add(parts[0].lower())     # a bare name: match at any depth
            elif parts:
                self.paths.append(parts)
        names = "|".join(re.escape(n) for n in sorted(self.field_names, key=len, reverse=True))
        names = f"{names}|[\\w.-]*(?:{_SECRET_PART_RE})[\\w.-]*" if names else f"[\\w.-]*(?:{_SECRET_PART_RE})[\\w.-]*"
        # "name" : "value"   (JSON text that did not parse, e.g. truncated)
        self._text_re = re.compile(
            r'("(?i:%s)"\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}\]\s]+)' % names)
        # name=value in forms / query strings
        self._form_re = re.compile(r'(?i)(^|[&;?\s])(%s)=([^&;\s]*)' % names)
        # multipart/form-data: the value of a part named like a secret
        self._multipart_re = re.compile(
            r'(?i)(content-disposition:[^\r\n]*\bname="?(?:%s)"?[^\r\n]*\r?\n(?:[^\r\n]+\r?\n)*\r?\n)([^\r\n]*)'
            % names)
        # pre-check needles: a name that contains another one adds nothing ("agentloginpassword");
        # a \\u escape may hide a name (passw\\u006frd): such bodies are parsed and checked by key
        needles = {n.encode() for n in self.field_names} | {x.encode() for x in SECRET_NAME_PARTS} | {b"\\u"}
        self._needles = tuple(n for n in needles if not any(m != n and m in n for m in needles))
        self._hashes: dict[bytes, str] = {}    # the same cookies and tokens come back on every request

    # ------------------------------------------------------------------ hashing
    def hash(self, value: str | bytes) -> str:
        """Keyed hash of a secret: stable within this Redactor, useless without its key."""
        if isinstance(value, str):
            value = value.encode("utf-8", "surrogateescape")
        h = self._hashes.get(value)
        if h is None:
            if len(self._hashes) >= 10_000:
                self._hashes.clear()
            h = self._hashes[value] = "hmac:" + hmac.new(self._key, value, hashlib.sha256).hexdigest()[:16]
        return h

    # ------------------------------------------------------------------ headers
    def header(self, name: str, value: str) -> str:
        if not self.enabled:
            return value
        n = name.lower()
        if n in ("authorization", "proxy-authorization"):
            return self._authorization(value)
        if n == "cookie":
            return "; ".join(self._cookie_pair(p) for p in value.split(";") if p.strip())
        if n == "set-cookie":      # also folded: "a=1; Path=/, JSESSIONID=...; HttpOnly"
            out = []
            for one in split_set_cookie(value):
                first, sep, attrs = one.partition(";")
                out.append(self._cookie_pair(first) + (sep + attrs if sep else ""))
            return ", ".join(out)
        if n in self.hash_headers or is_secret_name(n):
            return self.hash(value.strip())
        if n in URL_HEADERS and "?" in value:
            base, _, q = value.partition("?")
            frag = ""
            if "#" in q:
                q, _, frag = q.partition("#")
                frag = "#" + frag
            return f"{base}?{self.query(q)}{frag}"
        return value

    def headers(self, fields: Iterable[tuple[str, str]]) -> list[list[str]]:
        return [[k, self.header(k, v)] for k, v in fields]

    def _cookie_pair(self, pair: str) -> str:
        k, eq, v = pair.strip().partition("=")
        if not eq:
            return self.hash(k)
        return f"{k}={self.hash(v)}"

    def _authorization(self, value: str) -> str:
        scheme, _, cred = value.strip().partition(" ")
        if scheme.lower() == "basic":
            user = basic_user(value)
            return f"Basic {user}:{MASK}" if user is not None else f"Basic {self.hash(cred)}"
        return f"{scheme} {self.hash(cred)}" if cred else self.hash(scheme)

    # ------------------------------------------------------------------ bodies
    def might_contain(self, raw: bytes) -> bool:
        """Cheap pre-check: could this body hold a field to mask?"""
        if not self.enabled:
            return False
        if self.paths:
            return True
        low = raw.lower()
        return any(n in low for n in self._needles)

    def json(self, obj: Any) -> tuple[Any, bool]:
        """Mask fields in parsed JSON in place; returns (obj, changed)."""
        if not self.enabled:
            return obj, False
        changed = [False]
        obj = self._walk(obj, changed)
        for parts in self.paths:
            obj = _apply_path(obj, parts, changed)
        return obj, changed[0]

    def _walk(self, obj: Any, changed: list[bool]) -> Any:
        if isinstance(obj, dict):
            for k in list(obj):
                v = obj[k]
                if isinstance(k, str) and self.is_secret_field(k) and v not in (None, "", MASK):
                    obj[k] = MASK
                    changed[0] = True
                elif isinstance(v, (dict, list)):
                    self._walk(v, changed)
        elif isinstance(obj, list):
            for v in obj:
                if isinstance(v, (dict, list)):
                    self._walk(v, changed)
        return obj

    def text(self, text: str) -> str:
        """Mask ``"password": "..."`` and ``password=...`` in text that is not valid JSON."""
        if not self.enabled:
            return text
        text = self._text_re.sub(lambda m: m.group(1) + '"' + MASK + '"', text)
        text = self._form_re.sub(lambda m: f"{m.group(1)}{m.group(2)}={MASK}", text)
        if "name=" in text:
            text = self._multipart_re.sub(lambda m: m.group(1) + MASK, text)
        return text

    def is_secret_field(self, name: str) -> bool:
        low = name.lower()
        return low in self.field_names or is_secret_name(low)

    def query(self, query: str) -> str:
        if not self.enabled or not query:
            return query
        pairs = parse_qsl(query, keep_blank_values=True)
        if not any(self.is_secret_field(k) for k, _ in pairs):
            return query
        return urlencode([(k, MASK if self.is_secret_field(k) else v) for k, v in pairs])

    def config(self) -> dict[str, Any]:
        """What is redacted (never the key), for the meta table."""
        return {
            "enabled": self.enabled,
            "hash_headers": sorted(self.hash_headers),
            "body_fields": sorted(self.field_names),
            "json_paths": ["$." + ".".join(p) for p in self.paths],
        }


def basic_user(value: str | None) -> str | None:
    """The user name of a Basic Authorization header value (None if not Basic/undecodable)."""
    if not value:
        return None
    scheme, _, cred = value.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    cred = cred.strip()
    if ":" in cred and cred.endswith(MASK):   # already redacted form
        return cred.rsplit(":", 1)[0]
    try:
        raw = base64.b64decode(cred + "=" * (-len(cred) % 4), validate=False)
    except (binascii.Error, ValueError):
        return None
    text = raw.decode("utf-8", "replace")
    if ":" not in text:         # not user:password: the whole credential is a secret, no user name
        return None
    return text.split(":", 1)[0]


_FOLDED_COOKIES = re.compile(r",\s*(?=[^;,=\s]+=)")


def split_set_cookie(value: str) -> list[str]:
    """The cookies of a Set-Cookie value, also when several were folded into one with commas."""
    return _FOLDED_COOKIES.split(value)


def is_secret_name(name: str) -> bool:
    """A field or header name that says it holds a secret (*password*, *token*, *secret*...)."""
    low = name.lower()
    return any(part in low for part in SECRET_NAME_PARTS)


def cookie_value(header_value: str, name: str) -> str | None:
    """Value of cookie ``name`` (case-insensitive) in a Cookie or Set-Cookie header value."""
    name = name.lower()
    for part in header_value.split(";"):
        k, eq, v = part.strip().partition("=")
        if eq and k.strip().lower() == name:
            return v.strip()
    return None


def _parse_path(p: str) -> list[str]:
    p = p.strip()
    if p.startswith("$"):
        p = p[1:]
    p = p.replace("[*]", ".*").replace("[]", ".*")
    return [s for s in re.split(r"\.", p) if s]


def _apply_path(obj: Any, parts: list[str], changed: list[bool]) -> Any:
    if not parts:
        return obj
    head, rest = parts[0], parts[1:]
    if head == "*":
        items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
        for k, v in list(items):
            if not rest:
                obj[k] = MASK
                changed[0] = True
            else:
                _apply_path(v, rest, changed)
        return obj
    if isinstance(obj, dict) and head in obj:
        if not rest:
            obj[head] = MASK
            changed[0] = True
        else:
            _apply_path(obj[head], rest, changed)
    elif isinstance(obj, list):
        # a path applies to each element of an array it meets (Bayeux arrays, lists of objects)
        for v in obj:
            _apply_path(v, parts, changed)
    return obj
