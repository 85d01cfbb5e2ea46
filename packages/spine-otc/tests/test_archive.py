import zipfile

import pytest

from spine_otc.errors import FileFormatError
from spine_otc.generator import generate, zip_parts
from spine_otc.parser import PsvReader, file_sha256


def read(path):
    progress = []
    reader = PsvReader(path, on_progress=lambda done, total: progress.append((done, total)))
    rows = list(reader)
    return rows, reader.content_hash, progress[-1]


def test_a_zip_reads_hashes_and_reports_progress_as_its_text_file(tmp_path):
    made = generate(tmp_path / "FNSQsh202403.txt", 5000, 2, 3, seed=1, bad_rate=0.01)
    (part,) = zip_parts(made, 1, tmp_path, "FNSQsh202403")
    plain_rows, plain_hash, plain_progress = read(made.path)
    zip_rows, zip_hash, zip_progress = read(part)
    assert zip_rows == plain_rows
    assert zip_hash == file_sha256(part) == plain_hash == file_sha256(made.path)
    size = made.path.stat().st_size
    assert plain_progress == zip_progress == (size, size)


def test_parts_hold_every_row_once_in_order(tmp_path):
    made = generate(tmp_path / "m.txt", 1001, 3, 2, seed=2)
    parts = zip_parts(made, 3, tmp_path, "m")
    assert [p.name for p in parts] == ["m_1.zip", "m_2.zip", "m_3.zip"]
    lines = [row.raw_line for part in parts for row in PsvReader(part)]
    assert lines == [row.raw_line for row in PsvReader(made.path)]


def test_a_damaged_member_is_a_format_error_not_a_traceback(tmp_path):
    made = generate(tmp_path / "m.txt", 2000, 1, 2, seed=3)
    path = tmp_path / "m.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.write(made.path, "m.txt")
    data = bytearray(path.read_bytes())
    middle = data.index(b"\n", len(data) // 2) + 1
    data[middle] = ord("Z") if data[middle] != ord("Z") else ord("Y")
    path.write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match=r"m\.zip: damaged ZIP archive: Bad CRC-32"):
        list(PsvReader(path))
