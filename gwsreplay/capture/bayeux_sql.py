"""Bayeux message explosion and classification in DuckDB (the writer's hot path).

The writer thread stages one row per Bayeux *body* (a long-poll request or
response, or a WebSocket frame) as an Arrow table ``_bayeux_bodies`` and this SQL
turns it into one ``bayeux_messages`` row per array element: it unnests the array,
parses every message once with ``json_transform`` and classifies it with the same
rules as :func:`gwsreplay.capture.classify.classify_bayeux` (a differential test keeps the
two in step). Doing this in DuckDB's C++ instead of per-message Python is what lets
the writer ingest well over 100,000 messages/s.

Staged columns: seq (row number in the batch), pos0, ts (µs), direction, transport,
exchange_id, flow_id, frame_index, user_name, session_key, body (a JSON array of
objects, not parsed in Python on the fast path). Message ``i`` of a body gets position
``pos0 + i`` and id ``$base + rank in (seq, i) order`` (the writer passes ``base``).
"""

from __future__ import annotations

import pyarrow as pa

from gwsreplay.capture.classify import ITEM_FIELDS, WORKBIN_ITEMS
from gwsreplay.capture.schema import BAYEUX_MESSAGES

STAGE_COLUMNS: list[tuple[str, str]] = [
    ("seq", "BIGINT"),
    ("pos0", "INTEGER"),
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

ENVELOPE = ('{"channel":"VARCHAR","clientId":"VARCHAR","id":"VARCHAR","successful":"JSON","error":"VARCHAR",'
            '"advice":"JSON","connectionType":"VARCHAR","subscription":"VARCHAR","ext":"JSON","data":"JSON"}')
_KNOWN_NULL = ('{"channel":null,"clientId":null,"id":null,"successful":null,"error":null,"advice":null,'
               '"connectionType":null,"subscription":null,"ext":null,"data":null}')

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
LOG_PATHS = ["facebooksessionUri", "facebooksessionPath", "smssessionUri", "smsessionUri", "smssessionPath",
             "chatUri", "chatPath"]
LOG_KEYS = {
    "facebooksession": ["facebooksessionUri", "facebooksessionPath"],
    "smsession": ["smssessionUri", "smsessionUri", "smssessionPath"],
    "chat": ["chatUri", "chatPath"],
}

# per kind: the data paths read (one json_extract_string call, one parse, per message)
PATHS: dict[str, list[str]] = {
    "call": ["call.id", "call.state", "call.connId", "call.deviceUri", "callId"],
    "device": ["devices[0].id", "devices[0].userState.state", "deviceId"],
    "error": ["callUri", "deviceUri", "errorMessage"],
    "service": ["service.id", "service.type", "service.state"],
    "channel": ["channels[0].channel", "channels[0].userState.state"],
    "workbin": ["id", "stateResource", "action"]
               + [f"{k}StateResourceV2.{f}" for k in WORKBIN_ITEMS for f in ("id", "uri", "path", "state")],
    "imlog": ["imSessionPath", "imSessionUri"],
    "log": LOG_PATHS,
    "outrec": ["record.recordHandle", "record.campaignName", "record.name", "record.state", "record.status"],
    "outcamp": ["campaign.recordHandle", "campaign.campaignName", "campaign.name", "campaign.state",
                "campaign.status"],
    "userevent": ["deviceId"],
    "mmevent": ["topic", "stateResource"],
    "opresp": ["errorMessage"],
}
for _mt, (_t, _keys) in MEDIA.items():
    PATHS["media:" + _mt] = [f"{k}.{f}" for k in _keys for f in ("id", "uri", "path", "state")] + ["errorMessage"]


def _idu(expr: str) -> str:
    """SQL for gwsreplay.capture.classify.id_from_uri."""
    return f"url_decode(nullif(regexp_extract({expr}, '/([^/?#]+)/?(?:[?#].*)?$', 1), ''))"


def _v(kind: str, path: str) -> str:
    return f"v[{PATHS[kind].index(path) + 1}]"


#: The item columns (the interaction inside a WorkbinStateChangeMessage) this capture schema has:
#: classify.ITEM_FIELDS once gwsreplay.capture/schema.py declares them, none before.
ITEM_COLUMNS: tuple[str, ...] = tuple(f for f in ITEM_FIELDS if f in dict(BAYEUX_MESSAGES))


def _item_sql() -> dict[str, str]:
    """SQL for classify's item_type / item_id / item_state (WorkbinStateChangeMessage only)."""
    keys = [k + "StateResourceV2" for k in WORKBIN_ITEMS]
    is_item = "kind = 'workbin' AND mt = 'WorkbinStateChangeMessage'"
    item_type = "CASE " + " ".join(f"WHEN json_type(data_json, '$.{k}') = 'OBJECT' THEN '{WORKBIN_ITEMS[k[:-15]]}'"
                                   for k in keys) + " END"
    ids = []
    for k in keys:
        ids += [_v("workbin", f"{k}.id"), _idu(_v("workbin", f"{k}.uri")), _idu(_v("workbin", f"{k}.path"))]
    return {
        "item_type": f"CASE WHEN {is_item} THEN {item_type} END",
        "item_id": f"CASE WHEN {is_item} THEN coalesce({', '.join(ids)}) END",
        "item_state": f"CASE WHEN {is_item} THEN coalesce({', '.join(_v('workbin', k + '.state') for k in keys)}) END",
    }


def _build_sql(item_columns: tuple[str, ...] = ()) -> str:
    kind_cases = [
        "WHEN h IS NULL THEN NULL",
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
        "WHEN mt IN ('MultimediaEventNotificationMessage', 'MultimediaEventSubscriptionStateChangeMessage') "
        "THEN 'mmevent'",
        "WHEN mt IN ('TwitterOperationResponse', 'TweetOperationResponse') THEN 'opresp'",
    ]
    kind = "CASE " + " ".join(kind_cases) + " END"
    values = "CASE kind " + " ".join(
        f"WHEN '{k}' THEN json_extract_string(data_json, [{', '.join(repr('$.' + p) for p in paths)}])"
        for k, paths in PATHS.items()) + " END"

    lv = lambda p: _v("log", p)  # noqa: E731
    log_type = (f"CASE WHEN {lv('facebooksessionUri')} IS NOT NULL OR {lv('facebooksessionPath')} IS NOT NULL "
                "THEN 'facebooksession' "
                f"WHEN {lv('smssessionUri')} IS NOT NULL OR {lv('smsessionUri')} IS NOT NULL "
                f"OR {lv('smssessionPath')} IS NOT NULL THEN 'smsession' "
                "WHEN channel = '/v2/me/facebooksession' THEN 'facebooksession' "
                "WHEN channel = '/v2/me/smsessions' THEN 'smsession' ELSE 'chat' END")
    log_id = "CASE log_type " + " ".join(
        f"WHEN '{t}' THEN coalesce({', '.join(_idu(lv(k)) for k in keys)})" for t, keys in LOG_KEYS.items()
    ) + " END"

    rtype = ["CASE kind",
             "WHEN 'call' THEN 'call' WHEN 'device' THEN 'device' WHEN 'userevent' THEN 'device'",
             "WHEN 'error' THEN CASE WHEN err_call IS NOT NULL THEN 'call' WHEN err_dev IS NOT NULL THEN 'device' END",
             "WHEN 'service' THEN 'service' WHEN 'channel' THEN 'channel' WHEN 'workbin' THEN 'workbin'",
             "WHEN 'imlog' THEN 'im-session' WHEN 'log' THEN log_type",
             "WHEN 'outrec' THEN 'outbound-record' WHEN 'outcamp' THEN 'outbound-campaign'",
             "WHEN 'mmevent' THEN 'multimediaevent' WHEN 'opresp' THEN 'tweet'"]
    rid = ["CASE kind",
           "WHEN 'call' THEN call_id",
           f"WHEN 'device' THEN coalesce({_v('device', 'devices[0].id')}, {_v('device', 'deviceId')})",
           f"WHEN 'userevent' THEN {_v('userevent', 'deviceId')}",
           "WHEN 'error' THEN coalesce(err_call, err_dev)",
           f"WHEN 'service' THEN coalesce({_v('service', 'service.id')}, {_v('service', 'service.type')})",
           f"WHEN 'channel' THEN {_v('channel', 'channels[0].channel')}",
           f"WHEN 'workbin' THEN {_v('workbin', 'id')}",
           f"WHEN 'imlog' THEN coalesce({_idu(_v('imlog', 'imSessionPath'))}, {_idu(_v('imlog', 'imSessionUri'))})",
           f"WHEN 'log' THEN {log_id}",
           f"WHEN 'mmevent' THEN {_v('mmevent', 'topic')}"]
    rstate = ["CASE kind",
              f"WHEN 'call' THEN {_v('call', 'call.state')}",
              f"WHEN 'device' THEN {_v('device', 'devices[0].userState.state')}",
              "WHEN 'error' THEN 'Error'",
              f"WHEN 'service' THEN {_v('service', 'service.state')}",
              f"WHEN 'channel' THEN {_v('channel', 'channels[0].userState.state')}",
              f"WHEN 'workbin' THEN coalesce({_v('workbin', 'stateResource')}, {_v('workbin', 'action')})",
              f"WHEN 'mmevent' THEN {_v('mmevent', 'stateResource')}"]
    for k, rec in (("outrec", "record"), ("outcamp", "campaign")):
        rid.append(f"WHEN '{k}' THEN coalesce({_v(k, rec + '.recordHandle')}, {_v(k, rec + '.campaignName')}, "
                   f"{_v(k, rec + '.name')})")
        rstate.append(f"WHEN '{k}' THEN coalesce({_v(k, rec + '.state')}, {_v(k, rec + '.status')})")
    for mt, (t, keys) in MEDIA.items():
        k = "media:" + mt
        ids = []
        for key in keys:
            ids += [_v(k, f"{key}.id"), _idu(_v(k, f"{key}.uri")), _idu(_v(k, f"{key}.path"))]
        rtype.append(f"WHEN '{k}' THEN '{t}'")
        rid.append(f"WHEN '{k}' THEN coalesce({', '.join(ids)})")
        rstate.append(f"WHEN '{k}' THEN coalesce({', '.join(_v(k, key + '.state') for key in keys)})")
    for lst in (rtype, rid, rstate):
        lst.append("END")
    media_err = " ".join(f"WHEN 'media:{mt}' THEN {_v('media:' + mt, 'errorMessage')}" for mt in MEDIA)
    items = _item_sql()
    item_select = "".join(f"\n    {items[c]} AS {c}," for c in item_columns)

    return f"""
INSERT INTO bayeux_messages BY NAME
WITH staged AS (
    SELECT * EXCLUDE (body), CAST(body AS JSON[]) AS l FROM _bayeux_bodies
), exploded AS (
    SELECT * EXCLUDE (l), unnest(l) AS m, unnest(range(len(l))) AS i FROM staged
), parsed AS (
    SELECT *, json_transform(m, '{ENVELOPE}') AS s FROM exploded
), named AS (
    SELECT *, s.data AS data_json, s.channel AS channel,
           CASE WHEN coalesce(starts_with(CAST(s.data AS VARCHAR), '{{'), false)
                THEN json_extract_string(s.data, ['$.messageType', '$.notificationType', '$.referenceId']) END AS h
    FROM parsed
), kinds AS (
    SELECT *, h[1] AS mt, {kind} AS kind FROM named
), vals AS (
    SELECT *, {values} AS v FROM kinds
), derived AS (
    SELECT *,
           CASE kind WHEN 'call' THEN coalesce({_v('call', 'call.id')}, {_v('call', 'callId')}) END AS call_id,
           CASE kind WHEN 'error' THEN {_idu(_v('error', 'callUri'))} END AS err_call,
           CASE kind WHEN 'error' THEN {_idu(_v('error', 'deviceUri'))} END AS err_dev,
           CASE kind WHEN 'log' THEN {log_type} END AS log_type
    FROM vals
)
SELECT
    $base + row_number() OVER () - 1 AS id,  -- streaming, keeps the (seq, i) order of the scan
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
    h[2] AS notification_type,
    {' '.join(rtype)} AS resource_type,
    {' '.join(rid)} AS resource_id,
    {' '.join(rstate)} AS resource_state,
    CASE kind WHEN 'call' THEN call_id WHEN 'error' THEN err_call END AS call_id,
    CASE WHEN kind = 'call' THEN coalesce({_v('call', 'call.connId')},
         CASE WHEN regexp_full_match(call_id, '[0-9a-fA-F]{{16}}') THEN call_id END) END AS conn_id,
    CASE kind WHEN 'call' THEN {_idu(_v('call', 'call.deviceUri'))}
              WHEN 'device' THEN coalesce({_v('device', 'devices[0].id')}, {_v('device', 'deviceId')})
              WHEN 'userevent' THEN {_v('userevent', 'deviceId')}
              WHEN 'error' THEN err_dev END AS device_id,
    CASE kind WHEN 'device' THEN {_v('device', 'devices[0].userState.state')}
              WHEN 'channel' THEN {_v('channel', 'channels[0].userState.state')} END AS user_state,
    h[3] AS reference_id,
    CASE WHEN kind = 'error' THEN {_v('error', 'errorMessage')}
         WHEN kind = 'opresp' THEN {_v('opresp', 'errorMessage')}
         WHEN starts_with(kind, 'media:') AND h[2] = 'Error' THEN CASE kind {media_err} END END AS error_message,{item_select}
    user_name, session_key,
    CASE WHEN NOT starts_with(CAST(m AS VARCHAR), '{{') THEN 'element is not an object' END AS parse_error,
    CASE WHEN NOT starts_with(CAST(m AS VARCHAR), '{{') THEN CAST(m AS VARCHAR) END AS raw
FROM derived
"""


INSERT_SQL = _build_sql(ITEM_COLUMNS)


def stage_table(rows: list[tuple]) -> pa.Table:
    from gwsreplay.capture.writer import rows_to_table

    return rows_to_table(STAGE_COLUMNS, rows)
