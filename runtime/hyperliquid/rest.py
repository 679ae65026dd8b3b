"""One ``POST /info`` call, with every way it can fail named in one exception.

Errors are errors: an HTTP failure, a transport error or a reply that is not JSON is never
read as "nothing there" — callers (healing, position polling) decide what a failure means
for them, from :class:`InfoCallFailed`'s one-line reason.
"""

from __future__ import annotations

from typing import Any

import httpx


class InfoCallFailed(RuntimeError):
    """The call did not return JSON; ``str()`` says why in one line."""


def post_info(http: httpx.Client, url: str, body: dict[str, Any]) -> Any:
    """The decoded JSON answer to ``body``; raises :class:`InfoCallFailed`."""
    try:
        response = http.post(url, json=body)
        response.raise_for_status()
        return response.json()
    except httpx.HTTPStatusError as exc:
        raise InfoCallFailed(
            f"HTTP {exc.response.status_code}: {exc.response.text[:200]}"
        ) from None
    except httpx.HTTPError as exc:
        raise InfoCallFailed(f"{type(exc).__name__}: {exc}") from None
    except ValueError as exc:
        raise InfoCallFailed(f"reply is not JSON: {exc}") from None
