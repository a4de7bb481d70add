"""Which IP addresses a client-influenced request may reach (url-analysis.md §3.1), and host parsing.

Pure functions, no I/O: `parse_host` turns a URL's host into an address or a normalised name (odd
IPv4 spellings such as ``2130706433`` or ``0x7f.1`` become the address they mean), and
`refusal_reason` says why an address is refused, or None when it is public.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Checked in order, so the specific entries (metadata) name the reason before the broad ones.
_IPV4_REFUSED: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(net), reason)
    for net, reason in (
        ("169.254.169.254/32", "cloud metadata"),  # AWS, GCP, Azure, OpenStack
        ("169.254.170.2/32", "cloud metadata"),  # AWS ECS task metadata
        ("100.100.100.200/32", "cloud metadata"),  # Alibaba
        ("0.0.0.0/8", "unspecified"),
        ("127.0.0.0/8", "loopback"),
        ("10.0.0.0/8", "private"),
        ("172.16.0.0/12", "private"),
        ("192.168.0.0/16", "private"),
        ("100.64.0.0/10", "shared (CGNAT)"),
        ("169.254.0.0/16", "link-local"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved"),
        ("192.0.0.0/24", "reserved"),
        ("192.0.2.0/24", "documentation"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("198.18.0.0/15", "benchmarking"),
    )
)
_IPV6_REFUSED: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(net), reason)
    for net, reason in (
        ("fd00:ec2::254/128", "cloud metadata"),  # AWS
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("fc00::/7", "unique-local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
        ("2001:db8::/32", "documentation"),
        ("100::/64", "discard-only"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("2001::/32", "Teredo"),
    )
)
# IPv6 forms that carry an IPv4 address in their low 32 bits (IPv4-mapped has its own property).
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

# Names refused before any lookup: they mean "this machine" or the cloud metadata service.
_LOCAL_NAMES = frozenset({"localhost"})
_METADATA_NAMES = frozenset({"metadata", "metadata.google.internal"})

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")


class HostError(ValueError):
    """The URL's host is not a valid name or address; the message says why."""


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside IPv4-mapped, IPv4-compatible, NAT64 and 6to4 IPv6 addresses."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _IPV4_COMPATIBLE and int(address) > 1:  # :: and ::1 are judged as IPv6
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def refusal_reason(address: IPAddress) -> str | None:
    """Why ``address`` may not be reached (e.g. ``"loopback"``), or None for a public address.

    IPv6 forms that embed an IPv4 address are judged as that IPv4 address. Whatever the table does
    not name still has to be global and not multicast in Python's ``ipaddress`` terms.
    """
    inner = embedded_ipv4(address)
    if inner is not None:
        return refusal_reason(inner)
    rules: Iterable[tuple[IPNetwork, str]] = (
        _IPV4_REFUSED if isinstance(address, ipaddress.IPv4Address) else _IPV6_REFUSED
    )
    for network, reason in rules:
        if address in network:
            return reason
    if address.is_multicast:
        return "multicast"
    if not address.is_global:
        return "non-public"
    return None


def in_networks(address: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    """Whether ``address``, or the IPv4 address it embeds, lies in one of ``networks``."""
    candidates = [address]
    inner = embedded_ipv4(address)
    if inner is not None:
        candidates.append(inner)
    return any(candidate in network for network in networks for candidate in candidates)


def name_refusal(name: str) -> str | None:
    """Why a host name is refused before lookup: ``"local"``, ``"metadata"``, or None."""
    if name in _METADATA_NAMES:
        return "metadata"
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        return "local"
    return None


def parse_host(host: str) -> IPAddress | str:
    """The address a URL host means, or the host name lower-cased without its trailing dot.

    ``host`` is the URL's raw (ASCII, IDNA-encoded) host, IPv6 without brackets. A host whose last
    label is numeric is an IPv4 address in any of the legacy spellings resolvers accept (WHATWG URL
    rules: ``127.1``, ``2130706433``, ``0177.0.0.1``, ``0x7f.0.0.1``); if it is not a valid one,
    HostError, so that no resolver gets to interpret it its own way.
    """
    if not host:
        raise HostError("has no host")
    if ":" in host:
        if "%" in host:
            raise HostError("has an IPv6 zone identifier")
        try:
            return ipaddress.IPv6Address(host.strip("[]"))
        except ValueError:
            raise HostError("has an invalid IPv6 address") from None
    name = host.lower()
    if name.endswith("."):
        name = name[:-1]
    labels = name.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        return _parse_ipv4(labels)
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise HostError("has an invalid host name")
    return name


def _parse_ipv4(labels: list[str]) -> ipaddress.IPv4Address:
    # The WHATWG URL "IPv4 parser": up to four parts, each decimal, octal (leading 0) or hex (0x);
    # the last part fills all the remaining bytes.
    if len(labels) > 4:
        raise HostError("has an invalid IPv4 address")
    numbers = [_parse_ipv4_number(label) for label in labels]
    last = numbers.pop()
    if any(n > 255 for n in numbers) or last >= 256 ** (4 - len(numbers)):
        raise HostError("has an invalid IPv4 address")
    value = last
    for i, n in enumerate(numbers):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _parse_ipv4_number(label: str) -> int:
    try:
        if label.startswith("0x"):
            return int(label[2:] or "0", 16)
        if len(label) > 1 and label.startswith("0"):
            return int(label[1:], 8)
        return int(label, 10)
    except ValueError:
        raise HostError("has an invalid IPv4 address") from None
