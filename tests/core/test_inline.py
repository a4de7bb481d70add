"""Large inline media stashed out of the stored request and put back for the upstream create."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from gengate.core.adaptor import INLINE_PREFIX
from gengate.core.inline import stash, unstash
from gengate.storage import open_storage


async def test_stash_round_trip(tmp_path: Path) -> None:
    storage = open_storage(None, tmp_path)
    image = base64.b64encode(os.urandom(3 * 1024 * 1024)).decode()
    ref = await stash(storage, image)
    assert ref.startswith(INLINE_PREFIX) and len(ref) < 120
    assert await stash(storage, image) == ref  # content-addressed: stored once
    stored = {"image": ref, "list": [ref, "plain"], "n": 1, "nested": {"tail": ref}}
    back = await unstash(storage, stored)
    assert back == {"image": image, "list": [image, "plain"], "n": 1, "nested": {"tail": image}}
    assert stored["image"] == ref  # the stored request is left as it was


def test_mentions_stash_walks_keys_values_and_deep_nesting() -> None:
    from gengate.core.inline import mentions_stash

    assert mentions_stash({"a": [1, {"b": "gengate-inline:inline/x"}]})
    assert mentions_stash({"gengate-inline:k": 1})
    assert not mentions_stash({"a": ["gengate", "inline:", None, 1.5, {"b": "x gengate-inline:"}]})
    deep: object = "gengate-inline:inline/y"
    for _ in range(5000):  # far deeper than the recursion limit
        deep = [deep]
    assert mentions_stash(deep)
