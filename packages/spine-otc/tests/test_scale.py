import time
import tracemalloc

import pytest

from spine_otc.generator import generate
from spine_otc.parser import PsvReader


def peak_bytes(work):
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_generator_and_parser_use_constant_memory(tmp_path):
    path = tmp_path / "f.psv"
    small = peak_bytes(lambda: generate(path, rows=5_000, days=2, symbols=10, seed=1))
    large = peak_bytes(lambda: generate(path, rows=60_000, days=2, symbols=10, seed=1))
    assert large < small + 256 * 1024

    def count_rows():
        assert sum(1 for _ in PsvReader(path)) == 60_000

    assert path.stat().st_size > 2_000_000
    assert peak_bytes(count_rows) < 512 * 1024


@pytest.mark.slow
def test_a_million_rows_generate_and_parse_quickly(tmp_path):
    started = time.perf_counter()
    made = generate(tmp_path / "big.psv", rows=1_000_000, days=5, symbols=50, seed=1)
    reader = PsvReader(made.path)
    assert sum(1 for _ in reader) == 1_000_000
    assert time.perf_counter() - started < 45
