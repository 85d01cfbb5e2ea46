-- The OTC domain tables. Text that is sorted on uses COLLATE "C" (code-point order, as in
-- SQLite and Python), so ties and listings order the same on every tier.
CREATE TABLE otc_batches (
    batch_id       text PRIMARY KEY,
    source_key     text COLLATE "C" NOT NULL,
    file_name      text NOT NULL,
    content_hash   text NOT NULL,
    row_count      integer NOT NULL,
    captured_at    timestamptz NOT NULL,
    status         text NOT NULL,
    detail         text,
    trade_count    integer,
    reject_count   integer,
    affected_dates date[] NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX otc_batches_content_uq ON otc_batches (content_hash);
CREATE INDEX otc_batches_source_idx ON otc_batches (source_key, captured_at DESC);

-- Every captured row, verbatim; append-only.
CREATE TABLE otc_trades_raw (
    batch_id    text NOT NULL REFERENCES otc_batches (batch_id),
    source_file text NOT NULL,
    source_key  text COLLATE "C" NOT NULL,
    line_number integer NOT NULL,
    raw_line    text NOT NULL,
    record_hash text NOT NULL,
    PRIMARY KEY (batch_id, line_number)
);

-- Normalized trades; a source's accepted batch replaces the source's trades.
CREATE TABLE otc_trades (
    source_key  text COLLATE "C" NOT NULL,
    line_number integer NOT NULL,
    batch_id    text NOT NULL REFERENCES otc_batches (batch_id),
    trade_date  date NOT NULL,
    trade_time  text COLLATE "C" NOT NULL,
    symbol      text COLLATE "C" NOT NULL,
    venue       text COLLATE "C" NOT NULL,
    short_type  text NOT NULL,
    size        numeric NOT NULL,
    price       numeric NOT NULL,
    notional    numeric NOT NULL,
    PRIMARY KEY (source_key, line_number)
);
CREATE INDEX otc_trades_date_symbol_idx ON otc_trades (trade_date, symbol);
CREATE INDEX otc_trades_batch_idx ON otc_trades (batch_id);

-- Rejected rows with their reason code: never silently dropped.
CREATE TABLE otc_rejects (
    batch_id    text NOT NULL REFERENCES otc_batches (batch_id),
    line_number integer NOT NULL,
    reason      text NOT NULL,
    message     text NOT NULL,
    raw_line    text NOT NULL,
    PRIMARY KEY (batch_id, line_number)
);

CREATE TABLE otc_metrics_daily (
    trade_date            date NOT NULL,
    symbol                text COLLATE "C" NOT NULL,
    trade_count           integer NOT NULL,
    volume                double precision NOT NULL,
    notional              double precision NOT NULL,
    vwap                  double precision NOT NULL,
    high                  double precision NOT NULL,
    low                   double precision NOT NULL,
    first_price           double precision NOT NULL,
    last_price            double precision NOT NULL,
    venue_count           integer NOT NULL,
    venue_hhi             double precision NOT NULL,
    short_exempt_share    double precision NOT NULL,
    regular_hours_volume  double precision NOT NULL,
    extended_hours_volume double precision NOT NULL,
    PRIMARY KEY (trade_date, symbol)
);
CREATE INDEX otc_metrics_symbol_idx ON otc_metrics_daily (symbol, trade_date);
