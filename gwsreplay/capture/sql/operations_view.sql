-- The correlation behind the operations table (docs/schema.md, "Correlation"), filled by
-- gwsreplay.capture.schema.operations_view_sql with constants of gwsreplay.core.
-- Each rule of docs/schema.md ("Correlation") is its own join on its own keys:
-- rules with a specific key (referenceId, call id, resource id) are hash joins limited to the window;
-- rules keyed by the agent alone (user state, any device change, a new resource) are ASOF joins
-- ("the first match at or after the request"), which sort instead of pairing every request with
-- every notification of its agent. The earliest candidate (by ts, then message id) wins. Ties inside
-- an ASOF partition are removed beforehand (lowest message id kept), so the result is deterministic.
-- tests/test_capture_operations.py holds the same rules as one plain OR-join and checks both agree.
-- The capture keeps this as the view operations_view; gwsreplay.capture.opindex fills the table
-- operations from it (writer close, snapshot, import, `gwsreplay index`). Each candidate says which
-- rule found it (via: reference_id, error_message or rule = the operation's match_kind): matched_by.
CREATE OR REPLACE VIEW operations_view AS
WITH win AS (
    SELECT coalesce(max(TRY_CAST(value AS BIGINT)), 10000) AS ms
    FROM meta WHERE key = 'correlation_window_ms'
),
rules AS (
    -- one rule per (operationName, resource type or NULL), whatever someone put in the table
    SELECT operation_name, resource_type, match_kind, expected_state FROM operation_expectations
    QUALIFY row_number() OVER (PARTITION BY operation_name, resource_type ORDER BY match_kind, expected_state) = 1
),
user_ids AS (
    SELECT DISTINCT response_body->>'$.user.id' AS uid, user_name AS name
    FROM exchanges
    WHERE response_body->>'$.user.id' IS NOT NULL AND user_name IS NOT NULL
      AND regexp_matches(path, '/api/v2/me/?$')
    UNION
    SELECT DISTINCT u->>'$.id' AS uid, u->>'$.userName' AS name
    FROM (SELECT unnest(CAST(response_body->'$.users' AS JSON[])) AS u
          FROM exchanges WHERE json_type(response_body->'$.users') = 'ARRAY')
    WHERE u->>'$.id' IS NOT NULL AND u->>'$.userName' IS NOT NULL
),
kinds AS (
    SELECT e.*, coalesce(x1.match_kind, x2.match_kind) AS rule_kind,
           CASE WHEN x1.match_kind IS NOT NULL THEN x1.expected_state ELSE x2.expected_state END AS rule_state
    FROM (SELECT id, flow_id, user_name, session_key, method, path, api_area, resource_type, resource_id,
                 operation_name, status, status_code, status_message, error, reference_id, ts_request_start,
                 coalesce(ts_response_start, ts_response_end) AS acked_at, request_body,
                 -- a supervisor's agent-state request on /users/{id}/channels/{channel} (L44920-45227):
                 -- the target agent's stream shows the outcome, not the supervisor's
                 CASE WHEN resource_type = 'channel' AND owner_id IS NOT NULL
                           AND regexp_matches(path, '/users/[^/]+/channels/') THEN owner_id END AS target_user_id
          FROM exchanges WHERE operation_name IS NOT NULL AND NOT coalesce(is_bayeux, false)) e
    LEFT JOIN (FROM rules WHERE resource_type IS NOT NULL) x1
           ON x1.operation_name = e.operation_name AND x1.resource_type = e.resource_type
    LEFT JOIN (FROM rules WHERE resource_type IS NULL) x2 ON x2.operation_name = e.operation_name
),
kinds2 AS (
    -- stream_user: whose notifications show the outcome (the target of a supervisor's request; NULL when
    -- its user id is unknown: no notification rather than the supervisor's own)
    SELECT k.*, CASE WHEN k.target_user_id IS NULL THEN k.user_name
                     ELSE (SELECT min(u.name) FROM user_ids u WHERE u.uid = k.target_user_id) END AS stream_user
    FROM kinds k
),
ops AS MATERIALIZED (
    -- user_name here is the stream the outcome is looked for in; req_user made the request
    SELECT id AS exchange_id, flow_id, stream_user AS user_name, user_name AS req_user, session_key, method, path, api_area, resource_type, resource_id,
           operation_name, status, status_code, status_message, error, reference_id,
           ts_request_start AS requested_at, acked_at, match_kind,
           CASE WHEN match_kind = 'user_state' THEN us_state || coalesce(':' || us_work_mode, '')
                WHEN match_kind = rule_kind THEN rule_state END AS expected_state,
           us_state, us_work_mode,
           CASE WHEN match_kind = 'new_resource'
                THEN coalesce(nullif(split_part(rule_state, ':', 1), ''), resource_type) END AS new_type,
           CASE WHEN match_kind = 'new_resource' THEN coalesce(split_part(rule_state, ':', 2), '') END AS new_state,
           ts_request_start + to_milliseconds((SELECT ms FROM win)) AS until,
           -- the agent's next request (any operation), and its next one that itself waits for a device or
           -- channel notification: what an untargeted notification after it belongs to
           lead(ts_request_start) OVER (PARTITION BY stream_user ORDER BY ts_request_start, id) AS next_at,
           min(CASE WHEN match_kind IN ('user_state', 'device_any', 'channel_any') THEN ts_request_start END)
               OVER (PARTITION BY stream_user ORDER BY ts_request_start, id
                     ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS next_device_at,
           -- candidates are ordered by (ts, message id), packed into one number
           epoch_us(ts_request_start)::HUGEINT << 64 AS from_key
    FROM (SELECT *,
                 CASE WHEN api_area IN ({{ack_only_areas}}) THEN 'ack_only'
                      WHEN rule_kind IS NOT NULL THEN rule_kind
                      WHEN resource_type = 'channel' AND resource_id = 'voice' THEN 'device_any'
                      WHEN resource_id IS NOT NULL THEN 'resource_any' END AS match_kind,
                 CASE WHEN rule_kind = 'user_state' THEN split_part(rule_state, ':', 1) END AS us_state,
                 CASE WHEN rule_kind = 'user_state'
                      THEN coalesce(nullif(request_body->>'$.workmode', ''),
                                    nullif(split_part(rule_state, ':', 2), '')) END AS us_work_mode
          FROM kinds2)
),
notes AS MATERIALIZED (
    SELECT m.id, m.ts, (epoch_us(m.ts)::HUGEINT << 64) | m.id AS key, m.user_name, m.message_type,
           m.notification_type, m.resource_type, m.resource_id, m.resource_state, m.call_id, m.conn_id,
           m.user_state, m.reference_id,
           CASE WHEN m.message_type IN ('ErrorMessage', 'DeviceStateErrorMessage', 'CallStateErrorMessage') THEN 'error_message'
                WHEN m.notification_type = 'Error' OR m.resource_state = 'RequestFailed' THEN 'failed'
                ELSE 'completed' END AS kind,
           coalesce(m.error_message, m.message_type) AS detail
    FROM bayeux_messages m
    WHERE m.direction = 's2c' AND m.message_type IS NOT NULL AND m.user_name IS NOT NULL
),
-- call notifications keyed by call id and, when different, by connId (8.5.2 requests name the connId)
calls AS MATERIALIZED (
    SELECT id, ts, key, user_name, notification_type, resource_state, reference_id, kind, detail, call_id AS call
    FROM notes WHERE resource_type = 'call' AND call_id IS NOT NULL
    UNION ALL
    SELECT id, ts, key, user_name, notification_type, resource_state, reference_id, kind, detail, conn_id AS call
    FROM notes WHERE resource_type = 'call' AND conn_id IS NOT NULL AND conn_id IS DISTINCT FROM call_id
),
call_ops AS (
    SELECT exchange_id, user_name, requested_at, until, match_kind, expected_state, reference_id,
           resource_id AS target
    FROM ops WHERE match_kind IN ('call_state', 'call_event', 'call_any', 'merged_call')
    UNION ALL
    -- merged_call: also the call the consult call was merged into (the consult's parentCallUri)
    SELECT DISTINCT o.exchange_id, o.user_name, o.requested_at, o.until, o.match_kind, o.expected_state,
           o.reference_id, {{parent_call_id}} AS target
    FROM (FROM ops WHERE match_kind = 'merged_call') o
    JOIN calls n ON n.user_name = o.user_name AND n.call = o.resource_id AND n.ts <= o.until
    JOIN bayeux_messages b ON b.id = n.id
),
-- user_state: the agent's state notifications with their workMode; "scope" is the channel they are
-- about (the device: voice), and each is also listed for any channel ('*') and any workMode ('*')
states AS (
    SELECT n.key, n.ts, n.user_name, n.kind, n.detail, n.user_state AS state,
           CASE WHEN n.resource_type = 'device' THEN 'voice' ELSE n.resource_id END AS scope,
           CASE WHEN n.resource_type = 'device' THEN b.data->>'$.devices[0].userState.workMode'
                ELSE b.data->>'$.channels[0].userState.workMode' END AS work_mode
    FROM notes n JOIN bayeux_messages b ON b.id = n.id
    WHERE n.resource_type IN ('device', 'channel') AND n.user_state IS NOT NULL
),
state_ops AS MATERIALIZED (
    SELECT *, CASE WHEN resource_type = 'channel' THEN resource_id ELSE '*' END AS scope,
           coalesce(us_work_mode, '*') AS wm
    FROM ops WHERE match_kind = 'user_state'
),
state_keys AS (
    SELECT * FROM (
        SELECT user_name, CASE WHEN any_scope THEN '*' ELSE scope END AS scope, state,
               CASE WHEN any_wm THEN '*' ELSE work_mode END AS wm, ts, key, kind, detail
        FROM states
        CROSS JOIN (VALUES (false), (true)) a(any_scope)
        CROSS JOIN (VALUES (false), (true)) w(any_wm)
        WHERE any_wm OR work_mode IS NOT NULL)
    WHERE (scope, wm) IN (SELECT DISTINCT scope, wm FROM state_ops)
),
-- a call's id <-> connId, from the call notifications that carry both (8.6 requests name the id, its
-- ErrorMessages the connId)
call_links AS (
    SELECT DISTINCT user_name, call_id AS call, conn_id AS conn FROM notes
    WHERE resource_type = 'call' AND message_type = 'CallStateChangeMessage'
      AND call_id IS NOT NULL AND conn_id IS NOT NULL AND call_id <> conn_id
),
-- error messages, and whether the call they name is one the agent's call notifications know (then only
-- that call's operations may take it, not a Dial or an agent-state request nearby)
errs AS (
    SELECT n.*, EXISTS (SELECT 1 FROM notes c
                        WHERE c.user_name = n.user_name AND c.message_type = 'CallStateChangeMessage'
                          AND (c.call_id IN (n.call_id, n.conn_id) OR c.conn_id IN (n.call_id, n.conn_id))) AS known_call
    FROM notes n WHERE n.kind = 'error_message'
),
err_ops AS (
    SELECT exchange_id, user_name, requested_at, until, next_at, reference_id, resource_type,
           resource_id AS target
    FROM ops WHERE match_kind IS DISTINCT FROM 'ack_only'
    UNION ALL
    SELECT o.exchange_id, o.user_name, o.requested_at, o.until, o.next_at, o.reference_id, o.resource_type,
           l.conn AS target
    FROM (FROM ops WHERE match_kind IS DISTINCT FROM 'ack_only' AND resource_type = 'call') o
    JOIN call_links l ON l.user_name = o.user_name AND l.call = o.resource_id
),
-- new_resource: one row per resource (its first sighting) and per resource and state (first time in it)
births AS (
    SELECT user_name, resource_type, min(key) AS key, arg_min(kind, key) AS kind, arg_min(detail, key) AS detail
    FROM notes WHERE resource_type IN (SELECT new_type FROM ops WHERE match_kind = 'new_resource')
    GROUP BY user_name, resource_type, resource_id
),
births_in_state AS (
    SELECT *, min(key) OVER (PARTITION BY user_name, resource_type, resource_id) AS birth
    FROM (SELECT user_name, resource_type, resource_id, resource_state, min(key) AS key,
                 arg_min(kind, key) AS kind, arg_min(detail, key) AS detail
          FROM notes
          WHERE resource_type IN (SELECT new_type FROM ops WHERE match_kind = 'new_resource' AND new_state <> '')
          GROUP BY ALL)
),
cand AS (
    -- 1. referenceId
    SELECT o.exchange_id, o.until, n.ts, n.key, n.kind, n.detail, 'reference_id' AS via
    FROM ops o JOIN notes n ON n.user_name = o.user_name AND n.reference_id = o.reference_id
    WHERE n.ts BETWEEN o.requested_at AND o.until
    UNION ALL
    -- 2. an error message naming the operation's call (its id, or its connId); else (an error naming no
    -- call, or one naming a call the agent has no notification of, for a non-call operation such as Dial)
    -- one that comes before the agent's next request
    SELECT o.exchange_id, o.until, n.ts, n.key, n.kind, n.detail, 'error_message' AS via
    FROM err_ops o
    JOIN errs n ON n.user_name = o.user_name
    WHERE n.ts BETWEEN o.requested_at AND o.until
      AND CASE WHEN o.resource_type = 'call' AND (n.call_id IS NOT NULL OR n.conn_id IS NOT NULL)
               THEN n.call_id IS NOT DISTINCT FROM o.target OR n.conn_id IS NOT DISTINCT FROM o.target
               ELSE (o.next_at IS NULL OR n.ts < o.next_at) AND NOT n.known_call END
      AND (n.reference_id IS NULL OR o.reference_id IS NULL OR n.reference_id = o.reference_id)
    UNION ALL
    -- 3. call rules
    SELECT o.exchange_id, o.until, n.ts, n.key, n.kind, n.detail, 'rule' AS via
    FROM call_ops o JOIN calls n ON n.user_name = o.user_name AND n.call = o.target
    WHERE n.ts BETWEEN o.requested_at AND o.until
      AND (n.reference_id IS NULL OR o.reference_id IS NULL OR n.reference_id = o.reference_id)
      AND (o.match_kind = 'call_any'
           OR (o.match_kind = 'call_state' AND n.resource_state = o.expected_state)
           OR (o.match_kind IN ('call_event', 'merged_call') AND n.notification_type = o.expected_state))
    UNION ALL
    -- any notification about the resource (a channel's own for channel_any); for ack_only, only a
    -- failure about it. Not one that names another operation's referenceId.
    SELECT o.exchange_id, o.until, n.ts, n.key, n.kind, n.detail, 'rule' AS via
    FROM (FROM ops WHERE match_kind IN ('resource_any', 'ack_only', 'channel_any') AND resource_id IS NOT NULL) o
    JOIN notes n ON n.user_name = o.user_name AND n.resource_id = o.resource_id
    WHERE n.ts BETWEEN o.requested_at AND o.until
      AND (n.reference_id IS NULL OR o.reference_id IS NULL OR n.reference_id = o.reference_id)
      AND (o.match_kind = 'resource_any' OR (o.match_kind = 'ack_only' AND n.kind <> 'completed')
           OR (o.match_kind = 'channel_any' AND n.resource_type = 'channel'))
    UNION ALL
    -- new_resource: the first resource born after the request, at its first notification ...
    SELECT o.exchange_id, o.until, make_timestamp((n.key >> 64)::BIGINT) AS ts, n.key, n.kind, n.detail, 'rule' AS via
    FROM (FROM ops WHERE match_kind = 'new_resource' AND new_state = '') o
    ASOF JOIN births n ON n.user_name = o.user_name AND n.resource_type = o.new_type AND n.key >= o.from_key
    UNION ALL
    -- ... or at its first notification in the expected state
    SELECT o.exchange_id, o.until, make_timestamp((n.key >> 64)::BIGINT) AS ts, n.key, n.kind, n.detail, 'rule' AS via
    FROM (FROM ops WHERE match_kind = 'new_resource' AND new_state <> '') o
    ASOF JOIN births_in_state n ON n.user_name = o.user_name AND n.resource_type = o.new_type
                               AND n.resource_state = o.new_state AND n.birth >= o.from_key
    UNION ALL
    -- user_state
    SELECT o.exchange_id, o.until, n.ts, n.key, n.kind, n.detail, 'rule' AS via
    FROM state_ops o
    ASOF JOIN state_keys n ON n.user_name = o.user_name AND n.scope = o.scope AND n.state = o.us_state
                          AND n.wm = o.wm AND n.key >= o.from_key
    UNION ALL
    -- device_any (and channel_any on the voice channel): not a notification after the agent's next
    -- agent-state or device request (StartContactCenterSession of an agent already logged in has none,
    -- L4436: the next Ready's notification is the Ready's)
    SELECT o.exchange_id,
           CASE WHEN o.next_device_at IS NULL THEN o.until
                ELSE least(o.until, o.next_device_at - INTERVAL 1 MICROSECOND) END AS until, n.ts, n.key, n.kind, n.detail, 'rule' AS via
    FROM (FROM ops WHERE match_kind = 'device_any' OR (match_kind = 'channel_any' AND resource_id = 'voice')) o
    ASOF JOIN (FROM notes WHERE resource_type = 'device'
               AND user_name IN (SELECT user_name FROM ops WHERE match_kind = 'device_any'
                                 OR (match_kind = 'channel_any' AND resource_id = 'voice'))) n
      ON n.user_name = o.user_name AND n.key >= o.from_key
),
firsts AS (
    -- ties on the same message: referenceId before ErrorMessage before the rule
    SELECT exchange_id, min(key) AS key, arg_min(kind, key) AS kind, arg_min(detail, key) AS detail,
           arg_min(via, key * 4 + CASE via WHEN 'reference_id' THEN 0 WHEN 'error_message' THEN 1 ELSE 2 END) AS via
    FROM cand WHERE ts <= until
    GROUP BY exchange_id
),
results AS (
    SELECT o.*, make_timestamp((f.key >> 64)::BIGINT) AS f_ts,
           (f.key & 18446744073709551615::HUGEINT)::BIGINT AS f_message_id, f.kind AS f_kind, f.detail AS f_detail, f.via AS f_via,
           o.error IS NOT NULL OR o.status IS NULL OR o.status >= 400
             OR (o.status_code IS NOT NULL AND o.status_code NOT IN ({{success_status_codes}})) AS http_error
    FROM ops o LEFT JOIN firsts f USING (exchange_id)
)
SELECT exchange_id, flow_id, req_user AS user_name, session_key, method, path, api_area,
       resource_type, resource_id, operation_name, reference_id,
       status, status_code, status_message, error,
       requested_at, acked_at,
       CASE WHEN f_ts IS NOT NULL THEN f_ts
            WHEN match_kind = 'ack_only' AND NOT http_error THEN acked_at END AS completed_at,
       (epoch_us(acked_at) - epoch_us(requested_at)) / 1000.0 AS ack_latency_ms,
       (epoch_us(CASE WHEN f_ts IS NOT NULL THEN f_ts
                      WHEN match_kind = 'ack_only' AND NOT http_error THEN acked_at END)
        - epoch_us(requested_at)) / 1000.0 AS completion_latency_ms,
       CASE WHEN http_error THEN 'http_error'
            WHEN f_kind IS NOT NULL THEN f_kind
            WHEN match_kind = 'ack_only' THEN 'acknowledged'
            ELSE 'no_notification' END AS outcome,
       f_message_id AS outcome_message_id,
       f_detail AS outcome_detail,
       match_kind, expected_state,
       f_via AS matched_by
FROM results
