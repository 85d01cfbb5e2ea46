"""Normalize a chunk of lines at once: the stores' hot path, decided by `normalize_line`.

`trade_values` runs over the whole chunk through `map` (no Python frame per line of ours);
only the lines it does not accept outright go to the normalizer, one by one, which decides
them and explains the rejects. The result is what running the normalizer on every line
gives, as plain values a store binds directly (`tests/test_trade_values.py` checks this).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress

from spine_otc.normalize import (
    NormalizeTally,
    Reject,
    TradeValues,
    plain_values_for,
    trade_values_of,
)
from spine_otc.store import Normalizer


@dataclass(frozen=True, slots=True)
class DecidedChunk:
    """A chunk's trades as (line numbers, values), in line order, and its rejects."""

    trade_lines: list[int]
    trade_values: list[TradeValues]
    rejects: list[tuple[int, Reject, str]]
    """(line number, reject, raw line), in line order."""


def decide_chunk(
    line_numbers: Sequence[int],
    lines: Sequence[str],
    normalizer: Normalizer,
    tally: NormalizeTally,
) -> DecidedChunk:
    """Decide every line of a chunk (`line_numbers[i]` numbers `lines[i]`); count it in `tally`."""
    plain = plain_values_for(normalizer)
    values: list[TradeValues | None] = (
        list(map(plain, lines)) if plain is not None else [None] * len(lines)
    )
    rejects: list[tuple[int, Reject, str]] = []
    keep: list[bool] | None = None
    for index in [i for i, v in enumerate(values) if v is None]:
        result = normalizer(lines[index])
        if isinstance(result, Reject):
            tally.add(result)
            rejects.append((line_numbers[index], result, lines[index]))
            if keep is None:
                keep = [True] * len(lines)
            keep[index] = False
        else:
            values[index] = trade_values_of(result)
    numbers = list(line_numbers)
    if keep is not None:
        values, numbers = list(compress(values, keep)), list(compress(numbers, keep))
    tally.add_valid(len(values))
    return DecidedChunk(numbers, values, rejects)  # type: ignore[arg-type]
