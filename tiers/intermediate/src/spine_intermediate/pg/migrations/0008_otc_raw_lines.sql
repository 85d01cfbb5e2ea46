-- Raw capture stored slim: each line keeps its number, text and hash, and names its batch by a
-- small integer; the batch's id, file name and source key, the same for every line of a batch,
-- are stored once in otc_batches. A 1M-line capture writes about half the bytes it did, and
-- its key index holds two integers instead of a 32-character id. The view otc_trades_raw reads
-- exactly the old table's columns.
ALTER TABLE otc_batches ADD COLUMN batch_no integer GENERATED ALWAYS AS IDENTITY;
ALTER TABLE otc_batches ADD CONSTRAINT otc_batches_batch_no_uq UNIQUE (batch_no);

CREATE TABLE otc_raw_lines (
    batch_no    integer NOT NULL,
    line_number integer NOT NULL,
    raw_line    text NOT NULL,
    record_hash text NOT NULL,
    PRIMARY KEY (batch_no, line_number)
);
INSERT INTO otc_raw_lines (batch_no, line_number, raw_line, record_hash)
SELECT b.batch_no, r.line_number, r.raw_line, r.record_hash
FROM otc_trades_raw AS r JOIN otc_batches AS b ON b.batch_id = r.batch_id;
DROP TABLE otc_trades_raw;

CREATE VIEW otc_trades_raw AS
SELECT b.batch_id, b.file_name AS source_file, b.source_key, r.line_number, r.raw_line,
       r.record_hash
FROM otc_raw_lines AS r JOIN otc_batches AS b ON b.batch_no = r.batch_no;
