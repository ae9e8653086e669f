"""Extract the vendor's sample requests, responses and notifications into fixtures.

The GWS API references (PDF converted to text, in ../shared/gws-reference
relative to the repository root, or $GWS_REFERENCE_DIR) are the source; the
fixtures tests/vendor/corpus-8.6.json and corpus-8.5.2.json are regenerated
from them byte for byte by running this script.  Every sample keeps the line
range it came from and the list of repairs the lenient reader needed; what
cannot be read is listed under "unparsed" with a reason, and every code block
that is not a sample (JavaScript, YAML, curl...) under "skipped_blocks".
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lenient_json import SampleError, parse_value

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SOURCES = {  # file -> (version, short id prefix, fixture)
    "gws-8.6-api-reference.txt": ("8.6", "gws86", "corpus-8.6.json"),
    "StartContactCenterSession.txt": ("8.6", "sccs", "corpus-8.6.json"),
    "InitiateIMSession.txt": ("8.6", "imss", "corpus-8.6.json"),
    "gws-8.5.2-api-reference.txt": ("8.5.2", "gws852", "corpus-8.5.2.json"),
}
METHOD_LINE = re.compile(r"^\s*(GET|POST|PUT|DELETE|PATCH)\s+(\S+)\s*(.*)$")
OP_PART = re.compile(r"^This (?:operation|resource|feature)? ?is part of the \[([^\]]+)\]")
TABLE_URL = re.compile(r"^(?:<b>)?Request UR[LI](?:</b>)?\t(.+)$", re.I)
TABLE_METHOD = re.compile(r"^(?:<b>)?HTTP method(?:</b>)?\t\s*([A-Z]+)", re.I)
SAMPLE_BREAK = re.compile(r"^(?:#+\s*)?(?:\*\*)?(?:\[\+\].*|(?:Samples?|Examples?)\b[^.]{0,30})$", re.I)
TAGS = re.compile(r"</?(?:b|code|i)>")
CLOSER_LINE = re.compile(r"^\s*[}\]],?\s*$")
CURLY = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})
FRAGMENT = re.compile(r"""^\s*(?:u?["'][^"']*["']\s*:|[}\]])""")


def reference_dir() -> Path:
    return Path(os.environ.get("GWS_REFERENCE_DIR") or REPO.parent / "shared" / "gws-reference")


def heading_text(line: str) -> str:
    text = TAGS.sub("", line.strip()).strip()
    text = re.sub(r"^#+\s*", "", text)
    text = re.sub(r"^\[\+\]\s*", "", text)
    return text.strip("* ").strip()


def toc_titles(lines: list[str]) -> tuple[set[str], int]:
    """Titles listed in the table of contents, and the line where the TOC ends."""
    titles, last = set(), 0
    for n, line in enumerate(lines[:600], 1):
        m = re.match(r"^(.+?)\t(?:<b>)?\d+(?:</b>)?$", line)
        if m:
            titles.add(heading_text(m.group(1)))
            last = n
    return titles, last


@dataclass
class Context:
    section: str = ""
    api: str = ""
    url_template: str = ""
    table_method: str = ""
    label: str = ""
    group: int = 0          # bumps at each section / "Sample N" heading


@dataclass
class Fence:
    first: int               # line number of the opening ```
    last: int                # line number of the closing ```
    ctx: Context
    joined_to_previous: bool = False   # only blank / page-break lines between


@dataclass
class Sample:
    record: dict
    group: int
    repairs: list[str] = field(default_factory=list)


def scan_context(lines: list[str]) -> list[Fence]:
    """Walk the text outside code blocks, snapshotting the context at each block."""
    titles, toc_end = toc_titles(lines)
    ctx = Context()
    fences: list[Fence] = []
    opened = None
    gap_clean = False
    for n, line in enumerate(lines, 1):
        if line == "```":
            if opened is None:
                opened = n
            else:
                fence = Fence(opened, n, Context(**vars(ctx)), joined_to_previous=bool(fences) and gap_clean)
                fences.append(fence)
                opened, gap_clean = None, True
            continue
        if opened is not None:
            continue
        text = line.strip()
        if not text:
            continue
        if text.strip("- |") == "":     # page-break rule lines of the 8.5.2 conversion
            continue
        gap_clean = False
        head = heading_text(line)
        following = [heading_text(s) for s in lines[n:n + 8] if s.strip()][:2] + ["", ""]
        part = OP_PART.match(following[1] if following[0] == head else following[0])
        if n > toc_end and (head in titles or part) and len(head) < 90 and not line.startswith(("\t", " ")) \
                and "\t" not in line:
            ctx.section = head
            ctx.group += 1
            ctx.url_template = ctx.table_method = ""
            if part:
                ctx.api = part.group(1)
            elif head.endswith("API"):
                ctx.api = head
        elif SAMPLE_BREAK.match(text):
            ctx.group += 1
        m = TABLE_URL.match(text)
        if m:
            ctx.url_template = TAGS.sub("", m.group(1)).strip()
        m = TABLE_METHOD.match(text)
        if m:
            ctx.table_method = m.group(1).upper()
        ctx.label = text[:160]
    return fences


def runs_of(fences: list[Fence]) -> list[list[Fence]]:
    runs: list[list[Fence]] = []
    for fence in fences:
        if runs and fence.joined_to_previous:
            runs[-1].append(fence)
        else:
            runs.append([fence])
    return runs


def classify(body, ctx_label: str, has_method: bool) -> str:
    label = ctx_label.lower()
    if has_method:
        return "request"
    if isinstance(body, dict):
        if "operationName" in body and "statusCode" not in body:
            return "request"
        data = body.get("data")
        if "messageType" in body or (isinstance(data, dict) and "messageType" in data):
            return "notification"
        if "statusCode" in body:
            return "response"
        if "notificationType" in body or ("referenceId" in body and len(body) <= 4):
            return "notification"
        if "channel" in body and ("data" in body or "successful" in body):
            return "notification"
    if isinstance(body, list) and body and all(isinstance(x, dict) and "channel" in x for x in body):
        return "notification"
    if "notification" in label or "cometd" in label:
        return "notification"
    if "request" in label:
        return "request"
    if "response" in label or METHOD_LINE.match(ctx_label):
        return "response"
    return "other"


def distinctive(body) -> str | None:
    """A short scalar of the body that the reference text must contain."""
    stack = [body]
    best = None
    while stack:
        cur = stack.pop(0)
        if isinstance(cur, dict):
            for key, val in cur.items():
                if isinstance(val, str) and 3 <= len(val) <= 40 and "\n" not in val:
                    return val
                if best is None and len(key) >= 3:
                    best = key
                stack.append(val)
        elif isinstance(cur, list):
            stack.extend(cur)
        elif isinstance(cur, str) and 3 <= len(cur) <= 40:
            return cur
    return best


class RunScanner:
    """Reads the samples out of one run of code blocks joined by page breaks."""

    def __init__(self, source: str, lines: list[str], run: list[Fence]):
        self.source, self.run = source, run
        self.content: list[tuple[int, str]] = []
        self.fence_of: list[int] = []
        self.line_repairs: dict[int, list[str]] = {}
        for k, fence in enumerate(run):
            for n in range(fence.first + 1, fence.last):
                self.content.append((n, self.clean(n, lines[n - 1])))
                self.fence_of.append(k)
        self.samples: list[Sample] = []
        self.unparsed: list[dict] = []
        self.skipped: list[tuple[int, int, str]] = []

    def clean(self, n: int, text: str) -> str:
        """Line-level typos of the conversion, each noted for the records that span the line."""
        notes = []
        curly = text.translate(CURLY)
        if curly != text:
            notes.append("replaced curly quotes")
        text = curly
        if re.search(r"[{\[,]\"\s*$", text) and text.count('"') % 2 == 1:
            text = text[:text.rstrip().rfind('"')]
            notes.append("removed a stray '\"' at the end of the line")
        fixed = re.sub(r"\bu>(?=\w[^'\n]*')", "u'", text)
        if fixed != text:
            notes.append("read the typo u> as u'")
            text = fixed
        if notes:
            self.line_repairs[n] = [f"L{n}: {note}" for note in notes]
        return text

    def fence_ctx(self, index: int) -> Context:
        return self.run[self.fence_of[index]].ctx

    def scan(self) -> None:
        i, pending = 0, None
        while i < len(self.content):
            n, text = self.content[i]
            stripped = text.strip()
            if not stripped:
                i += 1
                continue
            m = METHOD_LINE.match(text)
            if m and not stripped.startswith(("{", "[")):
                if pending:
                    self.emit_bodiless(pending)
                pending = (i, m.group(1), m.group(2))
                i += 1
                continue
            if stripped.startswith(("{", "[")):
                i = self.read_value(i, pending)
                pending = None
                continue
            if pending:
                self.emit_bodiless(pending)
                pending = None
            j = i
            while j + 1 < len(self.content) and not self.content[j + 1][1].strip().startswith(("{", "[")) \
                    and not METHOD_LINE.match(self.content[j + 1][1]):
                j += 1
            self.note_text(i, j)
            i = j + 1
        if pending:
            self.emit_bodiless(pending)

    def note_text(self, i: int, j: int) -> None:
        first, last = self.content[i][0], self.content[j][0]
        head = self.content[i][1].strip()
        if FRAGMENT.match(head) and not head.startswith(("}", "]")) and i == 0 and self.wrap_member(i, j):
            return
        if FRAGMENT.match(head):
            self.unparsed.append({"source": self.source, "line": first, "end_line": last,
                                  "reason": "fragment of a sample whose start is not in the text before it",
                                  "text": head[:80]})
            return
        self.skipped.append((first, last, guess_language(self.content[i:j + 1])))

    def wrap_member(self, i: int, j: int) -> bool:
        """A block printing only '"key": value' (e.g. a userData property): read it as {key: value}."""
        n0, n1 = self.content[i][0], self.content[j][0]
        lines = [(n0, "{")] + self.content[i:j + 1] + [(n1, "}")]
        parsed, _ = self.try_parse(lines, 0)
        if parsed is None or parsed.end_index != len(lines) - 1:
            return False
        ctx = self.fence_ctx(i)
        rec = self.base(ctx, n0, n1, classify(parsed.value, ctx.label, False))
        rec["body"] = parsed.value
        rec["repairs"] = [f"L{n0}: wrapped a bare '\"key\": value' block in an object"] + \
            sorted(set(r for r in parsed.repairs if "truncated" not in r), key=repair_key)
        if any("truncated" in r for r in parsed.repairs):
            return False
        self.samples.append(Sample(rec, ctx.group))
        return True

    def emit_bodiless(self, pending) -> None:
        i, method, url = pending
        ctx = self.fence_ctx(i)
        rec = self.base(ctx, self.content[i][0], self.content[i][0], "request")
        rec.update(method=method, path=norm_path(url), body=None, repairs=[])
        self.samples.append(Sample(rec, ctx.group))

    def base(self, ctx: Context, first: int, last: int, kind: str) -> dict:
        return {"source": self.source, "line": first, "end_line": last, "kind": kind,
                "section": ctx.section, "api": ctx.api, "label": ctx.label}

    def try_parse(self, content, start):
        try:
            return parse_value(content, start), None
        except SampleError as exc:
            return None, exc

    def limit(self, i: int) -> int:
        """End of the text a value starting at i may extend into: the next block that starts a sample."""
        for k in range(i + 1, len(self.content)):
            if self.fence_of[k] != self.fence_of[k - 1]:
                first = next((t for _, t in self.content[k:] if t.strip()), "")
                before = next((t.rstrip() for _, t in reversed(self.content[:k]) if t.strip()), "")
                if METHOD_LINE.match(first) or (re.match(r"^[{\[]", first) and not before.endswith(("[", ","))):
                    return k
        return len(self.content)

    def read_value(self, i: int, pending) -> int:
        content = self.content[:self.limit(i)]
        parsed, err = self.try_parse(content, i)
        extra: list[str] = []
        if parsed is None:
            # a cut-off sample followed by a different one: read the first block alone
            own = [k for k in range(len(self.content)) if self.fence_of[k] == self.fence_of[i]]
            alone = self.content[:min(own[-1] + 1, len(content))]
            retry, _ = self.try_parse(alone, i)
            if retry is not None and any("closed truncated" in r for r in retry.repairs):
                parsed = retry
        else:
            reopened = self.reopen(i, parsed, content)
            if reopened:
                parsed, content, extra = reopened
        if parsed is not None and parsed.value in ({}, []) and any("closed truncated" in r for r in parsed.repairs):
            parsed, err = None, SampleError("cut off before any content", self.content[i][0])
        if parsed is None:
            end = self.limit(i)
            own = [(n, t) for k, (n, t) in enumerate(self.content) if self.fence_of[k] == self.fence_of[i]]
            language = guess_language(own)
            if language in ("JavaScript", "Python", "HTML", "INI"):
                self.skipped.append((self.content[i][0], self.content[end - 1][0], language))
                return end
            self.unparsed.append({"source": self.source, "line": self.content[i][0],
                                  "end_line": self.content[end - 1][0], "reason": err.reason,
                                  "at_line": err.line})
            return end
        first = self.content[i][0]
        last = content[parsed.end_index][0]
        fences = {self.fence_of[k] for k in range(len(self.content))
                  if first <= self.content[k][0] <= last}
        repairs = list(extra)
        if len(fences) > 1 and not extra:
            ordered = sorted(fences)
            for a, b in zip(ordered, ordered[1:]):
                repairs.append(f"L{self.run[a].last}-{self.run[b].first}: joined the sample across a page break")
        repairs += parsed.repairs
        for n in range(first, last + 1):
            repairs += self.line_repairs.get(n, [])
        ctx = self.fence_ctx(i)
        body = parsed.value
        kind = classify(body, ctx.label, pending is not None)
        rec = self.base(ctx, first, last, kind)
        if pending:
            rec["request_line"] = self.content[pending[0]][0]
            rec["method"], rec["path"] = pending[1], norm_path(pending[2])
        if kind == "request":
            if "method" not in rec and ctx.table_method:
                rec["method"] = ctx.table_method
                rec["method_from"] = "operation table"
            if ctx.url_template:
                rec["url_template"] = ctx.url_template
        if isinstance(body, dict) and isinstance(body.get("operationName"), str):
            rec["operationName"] = body["operationName"]
        rec["body"] = body
        resume = self.resume_index(content, parsed)
        extra_closers = []
        while resume < len(self.content) \
                and (CLOSER_LINE.match(self.content[resume][1]) or not self.content[resume][1].strip()):
            if self.content[resume][1].strip():
                extra_closers.append(self.content[resume][0])
            resume += 1
        if extra_closers:
            repairs.append(f"L{extra_closers[0]}: ignored extra closing line(s) "
                           + ", ".join(map(str, extra_closers)))
            rec["end_line"] = extra_closers[-1]
        rec["repairs"] = sorted(set(repairs), key=repair_key)
        self.samples.append(Sample(rec, ctx.group))
        return resume

    def resume_index(self, content, parsed) -> int:
        """Index in self.content of the first line after the value just read."""
        last_line = content[parsed.end_index][0]
        rest = content[parsed.end_index][1][parsed.end_col:].strip().lstrip(",").strip()
        k = next(k for k, (n, _) in enumerate(self.content) if n == last_line)
        if rest:
            # another value on the same line: keep what follows as its own line
            self.content[k] = (last_line, " " * (len(self.content[k][1]) - len(rest)) + rest)
            return k
        return k + 1

    def reopen(self, i: int, parsed, limited):
        """Object closed early at a page end and continued by a '"key": ...' fragment."""
        k_end = parsed.end_index
        tail = [k for k in range(k_end + 1, len(limited)) if self.content[k][1].strip()]
        if not tail or not FRAGMENT.match(self.content[tail[0]][1]):
            return None
        if CLOSER_LINE.match(self.content[tail[0]][1]) and self.fence_of[tail[0]] == self.fence_of[k_end]:
            return None
        cont = self.fence_of[tail[0]]
        cont_last = max(k for k in tail if self.fence_of[k] == cont)
        closers = []
        for k in range(k_end, i - 1, -1):
            if CLOSER_LINE.match(self.content[k][1]):
                closers.append(k)
            elif self.content[k][1].strip():
                break
        leading = []
        for k in tail:
            if self.fence_of[k] != cont or cont == self.fence_of[k_end] or not CLOSER_LINE.match(self.content[k][1]):
                break
            leading.append(k)
        best = None
        for count in range(len(closers), 0, -1):
            for lead in ([], leading) if leading else ([],):
                dropped = set(closers[:count]) | set(lead)
                content = [c for k, c in enumerate(limited) if k not in dropped]
                retry, _ = self.try_parse(content, i)
                if retry is None:
                    continue
                rest = []
                for n, t in self.content[:cont_last + 1]:
                    if n <= content[retry.end_index][0] or not t.strip():
                        continue
                    if re.match(r"^[{\[]", t) or METHOD_LINE.match(t):
                        break
                    rest.append(t)
                if rest and not all(CLOSER_LINE.match(t) for t in rest):
                    continue
                score = (len(rest), len(retry.repairs), -count)
                if best is None or score < best[0]:
                    best = (score, retry, content, dropped)
        if best is None:
            return None
        _, retry, content, dropped = best
        lines = ", ".join(str(self.content[k][0]) for k in sorted(dropped))
        note = (f"L{self.content[k_end][0]}: page break closed the object early; dropped closing "
                f"line(s) {lines} and joined the continuation at line {self.content[tail[0]][0]}")
        return retry, content, [note]


def guess_language(chunk: list[tuple[int, str]]) -> str:
    text = "\n".join(t for _, t in chunk)
    checks = [("INI", r"^\[\w+\]\s*$"), ("curl command", r"\bcurl\b"), ("HTML", r"<(?:html|div|script|body|head)\b"),
              ("JavaScript", r"\b(?:function|var|const|let)\b|\$\(|=>"),
              ("Python", r"\b(?:def|import|print)\b"), ("HTTP status/headers", r"^HTTP/1"),
              ("key: value lines (YAML statistic definitions, headers)", r"^\s*[A-Za-z_][\w.-]*:\s"), ("URL", r"^\s*(?:https?://|/?api/v2)")]
    for name, pattern in checks:
        if re.search(pattern, text, re.M):
            return name
    return "text"


def norm_path(url: str) -> str:
    url = TAGS.sub("", url)
    url = re.sub(r"^https?://[^/]+", "", url)
    return url if url.startswith("/") or url.startswith("...") else "/" + url


def repair_key(text: str):
    m = re.match(r"L(\d+)", text)
    return (int(m.group(1)) if m else 0, text)


def assign_sequences(prefix: str, samples: list[Sample]) -> None:
    """A request followed by responses/notifications in the same section and sample group."""
    current, members = None, []

    def flush():
        if current is not None and len(members) > 1:
            for s in members:
                s.record["sequence"] = f"{prefix}-S{members[0].record['line']}"

    for s in samples:
        rec = s.record
        rec["sequence"] = None
        if rec["kind"] == "request":
            flush()
            current, members = (rec["section"], s.group), [s]
        elif current == (rec["section"], s.group) and rec["kind"] in ("response", "notification"):
            members.append(s)
        else:
            flush()
            current, members = None, []
    flush()


def extract(path: Path) -> dict:
    version, prefix, _ = SOURCES[path.name]
    raw = path.read_bytes()
    lines = raw.decode("utf-8").split("\n")
    fences = scan_context(lines)
    samples, unparsed, skipped = [], [], []
    for run in runs_of(fences):
        scanner = RunScanner(path.name, lines, run)
        scanner.scan()
        samples += scanner.samples
        unparsed += scanner.unparsed
        skipped += [{"source": path.name, "line": a, "end_line": b, "what": w} for a, b, w in scanner.skipped]
    samples.sort(key=lambda s: s.record["line"])
    seen: dict[str, int] = {}
    for s in samples:
        base = f"{prefix}-L{s.record['line']}"
        seen[base] = seen.get(base, 0) + 1
        s.record["id"] = base if seen[base] == 1 else f"{base}-{seen[base]}"
        s.record["version"] = version
    assign_sequences(prefix, samples)
    return {"source": {"file": path.name, "version": version, "lines": len(raw.splitlines()),
                       "sha256": hashlib.sha256(raw).hexdigest()},
            "records": [order(s.record) for s in samples], "unparsed": unparsed, "skipped_blocks": skipped}


KEY_ORDER = ["id", "source", "version", "line", "end_line", "kind", "sequence", "section", "api", "label",
             "request_line", "method", "method_from", "path", "url_template", "operationName", "repairs", "body"]


def order(rec: dict) -> dict:
    return {k: rec[k] for k in KEY_ORDER if k in rec}


def counts(records: list[dict]) -> dict:
    out: dict[str, int] = {}
    for rec in records:
        out[rec["kind"]] = out.get(rec["kind"], 0) + 1
    return dict(sorted(out.items()))


def build(ref: Path) -> dict[str, dict]:
    fixtures: dict[str, dict] = {}
    for name, (version, _, fixture) in SOURCES.items():
        part = extract(ref / name)
        fx = fixtures.setdefault(fixture, {"version": version, "sources": [], "records": [], "unparsed": [],
                                           "skipped_blocks": []})
        fx["sources"].append(part["source"])
        for key in ("records", "unparsed", "skipped_blocks"):
            fx[key] += part[key]
    for fx in fixtures.values():
        fx["sources"].sort(key=lambda s: s["file"])
        for key in ("records", "unparsed", "skipped_blocks"):
            fx[key].sort(key=lambda r: (r["source"], r["line"], r.get("id", "")))
        seqs = {r["sequence"] for r in fx["records"] if r["sequence"]}
        fx["counts"] = {"records": len(fx["records"]), "by_kind": counts(fx["records"]),
                        "sequences": len(seqs), "unparsed": len(fx["unparsed"]),
                        "skipped_blocks": len(fx["skipped_blocks"])}
        fx["generator"] = "tests/vendor/extract_corpus.py (regenerate: .venv/bin/python tests/vendor/extract_corpus.py)"
    return {name: {k: fx[k] for k in ("generator", "version", "sources", "counts", "records", "unparsed",
                                      "skipped_blocks")} for name, fx in fixtures.items()}


def render(fixture: dict) -> str:
    return json.dumps(fixture, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    out_dir = Path(argv[1]) if len(argv) > 1 else HERE
    ref = reference_dir()
    if not (ref / "gws-8.6-api-reference.txt").is_file():
        print(f"reference text not found in {ref} (set GWS_REFERENCE_DIR)", file=sys.stderr)
        return 2
    for name, fixture in build(ref).items():
        (out_dir / name).write_text(render(fixture), encoding="utf-8")
        print(f"{name}: {json.dumps(fixture['counts'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
