-- A batch's trades all carry its source key (a normalization replaces the source's trades),
-- so query_trades finds them through the (source_key, line_number) primary key; the index on
-- batch_id only cost every bulk insert of trades another index entry per row.
DROP INDEX otc_trades_batch_idx;
