"""Bayeux message explosion and classification in DuckDB (the writer's hot path).

The writer thread stages one row per Bayeux *body* (a long-poll request or
response, or a WebSocket frame) as an Arrow table ``_bayeux_bodies`` and this SQL
turns it into one ``bayeux_messages`` row per array element: it unnests the array,
parses every message once with ``json_transform`` and classifies it with the same
rules as :func:`gws_capture.classify.classify_bayeux` (a differential test keeps the
two in step). Doing this in DuckDB's C++ instead of per-message Python is what lets
the writer ingest well over 100,000 messages/s.

Staged columns: first_id, pos0, n, ts (µs), direction, transport, exchange_id,
flow_id, frame_index, user_name, session_key, body (a JSON array of objects).
Message ``i`` of a body gets id ``first_id + i`` and position ``pos0 + i``.
"""

from __future__ import annotations

import pyarrow as pa

STAGE_COLUMNS: list[tuple[str, str]] = [
    ("first_id", "BIGINT"),
    ("pos0", "INTEGER"),
    ("n", "INTEGER"),
    ("ts", "TIMESTAMP"),
    ("direction", "VARCHAR"),
    ("transport", "VARCHAR"),
    ("exchange_id", "BIGINT"),
    ("flow_id", "VARCHAR"),
    ("frame_index", "INTEGER"),
    ("user_name", "VARCHAR"),
    ("session_key", "VARCHAR"),
    ("body", "VARCHAR"),
]

_OBJ = '{"id":"VARCHAR","uri":"VARCHAR","path":"VARCHAR","state":"VARCHAR"}'
_REC = '{"recordHandle":"VARCHAR","campaignName":"VARCHAR","name":"VARCHAR","state":"VARCHAR","status":"VARCHAR"}'
_US = '{"state":"VARCHAR"}'

MESSAGE_STRUCTURE = (
    '{"channel":"VARCHAR","clientId":"VARCHAR","id":"VARCHAR","successful":"JSON","error":"VARCHAR",'
    '"advice":"JSON","connectionType":"VARCHAR","subscription":"VARCHAR","ext":"JSON","data":{'
    '"messageType":"VARCHAR","notificationType":"VARCHAR","referenceId":"VARCHAR",'
    '"call":{"id":"VARCHAR","state":"VARCHAR","connId":"VARCHAR","deviceUri":"VARCHAR"},'
    '"callId":"VARCHAR","deviceId":"VARCHAR",'
    f'"devices":[{{"id":"VARCHAR","userState":{_US}}}],'
    '"deviceUri":"VARCHAR","callUri":"VARCHAR","errorMessage":"VARCHAR",'
    '"service":{"id":"VARCHAR","state":"VARCHAR","type":"VARCHAR"},'
    f'"channels":[{{"channel":"VARCHAR","userState":{_US}}}],'
    '"id":"VARCHAR","stateResource":"VARCHAR","action":"VARCHAR",'
    f'"chat":{_OBJ},"email":{_OBJ},"facebook":{_OBJ},"facebooksession":{_OBJ},"facebooksessions":{_OBJ},'
    f'"tweet":{_OBJ},"twitter":{_OBJ},"openmedia":{_OBJ},"interaction":{_OBJ},'
    f'"workitem":{_OBJ},"smssession":{_OBJ},"smsession":{_OBJ},"imSession":{_OBJ},'
    '"imSessionPath":"VARCHAR","imSessionUri":"VARCHAR","chatUri":"VARCHAR","chatPath":"VARCHAR",'
    '"facebooksessionUri":"VARCHAR","facebooksessionPath":"VARCHAR","smssessionUri":"VARCHAR",'
    '"smsessionUri":"VARCHAR","smssessionPath":"VARCHAR",'
    f'"record":{_REC},"campaign":{_REC}'
    '}}'
)


_KNOWN_NULL = ('{"channel":null,"clientId":null,"id":null,"successful":null,"error":null,"advice":null,'
               '"connectionType":null,"subscription":null,"ext":null,"data":null}')


def _idu(expr: str) -> str:
    """SQL for gws_capture.classify.id_from_uri."""
    return f"url_decode(nullif(regexp_extract({expr}, '/([^/?#]+)/?(?:[?#].*)?$', 1), ''))"


def _media(keys: list[str], field: str) -> str:
    if field == "id":
        parts = []
        for k in keys:
            parts += [f"d.{k}.id", _idu(f"d.{k}.uri"), _idu(f"d.{k}.path")]
        return "coalesce(" + ", ".join(parts) + ")"
    return "coalesce(" + ", ".join(f"d.{k}.{field}" for k in keys) + ")"


