"""Opening a short-sale file as a byte stream, whether plain text or a ZIP as FINRA publishes it.

FINRA publishes its monthly files as ZIP archives of one text member. The member is read as a
stream straight out of the archive (nothing is extracted to disk), so a ZIP gets the same
hashing, framing checks, capture and progress as the plain file inside it. The content hash is
that of the member's bytes: the same text, zipped or not, is the same content.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Protocol

from spine_otc.errors import FileFormatError

ZIP_SUFFIX = ".zip"


class Readable(Protocol):
    """What the reader needs of a content stream."""

    def read(self, size: int = -1, /) -> bytes:
        """Up to `size` bytes; empty at the end."""
        ...


def is_zip(path: str | Path) -> bool:
    """Archives are told by their name, as FINRA names them (`FNSQsh202403_1.zip`)."""
    return Path(path).suffix.lower() == ZIP_SUFFIX


@contextmanager
def open_content(path: str | Path) -> Iterator[tuple[Readable, int]]:
    """The file's content as a binary stream, with its size in bytes (a ZIP's member's).

    A ZIP must hold exactly one file; anything else is a `FileFormatError` naming what it holds.
    """
    if not is_zip(path):
        with open(path, "rb") as handle:
            yield handle, Path(path).stat().st_size
        return
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise FileFormatError(
            path, None, "not a ZIP archive, though its name ends in .zip"
        ) from None
    with archive:
        member = _only_member(path, archive)
        try:
            stream = archive.open(member)
        except (NotImplementedError, RuntimeError) as exc:
            raise FileFormatError(
                path, None, f"cannot read member {member.filename}: {exc}"
            ) from None
        with stream:
            yield _Checked(path, stream), member.file_size


def _only_member(path: str | Path, archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    files = [info for info in archive.infolist() if not info.is_dir()]
    if not files:
        raise FileFormatError(path, None, "the ZIP archive holds no file: expected one text file")
    if len(files) > 1:
        names = ", ".join(info.filename for info in files[:5])
        more = f" and {len(files) - 5} more" if len(files) > 5 else ""
        raise FileFormatError(
            path,
            None,
            f"the ZIP archive holds {len(files)} files ({names}{more}): expected one text file",
        )
    return files[0]


class _Checked:
    """A member stream whose damage (bad CRC, truncated data) is a `FileFormatError`."""

    def __init__(self, path: str | Path, stream: BinaryIO) -> None:
        self._path = path
        self._stream = stream

    def read(self, size: int = -1, /) -> bytes:
        """Up to `size` bytes of the member."""
        try:
            return self._stream.read(size)
        except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
            raise FileFormatError(self._path, None, f"damaged ZIP archive: {exc}") from None
