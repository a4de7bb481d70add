"""check_url and the address rules of url-analysis.md §3: every refused class, odd spellings, names."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re

import pytest

from gengate.core.errors import InvalidRequest
from gengate.net.addresses import parse_host, refusal_reason
from gengate.net.policy import warn_allow_private
from gengate.net.ssrf import GuardPolicy, URLRefused, check_url, policy_from_env

STRICT = GuardPolicy()


class FakeResolver:
    """Answers from a table; records every lookup so tests can prove no DNS was asked."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = table or {}
        self.calls: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        if host not in self.table:
            raise OSError(f"no such host {host}")
        return self.table[host]


REFUSED_V4 = [
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("10.0.0.5", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "shared (CGNAT)"),
    ("100.127.255.254", "shared (CGNAT)"),
    ("169.254.1.1", "link-local"),
    ("169.254.169.254", "cloud metadata"),
    ("169.254.170.2", "cloud metadata"),
    ("100.100.100.200", "cloud metadata"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("192.0.0.8", "reserved"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.1", "benchmarking"),
]
REFUSED_V6 = [
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("fc00::1", "unique-local"),
    ("fd12:3456::1", "unique-local"),
    ("fe80::1", "link-local"),
    ("febf::1", "link-local"),
    ("fec0::1", "site-local"),
    ("fd00:ec2::254", "cloud metadata"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "documentation"),
    ("100::1", "discard-only"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
    ("64:ff9b:1::1", "local-use NAT64"),
    # IPv6 forms that embed an IPv4 address are judged as that address
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "cloud metadata"),
    ("::127.0.0.1", "loopback"),  # IPv4-compatible (deprecated)
    ("64:ff9b::10.0.0.1", "private"),  # NAT64
    ("64:ff9b::7f00:1", "loopback"),
    ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
    ("2002:a9fe:a9fe::", "cloud metadata"),  # 6to4 of 169.254.169.254
]
ALLOWED = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize(("address", "reason"), REFUSED_V4 + REFUSED_V6)
def test_refusal_reason_names_each_class(address: str, reason: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(("address", "reason"), REFUSED_V4 + REFUSED_V6)
async def test_literal_urls_are_refused_without_dns(address: str, reason: str) -> None:
    resolver = FakeResolver()
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(URLRefused, match=rf"callback_url points to an? {re.escape(reason)} address") as info:
        await check_url(f"http://{host}:8080/hook", STRICT, resolver, field="callback_url")
    assert info.value.status == 400 and info.value.code == "url_refused"
    assert isinstance(info.value, InvalidRequest)
    assert resolver.calls == []


@pytest.mark.parametrize(("address", "reason"), REFUSED_V4 + REFUSED_V6)
async def test_names_resolving_to_each_class_are_refused(address: str, reason: str) -> None:
    resolver = FakeResolver({"hooks.example.com": [address]})
    with pytest.raises(URLRefused, match=rf"url resolves to an? {re.escape(reason)} address"):
        await check_url("https://hooks.example.com/x", STRICT, resolver)


@pytest.mark.parametrize(
    "spelling",
    [
        "2130706433",
        "0x7f000001",
        "0x7F000001",
        "017700000001",
        "0177.0.0.1",
        "0x7f.0.0.1",
        "0x7f.1",
        "127.1",
        "127.0.1",
        "127.0.0.1.",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[0:0:0:0:0:ffff:7f00:1]",
        "[::1]",
    ],
)
async def test_odd_loopback_spellings_are_refused(spelling: str) -> None:
    resolver = FakeResolver()
    with pytest.raises(URLRefused, match="loopback"):
        await check_url(f"http://{spelling}/", STRICT, resolver)
    assert resolver.calls == []


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("0xa.0.0.1", "10.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("3232235777", "192.168.1.1"),
        ("0251.0376.0251.0376", "169.254.169.254"),
    ],
)
def test_odd_spellings_normalise(spelling: str, address: str) -> None:
    assert parse_host(spelling) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", ["256.0.0.1", "1.2.3.4.5", "08.0.0.1", "0x1g.0.0.1", "example.123", "4294967296"])
async def test_invalid_numeric_hosts_are_refused(host: str) -> None:
    resolver = FakeResolver()
    with pytest.raises(URLRefused, match="invalid IPv4"):
        await check_url(f"http://{host}/", STRICT, resolver)
    assert resolver.calls == []


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("localhost", "this machine"),
        ("LOCALHOST.", "this machine"),
        ("api.localhost", "this machine"),
        ("metadata.google.internal", "cloud metadata"),
        ("Metadata.Google.Internal.", "cloud metadata"),
        ("metadata", "cloud metadata"),
    ],
)
async def test_local_and_metadata_names_are_refused_before_lookup(host: str, why: str) -> None:
    resolver = FakeResolver({host.lower().rstrip("."): ["93.184.216.34"]})
    with pytest.raises(URLRefused, match=why):
        await check_url(f"http://{host}/computeMetadata/v1/", STRICT, resolver)
    assert resolver.calls == []


