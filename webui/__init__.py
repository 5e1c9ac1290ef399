"""Live voice SLOs in Locust's web UI: `install_voice_tab(environment, clock)` at Locust's init.

Importing this package does not import Locust (whose import monkey-patches with gevent), so the
orchestrator can use webui.credentials; only install_voice_tab does, when called.
"""

from __future__ import annotations


def install_voice_tab(environment, clock) -> None:
    """The Voice SLOs tabs, /voiceload/ and the report downloads on Locust's web UI (see webui/tab.py)."""
    from webui.tab import install_voice_tab as install

    install(environment, clock)


__all__ = ["install_voice_tab"]
