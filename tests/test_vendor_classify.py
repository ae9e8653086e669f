"""Every notification the vendor printed (tests/vendor/corpus-*.json) classified, Python and SQL alike.

The expected values are read from the sample itself (its messageType, its call's id
and connId, its device's userState...), not from our classifier: the vendor's texts
are the oracle. The SQL path (the writer's) must give the same row as the Python one.
"""

from __future__ import annotations

import re

import pytest
from test_capture_classify import assert_sql_matches_python, sql_classify
from vendor_har import as_bayeux, notifications

from gwsreplay.core import notifications as N
from gwsreplay.core.bayeux_classify import classify_bayeux, rule_for
from gwsreplay.core.uris import id_from_uri, jtext

VERSIONS = ("8.6", "8.5.2")
HEX16 = re.compile(r"[0-9a-fA-F]{16}")
#: message types the vendor prints that are answers to UCS/contact requests, not about one resource
#: (and one typo, 'test_accept ', in the 8.6 SMS Accept sample): no classification rule on purpose
NOT_RESOURCES = {"GetInteractionsHistoryMessage", "UcsOperationResponse", "GetInteractionContentMessage",
                 "createInteractionResponse", "test_accept "}


def _messages(version: str) -> list[tuple[str, dict]]:
    return [(r["id"], as_bayeux(r["body"])) for r in notifications(version)]


def _expected(msg: dict) -> dict:
    """What the sample says about itself, field by field (only the fields it determines)."""
    d = msg.get("data") or {}
    mt = d.get("messageType")
    out = {"message_type": jtext(mt), "notification_type": jtext(d.get("notificationType")),
           "reference_id": jtext(d.get("referenceId"))}
    if mt == "CallStateChangeMessage":
        call = d.get("call") if isinstance(d.get("call"), dict) else {}
        cid = jtext(call.get("id")) or jtext(d.get("callId"))
        conn = jtext(call.get("connId")) or (cid if cid and HEX16.fullmatch(cid) else None)
        out.update(resource_type="call", resource_id=cid, call_id=cid, conn_id=conn,
                   resource_state=jtext(call.get("state")))
    elif mt == "DeviceStateChangeMessage":
        devices = d.get("devices") or [{}]
        dev = devices[0] if isinstance(devices[0], dict) else {}
        user_state = dev.get("userState") if isinstance(dev.get("userState"), dict) else {}
        did = jtext(dev.get("id")) or jtext(d.get("deviceId"))
        out.update(resource_type="device", resource_id=did, device_id=did, user_state=jtext(user_state.get("state")))
    elif mt in N.ERROR_MESSAGES:
        call_ref = id_from_uri(d.get("callUri"))
        conn = call_ref if call_ref and HEX16.fullmatch(call_ref) else None
        out.update(resource_state="Error", error_message=jtext(d.get("errorMessage")),
                   device_id=id_from_uri(d.get("deviceUri")), conn_id=conn,
                   call_id=None if conn else call_ref,
                   resource_type="call" if call_ref else ("device" if d.get("deviceUri") else None))
    elif mt == "ChannelStateChangeMessageV2":
        ch = (d.get("channels") or [{}])[0]
        out.update(resource_type="channel", resource_id=jtext(ch.get("channel")),
                   user_state=jtext((ch.get("userState") or {}).get("state")))
    elif mt in N.MEDIA_MESSAGES:
        rtype, keys = N.MEDIA_MESSAGES[mt]
        obj = next((d[k] for k in keys if isinstance(d.get(k), dict)), None)
        out["resource_type"] = rtype
        if obj is not None and obj.get("id") is not None:
            out.update(resource_id=jtext(obj["id"]), resource_state=jtext(obj.get("state")))
        if d.get("notificationType") == N.ERROR_NOTIFICATION:
            out["error_message"] = jtext(d.get("errorMessage"))
    elif mt == "ServiceStateChangeMessage":
        service = d.get("service") or {}
        out.update(resource_type="service", resource_state=jtext(service.get("state")))
    return out


@pytest.mark.parametrize("version", VERSIONS)
def test_every_vendor_notification_is_classified(version):
    checked = 0
    for rid, msg in _messages(version):
        mt = (msg.get("data") or {}).get("messageType")
        c = classify_bayeux(msg)
        if not isinstance(mt, str):
            assert c.message_type is None, rid
            continue
        if mt in NOT_RESOURCES:
            assert rule_for(mt, msg.get("channel")) is None, rid
            continue
        assert rule_for(mt, msg.get("channel")) is not None, f"{rid}: no rule for {mt}"
        assert c.resource_type is not None, f"{rid}: {mt} not classified"
        for field, value in _expected(msg).items():
            assert getattr(c, field) == value, (rid, field, getattr(c, field), value)
        checked += 1
    assert checked >= (300 if version == "8.6" else 75)


@pytest.mark.parametrize("version", VERSIONS)
def test_sql_classifies_the_vendor_notifications_like_python(version):
    messages = [m for _, m in _messages(version)]
    assert_sql_matches_python(messages)
    rows = sql_classify(messages)
    # and the SQL agrees with the sample itself, not only with Python
    for (rid, msg), row in zip(_messages(version), rows):
        mt = (msg.get("data") or {}).get("messageType")
        if isinstance(mt, str) and mt not in NOT_RESOURCES:
            for field, value in _expected(msg).items():
                assert row[field] == value, (rid, field, row[field], value)


@pytest.mark.parametrize("version, line, conn", [("8.6", 4228, "0071023821aec021"),
                                                 ("8.5.2", 1746, "0071023821aec021")])
def test_call_error_names_the_connid_not_the_call_id(version, line, conn):
    """8.6 L4217/8.5.2 L1748: callUri ends in the T-Server connId; the call id stays empty."""
    errors = [(rid, m) for rid, m in _messages(version) if (m.get("data") or {}).get("messageType") == "ErrorMessage"]
    assert len(errors) == 2
    with_call = [m for _, m in errors if "callUri" in m["data"]]
    assert len(with_call) == 1
    c = classify_bayeux(with_call[0])
    assert (c.conn_id, c.call_id, c.resource_type, c.resource_id) == (conn, None, "call", conn)
    assert c.error_message == "Incorrect object state"
    assert c.device_id.startswith("ef")
    device_only = [m for _, m in errors if "callUri" not in m["data"]]
    d = classify_bayeux(device_only[0])
    assert (d.resource_type, d.conn_id, d.call_id, d.error_message) == ("device", None, None, "Invalid Called Dn")


@pytest.mark.parametrize("mt", ["DeviceStateErrorMessage", "CallStateErrorMessage"])
def test_852_error_message_types_have_a_rule(mt):
    """8.5.2 L10455 names them without a sample: read like ErrorMessage (the choice is in docs/schema.md)."""
    msgs = [{"channel": "/v2/me/calls", "data": {"messageType": mt, "callUri": "http://h/api/v2/calls/0071023821aec021",
                                                 "deviceUri": "http://h/api/v2/devices/d1", "errorMessage": "boom"}},
            {"channel": "/v2/me/devices", "data": {"messageType": mt, "deviceId": "d1", "errorMessage": "x"}}]
    first, second = (classify_bayeux(m) for m in msgs)
    assert (first.resource_type, first.conn_id, first.device_id, first.resource_state, first.error_message) == \
        ("call", "0071023821aec021", "d1", "Error", "boom")
    assert (second.resource_type, second.resource_id, second.error_message) == ("device", "d1", "x")
    assert_sql_matches_python(msgs)
