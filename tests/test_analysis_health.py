"""Desktop health (analysis/health.py) on a hand-built capture whose answers are known.

Every detector has its own agent in one capture written with the recorder's classification
(analysis.synthetic.CaptureBuilder), so each test states exactly what must be found and when:

* agent1: long-polls, is cut off 15 s (maxInterval 10 s advised), comes back to a 402 and
  handshakes again; later one connect is abandoned (no reply); a POST answered 400;
* agent2: a second tab on the same HTTP session, advised ``multiple-clients``; a GET answered 503;
* agent3: WebSocket until the socket dies (close 1006), then long-polling;
* agent4: four handshakes 5 s apart, the first three clients refused with 402 (a storm);
* agent5: logged out by the server (a LoggedOut nobody asked for), later an Offline it asked
  for; nine Holds, one of them acknowledged after 2 s;
* agent6: away 90 s, so GWS's user monitor logged it out; one Hold completing after 3 s.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pandas as pd
import pytest

from gwsreplay.analysis import _build_notebooks, db, figures, headline, health
from gwsreplay.analysis.synthetic import CaptureBuilder, Device, call_data, device_data

T0 = datetime(2024, 5, 6, 10, 0, 0)
ADVICE = {"reconnect": "retry", "interval": 0, "timeout": 20000}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Tab:
    """One CometD client of an agent's desktop, writing what the proxy would record."""

    def __init__(self, b: CaptureBuilder, user: str, session: str, transport: str = "long-polling"):
        self.b, self.user, self.session, self.transport = b, user, session, transport
        self.client_id: str | None = None
        self.n = 0
        self.socket: int | None = None          # the WebSocket's upgrade exchange

    def _carrier(self, t: float, path: str, held: float | None, error: str | None = None) -> int:
        if self.transport == "websocket":
            if self.socket is None:
                self.socket = self.b.exchange(at(t), self.user, "GET", "/api/v2/notifications", status=101,
                                              session=self.session, response=None, ack_ms=1)
            return self.socket
        return self.b.exchange(at(t), self.user, "POST", f"/api/v2/notifications/{path}", session=self.session,
                               response=None, ack_ms=1000 * (held or 0.001), error=error)

    def _send(self, t: float, msg: dict, xid: int) -> str:
        self.n += 1
        msg = {**msg, "id": str(self.n)}
        self.b.bayeux(at(t), self.user, msg, direction="c2s", exchange_id=xid, session=self.session,
                      transport=self.transport)
        return msg["id"]

    def _reply(self, t: float, channel: str, mid: str, xid: int, **fields) -> None:
        self.b.bayeux(at(t), self.user, {"channel": channel, "id": mid, **fields}, exchange_id=xid,
                      session=self.session, transport=self.transport)

    def handshake(self, t: float, client_id: str, **advice) -> None:
        xid = self._carrier(t, "handshake", 0.005)
        mid = self._send(t, {"channel": "/meta/handshake", "version": "1.0",
                             "supportedConnectionTypes": [self.transport]}, xid)
        self.client_id = client_id
        self._reply(t + 0.005, "/meta/handshake", mid, xid, successful=True, clientId=client_id,
                    advice={**ADVICE, **advice})

    def connect(self, t: float, held: float | None, *, error: str | None = None, http_error: str | None = None,
                advice: dict | None = None) -> float:
        """A /meta/connect sent at ``t`` and answered ``held`` s later (None: never); returns the reply time."""
        xid = self._carrier(t, "connect", held, http_error)
        mid = self._send(t, {"channel": "/meta/connect", "clientId": self.client_id,
                             "connectionType": self.transport}, xid)
        if held is None:
            return t
        if error:
            self._reply(t + held, "/meta/connect", mid, xid, successful=False, error=error,
                        advice={"reconnect": "handshake", "interval": 0})
        else:
            self._reply(t + held, "/meta/connect", mid, xid, successful=True, advice=advice or ADVICE)
        return t + held

    def poll(self, start: float, end: float, held: float = 20.0, gap: float = 0.002) -> float:
        t = start
        while t < end:
            t = self.connect(t, min(held, end - t)) + gap
        return t

    def disconnect(self, t: float) -> None:
        xid = self._carrier(t, "disconnect", 0.003)
        mid = self._send(t, {"channel": "/meta/disconnect", "clientId": self.client_id}, xid)
        self._reply(t + 0.003, "/meta/disconnect", mid, xid, successful=True)


