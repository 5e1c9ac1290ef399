"""The settings every user class reads, resolved once per process by the locustfile's init hook."""

from __future__ import annotations

from config import Settings, load_settings

_settings: Settings | None = None


def set_settings(settings: Settings) -> None:
    global _settings
    _settings = settings


def get_settings() -> Settings:
    """The run's settings (from the environment alone if the locustfile did not set them)."""
    global _settings
    if _settings is None:
        _settings = load_settings()
    return _settings
