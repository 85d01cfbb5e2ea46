from __future__ import annotations

import sqlite3

import pytest

from spine_basic.database import SqliteDatabase
from spine_basic.ledger import SqliteLedgerStore
from spine_basic.migrations import (
    LATEST_VERSION,
    MIGRATIONS,
    ChecksumMismatch,
    Migration,
    SchemaAhead,
    SchemaBehind,
    applied_migrations,
    migrate,
    schema_version,
    split_statements,
)
from spine_basic.otc_store import SqliteOtcStore
from spine_core.errors import ConfigurationError


def open_db(path):
    return SqliteDatabase(path, create=True)


def index_names(db):
    return {r[0] for r in db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


def test_migrate_applies_all_in_order_and_records_them(tmp_path):
    db = open_db(tmp_path / "a.db")
    applied = migrate(db.conn)
    assert [m.version for m in applied] == [m.version for m in MIGRATIONS]
    rows = applied_migrations(db.conn)
    assert [(r.version, r.name, r.checksum) for r in rows] == [
        (m.version, m.name, m.checksum) for m in MIGRATIONS
    ]
    assert all(len(r.checksum) == 64 and r.applied_at for r in rows)
    assert schema_version(db.conn) == LATEST_VERSION
    tables = set(db.table_names())
    assert {
        "_migrations",
        "executions",
        "execution_events",
        "otc_trades_raw",
        "otc_trades",
        "otc_metrics_daily",
        "otc_batches",
        "otc_rejects",
    } <= tables
    db.close()


def test_migrate_is_idempotent(tmp_path):
    db = open_db(tmp_path / "a.db")
    migrate(db.conn)
    before = applied_migrations(db.conn)
    assert migrate(db.conn) == []
    assert applied_migrations(db.conn) == before
    db.close()


def test_changed_applied_migration_is_an_error_naming_it(tmp_path):
    db = open_db(tmp_path / "a.db")
    migrate(db.conn)
    changed = list(MIGRATIONS)
    changed[0] = Migration(1, MIGRATIONS[0].name, MIGRATIONS[0].sql + "\n-- edited\n")
    with pytest.raises(ChecksumMismatch, match=r"migration 1 \(ledger\) was changed"):
        migrate(db.conn, changed)
    db.close()


def test_new_migration_is_applied_on_top(tmp_path):
    db = open_db(tmp_path / "a.db")
    migrate(db.conn)
    extra = Migration(LATEST_VERSION + 1, "extra", "CREATE TABLE extra (x INTEGER);")
    assert migrate(db.conn, [*MIGRATIONS, extra]) == [extra]
    assert schema_version(db.conn) == LATEST_VERSION + 1
    # The release that does not know version N+1 refuses the database.
    with pytest.raises(SchemaAhead, match="upgrade market-spine-basic"):
        migrate(db.conn)
    db.close()


def test_failed_migration_rolls_back_entirely(tmp_path):
    db = open_db(tmp_path / "a.db")
    migrate(db.conn)
    bad = Migration(LATEST_VERSION + 1, "bad", "CREATE TABLE t1 (x);\nSELECT * FROM missing;")
    with pytest.raises(sqlite3.OperationalError):
        migrate(db.conn, [*MIGRATIONS, bad])
    assert "t1" not in db.table_names()
    assert schema_version(db.conn) == LATEST_VERSION
    db.close()


def test_otc_trades_lose_the_batch_index_and_batch_queries_use_the_primary_key(tmp_path):
    db = open_db(tmp_path / "a.db")
    migrate(db.conn, MIGRATIONS[:2])
    assert "ix_otc_trades_batch" in index_names(db)
    assert [m.version for m in migrate(db.conn, MIGRATIONS[:3])] == [3]
    assert "ix_otc_trades_batch" not in index_names(db)
    migrate(db.conn, MIGRATIONS[:4])
    plan = db.conn.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM otc_trades WHERE batch_id = ? AND "
        "source_key = (SELECT source_key FROM otc_batches WHERE batch_id = ?)",
        ("b", "b"),
    ).fetchall()
    assert any(
        "sqlite_autoindex_otc_trades_1 (source_key=? AND batch_id=?)" in row[-1] for row in plan
    )
    db.close()


def test_otc_trades_keep_their_rows_and_let_batches_of_one_source_share_line_numbers(tmp_path):
    db = open_db(tmp_path / "a.db")
    migrate(db.conn, MIGRATIONS[:3])
    insert = (
        "INSERT INTO otc_trades (source_key, line_number, batch_id, trade_date, trade_time, "
        "timestamp, symbol, venue, short_type, size, price, notional, size_exact, price_exact) "
        "VALUES ('s', 2, ?, '2024-03-04', '09:30:00', 't', 'AAPL', 'Q', 'S', 1, 1, 1, '1', '1')"
    )
    for batch in ("b1", "b2"):
        db.conn.execute(
            "INSERT INTO otc_batches (batch_id, source_key, file_name, content_hash, row_count, "
            "captured_at, status) VALUES (?, 's', 'f', ?, 1, 't', 'normalized')",
            (batch, batch),
        )
    db.conn.execute(insert, ("b1",))
    with pytest.raises(sqlite3.IntegrityError):
        db.conn.execute(insert, ("b2",))
    assert [m.version for m in migrate(db.conn, MIGRATIONS[:4])] == [4]
    db.conn.execute(insert, ("b2",))
    rows = db.conn.execute("SELECT batch_id FROM otc_trades ORDER BY batch_id").fetchall()
    assert rows == [("b1",), ("b2",)]
    assert "ix_otc_trades_date_symbol" in index_names(db)
    db.close()


