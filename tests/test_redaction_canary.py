"""A canary corpus: every way a secret reached a capture before (issue 14) must not reach the file,
its WAL, a Parquet export (bytes and decoded values), the HTML report, nor a replay output file."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import duckdb
from replay_fixtures import ANSWER_DELAY, SIM_AGENTS, SIM_SEED, capture

from gwsreplay.capture.export import export_parquet
from gwsreplay.capture.records import HttpRecord, WsEndRecord, WsFrameRecord
from gwsreplay.capture.writer import CaptureWriter
from gwsreplay.cli.processes import child, free_port, gwsreplay_command

T0 = 1_700_000_000.0
C = {name: f"Canary{name}{i:02d}x7q" for i, name in enumerate([
    "EscapedKey", "EscapedBayeux", "BasicNoColon", "FoldedCookie", "RefererPw", "LocationPw", "Multipart",
    "NewPassword", "Token", "XAuthToken", "ExtAuthToken", "Secret", "QueryPw", "FormPw"])}


def rec(fid: str, path: str, *, req_headers=(), body: bytes | None = None, resp_headers=(), resp: bytes | None = None,
        ctype: str = "application/json") -> HttpRecord:
    return HttpRecord(flow_id=fid, method="POST", host="gws", port=8090, path=path,
                      request_headers=[("Content-Type", ctype), ("Cookie", "JSESSIONID=s1"), *req_headers],
                      request_body=body, status=200,
                      response_headers=[("Content-Type", "application/json"), *resp_headers],
                      response_body=resp, ts_request_start=T0, ts_response_start=T0 + 0.1)


def corpus() -> list:
    multipart = (b'--XyZ\r\nContent-Disposition: form-data; name="password"\r\n\r\n' + C["Multipart"].encode()
                 + b'\r\n--XyZ\r\nContent-Disposition: form-data; name="user"\r\n\r\nagent1\r\n--XyZ--\r\n')
    bayeux_escaped = ('[{"channel":"/meta/handshake","id":"1","ext":{"authToken":"%s",'
                      '"agentLoginPassw\\u006frd":"%s"}}]' % (C["ExtAuthToken"], C["EscapedBayeux"])).encode()
    return [
        rec("1", "/api/v2/me", body=('{"operationName":"StartContactCenterSession",'
                                     '"agentLoginPassw\\u006frd":"%s"}' % C["EscapedKey"]).encode()),
        rec("2", "/api/v2/me", req_headers=[("Authorization",
                                            "Basic " + base64.b64encode(C["BasicNoColon"].encode()).decode())]),
        rec("3", "/api/v2/me", resp_headers=[("Set-Cookie", f"a=1; Path=/, JSESSIONID={C['FoldedCookie']}; HttpOnly")]),
        rec("4", "/api/v2/me", req_headers=[("Referer", f"http://desk/login?user=a&password={C['RefererPw']}")],
            resp_headers=[("Location", f"http://gws/api/v2/me?password={C['LocationPw']}")]),
        rec("5", "/api/v2/me", body=multipart, ctype="multipart/form-data; boundary=XyZ"),
        rec("6", "/api/v2/me", body=json.dumps({"newPassword": C["NewPassword"], "token": C["Token"],
                                                "clientSecret": C["Secret"]}).encode(),
            req_headers=[("X-Auth-Token", C["XAuthToken"])]),
        rec("7", "/api/v2/notifications", body=bayeux_escaped,
            resp=json.dumps([{"channel": "/meta/handshake", "successful": True, "clientId": "c1"}]).encode()),
        rec("8", f"/api/v2/me?newPassword={C['QueryPw']}&x=1"),
        rec("9", "/api/v2/login", body=f"user=a&userPassword={C['FormPw']}".encode(),
            ctype="application/x-www-form-urlencoded"),
        rec("ws", "/api/v2/notifications"),
        WsFrameRecord(flow_id="ws", index=0, ts=T0 + 1, from_client=True, is_text=True, content=bayeux_escaped),
        WsEndRecord(flow_id="ws", ts_start=T0, ts_end=T0 + 2, frames=1),
    ]


def forms(canary: str) -> list[bytes]:
    return [canary.encode(), canary.encode("utf-16-le"), base64.b64encode(canary.encode())]


def assert_no_canary(blob: bytes, where: str) -> None:
    for name, canary in C.items():
        for enc in forms(canary):
            assert enc not in blob, f"{name} leaked into {where}"


def test_no_canary_reaches_the_capture_or_its_parquet_export(tmp_path):
    db = tmp_path / "canary.duckdb"
    records = corpus()
    records[-3].is_websocket = True
    w = CaptureWriter(db)
    w.write_records(records)
    w.close()
    blob = db.read_bytes()
    wal = Path(str(db) + ".wal")
    if wal.exists():
        blob += wal.read_bytes()
    assert_no_canary(blob, "the capture file")
    con = duckdb.connect(str(db), read_only=True)
    try:
        # the secrets were there and are masked (not dropped with their rows)
        assert con.execute("SELECT count(*) FROM exchanges").fetchone()[0] == 10
        text = json.dumps(con.execute("SELECT * FROM exchanges").fetchall(), default=str)
        text += json.dumps(con.execute("SELECT * FROM bayeux_messages").fetchall(), default=str)
        assert text.count("<redacted>") >= 10
        assert con.execute("SELECT auth_user FROM exchanges WHERE flow_id = '2'").fetchone()[0] is None
    finally:
        con.close()
    out = tmp_path / "parquet"
    export_parquet(db, out)
    for f in sorted(out.rglob("*.parquet")):
        assert_no_canary(f.read_bytes(), f.name)
        rows = duckdb.sql(f"SELECT * FROM read_parquet('{f}')").fetchall()
        assert_no_canary(json.dumps(rows, default=str).encode(), f"{f.name} (decoded)")


# ----------------------------------------------------------------------------- the report and a replay

REPLAY_PASSWORD = "CanaryReplayPassw0rd9z"


def test_no_canary_reaches_the_html_report(tmp_path):
    """The report renders exchanges, bodies and errors: none of the canaries may be in it."""
    db = tmp_path / "canary.duckdb"
    records = corpus()
    records[-3].is_websocket = True
    w = CaptureWriter(db)
    w.write_records(records)
    w.close()
    out = tmp_path / "canary.html"
    result = subprocess.run(gwsreplay_command() + ["report", "--db", str(db), "--out", str(out),
                                                   "--plotly", "cdn"],
                            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_no_canary(out.read_bytes(), "the HTML report")


def test_the_replay_output_holds_no_replay_password(tmp_path):
    """A replay logs in with the user map's passwords; its output file (capture schema) must not keep them."""
    db = capture("long-polling")
    users = [f"agent{k}" for k in range(1, SIM_AGENTS + 1)]
    roster = tmp_path / "roster.toml"
    roster.write_text("".join(f'[[users]]\nuser_name = "{u}"\npassword = "{REPLAY_PASSWORD}"\n\n' for u in users))
    user_map = tmp_path / "users.toml"
    user_map.write_text(f'password = "{REPLAY_PASSWORD}"\n')
    out = tmp_path / "replay.duckdb"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sim = gwsreplay_command() + ["sim", "--port", str(port), "--users", str(roster), "--seed", str(SIM_SEED),
                                 "--answer-delay", str(ANSWER_DELAY)]
    with child(sim, f"{url}/api/v2/diagnostics/version", log=tmp_path / "sim.log", cwd=tmp_path):
        result = subprocess.run(gwsreplay_command() + ["replay", "--db", str(db), "--target", url, "--speed", "max",
                                                       "--user-map", str(user_map), "--out", str(out)],
                                capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode in (0, 1), result.stderr[-3000:]
    assert out.exists()
    blob = out.read_bytes() + (Path(str(out) + ".wal").read_bytes() if Path(str(out) + ".wal").exists() else b"")
    con = duckdb.connect(str(out), read_only=True)
    try:
        replayed = con.execute("SELECT count(*) FROM exchanges").fetchone()[0]
    finally:
        con.close()
    assert replayed > 0                                     # the replay did log in and work
    for user in users:
        basic = base64.b64encode(f"{user}:{REPLAY_PASSWORD}".encode())
        for needle in (REPLAY_PASSWORD.encode(), basic, REPLAY_PASSWORD.encode("utf-16-le")):
            assert needle not in blob, f"the replay password of {user} leaked into the replay output"
