"""The extraction runner's own bounds, without a server: past its wall-clock limit the worker process
group is killed and the file gets a reason; under a tight memory cap a parser fails cleanly with a
reason; replies never exceed the character cap."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from harness import documents as docs

from gengate.providers.files.extraction import Extractor, file_type

pytestmark = pytest.mark.timeout(120)


async def test_timeout_kills_the_worker(tmp_path: Path) -> None:
    path = tmp_path / "huge.pdf"
    path.write_bytes(docs.pdf(["page text " * 50], pages=5000))
    started = time.monotonic()
    result = await Extractor(timeout=1, memory_mb=2048, max_chars=10**8, concurrency=1).extract(path, "pdf")
    assert time.monotonic() - started < 5
    assert not result.ok and result.reason == "extraction took longer than 1 s"


async def test_memory_cap_fails_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "sheet.xlsx"
    path.write_bytes(docs.xlsx([["a", 1]]))
    # 200 MB of address space is too little to import the spreadsheet stack (pandas, numpy)
    result = await Extractor(timeout=30, memory_mb=200, max_chars=1000, concurrency=1).extract(path, "xlsx")
    assert not result.ok and result.reason in ("the file needed more time or memory than allowed to parse",
                                               "extraction needed more memory than allowed",
                                               "the XLSX file could not be parsed")


async def test_text_is_cut_at_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_text("x" * 10_000)
    result = await Extractor(timeout=30, memory_mb=2048, max_chars=100, concurrency=1).extract(path, "text")
    assert result.ok and result.content == "x" * 100


def test_file_types() -> None:
    assert file_type("Report.PDF", None) == ("pdf", "application/pdf")
    assert file_type("noext", "text/plain; charset=utf-8") == ("text", "text/plain")
    assert file_type("photo.png", "image/png") == (None, "image/png")
    assert file_type("x.weird", "text/x-something") == ("text", "text/x-something")
