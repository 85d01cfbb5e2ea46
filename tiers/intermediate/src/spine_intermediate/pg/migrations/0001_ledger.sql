-- The execution ledger: executions, their append-only events, run history, workers.
CREATE TABLE executions (
    id                  text PRIMARY KEY,
    name                text NOT NULL,
    params              jsonb NOT NULL DEFAULT '{}'::jsonb,
    status              text NOT NULL,
    lane                text NOT NULL DEFAULT 'normal',
    trigger_source      text NOT NULL DEFAULT 'manual',
    logical_key         text,
    parent_execution_id text,
    backend             text NOT NULL,
    retry_count         integer NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    started_at          timestamptz,
    finished_at         timestamptz,
    error               text,
    error_category      text,
    result              jsonb,
    worker_id           text,
    heartbeat_at        timestamptz
);
CREATE INDEX executions_claim_idx ON executions (lane, id) WHERE status = 'queued';
CREATE INDEX executions_status_idx ON executions (status, id);
CREATE INDEX executions_name_idx ON executions (name, id);
CREATE INDEX executions_created_idx ON executions (created_at);
CREATE INDEX executions_parent_idx ON executions (parent_execution_id)
    WHERE parent_execution_id IS NOT NULL;
CREATE INDEX executions_worker_idx ON executions (worker_id) WHERE status = 'running';

CREATE TABLE execution_events (
    id           bigserial PRIMARY KEY,
    execution_id text NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    seq          integer NOT NULL,
    event_type   text NOT NULL,
    payload      jsonb NOT NULL DEFAULT '{}'::jsonb,
    dedupe_key   text,
    created_at   timestamptz NOT NULL,
    CONSTRAINT execution_events_seq_uq UNIQUE (execution_id, seq),
    CONSTRAINT execution_events_dedupe_uq UNIQUE (execution_id, dedupe_key)
);

-- One row per workflow run (step IS NULL) and one per step run.
CREATE TABLE workflow_runs (
    id           bigserial PRIMARY KEY,
    run_id       text NOT NULL,
    execution_id text,
    workflow     text NOT NULL,
    version      integer NOT NULL,
    step         text,
    kind         text,
    status       text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    duration_ms  double precision,
    error        text,
    category     text,
    params       jsonb,
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE UNIQUE INDEX workflow_runs_run_uq ON workflow_runs (run_id) WHERE step IS NULL;
CREATE INDEX workflow_runs_steps_idx ON workflow_runs (run_id, id);
CREATE INDEX workflow_runs_started_idx ON workflow_runs (started_at DESC) WHERE step IS NULL;

-- Worker processes and when they were last seen (for /health/ready).
CREATE TABLE workers (
    worker_id    text PRIMARY KEY,
    hostname     text NOT NULL,
    pid          integer NOT NULL,
    concurrency  integer NOT NULL,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    stopped_at   timestamptz
);
