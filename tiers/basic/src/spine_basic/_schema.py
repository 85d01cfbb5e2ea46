"""The SQL of each migration. Shipped migrations never change: add a new one instead."""

LEDGER_SQL = """
CREATE TABLE executions (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    params              TEXT NOT NULL DEFAULT '{}',
    status              TEXT NOT NULL CHECK (status IN (
                            'pending', 'queued', 'running', 'completed', 'failed',
                            'dead_lettered', 'cancelling', 'cancelled')),
    lane                TEXT NOT NULL DEFAULT 'normal',
    trigger_source      TEXT NOT NULL DEFAULT 'manual',
    logical_key         TEXT,
    parent_execution_id TEXT,
    retry_count         INTEGER NOT NULL DEFAULT 0,
    backend             TEXT NOT NULL DEFAULT 'inline',
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    started_at          TEXT,
    finished_at         TEXT,
    error               TEXT,
    error_category      TEXT,
    result              TEXT,
    worker_id           TEXT
);
CREATE INDEX ix_executions_status ON executions (status, id);
CREATE INDEX ix_executions_name ON executions (name, id);

-- The tier matrix lists no events for basic: the CLI does not show them, but the ledger
-- keeps them so every tier honours one LedgerStore contract and passes one conformance suite.
CREATE TABLE execution_events (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    event_type   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    payload      TEXT NOT NULL DEFAULT '{}',
    dedupe_key   TEXT,
    PRIMARY KEY (execution_id, seq)
);
CREATE UNIQUE INDEX ux_execution_events_dedupe
    ON execution_events (execution_id, dedupe_key) WHERE dedupe_key IS NOT NULL;
"""

OTC_SQL = """
-- One row per captured file. content_hash is unique: the same bytes are captured once.
CREATE TABLE otc_batches (
    batch_id       TEXT PRIMARY KEY,
    source_key     TEXT NOT NULL,
    file_name      TEXT NOT NULL,
    content_hash   TEXT NOT NULL UNIQUE,
    row_count      INTEGER NOT NULL DEFAULT 0,
    captured_at    TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('captured', 'normalized', 'gate_failed')),
    detail         TEXT,
    trade_count    INTEGER,
    reject_count   INTEGER,
    affected_dates TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX ix_otc_batches_source ON otc_batches (source_key, captured_at);

-- Every captured row, verbatim; append-only.
CREATE TABLE otc_trades_raw (
    batch_id    TEXT NOT NULL REFERENCES otc_batches (batch_id),
    line_number INTEGER NOT NULL,
    source_file TEXT NOT NULL,
    source_key  TEXT NOT NULL,
    raw_line    TEXT NOT NULL,
    record_hash TEXT NOT NULL,
    PRIMARY KEY (batch_id, line_number)
) WITHOUT ROWID;

-- Normalized trades: one source (file name) contributes the rows of its latest accepted batch.
-- size/price/notional are REAL for set-based SQL; size_exact/price_exact keep the decimals.
CREATE TABLE otc_trades (
    source_key  TEXT NOT NULL,
    line_number INTEGER NOT NULL,
    batch_id    TEXT NOT NULL REFERENCES otc_batches (batch_id),
    trade_date  TEXT NOT NULL,
    trade_time  TEXT NOT NULL,
    timestamp   TEXT NOT NULL,
    symbol      TEXT NOT NULL,
    venue       TEXT NOT NULL,
    short_type  TEXT NOT NULL,
    size        REAL NOT NULL,
    price       REAL NOT NULL,
    notional    REAL NOT NULL,
    size_exact  TEXT NOT NULL,
    price_exact TEXT NOT NULL,
    PRIMARY KEY (source_key, line_number)
);
CREATE INDEX ix_otc_trades_date_symbol ON otc_trades (trade_date, symbol);
CREATE INDEX ix_otc_trades_batch ON otc_trades (batch_id);

-- Rejected rows with their reason code: never silently dropped.
CREATE TABLE otc_rejects (
    batch_id    TEXT NOT NULL REFERENCES otc_batches (batch_id),
    line_number INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    message     TEXT NOT NULL,
    raw_line    TEXT NOT NULL,
    PRIMARY KEY (batch_id, line_number)
) WITHOUT ROWID;

CREATE TABLE otc_metrics_daily (
    trade_date            TEXT NOT NULL,
    symbol                TEXT NOT NULL,
    trade_count           INTEGER NOT NULL,
    volume                REAL NOT NULL,
    notional              REAL NOT NULL,
    vwap                  REAL NOT NULL,
    high                  REAL NOT NULL,
    low                   REAL NOT NULL,
    first_price           REAL NOT NULL,
    last_price            REAL NOT NULL,
    venue_count           INTEGER NOT NULL,
    venue_hhi             REAL NOT NULL,
    short_exempt_share    REAL NOT NULL,
    regular_hours_volume  REAL NOT NULL,
    extended_hours_volume REAL NOT NULL,
    PRIMARY KEY (trade_date, symbol)
);
CREATE INDEX ix_otc_metrics_symbol ON otc_metrics_daily (symbol, trade_date);
"""

