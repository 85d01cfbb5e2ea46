"""A deterministic generator of realistic FINRA short-sale files, for tests and benchmarks.

It streams straight to disk (constant memory), and the same arguments give a byte-identical
file. Within a day, times rise through pre-market, regular hours (most trades) and post-market;
prices random-walk per symbol; sizes are mostly round lots with odd and fractional lots mixed in.
"""

from __future__ import annotations

import bisect
import itertools
import random
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TextIO

from spine_otc.layout import DELIMITER, HEADER_LINE

DEFAULT_START_DATE = date(2024, 3, 4)
_TICKERS = (
    "AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META", "GOOGL", "BRK.B", "AMD", "SPY",
    "QQQ", "INTC", "NFLX", "BAC", "F", "T", "PLTR", "SOFI", "NIO", "GME",
)  # fmt: skip
_VENUES = ("Q", "N", "B", "D", "O")
_VENUE_WEIGHTS = (0.45, 0.30, 0.15, 0.05, 0.05)
_ROUND_LOTS = (1, 1, 1, 1, 2, 2, 3, 5, 10)
_EXEMPT_SHARE = 0.04
_PRICE_STEP = 0.0008
_SEGMENTS = (
    (4 * 3600, 9 * 3600 + 1800, 0.06),
    (9 * 3600 + 1800, 16 * 3600, 0.88),
    (16 * 3600, 20 * 3600 + 1, 0.06),
)
"""(start second, end second exclusive, share of the day's rows); 20:00:00 itself is allowed."""

_BAD_KINDS = (
    "field_count", "missing_field", "bad_date", "bad_time", "out_of_hours",
    "bad_symbol", "bad_venue", "bad_short_type", "bad_size", "bad_price",
)  # fmt: skip


@dataclass(frozen=True)
class GeneratedFile:
    """What `generate` wrote."""

    path: Path
    rows: int
    bad_rows: int
    dates: tuple[date, ...]
    symbols: tuple[str, ...]


def trading_days(start: date, count: int) -> tuple[date, ...]:
    """The first `count` weekdays from `start` (holidays are not modelled)."""
    days = (start + timedelta(days=offset) for offset in itertools.count())
    return tuple(itertools.islice((d for d in days if d.weekday() < 5), count))


def symbol_names(count: int) -> tuple[str, ...]:
    """Real-looking tickers first, then `SYM0021`-style names."""
    extra = (f"SYM{index:04d}" for index in range(len(_TICKERS) + 1, count + 1))
    return (_TICKERS + tuple(extra))[:count]


def generate(
    path: str | Path,
    rows: int,
    days: int,
    symbols: int | Sequence[str],
    seed: int,
    bad_rate: float = 0.0,
    start_date: date = DEFAULT_START_DATE,
    *,
    trailer_counts_header: bool = False,
) -> GeneratedFile:
    """Write a file of `rows` data rows over `days` trading days; `bad_rate` of them invalid.

    The bad rows (exactly `round(rows * bad_rate)`) mix every reject reason.
    `trailer_counts_header` reproduces the FINRA quirk of a trailer that counts the header.
    """
    if rows < 0 or days < 1:
        raise ValueError("rows must be >= 0 and days >= 1")
    if not 0.0 <= bad_rate <= 1.0:
        raise ValueError("bad_rate must be between 0 and 1")
    names = symbol_names(symbols) if isinstance(symbols, int) else tuple(symbols)
    if not names:
        raise ValueError("need at least one symbol")
    rng = random.Random(seed)
    dates = trading_days(start_date, days)
    writer = _RowWriter(rng, names, round(rows * bad_rate), rows)
    target = Path(path)
    with open(target, "w", encoding="utf-8", newline="\n", buffering=1 << 20) as out:
        out.write(HEADER_LINE + "\n")
        per_day, extra = divmod(rows, days)
        for index, day in enumerate(dates):
            writer.write_day(out, day, per_day + (index < extra))
        out.write(f"{rows + 1 if trailer_counts_header else rows}\n")
    return GeneratedFile(target, rows, writer.bad_written, dates, names)