async def test_any_refused_answer_refuses_the_name() -> None:
    resolver = FakeResolver({"mixed.example.com": ["93.184.216.34", "2606:4700::1", "10.0.0.5"]})
    with pytest.raises(URLRefused, match=r"resolves to a private address \(10\.0\.0\.5\)"):
        await check_url("http://mixed.example.com/", STRICT, resolver)


async def test_public_name_returns_its_addresses() -> None:
    resolver = FakeResolver({"example.com": ["93.184.216.34", "2606:2800:220:1::1"]})
    assert await check_url("https://example.com/a?b=1", STRICT, resolver) == ["93.184.216.34", "2606:2800:220:1::1"]
    assert resolver.calls == ["example.com"]


async def test_public_literal_needs_no_dns() -> None:
    resolver = FakeResolver()
    assert await check_url("http://0x5d.0xb8.0xd8.0x22/", STRICT, resolver) == ["93.184.216.34"]
    assert await check_url("https://[2606:4700::1111]:8443/", STRICT, resolver) == ["2606:4700::1111"]
    assert resolver.calls == []


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/", "file:///etc/passwd", "gopher://example.com:70/", "javascript:alert(1)", "//example.com/"],
)
async def test_only_http_and_https(url: str) -> None:
    with pytest.raises(URLRefused, match=r"scheme|absolute"):
        await check_url(url, STRICT, FakeResolver({"example.com": ["93.184.216.34"]}))


async def test_scheme_is_case_insensitive() -> None:
    resolver = FakeResolver({"example.com": ["93.184.216.34"]})
    assert await check_url("HTTPS://EXAMPLE.COM/", STRICT, resolver) == ["93.184.216.34"]


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("http://example.com:0/", "port"),
        ("http:///path", "no host"),
        ("http://exa mple.com/", "whitespace"),
        ("http://example.com/\r\nHost: x", "control"),
        ("http://ex%61mple.com/", "invalid host"),
        ("http://[fe80::1%25eth0]/", "zone"),
        ("http://a..b/", "invalid host"),
        ("/relative/path", "absolute"),
    ],
)
async def test_malformed_urls_are_refused(url: str, match: str) -> None:
    with pytest.raises(URLRefused, match=match):
        await check_url(url, STRICT, FakeResolver({"example.com": ["93.184.216.34"]}))


async def test_user_info_names_the_host_after_the_at_sign() -> None:
    resolver = FakeResolver({"example.com": ["93.184.216.34"]})
    assert await check_url("http://127.0.0.1@example.com/", STRICT, resolver) == ["93.184.216.34"]
    with pytest.raises(URLRefused, match="loopback"):
        await check_url("http://example.com@127.0.0.1/", STRICT, resolver)


async def test_refusal_never_echoes_credentials() -> None:
    with pytest.raises(URLRefused) as info:
        await check_url("http://admin:s3cr3t-pw@10.0.0.1/?token=abc", STRICT, FakeResolver(), field="callback_url")
    assert str(info.value) == "callback_url points to a private address (10.0.0.1)"
    assert "s3cr3t" not in info.value.message and "admin" not in info.value.message


