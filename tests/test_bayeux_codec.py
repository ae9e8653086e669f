"""gwsreplay.core.bayeux: codec, channel matching, error strings and the client state machine."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gwsreplay.core.bayeux import (
    BayeuxClientSession,
    BayeuxDecodeError,
    BayeuxError,
    Data,
    NextAction,
    Reply,
    State,
    channel_matches,
    decode,
    decode_lenient,
    decode_raw,
    encode,
    format_error,
    is_meta,
    parse_error,
)

# ---------------------------------------------------------------------- decode / encode

CONNECT_REPLY = {"channel": "/meta/connect", "successful": True, "id": "21",
                 "advice": {"interval": 0, "timeout": 30000, "reconnect": "retry"}}
EVENT = {"channel": "/v2/me/calls", "data": {"messageType": "CallStateChangeMessage"}}


def test_decode_array_and_single_object():
    assert decode(json.dumps([EVENT, CONNECT_REPLY])) == [EVENT, CONNECT_REPLY]
    assert decode(json.dumps(EVENT).encode()) == [EVENT]
    assert decode(b"[]") == []
    assert decode("\ufeff[]".encode("utf-8")) == []  # a BOM is tolerated


@pytest.mark.parametrize("body, fragment", [
    (b"", "invalid JSON"),
    (b"{nope", "invalid JSON"),
    (b"42", "got int"),
    (b'"x"', "got str"),
    (b"[1]", "message 0 is a int"),
    (b'[{"channel":"/a"}, []]', "message 1 is a list"),
    (b"\xff", "not UTF-8"),
])
def test_decode_errors_say_what_is_wrong(body, fragment):
    with pytest.raises(BayeuxDecodeError, match=fragment):
        decode(body)


def test_decode_raw_leaves_elements_alone():
    assert decode_raw(b'[1, {"channel": "/a"}]') == [1, {"channel": "/a"}]
    with pytest.raises(BayeuxDecodeError):
        decode_raw(b"null")


def test_decode_lenient_keeps_complete_leading_messages_of_a_truncated_array():
    body = encode([EVENT, CONNECT_REPLY, EVENT])
    messages, error = decode_lenient(body[:-10])
    assert messages == [EVENT, CONNECT_REPLY]
    assert "kept 2 complete message(s)" in error
    assert decode_lenient(body) == ([EVENT, CONNECT_REPLY, EVENT], None)


@pytest.mark.parametrize("body, expected", [
    (b"", []),
    (b"[", []),
    (b"[]]", []),
    (b'[{"a":1} {"b":2}]', [{"a": 1}]),  # missing comma: stop there
    (b'[1, {"a":1}, "x"]', [{"a": 1}]),  # non-objects are dropped
    (b'{"a":1} trailing', [{"a": 1}]),
    (b'\xff[{"a":1}]', []),
    (b'[{"a":"\xff"}]', [{"a": "\ufffd"}]),
])
def test_decode_lenient_odd_bodies(body, expected):
    messages, error = decode_lenient(body)
    assert messages == expected
    assert error


def test_decode_lenient_survives_deep_nesting():
    messages, error = decode_lenient(b"[" * 100_000)
    assert messages == [] and error


def test_encode_is_compact_utf8():
    assert encode({"channel": "/a", "data": "é"}) == '[{"channel":"/a","data":"é"}]'.encode()
    assert encode(iter([EVENT])) == encode([EVENT])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)
messages = st.lists(st.dictionaries(st.text(), json_values, max_size=5), max_size=5)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_decode_lenient_never_raises(body):
    recovered, error = decode_lenient(body)
    assert all(isinstance(m, dict) for m in recovered)
    assert error is None or isinstance(error, str)


@settings(max_examples=200, deadline=None)
@given(messages)
def test_encode_decode_round_trip(batch):
    body = encode(batch)
    assert decode(body) == batch
    assert decode_lenient(body) == (batch, None)


@settings(max_examples=200, deadline=None)
@given(messages, st.data())
def test_decode_lenient_prefix_of_a_valid_body(batch, data):
    """Any truncation yields a prefix of the original messages."""
    body = encode(batch)
    cut = data.draw(st.integers(0, len(body)))
    recovered, _ = decode_lenient(body[:cut])
    assert recovered == batch[: len(recovered)]


# ---------------------------------------------------------------------- channels and errors


@pytest.mark.parametrize("pattern, channel, expected", [
    ("/v2/me/calls", "/v2/me/calls", True),
    ("/v2/me/calls", "/v2/me/devices", False),
    ("/v2/me/*", "/v2/me/calls", True),
    ("/v2/me/*", "/v2/me/calls/x", False),
    ("/v2/me/*", "/v2/me", False),
    ("/v2/me/*", "/v2/me/", False),
    ("/v2/me/**", "/v2/me/calls", True),
    ("/v2/me/**", "/v2/me/calls/x/y", True),
    ("/v2/me/**", "/v2/me", False),
    ("/v2/*/calls", "/v2/me/calls", True),
    ("/**", "/anything/at/all", True),
    ("/*", "/meta", True),
    ("/*", "/meta/connect", False),
])
def test_channel_matches(pattern, channel, expected):
    assert channel_matches(pattern, channel) is expected


def test_is_meta():
    assert is_meta("/meta/connect") and not is_meta("/v2/me/calls") and not is_meta("/metadata")


@pytest.mark.parametrize("text, expected", [
    ("402::Unknown client", BayeuxError(402, [], "Unknown client")),
    ("402::session_unknown", BayeuxError(402, [], "session_unknown")),
    ("403:x,y:denied", BayeuxError(403, ["x", "y"], "denied")),
    ("403:/v2/other:Forbidden: really", BayeuxError(403, ["/v2/other"], "Forbidden: really")),
    ("402:Unknown client", BayeuxError(402, [], "Unknown client")),
    ("something broke", BayeuxError(None, [], "something broke")),
    ("abc:x:y", BayeuxError(None, [], "abc:x:y")),
    ("", BayeuxError(None, [], "")),
    (None, BayeuxError(None, [], "")),
])
def test_parse_error(text, expected):
    assert parse_error(text) == expected


def test_format_error_round_trips():
    for text in ("402::Unknown client", "403:x,y:denied", "plain"):
        assert str(parse_error(text)) == text
    assert format_error(402, (), "Unknown client") == "402::Unknown client"


# ---------------------------------------------------------------------- BayeuxClientSession


def handshake_reply(request: dict, client_id: str = "c1", **extra) -> dict:
    return {"channel": "/meta/handshake", "id": request["id"], "successful": True, "clientId": client_id,
            "version": "1.0", "supportedConnectionTypes": ["long-polling"],
            "advice": {"reconnect": "retry", "interval": 0, "timeout": 30000}, **extra}


def reply_to(request: dict, **fields) -> dict:
    return {"channel": request["channel"], "id": request["id"], **fields}


def connected_session() -> BayeuxClientSession:
    session = BayeuxClientSession()
    session.receive([handshake_reply(session.handshake())])
    return session


def test_messages_are_built_with_counter_ids():
    session = BayeuxClientSession(connection_type="websocket")
    hs = session.handshake(ext={"ack": True})
    assert hs == {"channel": "/meta/handshake", "version": "1.0", "minimumVersion": "1.0",
                  "supportedConnectionTypes": ["websocket"], "ext": {"ack": True}, "id": "1"}
    assert session.state is State.HANDSHAKING
    session.receive([handshake_reply(hs)])
    assert session.state is State.CONNECTED and session.client_id == "c1"
    assert session.connect() == {"channel": "/meta/connect", "connectionType": "websocket", "id": "2",
                                 "clientId": "c1"}
    assert session.subscribe("/v2/me/*")["id"] == "3"
    assert session.unsubscribe("/v2/me/*")["subscription"] == "/v2/me/*"
    assert session.disconnect() == {"channel": "/meta/disconnect", "id": "5", "clientId": "c1"}
    assert session.state is State.DISCONNECTED
    assert session.next_action() == NextAction("stop")


def test_receive_returns_replies_and_data_in_order():
    session = connected_session()
    connect = session.connect()
    events = session.receive([EVENT, reply_to(connect, successful=True)])
    assert isinstance(events[0], Data) and events[0].data == EVENT["data"]
    assert isinstance(events[1], Reply) and events[1].successful and events[1].request == connect
    assert events[1].id == connect["id"]
    assert session.next_action() == NextAction("connect", 0.0)


def test_advice_interval_and_newer_advice_wins():
    session = connected_session()
    connect = session.connect()
    session.receive([reply_to(connect, successful=True, advice={"interval": 2500})])
    assert session.advice == {"reconnect": "retry", "interval": 2500, "timeout": 30000}
    assert session.next_action() == NextAction("connect", 2.5)


def test_402_rehandshakes_and_resubscribes():
    session = connected_session()
    session.receive([reply_to(session.subscribe("/v2/me/*"), successful=True, subscription="/v2/me/*")])
    session.receive([reply_to(session.subscribe("/notifications/services"), successful=True)])
    assert session.subscriptions == {"/v2/me/*", "/notifications/services"}

    connect = session.connect()
    session.receive([reply_to(connect, successful=False, error="402::Unknown client",
                              advice={"reconnect": "handshake", "interval": 0})])
    assert session.state is State.UNCONNECTED and session.client_id is None
    assert session.subscriptions == set()
    assert session.next_action() == NextAction("handshake", 0.0)

    session.receive([handshake_reply(session.handshake(), client_id="c2")])
    resubscribe = session.take_outgoing()
    assert [(m["subscription"], m["clientId"]) for m in resubscribe] == [
        ("/notifications/services", "c2"), ("/v2/me/*", "c2")]
    assert session.take_outgoing() == []
    session.receive([reply_to(m, successful=True) for m in resubscribe])
    assert session.subscriptions == {"/v2/me/*", "/notifications/services"}


def test_402_on_any_reply_forces_a_handshake():
    session = connected_session()
    session.receive([reply_to(session.subscribe("/v2/me/*"), successful=False, error="402::session_unknown")])
    assert session.next_action().kind == "handshake"
    assert session.wanted == {"/v2/me/*"}  # restored after the new handshake


def test_stale_reply_for_an_old_client_id_is_ignored():
    session = connected_session()
    old_connect = session.connect()
    session.receive([handshake_reply(session.handshake(), client_id="c2")])
    session.receive([reply_to(old_connect, successful=False, error="402::Unknown client")])
    assert session.state is State.CONNECTED and session.client_id == "c2"


def test_reconnect_none_stops():
    session = connected_session()
    session.receive([reply_to(session.connect(), successful=False, advice={"reconnect": "none"})])
    assert session.state is State.DISCONNECTED and session.next_action().kind == "stop"


def test_refused_handshake():
    session = BayeuxClientSession()
    session.receive([{"channel": "/meta/handshake", "id": session.handshake()["id"], "successful": False,
                      "error": "403::Handshake denied", "advice": {"reconnect": "none"}}])
    assert session.next_action().kind == "stop"

    session = BayeuxClientSession(backoff_increment=0.5)
    session.receive([{"channel": "/meta/handshake", "id": session.handshake()["id"], "successful": False}])
    assert session.next_action() == NextAction("handshake", 0.5)


def test_failed_connect_backs_off_then_recovers():
    session = connected_session()
    session.receive([reply_to(session.connect(), successful=False, error="500::oops")])
    session.transport_failed()
    assert session.next_action() == NextAction("connect", 2.0)
    session.receive([reply_to(session.connect(), successful=True)])
    assert session.next_action() == NextAction("connect", 0.0)


def test_backoff_is_capped_and_a_lost_handshake_is_retried():
    session = BayeuxClientSession(backoff_increment=10, max_backoff=25)
    session.handshake()
    for _ in range(5):
        session.transport_failed()
    assert session.state is State.UNCONNECTED
    assert session.next_action() == NextAction("handshake", 25)


def test_forbidden_subscription_is_not_retried():
    session = connected_session()
    session.receive([reply_to(session.subscribe("/v2/other"), successful=False, error="403::Forbidden")])
    assert session.wanted == set() and session.subscriptions == set()


def test_unsubscribe_forgets_the_channel():
    session = connected_session()
    session.receive([reply_to(session.subscribe("/v2/me/*"), successful=True)])
    session.receive([reply_to(session.unsubscribe("/v2/me/*"), successful=True)])
    assert session.wanted == set() and session.subscriptions == set()


def test_prepare_restamps_recorded_messages():
    """A replayer sends recorded messages; they get this session's clientId and ids and are tracked."""
    session = connected_session()
    recorded = {"channel": "/meta/subscribe", "clientId": "recorded-id", "id": "77",
                "subscription": ["/v2/me/calls", "/v2/me/devices"]}
    sent = session.prepare(recorded)
    assert sent["clientId"] == "c1" and sent["id"] == "2" and recorded["id"] == "77"
    assert session.wanted == {"/v2/me/calls", "/v2/me/devices"}
    recorded_handshake = {"channel": "/meta/handshake", "clientId": "x", "supportedConnectionTypes": ["websocket"]}
    assert "clientId" not in session.prepare(recorded_handshake)
    assert session.state is State.HANDSHAKING


def test_publish_acknowledgement_is_a_reply_not_data():
    session = connected_session()
    [event] = session.receive([{"channel": "/service/x", "id": "9", "successful": True}])
    assert isinstance(event, Reply)
