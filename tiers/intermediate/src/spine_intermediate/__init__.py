"""Market Spine's intermediate tier: PostgreSQL, thread-pool workers, run history and an API."""

from importlib.metadata import version as _distribution_version

__version__ = _distribution_version("market-spine-intermediate")
