"""`python -m target [--port 8000] [--bind 127.0.0.1] [--redis-url redis://...] [--ssl-certfile C --ssl-keyfile K] ...`:
run the reference target."""

from __future__ import annotations

import sys

import uvicorn

from target.settings import SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    try:
        settings = load_settings(sys.argv[1:] if argv is None else argv)
    except SettingsError as exc:
        print(f"target: invalid setting: {exc}", file=sys.stderr)
        return 2
    from target.app import create_app

    try:
        app = create_app(settings)
    except (OSError, ValueError, KeyError) as exc:
        print(f"target: cannot load agent audio: {exc}", file=sys.stderr)
        return 2
    tls = {"ssl_certfile": settings.ssl_certfile, "ssl_keyfile": settings.ssl_keyfile} if settings.ssl_certfile else {}
    uvicorn.run(app, host=settings.bind, port=settings.port, log_level=settings.log_level, access_log=False,
                ws_per_message_deflate=False, timeout_graceful_shutdown=3, **tls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
