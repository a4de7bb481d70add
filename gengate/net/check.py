"""Checking one URL against the SSRF rules (url-analysis.md §3.2, steps 1 and 2).

`check_url` is for validating client input early (a 400 at create time); `GuardedClient` runs the
same `checked_addresses` at connect time, so what it connects to is exactly what was checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from dataclasses import dataclass
from typing import Protocol

from yarl import URL

from gengate.net.addresses import (
    HostError,
    IPAddress,
    embedded_ipv4,
    in_networks,
    name_refusal,
    parse_host,
    refusal_reason,
)
from gengate.net.errors import URLRefused
from gengate.net.policy import GuardPolicy

log = logging.getLogger("gengate.net")


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[str]:
        """Every address (A and AAAA) that ``host`` resolves to, as strings."""
        ...


class SystemResolver:
    """The operating system's resolver, through the event loop's getaddrinfo."""

    async def resolve(self, host: str, port: int) -> list[str]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Target:
    """A URL that passed the checks needing no DNS: scheme, host syntax, port, host names."""

    url: URL
    host: IPAddress | str  # an address for IP literals (any spelling), else the normalised name
    port: int


def parse_target(url: str | URL, policy: GuardPolicy, field: str = "url") -> Target:
    """Parse ``url`` with the parser aiohttp connects with, and apply every rule that needs no DNS.

    User-info is allowed (``http://user:pass@host/``), and the host checked is the one connected to.
    """
    if isinstance(url, str):
        if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
            raise _refuse(f"{field} contains whitespace or control characters")
        try:
            url = URL(url)
        except (ValueError, TypeError):
            raise _refuse(f"{field} is not a valid URL") from None
    if not url.scheme:
        raise _refuse(f"{field} must be an absolute http(s) URL")
    if url.scheme not in policy.schemes:
        raise _refuse(f"{field} scheme {url.scheme!r} is not allowed")
    if not url.absolute:
        raise _refuse(f"{field} has no host")
    try:
        host = parse_host(url.raw_host or "")
        port = url.port
    except HostError as exc:
        raise _refuse(f"{field} {exc}") from None
    except ValueError:  # yarl raises on a malformed port only when asked for it
        raise _refuse(f"{field} has an invalid port") from None
    if port is None or not 0 < port < 65536:
        raise _refuse(f"{field} has an invalid port")
    if isinstance(host, str):
        _check_name(host, policy, field)
    return Target(url, host, port)


async def checked_addresses(
    host: IPAddress | str, port: int, policy: GuardPolicy, resolver: Resolver, field: str = "url"
) -> list[str]:
    """Resolve ``host`` (unless it is an address) and return its addresses if every one is allowed.

    Raises URLRefused if any address is refused, or if the name does not resolve.
    """
    if not isinstance(host, str):
        _check_address(host, policy, f"{field} points to")
        return [str(host)]
    _check_name(host, policy, field)
    try:
        answers = await resolver.resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise _refuse(f"{field} host {host} does not resolve ({exc})") from None
    if not answers:
        raise _refuse(f"{field} host {host} does not resolve")
    addresses: list[IPAddress] = []
    for answer in answers:
        try:
            addresses.append(ipaddress.ip_address(answer))
        except ValueError:
            raise _refuse(f"{field} host {host} resolves to something that is not an address") from None
        if addresses[-1].version == 6 and addresses[-1].scope_id:
            raise _refuse(f"{field} host {host} resolves to a scoped address ({answer})")
    for address in addresses:  # refuse if ANY answer is refused: a later connect may pick that one
        _check_address(address, policy, f"{field} resolves to")
    return [str(address) for address in addresses]


async def check_url(
    url: str, policy: GuardPolicy, resolver: Resolver | None = None, *, field: str = "url"
) -> list[str]:
    """Validate scheme, host, port and every resolved address; return the allowed addresses.

    ``field`` names the client's parameter in the refusal message (``callback_url``, ``url``).
    IP literals, in any spelling, are judged without DNS; a lookup gets ``policy.timeout`` seconds.
    """
    target = parse_target(url, policy, field)
    try:
        async with asyncio.timeout(policy.timeout):
            return await checked_addresses(target.host, target.port, policy, resolver or SystemResolver(), field)
    except TimeoutError:
        raise _refuse(f"{field} host {target.url.host} did not resolve within {policy.timeout:g} s") from None


def _check_name(name: str, policy: GuardPolicy, field: str) -> None:
    match name_refusal(name):
        case "metadata":  # never a legitimate target, even in local testing
            raise _refuse(f"{field} host {name} is a cloud metadata service")
        case "local" if not policy.allow_private:
            raise _refuse(f"{field} host {name} is this machine")


def _check_address(address: IPAddress, policy: GuardPolicy, says: str) -> None:
    if policy.allow_private or in_networks(address, policy.allow_cidrs):
        return
    reason = refusal_reason(address)
    if reason is not None:
        article = "an" if reason[0] in "aeiou" else "a"
        inner = embedded_ipv4(address)
        shown = f"{address} = {inner}" if inner is not None else str(address)
        raise _refuse(f"{says} {article} {reason} address ({shown})")


def _refuse(message: str) -> URLRefused:
    log.info("outbound URL refused: %s", message)
    return URLRefused(message)
