"""The emulator's parts without HTTP: task timelines, both stores, media files, discovery."""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from PIL import Image

from gengate.emulator.faults import FaultSpecError, parse_rule
from gengate.emulator.media import MediaCache, MediaSpec, render
from gengate.emulator.registry import discover_emulators
from gengate.emulator.sqlite_store import SqliteStore
from gengate.emulator.store import Cap, MemoryStore, Store, cap_for
from gengate.emulator.timeline import Phase, TaskRecord, draw_duration

T0 = 1_700_000_000.0


def task(task_id: str, secret: str = "s", duration: float = 10.0, at: float = T0) -> TaskRecord:
    return TaskRecord(provider="p", id=task_id, secret=secret, accepted_at=at, duration=duration, data={"n": task_id})


def test_progress_is_a_function_of_the_clock() -> None:
    record = task("1")
    assert record.progress(T0 + 2.5).fraction == pytest.approx(0.25)
    assert record.progress(T0 + 2.5).phase is Phase.RUNNING
    done = record.progress(T0 + 10)
    assert done.phase is Phase.SUCCEEDED and done.finished_at == T0 + 10
    record.fail_code = "CreationPolicyViolation"
    assert record.progress(T0 + 11).phase is Phase.FAILED
    assert task("2", duration=0).progress(T0).phase is Phase.SUCCEEDED


def test_held_task_keeps_its_place_and_shifts_its_end() -> None:
    record = task("1")
    record.held_since = T0 + 4
    assert record.progress(T0 + 100).fraction == pytest.approx(0.4)
    assert record.progress(T0 + 100).phase is Phase.RUNNING
    record.paused, record.held_since = 96.0, None  # released at T0 + 100
    assert record.progress(T0 + 103).fraction == pytest.approx(0.7)
    assert record.ends_at == T0 + 106


def test_duration_is_drawn_reproducibly() -> None:
    first = draw_duration("1234567890123456", (3.0, 10.0))
    assert 3.0 <= first <= 10.0 and first == draw_duration("1234567890123456", (3.0, 10.0))
    assert draw_duration("x", (0.0, 0.0)) == 0.0


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made: Store = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path)
    yield made
    made.close()


def test_store_tasks_aliases_and_history(store: Store) -> None:
    for n in range(7):
        assert store.add_task(task(str(n), at=T0 + n), [f"c{n}"], None, T0 + n) is not None
    assert store.get_task("p", "3") == task("3", at=T0 + 3)
    found = store.find_alias("p", "c4")
    assert found is not None and found.id == "4"
    assert store.get_task("p", "nope") is None and store.find_alias("q", "c4") is None
    page, total = store.list_tasks("p", "s", 5, 5)
    assert total == 7 and [t.id for t in page] == ["1", "0"]
    assert store.list_tasks("p", "other", 0, 5) == ([], 0)


def test_store_running_caps_cancel(store: Store) -> None:
    assert store.add_task(task("a", duration=5), [], 2, T0) == (1, 1)
    assert store.add_task(task("b", duration=5), [], 2, T0) == (2, 2)
    assert store.add_task(task("c", duration=5), [], 2, T0) is None
    assert store.add_task(task("d", secret="t", duration=5), [], 2, T0) == (1, 3)
    assert store.running("p", T0 + 1) == {"s": 2, "t": 1}
    assert store.cancel_task("p", "a", T0 + 1) is True
    assert store.cancel_task("p", "a", T0 + 1) is False
    canceled = store.get_task("p", "a")
    assert canceled is not None and canceled.progress(T0 + 2).phase is Phase.CANCELED
    assert store.running("p", T0 + 2) == {"s": 1, "t": 1}
    assert store.running("p", T0 + 6) == {}
    assert store.cancel_task("p", "b", T0 + 6) is False  # already finished


def test_store_hold_and_release(store: Store) -> None:
    store.add_task(task("a", duration=5), [], None, T0)
    assert store.hold("p", None, True, T0 + 1) == 1
    store.add_task(task("b", duration=5, at=T0 + 2), [], None, T0 + 2)  # held from the start
    assert store.running("p", T0 + 50) == {"s": 2}
    assert store.hold("p", None, False, T0 + 50) == 2
    a, b = store.get_task("p", "a"), store.get_task("p", "b")
    assert a is not None and a.ends_at == pytest.approx(T0 + 54)
    assert b is not None and b.ends_at == pytest.approx(T0 + 55)
    store.add_task(task("c", duration=5, at=T0 + 51), [], None, T0 + 51)  # no longer held
    assert store.running("p", T0 + 54.5) == {"s": 2}
    assert store.running("p", T0 + 56.5) == {}
    assert store.hold("p", "a", True, T0 + 60) == 0  # terminal tasks cannot be held


