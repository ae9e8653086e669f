"""The vendor corpus extraction: fixtures regenerate from the reference, point at their text, hold the known samples.

These tests check the corpus itself (tests/vendor/), not gwsreplay: the
fixtures are the vendor's own samples, so later tests can trust them as oracle.
The tests that re-read the reference text skip when it is absent
(../shared/gws-reference or $GWS_REFERENCE_DIR); the fixture checks always run.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

VENDOR = Path(__file__).resolve().parent / "vendor"
SCRIPT = VENDOR / "extract_corpus.py"
FIXTURES = {"8.6": VENDOR / "corpus-8.6.json", "8.5.2": VENDOR / "corpus-8.5.2.json"}
KINDS = {"request", "response", "notification", "other"}


def _load_module(name: str):
    spec = importlib.util.spec_from_file_location(f"vendor_{name}", VENDOR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(f"vendor_{name}", module)
    spec.loader.exec_module(module)
    return module


lenient_json = _load_module("lenient_json")
REF = Path(os.environ.get("GWS_REFERENCE_DIR") or VENDOR.parent.parent.parent / "shared" / "gws-reference")
needs_reference = pytest.mark.skipif(
    not (REF / "gws-8.6-api-reference.txt").is_file(),
    reason=f"vendor reference text not found in {REF} (set GWS_REFERENCE_DIR to check the corpus against it)")

CORPUS = {v: json.loads(p.read_text(encoding="utf-8")) for v, p in FIXTURES.items()}
RECORDS = {v: {r["id"]: r for r in fx["records"]} for v, fx in CORPUS.items()}


def flat(text: str) -> str:
    """Text with all whitespace removed, so wrapped strings compare."""
    return re.sub(r"\s+", "", text.replace("\u201c", '"').replace("\u201d", '"'))


# -- regeneration --------------------------------------------------------------------------

@needs_reference
def test_script_regenerates_byte_identical_fixtures(tmp_path):
    env = dict(os.environ, GWS_REFERENCE_DIR=str(REF))
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for path in FIXTURES.values():
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), f"{path.name} is stale: rerun {SCRIPT}"


@needs_reference
def test_fixtures_name_the_reference_they_came_from():
    for fx in CORPUS.values():
        for src in fx["sources"]:
            raw = (REF / src["file"]).read_bytes()
            assert hashlib.sha256(raw).hexdigest() == src["sha256"], src["file"]
            assert len(raw.splitlines()) == src["lines"]


def test_script_refuses_without_reference(tmp_path):
    env = dict(os.environ, GWS_REFERENCE_DIR=str(tmp_path / "absent"))
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "GWS_REFERENCE_DIR" in done.stderr
    assert not list(tmp_path.glob("*.json"))


# -- every record points at its text -------------------------------------------------------

def _scalars(body, out: list[str]) -> list[str]:
    if isinstance(body, dict):
        for key, val in body.items():
            out.append(str(key))
            _scalars(val, out)
    elif isinstance(body, list):
        for val in body:
            _scalars(val, out)
    elif isinstance(body, str) and 3 <= len(body) <= 60:
        out.append(body)
    return out


@needs_reference
@pytest.mark.parametrize("version", sorted(FIXTURES))
def test_every_record_line_range_contains_its_body(version):
    texts = {src["file"]: (REF / src["file"]).read_text(encoding="utf-8").split("\n")
             for src in CORPUS[version]["sources"]}
    problems = []
    for rec in CORPUS[version]["records"]:
        lines = texts[rec["source"]]
        span = flat("\n".join(lines[rec["line"] - 1:rec["end_line"]]))
        if rec["body"] is None:
            needle = flat(rec["path"].lstrip("/"))
            if rec["method"] not in lines[rec["line"] - 1] or needle not in span:
                problems.append((rec["id"], "request line"))
            continue
        assert lines[rec["line"] - 1].strip()[:1] in "{[\"'", (rec["id"], "line is not where the JSON starts")
        if rec["body"] in ({}, []):
            assert span in ("{}", "[]"), rec["id"]
            continue
        words = [w for w in _scalars(rec["body"], []) if not w.startswith("<")]
        # a distinctive key or value: at least the first few must be in the range, all most of the time
        found = [w for w in words if flat(w) in span]
        if not words or not found or len(found) < 0.9 * len(words):
            problems.append((rec["id"], [w for w in words if flat(w) not in span][:5]))
        if "request_line" in rec:
            assert rec["method"] in lines[rec["request_line"] - 1], rec["id"]
    assert not problems, problems[:20]


@needs_reference
@pytest.mark.parametrize("version", sorted(FIXTURES))
def test_unparsed_ranges_are_code_block_text(version):
    texts = {src["file"]: (REF / src["file"]).read_text(encoding="utf-8").split("\n")
             for src in CORPUS[version]["sources"]}
    for item in CORPUS[version]["unparsed"]:
        chunk = texts[item["source"]][item["line"] - 1:item["end_line"]]
        assert any(line.strip() for line in chunk) and chunk[0] != "```", item


# -- fixture shape -------------------------------------------------------------------------

@pytest.mark.parametrize("version", sorted(FIXTURES))
def test_records_are_well_formed_and_sorted(version):
    fx = CORPUS[version]
    recs = fx["records"]
    assert fx["version"] == version
    assert [(r["source"], r["line"], r["id"]) for r in recs] == sorted((r["source"], r["line"], r["id"]) for r in recs)
    assert len({r["id"] for r in recs}) == len(recs)
    for rec in recs:
        assert rec["kind"] in KINDS and rec["version"] == version
        assert 1 <= rec["line"] <= rec["end_line"], rec["id"]
        assert isinstance(rec["repairs"], list) and all(re.match(r"^L\d+", r) for r in rec["repairs"]), rec["id"]
        assert rec["id"].endswith(f"-L{rec['line']}") or re.search(rf"-L{rec['line']}-\d+$", rec["id"])
        if rec["kind"] == "request" and isinstance(rec["body"], dict) and "operationName" in rec["body"]:
            assert rec["operationName"] == rec["body"]["operationName"]
    counts = {}
    for rec in recs:
        counts[rec["kind"]] = counts.get(rec["kind"], 0) + 1
    assert fx["counts"]["by_kind"] == dict(sorted(counts.items()))
    assert fx["counts"]["unparsed"] == len(fx["unparsed"])


@pytest.mark.parametrize("version", sorted(FIXTURES))
def test_sequences_start_with_a_request_in_one_section(version):
    seqs: dict[str, list[dict]] = {}
    for rec in CORPUS[version]["records"]:
        if rec["sequence"]:
            seqs.setdefault(rec["sequence"], []).append(rec)
    assert len(seqs) == CORPUS[version]["counts"]["sequences"]
    for sid, members in seqs.items():
        assert members[0]["kind"] == "request" and sid.endswith(f"-S{members[0]['line']}"), sid
        assert len(members) >= 2 and {m["kind"] for m in members[1:]} <= {"response", "notification"}, sid
        assert len({m["section"] for m in members}) == 1 and len({m["source"] for m in members}) == 1, sid


def test_counts_reach_the_stated_minimums():
    by = {v: CORPUS[v]["counts"]["by_kind"] for v in CORPUS}
    assert by["8.6"]["notification"] >= 350 and by["8.6"]["request"] >= 450 and by["8.6"]["response"] >= 450
    assert by["8.5.2"]["notification"] >= 80 and by["8.5.2"]["request"] >= 120 and by["8.5.2"]["response"] >= 100
    assert CORPUS["8.6"]["counts"]["sequences"] >= 380 and CORPUS["8.5.2"]["counts"]["sequences"] >= 100
    sources = {r["source"] for r in CORPUS["8.6"]["records"]}
    assert {"StartContactCenterSession.txt", "InitiateIMSession.txt"} <= sources


def test_unparsed_list_is_small_and_explained():
    for version, limit in (("8.6", 70), ("8.5.2", 20)):
        unparsed = CORPUS[version]["unparsed"]
        assert len(unparsed) <= limit, (version, len(unparsed))
        assert len(unparsed) < 0.06 * len(CORPUS[version]["records"])
        for item in unparsed:
            assert item["reason"] and item["line"] <= item["end_line"], item
        for item in CORPUS[version]["skipped_blocks"]:
            assert item["what"] and item["line"] <= item["end_line"], item


def test_fixtures_stay_small():
    assert sum(p.stat().st_size for p in FIXTURES.values()) < 3_000_000


# -- known samples, checked by hand against the text ---------------------------------------

def rec(version: str, rid: str) -> dict:
    assert rid in RECORDS[version], f"{rid} missing from corpus-{version}.json"
    return RECORDS[version][rid]


def test_known_86_call_error_messages_name_the_call_by_conn_id():
    err = rec("8.6", "gws86-L4217")
    assert (err["kind"], err["end_line"], err["section"]) == ("notification", 4225, "CometD notifications")
    assert err["body"]["data"]["callUri"] == "http://127.0.0.1:8080/api/v2/calls/0071023821aec021"
    assert err["body"]["data"]["errorMessage"] == "Incorrect object state"
    assert err["body"]["channel"] == "/v2/me/calls"
    dn = rec("8.6", "gws86-L4208")
    assert dn["body"]["data"]["errorMessage"] == "Invalid Called Dn" and "callUri" not in dn["body"]["data"]


def test_known_86_start_contact_center_session_places():
    places = {rid: rec("8.6", rid)["body"].get("place") for rid in ("gws86-L4445", "gws86-L4470", "gws86-L4533")}
    assert places == {"gws86-L4445": "SIP_5000", "gws86-L4470": "agent1", "gws86-L4533": "agent1@pizza.com"}
    login = rec("8.6", "gws86-L4445")
    assert (login["method"], login["path"], login["operationName"]) == ("POST", "/api/v2/me", "StartContactCenterSession")
    assert login["body"]["loginCode"] == "8000" and login["body"]["queue"] == "9000"
    assert rec("8.6", "gws86-L4459")["sequence"] == login["sequence"] == "gws86-S4445"
    partial = rec("8.6", "gws86-L4507")
    assert partial["body"]["statusCode"] == 7 and partial["sequence"] == "gws86-S4495"
    page = rec("8.6", "sccs-L208")
    assert page["source"] == "StartContactCenterSession.txt" and "dynamicPhoneNumber" in page["body"]
    assert rec("8.6", "sccs-L194")["body"]["statusCode"] == 2


def test_known_86_state_recovery_calls_by_conn_id():
    calls = rec("8.6", "gws86-L2513")
    assert (calls["kind"], calls["end_line"], calls["section"]) == ("response", 2551, "Recovering Existing State")
    assert calls["body"]["calls"][0]["id"] == "007102385535e008" and calls["repairs"] == []


def test_known_86_email_reply_with_queue_name_and_its_sequence():
    reply = rec("8.6", "gws86-L17478")
    assert reply["body"] == {"operationName": "Reply", "queueName": "Forwarded-mails"}
    assert (reply["method"], reply["path"], reply["request_line"]) == ("POST", "/api/v2/me/emails/0071023821aec011", 17477)
    note = rec("8.6", "gws86-L17497")
    assert note["sequence"] == reply["sequence"] and note["kind"] == "notification"
    # the page break closed "email" early; the continuation's keys are back inside it
    assert note["body"]["email"]["state"] == "Composing" and note["body"]["email"]["subject"] == "RE: Test_V2"
    assert any("page break closed the object early" in r for r in note["repairs"])


def test_known_86_im_session_notification_without_envelope():
    note = rec("8.6", "imss-L61")
    assert note["kind"] == "notification" and note["sequence"] == "imss-S39"
    assert note["body"]["messageType"] == "IMSessionStateChangeMessage" and "data" not in note["body"]


def test_known_852_call_notification_has_string_participants():
    note = rec("8.5.2", "gws852-L1667")
    call = note["body"]["data"]["call"]
    assert call["participants"] == ["5000"] and call["participantsInfo"][0]["digits"] == "5000"
    assert call["id"] == "0071023821aec021" and note["end_line"] == 1714
    assert any("page break" in r for r in note["repairs"])
    err = rec("8.5.2", "gws852-L1748")
    assert err["body"]["data"]["callUri"] == "http://127.0.0.1:8080/api/v2/calls/0071023821aec021"
    assert any("wrapped" in r for r in err["repairs"])


def test_known_852_dial_sequence():
    dial = rec("8.5.2", "gws852-L4676")
    assert dial["operationName"] == "Dial" and dial["path"].endswith("/calls") and dial["method"] == "POST"
    seq = [r for r in CORPUS["8.5.2"]["records"] if r["sequence"] == dial["sequence"]]
    assert [r["kind"] for r in seq][:3] == ["request", "response", "notification"]


# -- the lenient reader ---------------------------------------------------------------------

def read(text: str):
    lines = list(enumerate(text.split("\n"), 100))
    return lenient_json.parse_value(lines, 0)


def test_reader_repairs_and_names_the_line():
    parsed = read('{\n "a": [1, 2,],\n "b": "x"\n "c": ...,\n "d": True\n}')
    assert parsed.value == {"a": [1, 2], "b": "x", "d": True}
    joined = " ".join(parsed.repairs)
    assert "L101: removed trailing comma" in joined and "inserted missing comma" in joined
    assert "'...'" in joined and "Python literal True" in joined


def test_reader_joins_wrapped_urls_and_closes_truncation():
    parsed = read('{\n "uri": "http://h/api/v2/devices/\nefe1-ab",\n "calls": [\n  {"id": 1}')
    assert parsed.value == {"uri": "http://h/api/v2/devices/efe1-ab", "calls": [{"id": 1}]}
    assert any(r.startswith("L100: closed truncated object") or "closed truncated" in r for r in parsed.repairs)


def test_reader_reads_python_reprs():
    parsed = read("{u'a': u'b', 'n': 1389261492035L, 'e': u, 'z': None}")
    assert parsed.value == {"a": "b", "n": 1389261492035, "e": "", "z": None}


def test_reader_refuses_prose_with_a_reason():
    with pytest.raises(lenient_json.SampleError) as exc:
        read('{\n  "statusCode": an integer value above 0\n}')
    assert exc.value.line == 101 and "not a JSON value" in exc.value.reason
