"""Many captures as one: ``gwsreplay merge``, analysis over a list of captures and over a Parquet
export directory (hive-partitioned by day), against two capture proxies in front of one simulator.

The fixed desktop script of tests/replay_fixtures.py runs with agent1 and agent3 behind proxy A
and agent2 behind proxy B (agent1 calls agent2 across the proxies); the same script through one
proxy in front of a fresh simulator is the reference. The merged capture must hold exactly what
the simulator served and its summary must equal the single-proxy recording's in every count;
analysis of ``[A, B]``, of the merged file and of the exported directory must agree.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import replay_fixtures
from gwsreplay.analysis import coverage, db, latency, sources
from gwsreplay.capture.export import export_parquet
from gwsreplay.capture.merge import merge
from gwsreplay.cli.main import main as cli_main
from gwsreplay.client.desktop import Desktop
from test_capture_proxy import Proxy, assert_counts_match, capture_counts

PROXY_OF = {"agent1": "a", "agent2": "b", "agent3": "a"}


async def record(sim, tmp_path: Path, name: str, split: bool, monkeypatch) -> dict[str, Path]:
    """The scripted session through one proxy, or split over two; the capture files by proxy."""
    proxies = {k: Proxy(sim.port, tmp_path / f"{name}-{k}.duckdb") for k in (("a", "b") if split else ("a",))}
    urls = {user: proxies[PROXY_OF[user] if split else "a"].url("") for user in PROXY_OF}
    monkeypatch.setattr(replay_fixtures, "Desktop",
                        lambda url, user, **kw: Desktop(urls[user], user, **kw))
    try:
        await replay_fixtures.scripted_session(proxies["a"].url(""))
        await asyncio.sleep(0.3)
    finally:
        for p in proxies.values():
            assert await asyncio.to_thread(p.stop) == 0
    return {k: p.db for k, p in proxies.items()}


def summary(con: duckdb.DuckDBPyConnection) -> dict:
    """Every count a report summarises, independent of ids, clocks and long-poll timing."""
    q = lambda sql: sorted(con.execute(sql).fetchall(), key=str)  # noqa: E731
    info = db.capture_info(con)
    return {
        "agents": int(info.loc[0, "agents"]),
        "sessions": q("SELECT user_name, count(*) FROM sessions WHERE user_name IS NOT NULL GROUP BY ALL"),
        "operations": q("SELECT user_name, operation_name, outcome, matched_by, match_kind, count(*) "
                        "FROM operations GROUP BY ALL"),
        "rest": q("SELECT user_name, method, operation_name, status, count(*) FROM exchanges "
                  "WHERE NOT is_bayeux GROUP BY ALL"),
        "notifications": q("SELECT user_name, message_type, notification_type, resource_type, resource_state, "
                           "count(*) FROM notifications GROUP BY ALL"),
        "latency_rows": q("SELECT operation_name, count(*) FROM operations WHERE completion_latency_ms "
                          "IS NOT NULL GROUP BY ALL"),
        "transitions": len(coverage.observed_transitions(con)),
    }


def analysis(con: duckdb.DuckDBPyConnection) -> dict:
    """The analysis as a notebook sees it, rows included (for captures that must be identical)."""
    info = db.capture_info(con).drop(columns=["schema_version"])
    ops = con.execute("SELECT * FROM operations ORDER BY exchange_id").fetchall()
    return {"info": info.to_dict("records"), "ops": ops,
            "latency": latency.latency_table(con, "operation"),
            "coverage": coverage.observed_transitions(con),
            "sessions": sorted(con.execute("SELECT * EXCLUDE (client_ids) FROM sessions").fetchall(), key=str),
            "messages": con.execute("SELECT count(*), max(id), count(DISTINCT exchange_id) "
                                    "FROM bayeux_messages").fetchone()}


async def test_two_proxies_merged_equal_one_proxy(tmp_path, sim_factory, monkeypatch, capsys):
    sim = await sim_factory(agents=replay_fixtures.SIM_AGENTS, seed=replay_fixtures.SIM_SEED)
    parts = await record(sim, tmp_path, "split", True, monkeypatch)
    stats = await sim.stats()
    merged = tmp_path / "merged.duckdb"
    assert cli_main(["merge", str(merged), str(parts["a"]), str(parts["b"])]) == 0
    printed = capsys.readouterr().out
    assert "clock" in printed and str(merged) in printed

    # the merged capture holds exactly what the simulator served, per agent too
    assert_counts_match(capture_counts(merged), stats)
    counts_a, counts_b = capture_counts(parts["a"]), capture_counts(parts["b"])
    assert set(counts_b["delivered"]) == {"agent2"} and {"agent1", "agent3"} <= set(counts_a["delivered"])

    con = duckdb.connect(str(merged), read_only=True)
    meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    srcs = json.loads(meta["merged_from"])
    assert [s["path"] for s in srcs] == [str(parts["a"]), str(parts["b"])]
    assert srcs[1]["id_bases"]["exchanges"] >= srcs[0]["rows"]["exchanges"] > 0
    # both proxies run on this machine's clock: the estimate (Date headers, 1 s resolution) is near 0
    assert srcs[1]["clock_method"] in ("bayeux", "date_header") and abs(srcs[1]["clock_offset_ms"]) < 300, srcs
    ids = con.execute("SELECT count(*), count(DISTINCT id) FROM exchanges").fetchone()
    assert ids[0] == ids[1]
    assert con.execute("SELECT count(*) FROM bayeux_messages m LEFT JOIN exchanges e ON e.id = m.exchange_id "
                       "WHERE m.exchange_id IS NOT NULL AND e.id IS NULL").fetchone()[0] == 0
    merged_summary = summary(con)
    con.close()
    assert merged_summary["operations"] and merged_summary["agents"] == 3

    # the same script through one proxy in front of a fresh simulator: the same counts
    sim1 = await sim_factory(agents=replay_fixtures.SIM_AGENTS, seed=replay_fixtures.SIM_SEED)
    single = (await record(sim1, tmp_path, "single", False, monkeypatch))["a"]
    con = duckdb.connect(str(single), read_only=True)
    single_summary = summary(con)
    con.close()
    assert merged_summary == single_summary

    # analysis over [A, B], over the merged file and over a Parquet export directory agree
    out = tmp_path / "parquet"
    for name, part in parts.items():
        export_parquet(part, out, partition="day", name=f"proxy-{name}")
    export_parquet(parts["a"], out, partition="day", name="proxy-a")          # again: replaced, not doubled
    assert sorted(p.name for p in (out / "exchanges").glob("day=*/capture=*")) == ["capture=proxy-a",
                                                                                    "capture=proxy-b"]
    results = {}
    for label, spec in (("list", [parts["a"], parts["b"]]), ("merged", merged), ("parquet", out),
                        ("pathsep", sources.join([parts["a"], parts["b"]]))):
        con = db.open_capture(spec)
        results[label] = analysis(con)
        assert summary(con) == merged_summary, label
        con.close()
    for label in ("list", "parquet", "pathsep"):
        for key, value in results["merged"].items():
            if isinstance(value, pd.DataFrame):          # NaN equals NaN, sums to float precision
                pd.testing.assert_frame_equal(results[label][key], value, obj=f"{label} {key}")
            else:
                assert results[label][key] == value, (label, key)


def test_merge_refuses_an_existing_output_and_stitches_moved_sessions(tmp_path):
    """A desktop that moved to another proxy keeps its CometD clientId: the second capture's session
    (another HMAC key, no user name: its requests carry only the cookie) becomes the first one's."""
    from gwsreplay.analysis.synthetic import CaptureBuilder
    from gwsreplay.capture import schema

    files = []
    for k, (user, key) in enumerate((("agent1", "key-a"), (None, "key-b"))):
        path = tmp_path / f"p{k}.duckdb"
        con = duckdb.connect(str(path))
        b = CaptureBuilder(con)
        con.execute("INSERT INTO exchanges (id, method, path, user_name, session_key, is_bayeux, ts_request_start) "
                    "VALUES (1, 'POST', '/api/v2/notifications', ?, ?, true, TIMESTAMP '2024-05-06 10:00:00')",
                    [user, key])
        con.execute("INSERT INTO bayeux_messages (id, ts, direction, exchange_id, channel, client_id, msg_id, "
                    "user_name, session_key) VALUES (1, TIMESTAMP '2024-05-06 10:00:00', 'c2s', 1, "
                    "'/meta/connect', 'cid-1', ?, ?, ?)", [str(k), user, key])
        b.write()
        con.close()
        files.append(path)
    out = tmp_path / "m.duckdb"
    report = merge(out, files)
    assert report.stitched_sessions == 1
    con = duckdb.connect(str(out), read_only=True)
    assert con.execute("SELECT DISTINCT user_name, session_key FROM bayeux_messages").fetchall() == [("agent1", "key-a")]
    assert con.execute("SELECT DISTINCT user_name, session_key FROM exchanges").fetchall() == [("agent1", "key-a")]
    assert con.execute("SELECT count(*) FROM sessions").fetchone()[0] == 1
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(schema.SCHEMA_VERSION)
    con.close()
    with pytest.raises(FileExistsError):
        merge(out, files)
    assert cli_main(["merge", str(out), *map(str, files)]) == 2
