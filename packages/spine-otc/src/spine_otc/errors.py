"""Errors the OTC domain raises, each saying which file, line or batch is at fault."""

from __future__ import annotations

from pathlib import Path

from spine_core.errors import SpineError


class FileFormatError(SpineError):
    """The file is not a well-formed FINRA short-sale file; nothing from it may be kept.

    `line_number` is None when the fault is the whole file's (a ZIP archive's content).
    """

    def __init__(self, path: str | Path, line_number: int | None, problem: str) -> None:
        where = f"{path}: line {line_number}" if line_number is not None else str(path)
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.line_number = line_number
        self.problem = problem


class DuplicateBatch(SpineError):
    """A batch with the same content was already captured; capturing it again adds nothing."""

    def __init__(self, content_hash: str, batch_id: str) -> None:
        super().__init__(f"content {content_hash[:12]}… was already captured as batch {batch_id}")
        self.content_hash = content_hash
        self.batch_id = batch_id


class BatchNotFound(SpineError):
    """No batch has the given id."""

    def __init__(self, batch_id: str) -> None:
        super().__init__(f"no OTC batch with id {batch_id!r}")
        self.batch_id = batch_id


class FileChangedError(SpineError):
    """The file changed between hashing it and reading it; ingesting it again will work."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(f"{path}: the file changed while it was being read; ingest it again")
        self.path = str(path)
