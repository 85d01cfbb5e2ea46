"""What "the same source" means, so a restatement replaces only what its source published.

A FINRA file is named for what it holds: the facility, the month and, for a month split in
parts, the part (`FNSQsh202403.txt`, `FNSQsh202608_2.zip`). Any file carrying that name, in
whatever folder or with whatever extension, is the same source: FINRA re-publishing it is a
restatement. Any other file is its own source, identified by its resolved absolute path, so two
`trades.psv` in different folders never replace each other, while a file rewritten in place
restates what it held before.
"""

from __future__ import annotations

import re
from pathlib import Path

FINRA_NAME = re.compile(
    r"(?P<facility>FN[A-Z]{2})sh(?P<month>\d{4}(?:0[1-9]|1[0-2]))(?:_(?P<part>[1-9]\d*))?"
    r"(?:\.[A-Za-z0-9]+)*"
)
"""A FINRA monthly short-sale file name: facility, `sh`, YYYYMM, optional `_part`."""


def source_key_for(path: str | Path) -> str:
    """`finra:<facility>sh<YYYYMM>[_<part>]` for a FINRA-named file, else `file:<real path>`."""
    path = Path(path)
    finra = FINRA_NAME.fullmatch(path.name)
    if finra is None:
        return f"file:{path.resolve()}"
    part = f"_{finra['part']}" if finra["part"] else ""
    return f"finra:{finra['facility']}sh{finra['month']}{part}"
