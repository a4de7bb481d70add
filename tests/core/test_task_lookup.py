"""A key's tasks by a field of the client's request (Kling's `external_task_id`) and by action, on both
backends: LIKE wildcards, quotes and backslashes in the value match only themselves; another key's
tasks and deleted tasks are never found."""

from __future__ import annotations

import dataclasses
import time

from harness.database import new_key

from gengate.core import tasks as store
from gengate.db.engine import Database


def _new(key_id: int, public_id: str, action: str, request: dict[str, object]) -> store.NewTask:
    return store.NewTask(public_id=public_id, key_id=key_id, provider="kling", action=action, model="kling-v1",
                         request=request, upstream_request={}, units={}, reserved=0,
                         deadline_at=time.time() + 60, marker="m")


async def test_find_owned_by_field_and_list_by_action(db: Database) -> None:
    key_id, other = await new_key(db), await new_key(db)
    tricky = 'a%_"\\b ü'
    async with db.write() as conn:
        for public_id, action, request in (("T1", "text2video", {"external_task_id": "axx\"\\b ü"}),
                                           ("T2", "text2video", {"external_task_id": tricky}),
                                           ("I1", "image_generation", {"prompt": tricky}),
                                           ("I2", "image_generation", {"external_task_id": "plain"})):
            await store.insert_task(conn, _new(key_id, public_id, action, request), time.time(), unlimited=True)
        await store.insert_task(conn, _new(other, "O1", "text2video", {"external_task_id": "theirs"}),
                                time.time(), unlimited=True)
        await store.insert_task(conn, dataclasses.replace(_new(key_id, "V1", "text2video", {"external_task_id": "v"}),
                                                          provider="vidu"), time.time(), unlimited=True)
    async with db.read() as conn:
        found = await store.find_owned_by_field(conn, key_id, "kling", "external_task_id", tricky)
        assert found is not None and found.public_id == "T2"
        assert (await store.find_owned_by_field(conn, key_id, "kling", "external_task_id", "plain")).public_id == "I2"
        assert await store.find_owned_by_field(conn, key_id, "kling", "external_task_id", "a%") is None
        assert await store.find_owned_by_field(conn, key_id, "kling", "external_task_id", "theirs") is None
        assert await store.find_owned_by_field(conn, key_id, "kling", "external_task_id", "v") is None  # vidu
        assert await store.find_owned_by_field(conn, key_id, "kling", "prompt", "plain") is None
        videos = await store.list_owned(conn, key_id, provider="kling", action="text2video", limit=10)
        assert [r.public_id for r in videos] == ["T2", "T1"]
        assert await store.count_owned(conn, key_id, provider="kling", action="image_generation") == 2
        assert await store.count_owned(conn, key_id, provider="kling") == 4
    async with db.write() as conn:
        assert await store.mark_deleted(conn, found.id)
    async with db.read() as conn:
        assert await store.find_owned_by_field(conn, key_id, "kling", "external_task_id", tricky) is None
