import hashlib
import tempfile
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spine_otc import parser
from spine_otc.errors import FileFormatError
from spine_otc.layout import HEADER_LINE
from spine_otc.parser import (
    MAX_LINE_BYTES,
    PsvReader,
    RawBlock,
    RawRow,
    as_blocks,
    file_sha256,
    record_hashes,
)

ROW = "Q|AAPL|20240305|09:30:02|S|100|170.1200|A"


def write(tmp_path, content, name="otc.psv"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def read_all(path):
    reader = PsvReader(path)
    return reader, list(reader)


def test_yields_every_data_line_verbatim_in_order(tmp_path):
    lines = [ROW, "B|AAPL|20240305|11:14:55|E|250|169.8450|A", ROW, "  odd | spacing "]
    path = write(tmp_path, "\n".join([HEADER_LINE, *lines, "4"]) + "\n")
    reader, rows = read_all(path)
    assert rows == [RawRow(n, line) for n, line in enumerate(lines, start=2)]
    assert reader.row_count == 4
    assert reader.content_hash == file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_crlf_line_endings_and_a_byte_order_mark_are_accepted(tmp_path):
    path = write(tmp_path, ("\ufeff" + HEADER_LINE + "\r\n" + ROW + "\r\n1\r\n").encode())
    _, rows = read_all(path)
    assert rows == [RawRow(2, ROW)]


def test_trailer_may_count_the_header(tmp_path):
    path = write(tmp_path, f"{HEADER_LINE}\n{ROW}\n{ROW}\n3\n")
    _, rows = read_all(path)
    assert len(rows) == 2


def test_trailer_without_final_newline_and_trailing_blank_lines(tmp_path):
    path = write(tmp_path, f"{HEADER_LINE}\n{ROW}\n1\n\n\n")
    assert read_all(path)[1] == [RawRow(2, ROW)]
    path = write(tmp_path, f"{HEADER_LINE}\n{ROW}\n1", name="b.psv")
    assert read_all(path)[1] == [RawRow(2, ROW)]


def test_blank_lines_between_rows_are_data_rows(tmp_path):
    path = write(tmp_path, f"{HEADER_LINE}\n{ROW}\n\n{ROW}\n3\n")
    _, rows = read_all(path)
    assert rows == [RawRow(2, ROW), RawRow(3, ""), RawRow(4, ROW)]


def test_header_and_trailer_only_is_an_empty_batch(tmp_path):
    path = write(tmp_path, f"{HEADER_LINE}\n0\n")
    assert read_all(path)[1] == []


def test_progress_is_reported_up_to_the_file_size(tmp_path):
    path = write(tmp_path, f"{HEADER_LINE}\n{ROW}\n1\n")
    seen = []
    list(PsvReader(path, on_progress=lambda done, total: seen.append((done, total))))
    size = path.stat().st_size
    assert seen[-1] == (size, size)


def test_content_hash_is_unknown_until_the_whole_file_is_read(tmp_path):
    path = write(tmp_path, f"{HEADER_LINE}\n{ROW}\n1\n")
    reader = PsvReader(path)
    rows = iter(reader)
    next(rows)
    with pytest.raises(RuntimeError, match="only after reading"):
        _ = reader.content_hash


def assert_file_error(path, line, *fragments):
    with pytest.raises(FileFormatError) as raised:
        list(PsvReader(path))
    message = str(raised.value)
    assert message.startswith(f"{path}: line {line}: ")
    assert raised.value.line_number == line
    for fragment in fragments:
        assert fragment in message
    return raised.value


def test_empty_file(tmp_path):
    assert_file_error(write(tmp_path, ""), 1, "empty file")


def test_wrong_header(tmp_path):
    path = write(tmp_path, f"Venue|Symbol|Date|Time|ShortType|Size|Price|Link\n{ROW}\n1\n")
    error = assert_file_error(path, 1, "wrong header", "MarketCenter|Symbol", "8 field(s)")
    assert "Venue" not in str(error)


@pytest.mark.parametrize("first", ["root:x:0:0:root:/root:/bin/bash", "password hunter2", "a|b"])
def test_a_framing_error_quotes_nothing_it_found(tmp_path, first):
    """The error reaches API clients, so it must not leak the first line of any file."""
    error = assert_file_error(write(tmp_path, f"{first}\n1\n"), 1, "wrong header")
    assert first not in str(error) and "hunter2" not in str(error)


@pytest.mark.parametrize(("delimiter", "name"), [(",", "comma"), ("\t", "tab")])
def test_wrong_delimiter(tmp_path, delimiter, name):
    header = HEADER_LINE.replace("|", delimiter)
    path = write(tmp_path, f"{header}\n{ROW.replace('|', delimiter)}\n1\n")
    assert_file_error(path, 1, "wrong delimiter", name)


def test_truncated_file_has_no_trailer(tmp_path):
    path = write(tmp_path, f"{HEADER_LINE}\n{ROW}\n{ROW[:20]}")
    assert_file_error(path, 3, "missing trailer")


def test_header_only_has_no_trailer(tmp_path):
    assert_file_error(write(tmp_path, HEADER_LINE + "\n"), 1, "missing trailer")


def test_trailer_count_mismatch(tmp_path):
    path = write(tmp_path, f"{HEADER_LINE}\n{ROW}\n{ROW}\n5\n")
    assert_file_error(path, 4, "trailer count 5", "2 data rows")


def test_trailer_error_comes_after_every_row(tmp_path):
    path = write(tmp_path, f"{HEADER_LINE}\n{ROW}\n{ROW}\n7\n")
    seen = []
    with pytest.raises(FileFormatError):
        for row in PsvReader(path):
            seen.append(row)
    assert len(seen) == 2


def test_nul_bytes_mean_not_text(tmp_path):
    path = write(tmp_path, f"{HEADER_LINE}\n{ROW}\x00\n1\n".encode())
    assert_file_error(path, 2, "not a text file")


def test_undecodable_bytes_mean_not_text(tmp_path):
    path = write(tmp_path, HEADER_LINE.encode() + b"\n" + b"\xff\xfe|x\n1\n")
    assert_file_error(path, 2, "not a text file")


def test_binary_file_is_not_text(tmp_path):
    path = write(tmp_path, b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03")
    assert_file_error(path, 1, "not a text file")


def test_overlong_line_is_refused_without_reading_it_whole(tmp_path):
    path = write(tmp_path, f"{HEADER_LINE}\n{'A' * (MAX_LINE_BYTES * 3)}\n1\n")
    assert_file_error(path, 2, "longer than")


def test_file_sha256_matches_hashlib(tmp_path):
    path = write(tmp_path, b"x" * (3 << 20))
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


class LineByLine(PsvReader):
    """The reader as it read before blocks: one `readline` per line, the oracle below."""

    def _blocks(self, handle, hash_bytes):
        number = 0
        while chunk := handle.readline(parser.MAX_LINE_BYTES + 1):
            number += 1
            hash_bytes(chunk)
            self.bytes_read += len(chunk)
            yield [self._decode(chunk, number)]


class RowByRow(LineByLine):
    """The reader as it grouped lines before `blocks`: one row at a time, the last non-blank
    line held back as the trailer candidate; the oracle of the block grouping."""

    def __iter__(self):
        self.row_count, self.bytes_read, self._content_hash = 0, 0, None
        digest = hashlib.sha256()
        line_number, pending, blanks = 0, None, []
        with parser.open_content(self.path) as (handle, self.total_bytes):
            for lines in self._blocks(handle, digest.update):
                for text in lines:
                    line_number += 1
                    if line_number == 1:
                        self._check_header(text.removeprefix("\ufeff"))
                        continue
                    if not text.strip():
                        blanks.append(RawRow(line_number, text))
                        continue
                    if pending is not None:
                        self.row_count += 1
                        yield pending
                    for blank in blanks:
                        self.row_count += 1
                        yield blank
                    blanks.clear()
                    pending = RawRow(line_number, text)
        self._content_hash = digest.hexdigest()
        if line_number == 0:
            raise FileFormatError(self.path, 1, "empty file: expected the header " + HEADER_LINE)
        self._check_trailer(pending, line_number)


def outcome(reader):
    rows = []
    try:
        for row in reader:
            rows.append(row)
    except FileFormatError as exc:
        return rows, (exc.line_number, str(exc))
    return rows, (reader.row_count, reader.content_hash, reader.bytes_read)


pieces = st.sampled_from(
    [b"", b" ", b"\r", b"\x00", b"\xff", "é".encode(), b"|", b"7", ROW.encode(), b"x" * 40]
)
lines = st.lists(pieces, max_size=4).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([HEADER_LINE.encode(), b"\xef\xbb\xbf" + HEADER_LINE.encode(), b"x|y"]),
    st.lists(lines, max_size=12),
    st.sampled_from([b"", b"\n", b"\r\n", b"\n\n"]),
    st.integers(1, 80),
)
def test_reading_in_blocks_yields_what_reading_line_by_line_does(header, body, end, block):
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), b"\n".join([header, *body]) + end)
        with (
            mock.patch.object(parser, "MAX_LINE_BYTES", 60),
            mock.patch.object(parser, "BLOCK_BYTES", block),
        ):
            assert outcome(PsvReader(path)) == outcome(LineByLine(path))
            assert outcome(PsvReader(path)) == outcome(RowByRow(path))
            blocks = [(b.first_line, b.lines) for b in _blocks_until_error(PsvReader(path))]
            rows = outcome(PsvReader(path))[0]
            assert [r for b in blocks for r in RawBlock(*b).rows()] == rows


def _blocks_until_error(reader):
    try:
        yield from reader.blocks()
    except FileFormatError:
        return


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(0, 3), st.text(max_size=5)), max_size=30))
def test_rows_and_blocks_read_as_the_same_blocks(steps):
    rows, number = [], 2
    for gap, text in steps:
        number += gap
        rows.append(RawRow(number, text))
        number += 1
    blocks = list(as_blocks(rows))
    assert [r for b in blocks for r in b.rows()] == rows
    for block in blocks:
        assert len(block.lines) <= parser.BLOCK_ROWS
    assert list(as_blocks(blocks)) == blocks


def test_record_hash_is_the_lines_blake2b_64_and_identical_lines_share_it():
    lines = ["Q|ABC|20240305|10:00:00|S|1|10|", "Q|ABC|20240305|10:00:00|S|1|10|", "Ü|x"]
    expected = [hashlib.blake2b(line.encode(), digest_size=8).hexdigest() for line in lines]
    assert list(record_hashes(lines)) == expected
    assert [RawRow(n, line).record_hash for n, line in enumerate(lines)] == expected
    assert expected[0] == expected[1] != expected[2]
    assert all(len(h) == 16 for h in expected)
