-- Each execution carries the seq of its latest event. A status change then takes its event's
-- seq from the row it updates (`last_seq + 1`), which PostgreSQL re-reads under the row lock,
-- so a transition is one statement with no separate lock-and-read round trips.
ALTER TABLE executions ADD COLUMN last_seq integer NOT NULL DEFAULT 0;
UPDATE executions SET last_seq = counted.last_seq
FROM (SELECT execution_id, max(seq) AS last_seq FROM execution_events GROUP BY execution_id)
    AS counted
WHERE executions.id = counted.execution_id;
