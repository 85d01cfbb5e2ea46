"""A streaming reader for FINRA short-sale files: constant memory whatever the file size.

The reader checks the header before the first row and the trailer after the last one, so a
consumer sees every data row before it can know the file is whole: write the rows inside a
transaction and roll back if iteration raises `FileFormatError`.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import operator
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from spine_otc.archive import Readable, open_content
from spine_otc.errors import FileFormatError
from spine_otc.layout import DELIMITER, HEADER_LINE

MAX_LINE_BYTES = 64 * 1024
"""Longer lines mean the file is not this layout; the cap keeps memory constant."""

BLOCK_BYTES = 32 * 1024
"""The reader decodes and checks the file a block at a time (a few C calls, not a few per
line) and reports progress once per block. Under `MAX_LINE_BYTES`, so a block and the line it
continues rarely need their line lengths checked one by one."""
BLOCK_ROWS = 1_000
"""Most rows `as_blocks` groups into one block."""
_TRAILER = re.compile(r"[0-9]+")
_OTHER_DELIMITERS = {",": "comma", "\t": "tab", ";": "semicolon"}

ProgressCallback = Callable[[int, int], None]
"""Called with (bytes read so far, file size in bytes) while a file streams."""


@dataclass(frozen=True, slots=True)
class RawRow:
    """One data line exactly as it appeared in the file, newline removed."""

    line_number: int
    raw_line: str

    @property
    def record_hash(self) -> str:
        """`record_hashes` of this one line."""
        return _HEXDIGEST(_record_digest(self.raw_line.encode()))


@dataclass(frozen=True, slots=True)
class RawBlock:
    """Consecutive data lines of a file, the first numbered `first_line`.

    One object per block of the file instead of one per line, so a store can bind whole
    columns at once.
    """

    first_line: int
    lines: list[str]

    def rows(self) -> Iterator[RawRow]:
        """The block's lines as `RawRow`s."""
        return map(RawRow, itertools.count(self.first_line), self.lines)


def record_hashes(lines: Iterable[str]) -> Iterator[str]:
    """The record hash of each line, without a Python call per line.

    BLAKE2b of the line's UTF-8 bytes with an 8-byte digest, as 16 hex digits: stable (a
    published algorithm, in every Python), the same for identical lines (which are still kept
    apart by their line numbers), and with 64 bits a chance of about 3 in 100 million that two
    different lines of a 1M-line file share one. It identifies a record; the file's
    content hash (sha256) is what proves the bytes. Batches captured before spine-otc 0.4
    carry sha256 digests (64 hex digits) instead: compare hashes of the same length only.
    """
    return map(_HEXDIGEST, map(_record_digest, map(str.encode, lines)))


_record_digest = functools.partial(hashlib.blake2b, digest_size=8)
_HEXDIGEST = operator.methodcaller("hexdigest")


def as_blocks(rows: Iterable[RawRow | RawBlock]) -> Iterator[RawBlock]:
    """`rows` as blocks of consecutive lines: blocks pass through, runs of rows are grouped."""
    pending: list[str] = []
    first = next_line = 0
    for item in rows:
        if isinstance(item, RawBlock):
            if pending:
                yield RawBlock(first, pending)
                pending = []
            yield item
            continue
        if pending and (item.line_number != next_line or len(pending) >= BLOCK_ROWS):
            yield RawBlock(first, pending)
            pending = []
        if not pending:
            first = item.line_number
        pending.append(item.raw_line)
        next_line = item.line_number + 1
    if pending:
        yield RawBlock(first, pending)


