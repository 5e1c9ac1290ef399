"""Let httpx-based SDKs (openai) import under Locust's gevent monkey-patching.

gevent's patched `select` module has no `epoll`; httpcore imports trio when it is installed, and
trio's import reads `select.epoll`, so the import fails. Trio is never used by the synchronous client,
so putting the original name back (nothing else changes) is enough. Import this before the SDK.
"""

import select

if not hasattr(select, "epoll"):
    from gevent import monkey

    _original = monkey.get_original("select", ["epoll"])
    if _original and _original[0] is not None:
        select.epoll = _original[0]
