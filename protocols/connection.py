"""Opening WebSockets the fast way for many calls per process, and timing the handshake."""

from __future__ import annotations

import ssl
import time
from functools import lru_cache

import websocket


@lru_cache(maxsize=2)
def shared_ssl_context(insecure: bool = False) -> ssl.SSLContext:
    """One SSL context per process (websocket-client builds a new one per connection otherwise).
    Certificates are verified unless the user asked for --insecure."""
    context = ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def open_websocket(url: str, headers: dict[str, str] | None = None, timeout: float = 10.0,
                   insecure: bool = False) -> tuple[websocket.WebSocket, float]:
    """Connect and upgrade; returns (socket, handshake ms = TCP + TLS + HTTP upgrade until the 101 is read).

    UTF-8 validation of received frames is skipped (the pure-Python check is the main per-frame cost);
    frames are parsed as JSON anyway, which rejects invalid text.
    """
    options = {"sslopt": {"context": shared_ssl_context(insecure)}} if url.startswith("wss://") else {}
    started = time.perf_counter()
    ws = websocket.create_connection(
        url, timeout=timeout, header=[f"{k}: {v}" for k, v in (headers or {}).items()],
        skip_utf8_validation=True, enable_multithread=True, **options,
    )
    return ws, (time.perf_counter() - started) * 1000.0
