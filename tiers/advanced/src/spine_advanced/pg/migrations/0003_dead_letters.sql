-- Dead letters: executions whose retries are used up (or, if configured, any final failure),
-- kept for a person to retry or discard. The row is inserted in the statement that moves its
-- execution failed -> dead_lettered, so neither exists without the other. One per execution;
-- a closed one (retried or discarded) stays, naming the retry.
CREATE TABLE IF NOT EXISTS dead_letters (
    id             text PRIMARY KEY,
    execution_id   text NOT NULL UNIQUE REFERENCES executions (id),
    reason         text NOT NULL,
    error          text,
    error_category text,
    attempts       integer NOT NULL,
    created_at     timestamptz NOT NULL,
    retried_as     text,
    discarded_at   timestamptz,
    CHECK (retried_as IS NULL OR discarded_at IS NULL)
);

CREATE INDEX IF NOT EXISTS dead_letters_open
    ON dead_letters (id) WHERE retried_as IS NULL AND discarded_at IS NULL;
