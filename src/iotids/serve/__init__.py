"""The HTTP scoring service (FastAPI): ``create_app(scorer)``; ``iotids serve`` runs it with uvicorn."""

from iotids.serve.app import create_app

__all__ = ["create_app"]
