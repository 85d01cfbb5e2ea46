"""Market Spine's advanced tier: Celery, dead letters, map fan-out, checkpoint and resume."""

from importlib.metadata import version as _distribution_version

__version__ = _distribution_version("market-spine-advanced")
