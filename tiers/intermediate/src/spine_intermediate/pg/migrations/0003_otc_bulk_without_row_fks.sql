-- The bulk OTC tables drop their per-row foreign key to otc_batches. Every raw row and trade
-- refers to a batch written in the same transaction (capture) or locked FOR UPDATE (normalize),
-- by the store, the only writer, and batches are never deleted; yet the check ran a trigger per
-- row, about a third of the time a 1M-row COPY or INSERT took. otc_rejects (few rows) keeps its.
ALTER TABLE otc_trades_raw DROP CONSTRAINT otc_trades_raw_batch_id_fkey;
ALTER TABLE otc_trades DROP CONSTRAINT otc_trades_batch_id_fkey;
