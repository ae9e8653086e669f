-- Bayeux bodies staged by the writer (_bayeux_bodies, one row per body) -> bayeux_messages,
-- one row per array element, classified by the rules of gwsreplay.core.notifications.
-- Filled by gwsreplay.capture.bayeux_sql.insert_sql: "kind" picks a message's rule, "values"
-- reads the data paths that rule needs (one json_extract_string call per message),
-- "classified" is one "<CASE kind ...> AS <column>," line per classified column.
-- $base: the id of the first message.
INSERT INTO bayeux_messages BY NAME
WITH staged AS (
    SELECT * EXCLUDE (body), CAST(body AS JSON[]) AS l FROM _bayeux_bodies
), exploded AS (
    SELECT * EXCLUDE (l), unnest(l) AS m, unnest(range(len(l))) AS i FROM staged
), parsed AS (
    SELECT *, json_transform(m, '{"channel":"VARCHAR","clientId":"VARCHAR","id":"VARCHAR","successful":"JSON","error":"VARCHAR","advice":"JSON","connectionType":"VARCHAR","subscription":"VARCHAR","ext":"JSON","data":"JSON"}') AS s
    FROM exploded
), named AS (
    SELECT *, s.data AS data_json, s.channel AS channel,
           CASE WHEN coalesce(starts_with(CAST(s.data AS VARCHAR), '{'), false)
                THEN json_extract_string(s.data, ['$.messageType', '$.notificationType', '$.referenceId']) END AS h
    FROM parsed
), kinds AS (
    SELECT *, h[1] AS mt, {{kind}} AS kind FROM named
), vals AS (
    SELECT *, {{values}} AS v FROM kinds
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
    -- the fields of a message beyond the envelope (/meta/: version, supportedConnectionTypes...)
    CASE WHEN starts_with(CAST(m AS VARCHAR), '{')
         THEN nullif(json_merge_patch(m, '{"channel":null,"clientId":null,"id":null,"successful":null,"error":null,"advice":null,"connectionType":null,"subscription":null,"ext":null,"data":null}'), '{}') END AS extra,
    data_json AS data,
    mt AS message_type,
    h[2] AS notification_type,
    h[3] AS reference_id,
    {{classified}}
    user_name, session_key,
    CASE WHEN NOT starts_with(CAST(m AS VARCHAR), '{') THEN 'element is not an object'
         WHEN channel IS NULL THEN 'message has no channel' END AS parse_error,
    CASE WHEN NOT starts_with(CAST(m AS VARCHAR), '{') THEN CAST(m AS VARCHAR) END AS raw
FROM vals
