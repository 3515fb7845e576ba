"""The ``kiln`` command line (Typer + Rich). Heavy libraries load inside the commands."""

from __future__ import annotations

from kiln.cli._app import app, main

__all__ = ["app", "main"]
