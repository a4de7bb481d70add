"""The shared emulator helpers on their own: auth schemes, strict JSON, timestamps, ids, paging,
SSE framing, state walks and the fault rule fields they add."""

from __future__ import annotations

import json
import re
import time
import uuid

import jwt
import pytest
from starlette.requests import Request

from gengate.emulator import (
    BEARER,
    TOKEN,
    Phase,
    ProviderError,
    StateWalk,
    TaskRecord,
    derived_digits_id,
    derived_uuid,
    digits_id,
    epoch_ms,
    epoch_s,
    header_key,
    hs256_claims,
    iso_z,
    page_params,
    parse_json,
    prefixed_id,
    sse_event,
    unverified_claims,
    uuid_id,
)
from gengate.emulator.faults import FaultSpecError, parse_rule
from gengate.emulator.media import frame_size, whole_frames


def request(headers: dict[str, str] | None = None, query: str = "") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw, "query_string": query.encode()})


def test_auth_schemes() -> None:
    assert BEARER.secret(request({"Authorization": "Bearer  s1 "})) == "s1"
    assert BEARER.secret(request({"Authorization": "bearer s1"})) == "s1"
    assert BEARER.secret(request({"Authorization": "Token s1"})) is None
    assert BEARER.secret(request({"Authorization": "Bearer"})) is None
    assert BEARER.secret(request()) is None
    assert TOKEN.secret(request({"Authorization": "Token s1"})) == "s1"
    api_key = header_key("X-API-Key")
    assert api_key.secret(request({"x-api-key": "s1"})) == "s1"
    assert api_key.secret(request({"Authorization": "Bearer s1"})) is None
    assert api_key.expected() == "x-api-key: <key>" and BEARER.expected() == "Authorization: Bearer <key>"
    # GLM's "id.secret" key, proving the secret part.
    glm = BEARER.verified_by(lambda key: key.partition(".")[2] or None)
    assert glm.secret(request({"Authorization": "Bearer S.S"})) == "S"
    assert glm.secret(request({"Authorization": "Bearer S"})) is None


@pytest.mark.filterwarnings("ignore::jwt.InsecureKeyLengthWarning")  # from jwt.encode; short keys are real
def test_hs256_claims() -> None:
    now = int(time.time())
    token = jwt.encode({"iss": "ak", "exp": now + 60, "nbf": now - 5}, "sk", algorithm="HS256")
    assert hs256_claims(token, "sk") == {"iss": "ak", "exp": now + 60, "nbf": now - 5}
    assert unverified_claims(token) == {"iss": "ak", "exp": now + 60, "nbf": now - 5}
    assert hs256_claims(token, "other") is None
    assert hs256_claims(jwt.encode({"exp": now - 60}, "sk", algorithm="HS256"), "sk") is None
    assert hs256_claims("not-a-jwt", "sk") is None and unverified_claims("not-a-jwt") is None


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"NaN", b'{"a": Infinity}', b'["\\ud800"]', b'{"\\udfff": 1}', b"\xff", b"[" * 513 + b"]" * 513],
)
def test_parse_json_refuses_with_400(raw: bytes) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_json(raw)
    assert caught.value.status == 400 and caught.value.reason is None


def test_parse_json_accepts_rfc_json() -> None:
    deep = "[" * 512 + "]" * 512
    assert parse_json(deep) == json.loads(deep)
    assert parse_json(b'{"a": "\\ud83d\\ude00 [{", "b": [1.5, null]}') == {"a": "\U0001f600 [{", "b": [1.5, None]}
    assert parse_json('"[[[' + "[" * 600 + '"') == "[[[" + "[" * 600  # brackets inside strings do not nest


def test_timestamps() -> None:
    ts = 1722834725.145617
    assert iso_z(ts) == "2024-08-05T05:12:05.145617Z"
    assert iso_z(ts, 3) == "2024-08-05T05:12:05.145Z"
    assert iso_z(ts, 0) == "2024-08-05T05:12:05Z"
    assert epoch_ms(ts) == 1722834725145 and epoch_s(ts) == 1722834725
    with pytest.raises(ValueError):
        iso_z(ts, 2)


