"""The Router's per-model candidate cache (gengate.core.channels.Router) and the key cache
(gengate.core.keys.KeyCache): matched once, forgotten on every refresh, bounded."""

from __future__ import annotations

import fnmatch
from collections import Counter
from dataclasses import replace

import pytest

from gengate.core import channels as chan
from gengate.core.channels import Channel, Router, Secret
from gengate.core.crypto import SecretBox
from gengate.core.keys import CachedKey, ClientKey, KeyCache


def _table(*specs: tuple[int, str, str | None, int, bool]) -> tuple[dict[int, Channel], dict[int, Secret]]:
    """(channel id, provider, model patterns, priority, enabled) → a routing table, two secrets each."""
    chans: dict[int, Channel] = {}
    secrets: dict[int, Secret] = {}
    for cid, provider, models, priority, enabled in specs:
        own = tuple(Secret(id=cid * 10 + i, channel_id=cid, value=f"s{cid}{i}", max_concurrency=None, enabled=True)
                    for i in (1, 2))
        secrets.update({s.id: s for s in own})
        chans[cid] = Channel(id=cid, name=f"c{cid}", provider=provider, base_url="http://up",
                             models=tuple(models.split(",")) if models else None, priority=priority, weight=1,
                             options={}, enabled=enabled, secrets=own)
    return chans, secrets


@pytest.fixture
def router() -> Router:
    return Router(SecretBox("router-test-master-key"))


@pytest.fixture
def matches(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts fnmatch calls per model name."""
    calls: Counter[str] = Counter()
    real = fnmatch.fnmatchcase

    def counting(name: str, pattern: str) -> bool:
        calls[name] += 1
        return real(name, pattern)

    monkeypatch.setattr(chan.fnmatch, "fnmatchcase", counting)
    return calls


def test_candidates_match_each_model_once_and_order_by_priority(router: Router, matches: Counter[str]) -> None:
    router.load(*_table((1, "vidu", "viduq*", 0, True), (2, "vidu", "viduq1,vidu2.0", 5, True),
                        (3, "vidu", None, 1, False), (4, "kling", "*", 9, True)), "v1")
    for _ in range(50):
        ids = [s.id for s in router.candidates("vidu", "viduq1")]
        assert sorted(ids[:2]) == [11, 12] and sorted(ids[2:]) == [21, 22]  # lowest priority number first
        assert router.has_channel("vidu", "viduq1")
    assert matches["viduq1"] <= 3  # one pass over the channels, not one per request
    assert [s.channel_id for s in router.candidates("vidu", "vidu2.0")] == [2, 2]
    assert router.candidates("vidu", "other") == []  # the disabled catch-all channel takes nothing
    assert router.has_channel("vidu", "other")  # ...but the model is served (the task waits)
    avoided = router.candidates("vidu", "viduq1", avoid_channel=2)
    assert {s.channel_id for s in avoided[-2:]} == {2}


def test_a_refresh_forgets_the_cached_matches(router: Router, matches: Counter[str]) -> None:
    router.load(*_table((1, "vidu", "viduq1", 0, True)), "v1")
    assert {s.id for s in router.candidates("vidu", "viduq1")} == {11, 12}
    before = matches["viduq1"]
    router.load(*_table((1, "vidu", "viduq1", 0, False), (2, "vidu", "viduq*", 0, True)), "v2")
    assert {s.id for s in router.candidates("vidu", "viduq1")} == {21, 22}  # not the stale answer
    assert matches["viduq1"] > before
    assert router.version == "v2"


def test_disabled_secrets_are_left_out(router: Router) -> None:
    chans, secrets = _table((1, "vidu", None, 0, True))
    only = Secret(id=11, channel_id=1, value="s", max_concurrency=None, enabled=False)
    chans[1] = Channel(**{**chans[1].__dict__, "secrets": (only, secrets[12])})
    router.load(chans, secrets, "v1")
    assert [s.id for s in router.candidates("vidu", "m")] == [12]


def test_the_per_model_cache_is_bounded(router: Router, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Router, "MAX_ROUTES", 8)
    router.load(*_table((1, "vidu", None, 0, True)), "v1")
    for i in range(100):
        router.candidates("vidu", f"made-up-{i}")
        router.has_channel("vidu", f"made-up-{i}")
    assert len(router._routes) <= 8 and len(router._served) <= 8


def _key(i: int) -> CachedKey:
    return CachedKey(key=ClientKey(id=i, name=f"k{i}", credits=None, models=None))


def test_key_cache_is_an_lru_with_unknown_hashes_apart() -> None:
    cache = KeyCache(max_keys=3, max_unknown=2)
    g = cache.generation()
    for i in range(3):
        cache.put(f"h{i}", _key(i), g)
    assert cache.get("h0") is not None  # h0 used: h1 is now the oldest
    cache.put("h3", _key(3), g)
    assert cache.get("h1") is None and cache.get("h0") is not None
    for i in range(10):  # a flood of made-up keys does not evict real ones
        cache.put(f"bad{i}", CachedKey(key=None), g)
    assert all(cache.get(h) is not None for h in ("h0", "h2", "h3"))
    assert len(cache) == 5


def test_key_cache_drops_answers_read_before_a_clear() -> None:
    cache = KeyCache()
    g = cache.generation()
    cache.clear()  # a key change landed while the lookup was in flight
    cache.put("h", _key(1), g)
    assert cache.get("h") is None
    cache.put("h", _key(1), cache.generation())
    assert cache.get("h") is not None
    cache.clear()
    assert cache.get("h") is None and len(cache) == 0


def test_takes_new_work_only_on_a_live_secret_of_a_live_channel(router: Router) -> None:
    """A child task pinned to its parent's secret (a Kling extend) may be made only while that secret
    could take new work: enabled, on a channel that is enabled and not deleted."""
    chans, secrets = _table((1, "kling", None, 0, True), (2, "kling", None, 0, False), (3, "kling", None, 0, True))
    secrets[12] = replace(secrets[12], enabled=False)
    chans[3] = replace(chans[3], deleted=True)
    router.load(chans, secrets, "v1")
    assert router.takes_new_work(11)
    assert not router.takes_new_work(12)  # the secret disabled (by the operator or after a 401)
    assert not router.takes_new_work(21)  # its channel disabled
    assert not router.takes_new_work(31)  # its channel deleted
    assert not router.takes_new_work(99) and not router.takes_new_work(None)  # no such secret