def test_trades_and_raw_lines_keep_every_row_through_the_storage_rebuild(tmp_path):
    db = open_db(tmp_path / "a.db")
    migrate(db.conn, MIGRATIONS[:4])
    for batch, source in (("b1", "s1"), ("b2", "s2")):
        db.conn.execute(
            "INSERT INTO otc_batches (batch_id, source_key, file_name, content_hash, row_count, "
            "captured_at, status) VALUES (?, ?, ?, ?, 2, 't', 'normalized')",
            (batch, source, f"{source}.psv", batch),
        )
        for line, raw in ((2, "Q|AAPL|20240304|09:30:00|S|1|10|"), (3, "bad")):
            db.conn.execute(
                "INSERT INTO otc_trades_raw VALUES (?, ?, ?, ?, ?, ?)",
                (batch, line, f"{source}.psv", source, raw, f"h{line}"),
            )
        db.conn.execute(
            "INSERT INTO otc_trades (source_key, line_number, batch_id, trade_date, trade_time, "
            "timestamp, symbol, venue, short_type, size, price, notional, size_exact, "
            "price_exact) VALUES (?, 2, ?, '2024-03-04', '09:30:00', '2024-03-04T09:30:00', "
            "'AAPL', 'Q', 'S', 1.5, 10, 15, '1.5', '10')",
            (source, batch),
        )
    trades = "SELECT * FROM otc_trades ORDER BY batch_id"
    raw = "SELECT * FROM otc_trades_raw ORDER BY batch_id, line_number"
    before_trades = _rows_by_name(db, trades)
    before_raw = db.conn.execute(raw).fetchall()
    assert [m.version for m in migrate(db.conn)] == [5, 6]
    after_trades = _rows_by_name(db, trades)
    assert after_trades == before_trades
    assert db.conn.execute(raw).fetchall() == before_raw
    assert "otc_raw_lines" in db.table_names() and "otc_trades_raw" in db.table_names()
    assert "ix_otc_trades_date_symbol" not in index_names(db)
    numbers = db.conn.execute("SELECT batch_no FROM otc_batches ORDER BY batch_no").fetchall()
    assert numbers == [(1,), (2,)]
    db.close()


def _rows_by_name(db, sql):
    """Each row as its sorted (column, value) pairs: column order may change, values not."""
    cursor = db.conn.execute(sql)
    names = [d[0] for d in cursor.description]
    return {tuple(sorted(zip(names, row, strict=True))) for row in cursor}


def test_daily_metrics_read_the_trades_in_key_order_without_a_sort(tmp_path):
    from spine_otc.sql import daily_metrics_select_sql

    db = open_db(tmp_path / "a.db")
    migrate(db.conn)
    plan = [
        row[-1]
        for row in db.conn.execute(
            "EXPLAIN QUERY PLAN " + daily_metrics_select_sql(2, "qmark", "seek"),
            ["2024-03-04", "2024-03-05"],
        )
    ]
    assert any("USING PRIMARY KEY (trade_date=?)" in step for step in plan), plan
    assert any("USING PRIMARY KEY (trade_date=? AND symbol=?)" in step for step in plan), plan
    assert not any("TEMP B-TREE FOR GROUP BY" in step for step in plan), plan
    db.close()


@pytest.mark.parametrize("store_cls", [SqliteLedgerStore, SqliteOtcStore])
def test_store_refuses_schema_behind(tmp_path, store_cls):
    path = tmp_path / "a.db"
    db = open_db(path)
    migrate(db.conn, MIGRATIONS[:1])
    db.close()
    with pytest.raises(SchemaBehind, match="run spine db init"):
        store_cls(path)


@pytest.mark.parametrize("store_cls", [SqliteLedgerStore, SqliteOtcStore])
def test_store_refuses_uninitialised_and_missing_database(tmp_path, store_cls):
    open_db(tmp_path / "empty.db").close()
    with pytest.raises(SchemaBehind, match="run spine db init"):
        store_cls(tmp_path / "empty.db")
    with pytest.raises(ConfigurationError, match="run spine db init"):
        store_cls(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()


def test_store_refuses_altered_migration(tmp_path, make_db):
    path = make_db(tmp_path / "a.db")
    conn = sqlite3.connect(path)
    conn.execute("UPDATE _migrations SET checksum = 'x' WHERE version = 1")
    conn.commit()
    conn.close()
    with pytest.raises(ChecksumMismatch, match="ledger"):
        SqliteLedgerStore(path)


def test_split_statements_keeps_trigger_bodies_whole():
    sql = """
CREATE TABLE a (x);
CREATE TRIGGER t AFTER INSERT ON a BEGIN
    UPDATE a SET x = 1;
    UPDATE a SET x = 2;
END;
-- trailing comment
"""
    statements = split_statements(sql)
    assert len(statements) == 2
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")
