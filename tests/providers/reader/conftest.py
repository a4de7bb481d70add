"""Fixtures of the URL-analysis tests: the pages (public on 127.0.0.2, private on 127.0.0.1) and one
`gengate serve` that allow-lists only 127.0.0.2/32, so every other SSRF rule stays on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .pages import Site, serve


@pytest.fixture(scope="module")
def private_site() -> Iterator[Site]:
    with serve("127.0.0.1") as site:
        yield site


@pytest.fixture(scope="module")
def site(private_site: Site) -> Iterator[Site]:
    with serve("127.0.0.2", private_base=private_site.base) as s:
        yield s


@pytest.fixture(scope="module")
def reader_server(make_server: Any) -> Any:
    return make_server(sandbox=False, env={"GENGATE_URL_ALLOW_CIDRS": "127.0.0.2/32",
                                           "GENGATE_READER_CACHE_SECONDS": "30",
                                           "GENGATE_READER_MAX_TIMEOUT": "2",
                                           "GENGATE_PRICES": "reader:read=700,reader:scrape=900"})