async def test_unresolvable_name_is_refused() -> None:
    with pytest.raises(URLRefused, match="does not resolve"):
        await check_url("http://nowhere.invalid/", STRICT, FakeResolver())
    with pytest.raises(URLRefused, match="does not resolve"):
        await check_url("http://empty.example/", STRICT, FakeResolver({"empty.example": []}))


async def test_slow_lookup_is_refused() -> None:
    class Hanging:
        async def resolve(self, host: str, port: int) -> list[str]:
            await asyncio.sleep(10)
            return ["93.184.216.34"]

    with pytest.raises(URLRefused, match=r"did not resolve within 0\.1 s"):
        await check_url("http://slow.example/", GuardPolicy(timeout=0.1), Hanging())


async def test_allow_cidrs_allows_only_its_ranges() -> None:
    policy = GuardPolicy(allow_cidrs=(ipaddress.ip_network("127.0.0.2/32"), ipaddress.ip_network("10.1.0.0/16")))
    resolver = FakeResolver({"inside.test": ["10.1.2.3"], "straddle.test": ["10.1.2.3", "10.2.0.1"]})
    assert await check_url("http://127.0.0.2:9000/", policy, resolver) == ["127.0.0.2"]
    assert await check_url("http://[::ffff:127.0.0.2]/", policy, resolver) == ["::ffff:7f00:2"]
    assert await check_url("http://inside.test/", policy, resolver) == ["10.1.2.3"]
    with pytest.raises(URLRefused, match="loopback"):
        await check_url("http://127.0.0.1:9000/", policy, resolver)
    with pytest.raises(URLRefused, match=r"10\.2\.0\.1"):
        await check_url("http://straddle.test/", policy, resolver)
    with pytest.raises(URLRefused, match="this machine"):
        await check_url("http://localhost/", policy, resolver)  # names are not addresses


async def test_allow_private_lifts_the_address_rule() -> None:
    policy = GuardPolicy(allow_private=True)
    resolver = FakeResolver({"localhost": ["127.0.0.1", "::1"], "db.internal": ["10.0.0.5"]})
    assert await check_url("http://127.0.0.1:8000/", policy, resolver) == ["127.0.0.1"]
    assert await check_url("http://localhost:8000/", policy, resolver) == ["127.0.0.1", "::1"]
    assert await check_url("http://db.internal/", policy, resolver) == ["10.0.0.5"]
    with pytest.raises(URLRefused, match="scheme"):
        await check_url("file:///etc/passwd", policy, resolver)
    with pytest.raises(URLRefused, match="cloud metadata"):
        await check_url("http://metadata.google.internal/", policy, resolver)


def test_policy_from_env() -> None:
    assert policy_from_env({}) == GuardPolicy()
    policy = policy_from_env(
        {"GENGATE_URL_ALLOW_PRIVATE": "0", "GENGATE_URL_ALLOW_CIDRS": " 127.0.0.2/32, 10.1.0.0/16,,fd00:1::/64"}
    )
    assert policy.allow_private is False
    assert policy.allow_cidrs == (
        ipaddress.ip_network("127.0.0.2/32"),
        ipaddress.ip_network("10.1.0.0/16"),
        ipaddress.ip_network("fd00:1::/64"),
    )
    with pytest.raises(ValueError, match="GENGATE_URL_ALLOW_CIDRS"):
        policy_from_env({"GENGATE_URL_ALLOW_CIDRS": "10.1.0.1/16"})  # host bits set: probably a typo
    with pytest.raises(ValueError, match="GENGATE_URL_ALLOW_PRIVATE"):
        policy_from_env({"GENGATE_URL_ALLOW_PRIVATE": "maybe"})


def test_allow_private_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    warn_allow_private.cache_clear()
    with caplog.at_level(logging.WARNING, logger="gengate.net"):
        assert policy_from_env({"GENGATE_URL_ALLOW_PRIVATE": "1"}).allow_private is True
        assert policy_from_env({"GENGATE_URL_ALLOW_PRIVATE": "true"}).allow_private is True
    warnings = [r for r in caplog.records if "GENGATE_URL_ALLOW_PRIVATE" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
