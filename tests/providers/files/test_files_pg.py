"""The file service on PostgreSQL (the scale-out database): the `openai` SDK round trip, paging,
isolation and extraction read and write the `files` table there as on SQLite."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from harness.services import fresh_pg_database

from .conftest import LIMITS

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def pg_server(make_server: Any) -> Iterator[Any]:
    with fresh_pg_database() as url:
        server = make_server(database_url=url, sandbox=False, env=LIMITS)
        yield server
        server.stop()


def test_round_trip_on_postgresql(pg_server, sdk):
    client = sdk(pg_server, pg_server.make_key())
    other = sdk(pg_server, pg_server.make_key())
    made = [client.files.create(file=(f"n{i}.txt", f"note {i}".encode()), purpose="file-extract") for i in range(3)]
    assert [f.id for f in client.files.list(limit=1)] == [f.id for f in reversed(made)]
    assert json.loads(client.files.content(made[1].id).text)["content"] == "note 1"
    with pytest.raises(openai.NotFoundError):
        other.files.retrieve(made[0].id)
    assert client.files.delete(made[0].id).deleted
    assert [f.id for f in client.files.list(order="asc")] == [made[1].id, made[2].id]
