"""The one guard for every outbound request whose target a client can influence (url-analysis.md §3).

Webhook ``callback_url`` deliveries, ``/r/{url}`` and ``/v1/scrape`` fetches and media URLs in task
inputs all go through `check_url` (validate early) and `GuardedClient` (send). Channel base URLs
and upstream result URLs are operator configuration and do not use it.

    addresses.py   which addresses and host names are refused; odd IPv4 spellings normalised
    policy.py      GuardPolicy and GENGATE_URL_ALLOW_PRIVATE / GENGATE_URL_ALLOW_CIDRS
    check.py       check_url: scheme, host, port, every resolved address
    client.py      GuardedClient: pinned connections, checked redirects, byte and time caps
    errors.py      URLRefused, ResponseTooLarge, FetchFailed, FetchTimeout
"""

from __future__ import annotations

from gengate.net.check import Resolver, SystemResolver, check_url
from gengate.net.client import GuardedClient, GuardedResponse
from gengate.net.errors import FetchFailed, FetchTimeout, ResponseTooLarge, URLRefused
from gengate.net.policy import GuardPolicy, policy_from_env

__all__ = [
    "FetchFailed",
    "FetchTimeout",
    "GuardPolicy",
    "GuardedClient",
    "GuardedResponse",
    "Resolver",
    "ResponseTooLarge",
    "SystemResolver",
    "URLRefused",
    "check_url",
    "policy_from_env",
]
