"""The HTTP API: a FastAPI app over the same dispatcher and stores the CLI uses."""

from spine_intermediate.api.app import create_app

__all__ = ["create_app"]
