"""Errors of the outbound-URL guard; route families map them like any other gengate error.

    InvalidRequest (gengate.core.errors)
    ├── URLRefused           the URL, or a redirect hop, breaks the SSRF rules    (400)
    └── ResponseTooLarge     the target's body is over the byte cap               (400)
    FetchFailed (gengate.core.errors; re-exported here)
    │                        the target could not be reached or answered badly     (502)
    └── FetchTimeout         the whole request, redirects included, took too long  (504)

Messages name the field, the host and the refused address, never the full URL: it may hold
credentials.
"""

from __future__ import annotations

from gengate.core.errors import FetchFailed, FetchTimeout, InvalidRequest

__all__ = ["FetchFailed", "FetchTimeout", "ResponseTooLarge", "URLRefused"]


class URLRefused(InvalidRequest):
    code = "url_refused"


class ResponseTooLarge(InvalidRequest):
    code = "response_too_large"