def not_a_file(path: Path) -> str | None:
    """Why `path` cannot be read as a file (missing, a folder, a FIFO or device), or None.

    A FIFO would block the reader and a device never ends, so only regular files are read.
    """
    if path.is_file():
        return None
    if not path.exists():
        return "no such file"
    if path.is_dir():
        return "is a folder, not a file"
    return "not a regular file (a FIFO, device or socket)"


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's content, read in chunks: how ingest spots the same content twice.

    A ZIP's content is its member's bytes (see `spine_otc.archive`).
    """
    digest = hashlib.sha256()
    with open_content(path) as (handle, _size):
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _last_non_blank(lines: list[str]) -> int | None:
    """The index of the last line that is not blank, or None."""
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].strip():
            return index
    return None


class PsvReader:
    """Yields a `RawRow` per data line of one file, in order, checking the file's framing.

    The file may be a ZIP archive of one text file, read as a stream (`spine_otc.archive`).

    After a complete iteration `content_hash` is the sha256 of every byte read and `row_count`
    the number of data rows.
    """

    def __init__(self, path: str | Path, *, on_progress: ProgressCallback | None = None) -> None:
        self.path = Path(path)
        self.on_progress = on_progress
        self.row_count = 0
        self.bytes_read = 0
        self.total_bytes = 0
        self._content_hash: str | None = None

    @property
    def content_hash(self) -> str:
        """sha256 of the file's bytes; only known once the whole file has been read."""
        if self._content_hash is None:
            raise RuntimeError(f"{self.path}: content hash is known only after reading it all")
        return self._content_hash

    def __iter__(self) -> Iterator[RawRow]:
        for block in self.blocks():
            yield from block.rows()

    def blocks(self) -> Iterator[RawBlock]:
        """The data rows as `RawBlock`s, a block of the file at a time; checks as `__iter__`.

        The last non-blank line is held back (with the blank lines after it) until a later
        non-blank line shows it was data: at the end of the file it is the trailer.
        """
        self.row_count = 0
        self.bytes_read = 0
        self._content_hash = None
        digest = hashlib.sha256()
        line_number = 0
        held: list[str] = []  # the last non-blank line so far, then the blank lines after it
        held_from = 0
        with open_content(self.path) as (handle, self.total_bytes):
            for lines in self._blocks(handle, digest.update):
                if line_number == 0 and lines:
                    self._check_header(lines[0].removeprefix("\ufeff"))
                    line_number, lines = 1, lines[1:]
                start = line_number + 1
                line_number += len(lines)
                if held:
                    lines, start = held + lines, held_from
                last = _last_non_blank(lines)
                if last is None:  # only blank lines since the header: data rows, or not
                    held, held_from = lines, start
                else:
                    if last:
                        self.row_count += last
                        yield RawBlock(start, lines[:last])
                    held, held_from = lines[last:], start + last
                if self.on_progress:
                    self.on_progress(self.bytes_read, self.total_bytes)
        self._content_hash = digest.hexdigest()
        if self.on_progress:
            self.on_progress(self.bytes_read, self.total_bytes)
        if line_number == 0:
            raise FileFormatError(self.path, 1, "empty file: expected the header " + HEADER_LINE)
        trailer = RawRow(held_from, held[0]) if held and held[0].strip() else None
        self._check_trailer(trailer, line_number)

    def _blocks(self, handle: Readable, hash_bytes: Callable[[bytes], None]) -> Iterator[list[str]]:
        """The file's lines, newlines removed, a block at a time, each line checked.

        A line is checked when its block is consumed, so the lines before a bad one are seen
        first, as when reading line by line; an unfinished line longer than the limit stops
        the reading there, so memory stays within a block plus one line.
        """
        first = 1  # the number of the block's first line
        tail = b""
        while block := handle.read(BLOCK_BYTES):
            hash_bytes(block)
            self.bytes_read += len(block)
            buffer = tail + block
            end = buffer.rfind(b"\n") + 1
            tail = buffer[end:]
            if end:
                data = buffer[:end]
                lines = self._decode_block(data)
                if lines is None:  # a bad line: one at a time, so the lines before it come first
                    chunks = data.split(b"\n")[:-1]
                    for number, chunk in enumerate(chunks, start=first):
                        yield [self._decode(chunk + b"\n", number)]
                    first += len(chunks)
                else:
                    yield lines
                    first += len(lines)
            if len(tail) > MAX_LINE_BYTES:
                raise self._too_long(first)
        if tail:
            yield [self._decode(tail, first)]

    @staticmethod
    def _decode_block(data: bytes) -> list[str] | None:
        """The lines of `data` (complete lines) as `_decode` gives them, or None for a bad line.

        A line too long, with NUL bytes or not UTF-8 is left to `_decode` line by line, which
        finds it and says why.
        """
        if b"\x00" in data or (
            len(data) > MAX_LINE_BYTES and max(map(len, data.split(b"\n"))) >= MAX_LINE_BYTES
        ):
            return None
        try:
            lines = data.decode("utf-8").split("\n")
        except UnicodeDecodeError:
            return None
        lines.pop()  # after the last newline: nothing
        if b"\r" in data:
            lines = [line.removesuffix("\r") for line in lines]
        return lines

    def _too_long(self, line_number: int) -> FileFormatError:
        return FileFormatError(
            self.path,
            line_number,
            f"line longer than {MAX_LINE_BYTES} bytes: not a FINRA short-sale file",
        )

    def _decode(self, chunk: bytes, line_number: int) -> str:
        if len(chunk) > MAX_LINE_BYTES:
            raise self._too_long(line_number)
        if b"\x00" in chunk:
            raise FileFormatError(self.path, line_number, "not a text file: contains NUL bytes")
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileFormatError(
                self.path,
                line_number,
                f"not a text file: byte {exc.start + 1} of the line is not valid UTF-8",
            ) from None
        return text.removesuffix("\n").removesuffix("\r")

    def _check_header(self, header: str) -> None:
        if header == HEADER_LINE:
            return
        if DELIMITER not in header:
            for delimiter, name in _OTHER_DELIMITERS.items():
                if delimiter in header:
                    raise FileFormatError(
                        self.path,
                        1,
                        f"wrong delimiter: the header is {name}-separated, "
                        f"this layout uses {DELIMITER!r}",
                    )
        raise FileFormatError(
            self.path,
            1,
            f"wrong header: expected {HEADER_LINE!r}, "
            f"found a line of {header.count(DELIMITER) + 1} field(s) that differs",
        )

    def _check_trailer(self, last: RawRow | None, line_count: int) -> None:
        if last is None or not _TRAILER.fullmatch(last.raw_line.strip()):
            raise FileFormatError(
                self.path,
                last.line_number if last else line_count,
                "missing trailer: the last line must be the record count (file truncated?)",
            )
        count = int(last.raw_line.strip())
        if count not in (self.row_count, self.row_count + 1):
            raise FileFormatError(
                self.path,
                last.line_number,
                f"trailer count {count} does not match the {self.row_count} data rows "
                f"(expected {self.row_count}, or {self.row_count + 1} counting the header)",
            )
