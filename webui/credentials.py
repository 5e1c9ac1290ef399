"""The web UI login's credentials (for --web-login), from the environment. Imports nothing of Locust."""

from __future__ import annotations

import os
from collections.abc import Mapping

USER_ENV, PASSWORD_ENV = "VOICELOAD_WEB_USER", "VOICELOAD_WEB_PASSWORD"
DEFAULT_USER = "voiceload"


def credentials_problem(environ: Mapping[str, str] = os.environ) -> str | None:
    """Why --web-login cannot work with this environment (None: it can)."""
    if not environ.get(PASSWORD_ENV):
        return f"--web-login needs a password: set {PASSWORD_ENV} (and {USER_ENV}, default {DEFAULT_USER!r})"
    return None


def credentials(environ: Mapping[str, str] = os.environ) -> tuple[str, str]:
    return environ.get(USER_ENV) or DEFAULT_USER, environ[PASSWORD_ENV]