# messageType -> keys holding the interaction (same table as classify._MEDIA_MESSAGES)
MEDIA = {
    "ChatStateChangeMessage": ("chat", ["chat"]),
    "EmailStateChangeMessage": ("email", ["email"]),
    "FacebookStateChangeMessage": ("facebook", ["facebook"]),
    "FacebooksessionStateChangeMessage": ("facebooksession", ["facebooksession", "facebooksessions"]),
    "facebooksessionStateChangeMessage": ("facebooksession", ["facebooksession", "facebooksessions"]),
    "TweetStateChangeMessage": ("tweet", ["tweet", "twitter"]),
    "TwitterStateChangeMessage": ("tweet", ["twitter", "tweet"]),
    "OpenmediaStateChangeMessage": ("openmedia", ["openmedia", "interaction"]),
    "WorkitemStateChangeMessage": ("workitem", ["workitem"]),
    "SMSsessionStateChangeMessage": ("smsession", ["smssession", "smsession"]),
    "IMSessionStateChangeMessage": ("im-session", ["imSession"]),
}
LOG_KEYS = {
    "facebooksession": ["facebooksessionUri", "facebooksessionPath"],
    "smsession": ["smssessionUri", "smsessionUri", "smssessionPath"],
    "chat": ["chatUri", "chatPath"],
}