def test_ids() -> None:
    assert all(re.fullmatch(r"[1-9]\d{15}", digits_id(16)) for _ in range(50))
    assert re.fullmatch(r"[1-9]\d{18}", digits_id(19))
    assert digits_id() != digits_id()
    assert derived_digits_id("t:0") == derived_digits_id("t:0") != derived_digits_id("t:1")
    assert re.fullmatch(r"[1-9]\d{17}", derived_digits_id("t:0", 18))
    assert uuid.UUID(uuid_id()).version == 4
    assert uuid.UUID(derived_uuid("clip")).version == 4 and derived_uuid("clip") == derived_uuid("clip")
    assert re.fullmatch(r"chatcmpl-[A-Za-z0-9]{24}", prefixed_id("chatcmpl-"))
    assert re.fullmatch(r"resp_[0-9a-f]{48}", prefixed_id("resp_", 48, "0123456789abcdef"))


def test_page_params() -> None:
    assert page_params(request(query="")) == (1, 10, 0)
    assert page_params(request(query="page_no=3&page_size=5")) == (3, 5, 10)
    assert page_params(request(query="pageNum=2&pageSize=30"), "pageNum", "pageSize", max_size=500) == (2, 30, 30)
    for query in ("page_no=0", "page_no=x", "page_size=101", "page_no=10000000000000000000"):
        with pytest.raises(ProviderError) as caught:
            page_params(request(query=query), reason="BadRequest")
        assert caught.value.status == 400 and caught.value.reason == "BadRequest"


def test_sse_event() -> None:
    assert sse_event({"a": "é"}) == 'data: {"a":"é"}\n\n'.encode()
    assert sse_event({"a": 1}, "response.created") == b'event: response.created\ndata: {"a":1}\n\n'
    assert sse_event("[DONE]") == b"data: [DONE]\n\n"


def test_state_walk() -> None:
    walk = StateWalk(((0.5, "queued"), (1.0, "dreaming")), {Phase.SUCCEEDED: "completed", Phase.FAILED: "failed"})
    task = TaskRecord(provider="p", id="t", secret="s", accepted_at=100.0, duration=10.0)
    assert walk.state(task.progress(101)) == "queued"
    assert walk.state(task.progress(106)) == "dreaming"
    assert walk.state(task.progress(111)) == "completed"
    assert walk.next_change(task, task.progress(101), 101) == 0.2
    assert walk.next_change(task, task.progress(104.9), 104.9) == pytest.approx(0.1)
    task.fail_code = "x"
    assert walk.state(task.progress(111)) == "failed"


def test_fault_rule_after_chunks_and_fail_defaults() -> None:
    assert parse_rule({"kind": "drop_after_accept"}, 0)["after_chunks"] == 2
    assert parse_rule({"kind": "drop_after_accept", "after_chunks": 0}, 0)["after_chunks"] == 0
    for bad in (-1, "2", True):
        with pytest.raises(FaultSpecError):
            parse_rule({"kind": "drop_after_accept", "after_chunks": bad}, 0)
    rule = parse_rule({"kind": "fail_task"}, 0)
    assert "err_code" not in rule and "err_msg" not in rule  # each provider has its own default
    rule = parse_rule({"kind": "fail_task", "err_code": "1301", "err_msg": "blocked"}, 0)
    assert (rule["err_code"], rule["err_msg"]) == ("1301", "blocked")
    with pytest.raises(FaultSpecError):
        parse_rule({"kind": "fail_task", "err_code": 5}, 0)


def test_media_geometry() -> None:
    assert frame_size("16:9") == (640, 360) and frame_size("9:16", 288) == (288, 512)
    assert frame_size("1:1") == (360, 360) and frame_size(["not", "a", "ratio"]) == (640, 360)
    assert frame_size("21:9", 360) == (840, 360)
    assert whole_frames(3, 8) == 3 and isinstance(whole_frames(3, 8), int)
    assert whole_frames(4.5, 8) == 4.5 and whole_frames(0.01, 8) == 0.125 and whole_frames(1.3, 24) == 31 / 24
