-- A restatement replaces its source's trades of the dates it covers only, so a source may keep
-- trades of several batches (one per date): the key gains batch_id, which also finds a batch's
-- trades by (source_key, batch_id).
ALTER TABLE otc_trades DROP CONSTRAINT otc_trades_pkey;
ALTER TABLE otc_trades ADD PRIMARY KEY (source_key, batch_id, line_number);
