"""The poll batcher (core/engine/batch.py): polls of one secret that fall due together share one
upstream call; polls of different secrets never do; a failed call reaches every waiter."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import pytest

from gengate.core.adaptor import Account, HttpCall, HttpReply, Progress, SupportsBatchPoll, TaskRef
from gengate.core.engine.batch import PollBatcher
from gengate.core.states import TaskState
from gengate.core.upstream import NotSent


class FakeUpstream:
    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.fail = fail

    async def send(self, account: Account, call: HttpCall, read_timeout: float | None = None) -> HttpReply:
        self.calls.append((account.secret, list(call.json_body["ids"])))
        await asyncio.sleep(0.01)
        if self.fail is not None:
            raise self.fail
        rows = {i: "done" for i in call.json_body["ids"] if i != "missing"}
        return HttpReply(200, json.dumps(rows).encode(), {})


class Batchy:
    batch_size: ClassVar[int] = 2

    def build_poll_many(self, account: Account, refs: Sequence[TaskRef]) -> HttpCall:
        return HttpCall("POST", "/fetch", json_body={"ids": [r.upstream_id for r in refs]})

    def parse_poll_many(self, reply: HttpReply, refs: Sequence[TaskRef]) -> Mapping[str, Progress]:
        rows = reply.json()
        return {r.upstream_id or "": Progress(TaskState.SUCCEEDED, rows[r.upstream_id]) for r in refs
                if r.upstream_id in rows}


def ref(upstream_id: str) -> TaskRef:
    return TaskRef(upstream_id=upstream_id, action="a", model="m", upstream_request={}, marker="")


A, B = Account("http://up", "secret-a"), Account("http://up", "secret-b")


def test_the_protocol_is_recognised():
    assert isinstance(Batchy(), SupportsBatchPoll)


async def test_polls_of_one_secret_share_a_call_up_to_the_batch_size():
    up = FakeUpstream()
    batcher = PollBatcher(up, window=0.05)  # type: ignore[arg-type]
    adaptor = Batchy()
    polls: list[Any] = [batcher.poll(adaptor, A, ("p", 1, 1), ref(i)) for i in ("t1", "t2", "t3")]
    polls.append(batcher.poll(adaptor, B, ("p", 1, 2), ref("t4")))
    polls.append(batcher.poll(adaptor, B, ("p", 1, 2), ref("missing")))
    results = await asyncio.gather(*polls)
    assert sorted(up.calls) == [("secret-a", ["t1", "t2"]), ("secret-a", ["t3"]), ("secret-b", ["t4", "missing"])]
    for (reply, progress), want in zip(results[:4], ("t1", "t2", "t3", "t4"), strict=True):
        assert reply.status == 200 and progress is not None and progress.upstream_state == "done", want
    assert results[4][1] is None  # left out of the reply: polled again later
    assert batcher.calls == 3


async def test_a_failed_call_reaches_every_waiter():
    batcher = PollBatcher(FakeUpstream(NotSent("refused")), window=0.01)  # type: ignore[arg-type]
    adaptor = Batchy()
    results = await asyncio.gather(*(batcher.poll(adaptor, A, ("p", 1, 1), ref(i)) for i in ("t1", "t2")),
                                   return_exceptions=True)
    assert all(isinstance(r, NotSent) for r in results), results


async def test_polls_after_a_flush_open_a_new_batch():
    up = FakeUpstream()
    batcher = PollBatcher(up, window=0.01)  # type: ignore[arg-type]
    adaptor = Batchy()
    await batcher.poll(adaptor, A, ("p", 1, 1), ref("t1"))
    await batcher.poll(adaptor, A, ("p", 1, 1), ref("t2"))
    assert up.calls == [("secret-a", ["t1"]), ("secret-a", ["t2"])]


@pytest.mark.parametrize("status", [500, 429])
async def test_a_non_200_reply_gives_no_progress(status):
    class Failing(FakeUpstream):
        async def send(self, account: Account, call: HttpCall, read_timeout: float | None = None) -> HttpReply:
            return HttpReply(status, b"{}", {})

    batcher = PollBatcher(Failing(), window=0.01)  # type: ignore[arg-type]
    reply, progress = await batcher.poll(Batchy(), A, ("p", 1, 1), ref("t1"))
    assert reply.status == status and progress is None