def hold(b: CaptureBuilder, user: str, t: float, call: str, done_ms: float, ack_ms: float = 5) -> None:
    b.exchange(at(t), user, "POST", f"/api/v2/me/calls/{call}", body={"operationName": "Hold"}, ack_ms=ack_ms)
    b.event(at(t) + timedelta(milliseconds=done_ms), user, call_data(call, "Held"))


@pytest.fixture(scope="module")
def health_capture(tmp_path_factory):
    path = tmp_path_factory.mktemp("health") / "health.duckdb"
    con = duckdb.connect(str(path))
    b = CaptureBuilder(con)
    # agent1: away from 80 s (the reply) to 95 s (the next connect): 15 s > maxInterval 10 s
    a1 = Tab(b, "agent1", "s1")
    a1.handshake(0, "c1-a", maxInterval=10000)
    a1.poll(0.01, 80)
    a1.connect(95, 0.002, error="402::Unknown client")
    a1.handshake(95.1, "c1-b", maxInterval=10000)
    a1.poll(95.2, 120)
    a1.connect(120.5, None, http_error="client disconnected")     # abandoned: a stalled connect
    a1.poll(121, 130)
    b.exchange(at(50), "agent1", "POST", "/api/v2/me", body={"operationName": "Ready", "workmode": "x"},
               status=400, response={"statusCode": 2}, session="s1")
    # agent2: tab A polls 0-100 s; tab B (same session) from 30 s, told multiple-clients, leaves at 61 s
    a2, a2b = Tab(b, "agent2", "s2"), Tab(b, "agent2", "s2")
    a2.handshake(0, "c2-a")
    a2.poll(0.01, 100)
    a2b.handshake(30, "c2-b")
    a2b.connect(30.01, 0.002, advice={"reconnect": "retry", "interval": 2000, "multiple-clients": True})
    a2b.poll(32.1, 60, held=2.0, gap=2.0)
    a2b.disconnect(61)
    b.exchange(at(40), "agent2", "GET", "/api/v2/me", status=503, response={"statusCode": 1}, session="s2")
    # agent3: WebSocket, the socket dies at 40 s, long-polling from 41 s
    a3 = Tab(b, "agent3", "s3", transport="websocket")
    a3.handshake(0, "c3-ws")
    a3.poll(0.01, 40)
    con.execute("INSERT INTO websocket_connections (exchange_id, ts_start, ts_end, close_code, error) "
                "VALUES (?, ?, ?, 1006, 'connection lost')", [a3.socket, at(0), at(40)])
    a3lp = Tab(b, "agent3", "s3")
    a3lp.handshake(41, "c3-lp")
    a3lp.poll(41.01, 80)
    # agent4: a reconnect storm (handshakes at 0, 5, 10, 15 s; the first three clients get a 402)
    a4 = Tab(b, "agent4", "s4")
    for k in range(4):
        a4.handshake(5 * k, f"c4-{k}")
        if k < 3:
            a4.connect(5 * k + 0.01, 0.002)
            a4.connect(5 * k + 0.02, 1.0, error="402::Unknown client")
    a4.poll(15.01, 40)
    # agent5: LoggedOut at 50 s without asking; Offline asked at 100 s; nine Holds, one slow ack
    dev = Device("dev5", "7005", agent_state="Offline")
    b.event(at(50), "agent5", device_data(dev))
    b.exchange(at(100), "agent5", "POST", "/api/v2/me/channels/voice", body={"operationName": "Offline"})
    b.event(at(100.05), "agent5", device_data(dev))
    for i in range(9):
        hold(b, "agent5", 200 + i, f"CALL5{i:027d}", done_ms=10 + i, ack_ms=2000 if i == 4 else 5 + i % 3)
    # agent6: polls until 10 s, back at 100 s to a 402: 90 s away > 10 s + 60 s; a slow Hold
    a6 = Tab(b, "agent6", "s6")
    a6.handshake(0, "c6-a")
    a6.poll(0.01, 10)
    a6.connect(100, 0.002, error="402::Unknown client")
    a6.handshake(100.1, "c6-b")
    a6.poll(100.2, 110)
    hold(b, "agent6", 105, "CALL6" + "0" * 27, done_ms=3000)
    # the recorder stopped while a long-poll was held: not the desktop's fault
    b.exchange(at(130), "agent6", "POST", "/api/v2/notifications/connect", response=None, session="s6",
               error="capture ended before the response")
    b.write()
    con.close()
    return path


