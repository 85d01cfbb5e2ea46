"""Log output: text for people, JSON for collectors, and no secret in either.

`configure_handler` gives a handler the chosen formatter and two filters: `LogContextFilter`
(every record carries execution_id, step, attempt and worker) and `SecretMaskFilter` (a URL's
password becomes `***`). The formatters mask their whole output as well, so a traceback that
quotes a URL is masked too.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from spine_core.errors import ConfigurationError
from spine_core.log_context import FIELDS, LogContextFilter

LOG_FORMATS = ("text", "json")
LOG_FORMAT_OPTION = "log_format"
"""`SPINE_LOG_FORMAT=json|text` (the `--log-format` option sets it)."""

TEXT_PATTERN = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@")


def mask_secrets(text: str) -> str:
    """`text` with the password of every URL in it replaced by `***`."""
    return _URL_PASSWORD.sub(r"\g<head>***@", text)


def log_format(options: Mapping[str, str]) -> str:
    """The configured format; text unless told otherwise."""
    chosen = (options.get(LOG_FORMAT_OPTION) or "text").strip().lower()
    if chosen not in LOG_FORMATS:
        raise ConfigurationError(f"SPINE_LOG_FORMAT must be text or json, got {chosen!r}")
    return chosen


class SecretMaskFilter(logging.Filter):
    """Masks URL passwords in the record's message (its arguments merged in first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always passes the record on, masked."""
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class TextFormatter(logging.Formatter):
    """`time level logger: message`, then the execution fields when there are any."""

    def __init__(self, pattern: str = TEXT_PATTERN) -> None:
        super().__init__(pattern)

    def format(self, record: logging.LogRecord) -> str:
        """The line, masked."""
        line = super().format(record)
        fields = [f"{n}={getattr(record, n)}" for n in FIELDS if getattr(record, n, None)]
        if fields:
            head, _, rest = line.partition("\n")
            line = f"{head} [{' '.join(fields)}]" + (f"\n{rest}" if rest else "")
        return mask_secrets(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with every execution field (null outside an execution)."""

    def format(self, record: logging.LogRecord) -> str:
        """The object, masked."""
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **{name: getattr(record, name, None) for name in FIELDS},
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return mask_secrets(json.dumps(entry, default=str))


def configure_handler(
    handler: logging.Handler, fmt: str, *, text_pattern: str = TEXT_PATTERN
) -> logging.Handler:
    """Give `handler` the formatter for `fmt` and the context and masking filters."""
    if fmt not in LOG_FORMATS:
        raise ConfigurationError(f"log format must be text or json, got {fmt!r}")
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(text_pattern))
    handler.addFilter(LogContextFilter())
    handler.addFilter(SecretMaskFilter())
    return handler