def test_store_faults_are_used_up(store: Store) -> None:
    rule = parse_rule({"kind": "status", "status": 503, "count": 2}, T0)
    store.add_fault(rule)
    (listed,) = store.faults(T0)
    assert listed["id"] == rule["id"] and listed["status"] == 503
    assert store.consume_fault(rule["id"], T0) and store.consume_fault(rule["id"], T0)
    assert not store.consume_fault(rule["id"], T0)
    assert store.faults(T0) == []
    store.add_fault(parse_rule({"kind": "malformed", "duration": 5}, T0))
    assert len(store.faults(T0 + 4)) == 1 and store.faults(T0 + 6) == []
    store.clear_faults()
    assert store.faults(T0) == []


def test_store_caps(store: Store) -> None:
    store.set_cap(Cap("p", None, 4))
    store.set_cap(Cap("p", "s", 2))
    caps = store.caps()
    assert cap_for(caps, "p", "s") == 2 and cap_for(caps, "p", "t") == 4 and cap_for(caps, "q", "s") is None
    store.set_cap(Cap("p", "s", -1))
    assert cap_for(store.caps(), "p", "s") == 4
    assert len(store.media_key()) == 32 and store.media_key() == store.media_key()


def test_bad_rules() -> None:
    for body in ({"kind": "nope"}, {"kind": "status", "status": 200}, {"kind": "unknown_state", "op": "create"}):
        with pytest.raises(FaultSpecError):
            parse_rule(body, T0)


def _fill(state_dir: str, prefix: str, out: multiprocessing.Queue[int]) -> None:
    store = SqliteStore(Path(state_dir))
    now = time.time()
    accepted = sum(
        store.add_task(task(f"{prefix}{n}", duration=60, at=now), [], 10, now) is not None for n in range(25)
    )
    store.close()
    out.put(accepted)


def test_sqlite_cap_holds_across_processes(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    out: multiprocessing.Queue[int] = context.Queue()
    workers = [context.Process(target=_fill, args=(str(tmp_path), p, out)) for p in "xy"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(20)
    assert out.get(timeout=1) + out.get(timeout=1) == 10


def test_mp4_matches_its_spec() -> None:
    started = time.perf_counter()
    data = render(MediaSpec("mp4", "seed", 480, 270, 2.5, 8))
    assert time.perf_counter() - started < 1.0
    assert data[4:8] == b"ftyp" and b"moov" in data
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height, stream.average_rate) == (480, 270, 8)
        assert stream.codec_context.name == "h264" and stream.format.name == "yuv420p"
        assert sum(1 for _ in container.decode(stream)) == 20
        assert container.duration is not None and container.duration / 1e6 == pytest.approx(2.5, abs=0.01)
    assert data == render(MediaSpec("mp4", "seed", 480, 270, 2.5, 8))  # deterministic
    assert data != render(MediaSpec("mp4", "other", 480, 270, 2.5, 8))


def test_images_and_mp3() -> None:
    for kind, name in (("png", "PNG"), ("jpeg", "JPEG")):
        picture = Image.open(io.BytesIO(render(MediaSpec(kind, "x", 320, 180))))  # type: ignore[arg-type]
        assert picture.format == name and picture.size == (320, 180)
    audio = render(MediaSpec("mp3", "x", duration=2.0))
    assert b"\xff\xfb" in audio  # MPEG-1 Layer III frame sync
    with av.open(io.BytesIO(audio)) as container:
        assert container.format.name == "mp3" and container.streams.audio[0].codec_context.name.startswith("mp3")
        samples = sum(frame.samples for frame in container.decode(audio=0))
        assert samples / 44_100 == pytest.approx(2.0, abs=0.05)


async def test_media_cache_is_bounded() -> None:
    cache = MediaCache(max_bytes=50_000)
    specs = [MediaSpec("jpeg", str(n), 320, 180) for n in range(8)]
    first = await asyncio.gather(*(cache.get(s) for s in specs[:1] * 3))
    assert first[0] is first[1] is first[2]  # one render shared by concurrent requests
    for spec in specs:
        await cache.get(spec)
    assert 0 < cache._size <= 50_000


def test_discovery_finds_vidu() -> None:
    assert "vidu" in {emulator.provider for emulator in discover_emulators()}


def test_memory_store_forgets_the_oldest_finished_tasks() -> None:
    store = MemoryStore(max_tasks=3)
    store.add_task(task("held", duration=1), ["c-held"], None, T0)
    store.hold("p", "held", True, T0)
    for n in range(4):
        store.add_task(task(str(n), duration=1, at=T0 + n), [f"c{n}"], None, T0 + n)
    assert store.get_task("p", "held") is not None  # still running: kept
    assert store.running("p", T0 + 10) == {"s": 1}
    store.hold("p", "held", False, T0 + 10)
    store.add_task(task("4", duration=1, at=T0 + 20), [], None, T0 + 20)
    assert store.get_task("p", "held") is None and store.find_alias("p", "c-held") is None
    page, total = store.list_tasks("p", "s", 0, 10)
    assert total == 3 and [t.id for t in page] == ["4", "3", "2"]
    assert store.running("p", T0 + 30) == {}
