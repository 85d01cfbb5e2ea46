"""Market Spine's intermediate tier: PostgreSQL, thread-pool workers, run history and an API."""

__version__ = "0.1.1"
