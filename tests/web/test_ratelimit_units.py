"""The per-process sliding window (gengate.core.ratelimit) and the family's `Retry-After` header; the
cross-process Redis window is tested end to end in tests/web/test_rate_limits.py."""

from __future__ import annotations

import pytest

from gengate.core.errors import RateLimited
from gengate.core.ratelimit import LocalLimiter, enforce
from gengate.providers.kling.errors import kling_error
from gengate.providers.luma.errors import luma_error
from gengate.providers.openai.errors import openai_error
from gengate.providers.reader.errors import firecrawl_error, jina_error
from gengate.providers.runway.errors import runway_error
from gengate.providers.suno.errors import suno_error
from gengate.providers.zhipu.errors import glm_error
from gengate.web.family import Family


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_sliding_window_lets_n_per_minute_through() -> None:
    clock = Clock()
    limiter = LocalLimiter(clock)
    assert [await limiter.hit(1, 3) for _ in range(3)] == [None, None, None]
    clock.now += 20
    assert await limiter.hit(1, 3) == pytest.approx(40)  # the first leaves the window at +60
    assert await limiter.hit(2, 3) is None  # another key has its own window
    clock.now += 40.5  # the first three have left the window: three more pass
    assert [await limiter.hit(1, 3) for _ in range(3)] == [None, None, None]
    with pytest.raises(RateLimited) as caught:
        await enforce(limiter, 1, 3)
    assert 1 <= caught.value.retry_after <= 60
    await enforce(limiter, 1, None)  # no rpm: never limited


RENDERERS = [openai_error, jina_error, firecrawl_error, kling_error, luma_error, runway_error, suno_error, glm_error]


@pytest.mark.parametrize("render", RENDERERS)
def test_every_family_answers_429_with_retry_after(render) -> None:
    response = Family("f", "/f", render).error_response(RateLimited("slow down", retry_after=7))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