def _build_sql() -> str:
    kind_cases = [
        "WHEN mt = 'CallStateChangeMessage' THEN 'call'",
        "WHEN mt = 'DeviceStateChangeMessage' THEN 'device'",
        "WHEN mt = 'ErrorMessage' THEN 'error'",
        "WHEN mt = 'ServiceStateChangeMessage' THEN 'service'",
        "WHEN mt = 'ChannelStateChangeMessageV2' OR channel = '/v2/me/channels' THEN 'channel'",
        "WHEN mt IN ('WorkbinSubscriptionStateChangeMessage', 'WorkbinStateChangeMessage', "
        "'WorkbinStatsMessage') THEN 'workbin'",
    ]
    for mt in MEDIA:
        kind_cases.append(f"WHEN mt = '{mt}' THEN 'media:{mt}'")
    kind_cases += [
        "WHEN mt = 'IMLogUpdateMessage' THEN 'imlog'",
        "WHEN mt = 'MessageLogUpdated' THEN 'log'",
        "WHEN mt = 'OutboundRecordMessage' THEN 'outrec'",
        "WHEN mt = 'OutboundCampaignMessage' THEN 'outcamp'",
        "WHEN mt = 'DeviceUserEventMessage' THEN 'userevent'",
    ]
    kind = "CASE WHEN NOT coalesce(starts_with(CAST(data_json AS VARCHAR), '{'), false) THEN NULL " + " ".join(kind_cases) + " END"

    log_type = ("CASE WHEN d.facebooksessionUri IS NOT NULL OR d.facebooksessionPath IS NOT NULL THEN 'facebooksession' "
                "WHEN d.smssessionUri IS NOT NULL OR d.smsessionUri IS NOT NULL OR d.smssessionPath IS NOT NULL "
                "THEN 'smsession' WHEN channel = '/v2/me/facebooksession' THEN 'facebooksession' "
                "WHEN channel = '/v2/me/smsessions' THEN 'smsession' ELSE 'chat' END")
    log_id = "CASE log_type " + " ".join(
        f"WHEN '{t}' THEN coalesce({', '.join(_idu('d.' + k) for k in keys)})" for t, keys in LOG_KEYS.items()
    ) + " END"

    rtype = ["CASE kind",
             "WHEN 'call' THEN 'call' WHEN 'device' THEN 'device' WHEN 'userevent' THEN 'device'",
             "WHEN 'error' THEN CASE WHEN err_call IS NOT NULL THEN 'call' WHEN err_dev IS NOT NULL THEN 'device' END",
             "WHEN 'service' THEN 'service' WHEN 'channel' THEN 'channel' WHEN 'workbin' THEN 'workbin'",
             "WHEN 'imlog' THEN 'im-session' WHEN 'log' THEN log_type",
             "WHEN 'outrec' THEN 'outbound-record' WHEN 'outcamp' THEN 'outbound-campaign'"]
    rid = ["CASE kind",
           "WHEN 'call' THEN call_id",
           "WHEN 'device' THEN coalesce(d.devices[1].id, d.deviceId)",
           "WHEN 'userevent' THEN d.deviceId",
           "WHEN 'error' THEN coalesce(err_call, err_dev)",
           "WHEN 'service' THEN coalesce(d.service.id, d.service.type)",
           "WHEN 'channel' THEN d.channels[1].channel",
           "WHEN 'workbin' THEN d.id",
           f"WHEN 'imlog' THEN coalesce({_idu('d.imSessionPath')}, {_idu('d.imSessionUri')})",
           f"WHEN 'log' THEN {log_id}",
           "WHEN 'outrec' THEN coalesce(d.record.recordHandle, d.record.campaignName, d.record.name)",
           "WHEN 'outcamp' THEN coalesce(d.campaign.recordHandle, d.campaign.campaignName, d.campaign.name)"]
    rstate = ["CASE kind",
              "WHEN 'call' THEN d.call.state",
              "WHEN 'device' THEN d.devices[1].userState.state",
              "WHEN 'error' THEN 'Error'",
              "WHEN 'service' THEN d.service.state",
              "WHEN 'channel' THEN d.channels[1].userState.state",
              "WHEN 'workbin' THEN coalesce(d.stateResource, d.action)",
              "WHEN 'outrec' THEN coalesce(d.record.state, d.record.status)",
              "WHEN 'outcamp' THEN coalesce(d.campaign.state, d.campaign.status)"]
    for mt, (t, keys) in MEDIA.items():
        rtype.append(f"WHEN 'media:{mt}' THEN '{t}'")
        rid.append(f"WHEN 'media:{mt}' THEN {_media(keys, 'id')}")
        rstate.append(f"WHEN 'media:{mt}' THEN {_media(keys, 'state')}")
    rtype.append("END")
    rid.append("END")
    rstate.append("END")

    return f"""
INSERT INTO bayeux_messages BY NAME
WITH staged AS (
    SELECT * EXCLUDE (body), CAST(body AS JSON[]) AS l FROM _bayeux_bodies
), exploded AS (
    SELECT * EXCLUDE (l), unnest(l) AS m, unnest(range(len(l))) AS i FROM staged
), parsed AS (
    SELECT *, json_transform(m, '{MESSAGE_STRUCTURE}') AS s, json_extract(m, '$.data') AS data_json
    FROM exploded
), named AS (
    SELECT *, s.data AS d, s.data.messageType AS mt, s.channel AS channel FROM parsed
), kinds AS (
    SELECT *, {kind} AS kind,
           coalesce(d.call.id, d.callId) AS call_id,
           {_idu('d.callUri')} AS err_call,
           {_idu('d.deviceUri')} AS err_dev,
           {log_type} AS log_type
    FROM named
)
SELECT
    first_id + i AS id,
    ts, direction, transport, exchange_id, flow_id, frame_index,
    CAST(pos0 + i AS INTEGER) AS position,
    channel,
    s.clientId AS client_id,
    s.id AS msg_id,
    CASE CAST(s.successful AS VARCHAR) WHEN 'true' THEN true WHEN 'false' THEN false END AS successful,
    s.error AS error,
    s.advice AS advice,
    s.connectionType AS connection_type,
    s.subscription AS subscription,
    s.ext AS ext,
    CASE WHEN starts_with(channel, '/meta/') THEN nullif(json_merge_patch(m, '{_KNOWN_NULL}'), '{{}}') END AS extra,
    data_json AS data,
    mt AS message_type,
    d.notificationType AS notification_type,
    {' '.join(rtype)} AS resource_type,
    {' '.join(rid)} AS resource_id,
    {' '.join(rstate)} AS resource_state,
    CASE kind WHEN 'call' THEN call_id WHEN 'error' THEN err_call END AS call_id,
    CASE WHEN kind = 'call' THEN coalesce(d.call.connId,
         CASE WHEN regexp_full_match(call_id, '[0-9a-fA-F]{{16}}') THEN call_id END) END AS conn_id,
    CASE kind WHEN 'call' THEN {_idu('d.call.deviceUri')}
              WHEN 'device' THEN coalesce(d.devices[1].id, d.deviceId)
              WHEN 'userevent' THEN d.deviceId
              WHEN 'error' THEN err_dev END AS device_id,
    CASE kind WHEN 'device' THEN d.devices[1].userState.state
              WHEN 'channel' THEN d.channels[1].userState.state END AS user_state,
    d.referenceId AS reference_id,
    CASE WHEN kind = 'error' OR (starts_with(kind, 'media:') AND d.notificationType = 'Error')
         THEN d.errorMessage END AS error_message,
    user_name, session_key
FROM kinds
"""


INSERT_SQL = _build_sql()


def stage_table(rows: list[tuple]) -> pa.Table:
    from .writer import rows_to_table

    return rows_to_table(STAGE_COLUMNS, rows)
