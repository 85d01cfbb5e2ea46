-- Durable run state (spine_core.durable.state.RunState): workflow, pinned version, cursor,
-- outputs so far, step summaries and the attempt number. Written with each step's checkpoint
-- in the statement that appends the step's event, so a new worker continues where the last
-- checkpoint left off.
ALTER TABLE executions ADD COLUMN run_state jsonb;

-- A queued execution is not claimed before due_at (a retry's backoff, a durable wait); every
-- claim checks it, and claiming clears it.
ALTER TABLE executions ADD COLUMN due_at timestamptz;