OTC_TRADES_BATCH_INDEX_SQL = """
-- Every otc_trades row of a batch carries that batch's source_key, so the primary key
-- (source_key, line_number) already finds a batch's trades; this index only slowed each load.
DROP INDEX ix_otc_trades_batch;
"""

OTC_TRADES_RESTATED_BY_DATE_SQL = """
-- A restatement replaces its source's trades of the dates it covers only, so a source may keep
-- trades of several batches (one per date): the key gains batch_id. SQLite cannot change a
-- primary key in place; the table is rebuilt.
CREATE TABLE otc_trades_new (
    source_key  TEXT NOT NULL,
    line_number INTEGER NOT NULL,
    batch_id    TEXT NOT NULL REFERENCES otc_batches (batch_id),
    trade_date  TEXT NOT NULL,
    trade_time  TEXT NOT NULL,
    timestamp   TEXT NOT NULL,
    symbol      TEXT NOT NULL,
    venue       TEXT NOT NULL,
    short_type  TEXT NOT NULL,
    size        REAL NOT NULL,
    price       REAL NOT NULL,
    notional    REAL NOT NULL,
    size_exact  TEXT NOT NULL,
    price_exact TEXT NOT NULL,
    PRIMARY KEY (source_key, batch_id, line_number)
);
INSERT INTO otc_trades_new SELECT source_key, line_number, batch_id, trade_date, trade_time,
    timestamp, symbol, venue, short_type, size, price, notional, size_exact, price_exact
    FROM otc_trades;
DROP TABLE otc_trades;
ALTER TABLE otc_trades_new RENAME TO otc_trades;
CREATE INDEX ix_otc_trades_date_symbol ON otc_trades (trade_date, symbol);
"""

OTC_TRADES_IN_METRIC_ORDER_SQL = """
-- The trades are kept in the order the daily metrics read them: the table is its primary key
-- (trade_date, symbol, trade_time, source_key, line_number, batch_id), so one B-tree holds
-- what a rowid table, its key and the (trade_date, symbol) index held, the metrics group the
-- dates' trades without a sort and find a day's first and last price by two seeks. It still
-- identifies a trade by (source_key, batch_id, line_number): those are part of the key.
-- timestamp is computed from the date and time instead of stored a second time.
CREATE TABLE otc_trades_new (
    trade_date  TEXT NOT NULL,
    symbol      TEXT NOT NULL,
    trade_time  TEXT NOT NULL,
    source_key  TEXT NOT NULL,
    line_number INTEGER NOT NULL,
    batch_id    TEXT NOT NULL REFERENCES otc_batches (batch_id),
    venue       TEXT NOT NULL,
    short_type  TEXT NOT NULL,
    size        REAL NOT NULL,
    price       REAL NOT NULL,
    notional    REAL NOT NULL,
    size_exact  TEXT NOT NULL,
    price_exact TEXT NOT NULL,
    timestamp   TEXT GENERATED ALWAYS AS (trade_date || 'T' || trade_time) VIRTUAL,
    PRIMARY KEY (trade_date, symbol, trade_time, source_key, line_number, batch_id)
) WITHOUT ROWID;
INSERT INTO otc_trades_new (trade_date, symbol, trade_time, source_key, line_number, batch_id,
    venue, short_type, size, price, notional, size_exact, price_exact)
    SELECT trade_date, symbol, trade_time, source_key, line_number, batch_id, venue,
    short_type, size, price, notional, size_exact, price_exact FROM otc_trades;
DROP TABLE otc_trades;
ALTER TABLE otc_trades_new RENAME TO otc_trades;
"""

OTC_RAW_LINES_SQL = """
-- The raw capture keeps every line verbatim with its batch, source file, line number and
-- record hash, but a batch's id, file and source are the same on each of its lines: they are
-- stored once, in otc_batches, under a small batch number, and the view otc_trades_raw gives
-- the rows with the columns the table had.
ALTER TABLE otc_batches ADD COLUMN batch_no INTEGER;
UPDATE otc_batches SET batch_no = rowid;
CREATE UNIQUE INDEX ux_otc_batches_batch_no ON otc_batches (batch_no);
CREATE TABLE otc_raw_lines (
    batch_no    INTEGER NOT NULL REFERENCES otc_batches (batch_no),
    line_number INTEGER NOT NULL,
    raw_line    TEXT NOT NULL,
    record_hash TEXT NOT NULL,
    PRIMARY KEY (batch_no, line_number)
) WITHOUT ROWID;
INSERT INTO otc_raw_lines (batch_no, line_number, raw_line, record_hash)
    SELECT b.batch_no, r.line_number, r.raw_line, r.record_hash
    FROM otc_trades_raw AS r JOIN otc_batches AS b ON b.batch_id = r.batch_id;
DROP TABLE otc_trades_raw;
CREATE VIEW otc_trades_raw AS
    SELECT b.batch_id, r.line_number, b.file_name AS source_file, b.source_key, r.raw_line,
           r.record_hash
    FROM otc_raw_lines AS r JOIN otc_batches AS b ON b.batch_no = r.batch_no;
"""
