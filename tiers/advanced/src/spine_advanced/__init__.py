"""The advanced tier: Celery, dead letters, logical keys, checkpoint/resume, map fan-out."""

from spine_core import _distribution_version

__version__ = _distribution_version("market-spine-advanced")
