"""CLI commands for demo (registered on the shared app)."""

from ._app import app  # noqa: F401
