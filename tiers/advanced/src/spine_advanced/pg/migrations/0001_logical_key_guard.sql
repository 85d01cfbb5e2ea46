-- At most one execution per logical_key in the active statuses; the key is free again as soon
-- as its execution leaves them (finished, failed by the reaper, cancelled).
-- The status list is rendered from spine_core.status.ACTIVE_STATUSES when the chain loads.
CREATE UNIQUE INDEX IF NOT EXISTS executions_active_logical_key
    ON executions (logical_key)
    WHERE logical_key IS NOT NULL AND status IN ({active_statuses});