def zip_parts(made: GeneratedFile, parts: int, out_dir: str | Path, stem: str) -> tuple[Path, ...]:
    """Split a generated file into `parts` ZIP archives as FINRA splits a large month.

    Part k is `{stem}_k.zip` holding one `{stem}_k.txt`: the header, the next run of data rows
    (a split may fall inside a day, so parts can share dates) and its own trailer. Streams.
    """
    if parts < 1:
        raise ValueError("parts must be >= 1")
    sizes = [made.rows // parts + (k < made.rows % parts) for k in range(parts)]
    written: list[Path] = []
    with open(made.path, encoding="utf-8", newline="") as source:
        source.readline()
        for number, size in enumerate(sizes, start=1):
            target = Path(out_dir) / f"{stem}_{number}.zip"
            with (
                zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive,
                archive.open(f"{stem}_{number}.txt", "w") as member,
            ):
                member.write((HEADER_LINE + "\n").encode())
                for line in itertools.islice(source, size):
                    member.write(line.encode())
                member.write(f"{size}\n".encode())
            written.append(target)
    return tuple(written)


class _RowWriter:
    """Keeps each symbol's random walk and the exact bad-row quota while rows stream out."""

    def __init__(self, rng: random.Random, names: tuple[str, ...], bad_rows: int, rows: int):
        self.rng = rng
        self.names = names
        self.symbol_weights = list(
            itertools.accumulate(1 / (k + 1) ** 0.8 for k in range(len(names)))
        )
        self.venue_weights = list(itertools.accumulate(_VENUE_WEIGHTS))
        self.prices = [round(rng.uniform(5, 500), 2) for _ in names]
        self.bad_left = bad_rows
        self.rows_left = rows
        self.bad_written = 0

    def write_day(self, out: TextIO, day: date, count: int) -> None:
        day_text = day.strftime("%Y%m%d")
        sizes = [round(count * share) for *_, share in _SEGMENTS]
        sizes[1] = count - sizes[0] - sizes[2]
        for (start, end, _share), size in zip(_SEGMENTS, sizes, strict=True):
            for second in self._rising_seconds(start, end, size):
                out.write(DELIMITER.join(self._row(day_text, second)) + "\n")

    def _rising_seconds(self, start: int, end: int, count: int) -> Iterator[int]:
        """`count` sorted uniform times in [start, end), drawn one at a time (order statistics)."""
        position = float(start)
        for remaining in range(count, 0, -1):
            position += (end - position) * (1 - self.rng.random() ** (1 / remaining))
            yield min(int(position), end - 1)

    def _row(self, day_text: str, second: int) -> list[str]:
        rng = self.rng
        pick = bisect.bisect(self.symbol_weights, rng.random() * self.symbol_weights[-1])
        pick = min(pick, len(self.names) - 1)
        price = max(0.01, self.prices[pick] * (1 + rng.gauss(0, _PRICE_STEP)))
        self.prices[pick] = price
        venue_pick = bisect.bisect(self.venue_weights, rng.random() * self.venue_weights[-1])
        hours, rest = divmod(second, 3600)
        fields = [
            _VENUES[min(venue_pick, len(_VENUES) - 1)],
            self.names[pick],
            day_text,
            f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}",
            "E" if rng.random() < _EXEMPT_SHARE else "S",
            self._size(),
            f"{price:.4f}",
            "A",
        ]
        if rng.random() * self.rows_left < self.bad_left:
            self.bad_left -= 1
            self.bad_written += 1
            fields = self._spoil(fields)
        self.rows_left -= 1
        return fields

    def _size(self) -> str:
        draw = self.rng.random()
        if draw < 0.01:
            return str(self.rng.randint(50, 500) * 100)
        if draw < 0.63:
            return str(100 * self.rng.choice(_ROUND_LOTS))
        if draw < 0.95:
            return str(self.rng.randint(1, 99))
        return f"{self.rng.randint(1, 999_999) / 10_000:.4f}".rstrip("0").rstrip(".")

    def _spoil(self, fields: list[str]) -> list[str]:
        kind = self.rng.choice(_BAD_KINDS)
        spoiled = list(fields)
        if kind == "field_count":
            return spoiled[:-1]
        index, value = {
            "missing_field": (1, ""),
            "bad_date": (2, fields[2][:4] + "0230"),
            "bad_time": (3, "25:10:00"),
            "out_of_hours": (3, self.rng.choice(("03:15:00", "20:30:00"))),
            "bad_symbol": (1, fields[1].lower() + "$"),
            "bad_venue": (0, "X"),
            "bad_short_type": (4, "Z"),
            "bad_size": (5, self.rng.choice(("0", "-100"))),
            "bad_price": (6, self.rng.choice(("0", "n/a"))),
        }[kind]
        spoiled[index] = value
        return spoiled
