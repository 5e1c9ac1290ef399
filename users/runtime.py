"""The settings every user class reads: thin accessors onto the current run context (users/run_context.py),
whose settings the locustfile takes from the options at every test_start."""

from __future__ import annotations

from config import Settings
from users.run_context import current


def set_settings(settings: Settings) -> None:
    current().settings = settings


def get_settings() -> Settings:
    """The run's settings (from the environment alone if the locustfile did not set them)."""
    return current().settings
