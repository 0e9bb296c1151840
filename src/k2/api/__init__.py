"""The REST API."""

from k2.api.app import create_app

__all__ = ["create_app"]
