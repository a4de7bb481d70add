"""Outbound requests to client-influenced URLs, behind the SSRF guard (see `gengate.net.ssrf`)."""

from __future__ import annotations

from gengate.net.ssrf import (
    FetchFailed,
    FetchTimeout,
    GuardedClient,
    GuardedResponse,
    GuardPolicy,
    Resolver,
    ResponseTooLarge,
    SystemResolver,
    URLRefused,
    check_url,
    policy_from_env,
)

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
