"""UrlSigner: the URL's shape, and that only an unexpired, untampered signature verifies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from gengate.storage import UrlSigner

SIGNING_KEY = b"k" * 32
NOW = 1_764_000_000


def _signer(now: float = NOW, public_url: str = "https://media.example.com/gg") -> UrlSigner:
    return UrlSigner(SIGNING_KEY, public_url, clock=lambda: now)


def _parts(url: str) -> tuple[str, str, str]:
    split = urlsplit(url)
    query = parse_qs(split.query)
    return split.path.removeprefix("/gg/files/"), query["exp"][0], query["sig"][0]


def test_url_shape_and_signature() -> None:
    url = _signer().url_for("vidu/2025/11/25/abc.mp4", ttl_seconds=3600)
    assert re.fullmatch(
        r"https://media\.example\.com/gg/files/vidu/2025/11/25/abc\.mp4\?exp=1764003600&sig=[A-Za-z0-9_-]{43}",
        url,
    )
    mac = hmac.new(SIGNING_KEY, b"vidu/2025/11/25/abc.mp4\n1764003600", hashlib.sha256).digest()
    assert url.endswith("sig=" + base64.urlsafe_b64encode(mac).decode().rstrip("="))


def test_default_ttl_is_seven_days() -> None:
    _, exp, _ = _parts(_signer().url_for("a.mp4"))
    assert int(exp) == NOW + 7 * 24 * 3600


def test_long_lived_urls_are_stable_within_the_hour() -> None:
    first = _signer(NOW + 1).url_for("a.mp4")
    assert _signer(NOW + 3599).url_for("a.mp4") == first
    assert int(_parts(first)[1]) == NOW + 7 * 24 * 3600 + 3600  # rounded up, never shorter
    assert _signer(NOW + 3601).url_for("a.mp4") != first
    assert _parts(_signer(NOW + 1).url_for("a.mp4", ttl_seconds=60))[1] == str(NOW + 61)  # short: exact


def test_trailing_slash_of_public_url_is_ignored() -> None:
    assert _signer(public_url="https://h/gg/").url_for("a") == _signer(public_url="https://h/gg").url_for("a")


def test_valid_signature_verifies_until_expiry() -> None:
    key, exp, sig = _parts(_signer().url_for("a/b.png", ttl_seconds=60))
    assert _signer(NOW + 59).verify(key, exp, sig)
    assert _signer(NOW + 60).verify(key, int(exp), sig)
    assert not _signer(NOW + 61).verify(key, exp, sig)


def test_tampering_fails() -> None:
    key, exp, sig = _parts(_signer().url_for("a/b.png", ttl_seconds=60))
    verify = _signer().verify
    assert not verify("a/c.png", exp, sig)
    assert not verify(key, str(int(exp) + 1), sig)
    assert not verify(key, exp, sig[:-1] + ("A" if sig[-1] != "A" else "B"))
    assert not verify(key, exp, "")
    assert not verify(key, exp, sig + "=")
    assert not verify(key, exp, "é" * 43)


@pytest.mark.parametrize("exp", ["", "abc", "-5", "1e12", "\uff11\uff12\uff13", "9" * 5000])
def test_malformed_expiry_fails(exp: str) -> None:
    assert not _signer().verify("a", exp, "x")


def test_another_signing_key_fails() -> None:
    key, exp, sig = _parts(_signer().url_for("a.mp4"))
    assert not UrlSigner(b"z" * 32, "https://media.example.com/gg", clock=lambda: NOW).verify(key, exp, sig)


def test_uses_the_real_clock_by_default() -> None:
    signer = UrlSigner(SIGNING_KEY, "http://127.0.0.1:8000")
    exp = parse_qs(urlsplit(signer.url_for("a", ttl_seconds=100)).query)["exp"][0]
    assert abs(int(exp) - (time.time() + 100)) < 5


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        UrlSigner(b"short", "https://h")
    with pytest.raises(ValueError):
        UrlSigner(SIGNING_KEY, "h:8000")
    with pytest.raises(ValueError):
        _signer().url_for("a", ttl_seconds=0)
