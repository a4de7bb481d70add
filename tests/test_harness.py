"""Self-checks of the harness's service fixtures (tests/conftest.py): the PostgreSQL database a `pg`
backend hands out is real, fresh and empty; the Redis prefix is usable and private. With
GENGATE_TEST_REQUIRE_SERVICES=1 a missing service fails these instead of skipping them."""

from __future__ import annotations


def test_backend_database_is_fresh(backend):
    if backend.name == "sqlite":
        assert backend.url is None and backend.new_database() is None
        return
    url = backend.new_database()
    assert url and url.startswith("postgresql://postgres@127.0.0.1:5432/gengate_") and url != backend.url
    assert backend.fetch(url, "SELECT current_database() AS db") == [{"db": url.rsplit("/", 1)[1]}]
    assert backend.fetch(url, "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'") == [{"n": 0}]


def test_redis_prefix_is_private(redis_url, redis_prefix):
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        assert redis_prefix.startswith("gengate-test-")
        assert not list(client.scan_iter(match=redis_prefix + "*"))
        client.set(redis_prefix + "probe", b"1", ex=60)
        assert client.get(redis_prefix + "probe") == b"1"
    finally:
        client.close()
