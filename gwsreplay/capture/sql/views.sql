-- Convenience views of every capture (docs/schema.md).
CREATE OR REPLACE VIEW notifications AS
SELECT * FROM bayeux_messages
WHERE direction = 's2c' AND channel IS NOT NULL AND NOT starts_with(channel, '/meta/');

CREATE OR REPLACE VIEW sessions AS
WITH items AS (
    SELECT user_name, coalesce(session_key, new_session_key) AS session_key,
           ts_request_start AS ts, 'exchange' AS kind, NULL::VARCHAR AS client_id
    FROM exchanges
    UNION ALL
    SELECT user_name, session_key, ts, 'message' AS kind, client_id
    FROM bayeux_messages
)
SELECT user_name,
       session_key,
       min(ts) AS started_at,
       max(ts) AS ended_at,
       count(*) FILTER (WHERE kind = 'exchange') AS exchanges,
       count(*) FILTER (WHERE kind = 'message') AS bayeux_messages,
       list(DISTINCT client_id ORDER BY client_id) FILTER (WHERE client_id IS NOT NULL) AS client_ids
FROM items
WHERE user_name IS NOT NULL OR session_key IS NOT NULL
GROUP BY user_name, session_key;