@pytest.fixture
def con(health_capture):
    c = duckdb.connect(str(health_capture), read_only=True)
    yield c
    c.close()


def _times(df: pd.DataFrame, col: str = "ts") -> list[float]:
    return [round((t - T0).total_seconds(), 3) for t in df[col]]


def test_away_gaps_longer_than_max_interval(con):
    away = health.away_gaps(con)
    assert list(away["user_name"]) == ["agent6", "agent1"]
    assert _times(away, "away_from") == [10.0, 80.0] and _times(away, "back_at") == [100.0, 95.0]
    assert away["gap_s"].round(3).tolist() == [90.0, 15.0]
    assert away["max_interval_s"].tolist() == [10.0, 10.0]
    assert away["came_back_with"].tolist() == ["connect", "connect"] and away["session_lost"].all()
    assert list(away["client_id"]) == ["c6-a", "c1-a"]
    # a stricter maxInterval finds agent3's 1 s between its WebSocket and long-polling clients too
    assert "agent3" in set(health.away_gaps(con, max_interval_s=0.5)["user_name"])
    assert health.away_gaps(con, max_interval_s=100).empty
    # agent2's second tab waits 2 s after each reply: away with maxInterval 1 s, except after the reply
    # that advised that 2 s interval (CometD gives a session maxInterval + interval)
    tab = health.away_gaps(con, max_interval_s=1.0).query("client_id == 'c2-b'")
    assert _times(tab, "away_from")[:2] == [34.1, 38.1] and 30.012 not in _times(tab, "away_from")


def test_stalled_connects(con):
    stalled = health.stalled_connects(con)
    assert list(stalled["user_name"]) == ["agent1"] and _times(stalled) == [120.5]
    assert stalled["http_error"].tolist() == ["client disconnected"]
    # agent6's connect cut by the end of the recording is not the desktop's fault; held replies are on time
    assert health.stalled_connects(con, slack_s=0).shape[0] == 1


def test_rehandshakes_after_402(con):
    re_ = health.rehandshakes(con)
    assert list(re_["user_name"]) == ["agent4", "agent4", "agent4", "agent1", "agent6"]
    assert list(re_["client_id"]) == ["c4-0", "c4-1", "c4-2", "c1-a", "c6-a"]
    assert list(re_["new_client_id"]) == ["c4-1", "c4-2", "c4-3", "c1-b", "c6-b"]
    assert re_["handshake_successful"].all() and (re_["reconnect_advice"] == "handshake").all()
    assert re_.loc[re_["user_name"] == "agent1", "after_s"].round(3).tolist() == [0.098]


def test_reconnect_storm(con):
    storms = health.reconnect_storms(con)
    assert storms[["user_name", "handshakes"]].values.tolist() == [["agent4", 4]]
    assert _times(storms) == [0.0] and _times(storms, "until") == [15.0]
    assert health.reconnect_storms(con, window_s=4).empty        # 5 s apart: no storm in a 4 s window
    # agent2's two tabs handshook 30 s apart; agents 1, 3 and 6 handshook again after more than 30 s
    assert list(health.reconnect_storms(con, min_handshakes=2)["user_name"]) == ["agent2", "agent4"]


def test_two_tabs(con):
    advice = health.multiple_clients(con)
    assert advice[["user_name", "client_id", "interval_ms"]].values.tolist() == [["agent2", "c2-b", 2000.0]]
    assert _times(advice) == [30.012]
    both = health.concurrent_clients(con)
    assert both[["user_name", "client_id", "other_client_id"]].values.tolist() == [["agent2", "c2-a", "c2-b"]]
    assert _times(both) == [30.01] and both["overlap_s"].iloc[0] == pytest.approx(58.1 - 30.01, abs=0.01)


def test_websocket_fallback(con):
    fb = health.transport_fallbacks(con)
    assert fb[["user_name", "websocket_client_id", "client_id", "close_code"]].values.tolist() == \
        [["agent3", "c3-ws", "c3-lp", 1006]]
    assert _times(fb) == [41.01]


