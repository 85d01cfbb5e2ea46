"""Market Spine's basic tier: SQLite storage, a synchronous dispatcher and the `spine` CLI."""

from importlib.metadata import version as _distribution_version

__version__ = _distribution_version("market-spine-basic")
