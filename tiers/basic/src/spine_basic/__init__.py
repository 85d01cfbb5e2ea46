"""Market Spine's basic tier: SQLite storage, a synchronous dispatcher and the `spine` CLI."""

__version__ = "0.1.1"
