"""Market Spine's advanced tier: the intermediate runtime with its own schema on top."""

__version__ = "0.1.0"
