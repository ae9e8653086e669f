"""Forgiving JSON reader for samples printed in PDF-to-text API references.

The vendor's samples are JSON as a human typed it and a PDF converter wrapped
it: trailing or missing commas, "..." placeholders, Python dict reprs
(single quotes, u'' prefixes, True/None), strings wrapped mid-URL, comments,
objects cut off at a page end.  This reader accepts those, and records every
liberty it took as a repair naming the reference line, so a fixture says
exactly how far it is from the printed text.  Anything else (prose where a
value should be, unbalanced garbage) raises SampleError with a reason.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

__all__ = ["SampleError", "Parsed", "parse_value"]

_ELLIPSIS = re.compile(r"\.\.\.|\u2026")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_WORD = re.compile(r"[A-Za-z_$][A-Za-z0-9_$\-]*")
_KEY_AHEAD = re.compile(r"u?[\"'][^\"'\n]*[\"']\s*:")
_LITERALS = {"true": True, "false": False, "null": None}
_PY_LITERALS = {"True": True, "False": False, "None": None}
_NO_SPACE_BEFORE_WRAP = set("/-_.:=?&@#%+,")


class SampleError(ValueError):
    """The text at a sample position is not JSON even after repairs."""

    def __init__(self, reason: str, line: int):
        super().__init__(f"line {line}: {reason}")
        self.reason = reason
        self.line = line


@dataclass
class Parsed:
    value: object
    end_index: int          # index into `lines` of the line holding the end
    end_col: int            # column just after the value on that line
    repairs: list[str] = field(default_factory=list)


class _Reader:
    def __init__(self, lines: list[tuple[int, str]], start: int):
        self.numbers = [n for n, _ in lines]
        self.starts: list[int] = []
        parts = []
        pos = 0
        for _, text in lines:
            self.starts.append(pos)
            parts.append(text)
            pos += len(text) + 1
        self.text = "\n".join(parts)
        self.pos = self.starts[start]
        self.repairs: list[str] = []
        self._seen: set[str] = set()

    # -- positions -------------------------------------------------------
    def index_of(self, pos: int) -> int:
        return bisect.bisect_right(self.starts, pos) - 1

    def line_of(self, pos: int) -> int:
        return self.numbers[self.index_of(min(pos, len(self.text) - 1 if self.text else 0))]

    def repair(self, what: str, pos: int | None = None, once: bool = False) -> None:
        if once:
            if what in self._seen:
                return
            self._seen.add(what)
        line = self.line_of(self.pos if pos is None else pos)
        self.repairs.append(f"L{line}: {what}")

    def fail(self, reason: str, pos: int | None = None) -> SampleError:
        return SampleError(reason, self.line_of(self.pos if pos is None else pos))

    # -- lexing ----------------------------------------------------------
    def skip_ws(self) -> None:
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch in " \t\r\n\u00a0":
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.repair("removed // comment")
                self.pos = len(text) if end < 0 else end
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.fail("unterminated /* comment")
                self.repair("removed /* */ comment")
                self.pos = end + 2
            else:
                return

    def peek(self) -> str:
        self.skip_ws()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def at_ellipsis(self) -> bool:
        self.skip_ws()
        return bool(_ELLIPSIS.match(self.text, self.pos))

    def take_ellipsis(self, what: str) -> None:
        m = _ELLIPSIS.match(self.text, self.pos)
        self.repair(f"removed '...' placeholder {what}")
        self.pos = m.end()

    def string(self) -> str:
        text = self.text
        if text[self.pos] in "uU" and self.pos + 1 < len(text) and text[self.pos + 1] in "'\"":
            self.repair("dropped Python u'' string prefix", once=True)
            self.pos += 1
        quote = text[self.pos]
        if quote == "'":
            self.repair("read single-quoted (Python repr) strings", once=True)
        start = self.pos
        self.pos += 1
        out: list[str] = []
        wraps = 0
        while True:
            if self.pos >= len(text):
                raise self.fail("unterminated string", start)
            ch = text[self.pos]
            if ch == quote:
                self.pos += 1
                return "".join(out)
            if ch == "\\" and self.pos + 1 < len(text) and text[self.pos + 1] != "\n":
                esc = text[self.pos + 1]
                simple = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/", "\\": "\\", '"': '"', "'": "'"}
                if esc in simple:
                    out.append(simple[esc])
                    self.pos += 2
                elif esc == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[self.pos + 2:self.pos + 6]):
                    out.append(chr(int(text[self.pos + 2:self.pos + 6], 16)))
                    self.pos += 6
                else:
                    out.append(esc)
                    self.pos += 2
                continue
            if ch == "\n":
                wraps += 1
                nxt = self.pos + 1
                while nxt < len(text) and text[nxt] in " \t\n":
                    nxt += 1
                rest = text[nxt:text.find("\n", nxt) if text.find("\n", nxt) >= 0 else len(text)]
                if wraps > 3 or quote not in rest or re.match(r"\s*[\"'][^\"']*[\"']\s*:", rest):
                    if out and out[-1] == "," and wraps == 1:
                        self.repair("closed a string missing its end quote before ','", start)
                        self.pos -= 1
                        return "".join(out[:-1])
                    raise self.fail("unterminated string", start)
                while out and out[-1] in " \t":
                    out.pop()
                sofar = "".join(out)
                space = bool(sofar) and sofar[-1] not in _NO_SPACE_BEFORE_WRAP and " " in sofar \
                    and nxt < len(text) and not text[nxt].isdigit()
                self.repair("joined string wrapped at line end" + (" (with a space)" if space else ""))
                if space:
                    out.append(" ")
                self.pos = nxt
                continue
            out.append(ch)
            self.pos += 1

    def key(self) -> str:
        ch = self.peek()
        if ch in "'\"" or (ch in "uU" and self.text[self.pos + 1:self.pos + 2] in ("'", '"')):
            return self.string()
        m = _WORD.match(self.text, self.pos)
        if m and re.match(r"\s*:", self.text[m.end():]):
            self.repair("quoted bare key")
            self.pos = m.end()
            return m.group(0)
        raise self.fail(f"expected a key, found {self.snippet()!r}")

    def snippet(self) -> str:
        return self.text[self.pos:self.pos + 30].split("\n")[0]

    # -- grammar ---------------------------------------------------------
    def value(self, depth: int = 0):
        if depth > 60:
            raise self.fail("nesting too deep")
        ch = self.peek()
        if ch == "{":
            return self.obj(depth)
        if ch == "[":
            return self.arr(depth)
        if ch in "'\"" or (ch in "uU" and self.text[self.pos + 1:self.pos + 2] in ("'", '"')):
            return self.string()
        m = _NUMBER.match(self.text, self.pos)
        if m and self.text[m.end():m.end() + 1] == "L" and not _WORD.match(self.text, m.end() + 1):
            self.repair("read Python long literal (dropped the L)")
            self.pos = m.end() + 1
            return int(m.group(0))
        if m and not _WORD.match(self.text, m.end()):
            self.pos = m.end()
            num = m.group(0)
            return float(num) if any(c in num for c in ".eE") else int(num)
        m = _WORD.match(self.text, self.pos)
        if m and m.group(0) in _LITERALS:
            self.pos = m.end()
            return _LITERALS[m.group(0)]
        if m and m.group(0) in _PY_LITERALS:
            self.repair(f"read Python literal {m.group(0)}")
            self.pos = m.end()
            return _PY_LITERALS[m.group(0)]
        if m and m.group(0) == "u" and re.match(r"\s*[,}\]]", self.text[m.end():]):
            self.repair("read a bare u (Python u'' printed without quotes) as an empty string")
            self.pos = m.end()
            return ""
        p = re.match(r"<[A-Za-z_][\w ]*>", self.text[self.pos:])
        if p:
            self.repair(f"quoted placeholder {p.group(0)}")
            self.pos += p.end()
            return p.group(0)
        if not ch:
            raise self.fail("text ends where a value should be")
        raise self.fail(f"not a JSON value: {self.snippet()!r}")

    def _close_truncated(self, kind: str, opened: int) -> bool:
        if self.pos >= len(self.text):
            self.repair(f"closed truncated {kind} opened at line {self.line_of(opened)}", len(self.text) - 1)
            return True
        return False

    def obj(self, depth: int) -> dict:
        opened = self.pos
        self.pos += 1
        out: dict = {}
        while True:
            ch = self.peek()
            if self._close_truncated("object", opened):
                return out
            if ch == "}":
                self.pos += 1
                return out
            if ch == "]":
                self.repair("read ']' closing an object as '}'")
                self.pos += 1
                return out
            if self.at_ellipsis():
                self.take_ellipsis("member")
                if self.peek() == ",":
                    self.pos += 1
                continue
            k = self.key()
            if self.peek() != ":":
                if self._close_truncated("object", opened):
                    return out
                raise self.fail(f"expected ':' after key {k!r}, found {self.snippet()!r}")
            self.pos += 1
            if self.at_ellipsis():
                self.take_ellipsis(f"value of {k!r} (member dropped)")
            elif self._close_truncated("object", opened):
                self.repair(f"dropped key {k!r} cut off before its value")
                return out
            else:
                if k in out:
                    self.repair(f"duplicate key {k!r}: kept the last")
                out[k] = self.value(depth + 1)
            ch = self.peek()
            if ch == ",":
                self.pos += 1
                if self.peek() == "}":
                    self.repair("removed trailing comma")
            elif ch in "}]" or self._close_truncated("object", opened):
                continue
            elif ch in "'\"uU" or _WORD.match(self.text, self.pos) or self.at_ellipsis():
                self.repair("inserted missing comma")
            else:
                raise self.fail(f"expected ',' or '}}' in object, found {self.snippet()!r}")

    def arr(self, depth: int) -> list:
        opened = self.pos
        self.pos += 1
        out: list = []
        while True:
            ch = self.peek()
            if self._close_truncated("array", opened):
                return out
            if ch == "]":
                self.pos += 1
                return out
            if ch == "}":
                self.repair("read '}' closing an array as ']'")
                self.pos += 1
                return out
            if out and _KEY_AHEAD.match(self.text, self.pos):
                self.repair(f"inserted the missing ']' of the array opened at line {self.line_of(opened)}")
                return out
            if self.at_ellipsis():
                self.take_ellipsis("element")
            else:
                out.append(self.value(depth + 1))
            ch = self.peek()
            if ch == ",":
                self.pos += 1
                if self.peek() == "]":
                    self.repair("removed trailing comma")
            elif ch in "]}" or self._close_truncated("array", opened) or _KEY_AHEAD.match(self.text, self.pos):
                continue
            elif ch in "{[\"'" or self.at_ellipsis():
                self.repair("inserted missing comma")
            else:
                raise self.fail(f"expected ',' or ']' in array, found {self.snippet()!r}")


def parse_value(lines: list[tuple[int, str]], start: int) -> Parsed:
    """Read one JSON value beginning on lines[start]; lines are (line number, text)."""
    reader = _Reader(lines, start)
    value = reader.value()
    end = max(reader.pos - 1, 0)
    index = reader.index_of(end)
    return Parsed(value, index, reader.pos - reader.starts[index], reader.repairs)
