"""What the outbound-URL guard allows: one frozen policy, read from the environment at startup."""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from gengate.net.addresses import IPNetwork

log = logging.getLogger("gengate.net")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


@dataclass(frozen=True)
class GuardPolicy:
    allow_private: bool = False  # lifts the address rule entirely: local testing only
    allow_cidrs: tuple[IPNetwork, ...] = ()  # operator-trusted ranges, allowed even if private
    max_redirects: int = 5
    max_bytes: int = 10 * 1024 * 1024
    timeout: float = 10.0  # seconds, for the whole request including redirects
    schemes: frozenset[str] = field(default=frozenset({"http", "https"}))


def policy_from_env(env: Mapping[str, str] | None = None) -> GuardPolicy:
    """The policy from ``GENGATE_URL_ALLOW_PRIVATE`` and ``GENGATE_URL_ALLOW_CIDRS`` (comma-separated).

    Raises ValueError naming the variable when a value cannot be read: a mistyped allow-list must
    stop the server, not silently allow less (or more) than the operator meant.
    """
    env = os.environ if env is None else env
    raw_private = env.get("GENGATE_URL_ALLOW_PRIVATE", "").strip().lower()
    if raw_private not in _TRUE | _FALSE:
        raise ValueError(f"GENGATE_URL_ALLOW_PRIVATE must be 1 or 0, not {raw_private!r}")
    cidrs: list[IPNetwork] = []
    for item in env.get("GENGATE_URL_ALLOW_CIDRS", "").split(","):
        if item.strip():
            try:
                cidrs.append(ipaddress.ip_network(item.strip()))
            except ValueError as exc:
                raise ValueError(f"GENGATE_URL_ALLOW_CIDRS: {exc}") from None
    policy = GuardPolicy(allow_private=raw_private in _TRUE, allow_cidrs=tuple(cidrs))
    if policy.allow_private:
        warn_allow_private()
    if policy.allow_cidrs:
        log.info("client-influenced URLs may reach %s", ", ".join(map(str, policy.allow_cidrs)))
    return policy


@functools.cache
def warn_allow_private() -> None:
    """Say once per process that the address rule is off."""
    log.warning(
        "GENGATE_URL_ALLOW_PRIVATE is set: client-supplied URLs (webhooks, URL analysis, media URLs) may "
        "reach private, loopback and link-local addresses. Use this for local testing only."
    )