def test_server_logouts(con):
    lo = health.server_logouts(con)
    assert lo[["user_name", "evidence"]].values.tolist() == [["agent5", "notified"], ["agent6", "user monitor"]]
    assert _times(lo) == [50.0, 80.0]      # agent6: away from 10 s, session gone at 20 s, logged out at 80 s
    assert lo["detail"].iloc[0] == "device dev5"
    # a longer logout timeout than agent6 was away: only the notified one
    assert list(health.server_logouts(con, logout_timeout_s=120)["user_name"]) == ["agent5"]


def test_http_errors_and_slow_operations(con):
    err = health.http_errors(con)
    assert list(err["user_name"]) == ["agent2", "agent1", "agent1"]
    assert [None if pd.isna(v) else int(v) for v in err["status"]] == [503, 400, None]
    assert err["error"].iloc[2] == "client disconnected"
    ack = health.slow_operations(con, "ack")
    assert ack[["user_name", "operation", "latency_ms"]].values.tolist() == [["agent5", "voice Hold", 2000.0]]
    done = health.slow_operations(con, "completion")
    assert done[["user_name", "latency_ms"]].values.tolist() == [["agent6", 3000.0]]
    assert done["median_ms"].iloc[0] == pytest.approx(14.5)      # 10..18 ms and 3,000 ms
    assert health.slow_operations(con, "completion", floor_ms=5000).empty


def test_events_summary_and_per_agent(con):
    ev = health.events(con)
    counts = dict(zip(*health.summary(ev)[["kind", "count"]].values.T))
    assert counts == {"away": 2, "stalled_connect": 1, "rehandshake": 5, "reconnect_storm": 1,
                      "multiple_clients": 1, "concurrent_clients": 1, "transport_fallback": 1, "server_logout": 2,
                      "http_error": 3, "slow_ack": 1, "slow_completion": 1}
    assert list(ev.columns) == health.EVENT_COLUMNS and ev["ts"].is_monotonic_increasing
    away = ev[(ev["kind"] == "away") & (ev["user_name"] == "agent1")].iloc[0]
    assert away["detail"] == \
        "15.0 s without a connect (maxInterval 10 s), back with a connect to a lost session"
    table = health.per_agent(ev).set_index("user_name")
    assert table.loc["agent1", "total"] == 5 and table.loc["agent4", "rehandshake"] == 3
    assert table.index[0] == "agent1"
    # scoped: one agent, a time window
    only = health.events(con, db.Scope.of(agent="agent6"))
    assert set(only["user_name"]) == {"agent6"} and set(only["kind"]) == {"away", "rehandshake", "server_logout",
                                                                           "slow_completion"}
    window = health.events(con, db.Scope.of("2024-05-06 10:00:15", "2024-05-06 10:00:45"))
    assert set(window["kind"]) == {"multiple_clients", "concurrent_clients", "transport_fallback", "http_error"}
    # the held connects sent in the window and answered after it are not stalled
    assert health.stalled_connects(con, scope=db.Scope.of("2024-05-06 10:00:15", "2024-05-06 10:00:45")).empty


def test_health_figure_and_headline(con, health_capture):
    ev = health.events(con)
    fig = figures.health_timeline(ev)
    names = {t.name for t in fig.data}
    assert names == {health.LABELS[k] for k in ev["kind"].unique()}
    assert set(fig.layout.yaxis.categoryarray) == set(ev["user_name"])
    assert "no desktop trouble" in figures.health_timeline(ev.iloc[0:0]).layout.annotations[0].text
    c = db.open_capture(health_capture)
    try:
        h = headline.compute(c)
    finally:
        c.close()
    line = next(f for f in h.findings if f.section == headline.section("health"))
    assert line.count == len(ev)
    assert line.text.startswith(f"{len(ev)} desktop-health events on 6 agents: ")
    assert "2 × away longer than maxInterval" in line.text and "1 × reconnect storm" in line.text


def test_health_section_in_the_session_explorer():
    nb = _build_notebooks.NOTEBOOKS["session_explorer.ipynb"]
    source = "\n".join(c.source for c in nb.cells)
    assert "## Desktop health" in source and "health.events(" in source and "figures.health_timeline(" in source
    assert headline.SECTIONS["health"] == ("session_explorer", "Desktop health")
