"""Fault rules that tests switch on to make an emulated upstream misbehave.

This is the interface the contract fixes (interface.md, "Emulator fault rules"): every provider
emulator plugs into it through `EmulatorContext` (`before`, `after_accept`, `unknown_state`,
`accept` for `fail_task`, `answer_call`/`stream_call` for synchronous calls).

A rule (JSON, as posted to `/_emulator/faults`):

    {"provider": "vidu",      # optional: default every provider
     "op": "create",          # create | poll | cancel | list | any (default any)
     "secret": "S",           # optional: only requests authenticated with this secret
     "kind": "status",        # see KINDS
     "count": 1,              # apply to the next N matching requests, then expire; null = until cleared
     "duration": 30,          # optional: expire after this many seconds
     "body_contains": "text", # optional: only requests whose body holds this text (one payload)
     ...kind parameters}

Kinds and their parameters:
- `status` (`status`: HTTP code, default 500; `retry_after`: optional seconds; `message`): answer
  that status in the provider's error shape. Never a job.
- `timeout` (`seconds`, default 30): sleep, then answer normally. On create the job is accepted
  first, then the reply is delayed, so a client that gives up leaves a job it never heard of; a
  synchronous call (op create) answers late, a stream sends its headers late.
- `malformed`: reply 200 with a body that is not JSON. On create the job is not accepted.
- `drop_after_accept` (`after_chunks`, default 2): on create, accept and store the job (or do
  the synchronous call's work), then close the connection without any HTTP reply; on a stream,
  send the headers and `after_chunks` chunks, then close. On other ops, close without acting.
- `unknown_state` (poll only): the reply shows a state the provider never documented.
- `fail_task` (create only; `err_code`, `err_msg`, defaults the provider's own): the next `count`
  accepted jobs end failed.

Counting: a job refused by a fault (`status`, `malformed`) is not a create; a job accepted then
delayed or dropped is one, and so is a synchronous call answered late or cut mid-stream.
"""

from __future__ import annotations

import secrets
from typing import Any, Literal, NotRequired, TypedDict, cast

FaultKind = Literal["status", "timeout", "malformed", "drop_after_accept", "unknown_state", "fail_task"]
FaultOp = Literal["create", "poll", "cancel", "list", "any"]

KINDS: frozenset[str] = frozenset({"status", "timeout", "malformed", "drop_after_accept", "unknown_state", "fail_task"})
OPS: frozenset[str] = frozenset({"create", "poll", "cancel", "list", "any"})
# Kinds that only make sense for one op: a rule with another op would silently never fire.
_ONLY_OP: dict[str, str] = {"unknown_state": "poll", "fail_task": "create"}

# Kinds that replace the reply before anything happens, for every op.
BEFORE_ANY: frozenset[str] = frozenset({"status", "malformed"})
# Kinds that act before a non-create op and after a create's acceptance.
AROUND: frozenset[str] = frozenset({"timeout", "drop_after_accept"})
DEFAULT_AFTER_CHUNKS = 2


class FaultRule(TypedDict):
    id: str
    provider: str | None
    op: FaultOp
    secret: str | None
    kind: FaultKind
    remaining: int | None  # None: until cleared
    expires_at: float | None
    created_at: float
    status: NotRequired[int]
    retry_after: NotRequired[float | int | str]
    message: NotRequired[str]
    seconds: NotRequired[float]
    after_chunks: NotRequired[int]
    err_code: NotRequired[str]
    err_msg: NotRequired[str]
    body_contains: NotRequired[str]


class FaultSpecError(ValueError):
    """A posted rule that cannot be applied; reported to the caller as 400."""


def parse_rule(body: Any, now: float) -> FaultRule:
    if not isinstance(body, dict):
        raise FaultSpecError("a fault rule is a JSON object")
    kind = body.get("kind")
    if kind not in KINDS:
        raise FaultSpecError(f"kind must be one of {sorted(KINDS)}")
    op = body.get("op") or "any"
    if op not in OPS:
        raise FaultSpecError(f"op must be one of {sorted(OPS)}")
    only = _ONLY_OP.get(kind)
    if only is not None and op not in (only, "any"):
        raise FaultSpecError(f"{kind} applies to op {only!r} only")
    provider = _optional_str(body, "provider")
    secret = _optional_str(body, "secret")
    count = body.get("count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise FaultSpecError("count must be a positive integer or null")
    duration = body.get("duration")
    if duration is not None and (not _is_number(duration) or duration <= 0):
        raise FaultSpecError("duration must be a positive number of seconds or null")
    rule = FaultRule(
        id=secrets.token_hex(6),
        provider=provider,
        op=cast(FaultOp, op),
        secret=secret,
        kind=cast(FaultKind, kind),
        remaining=count,
        expires_at=None if duration is None else now + float(duration),
        created_at=now,
    )
    if (needle := _optional_str(body, "body_contains")) is not None:
        rule["body_contains"] = needle
    if kind == "status":
        status = body.get("status", 500)
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise FaultSpecError("status must be an HTTP error code (400-599)")
        rule["status"] = status
        if body.get("retry_after") is not None:
            rule["retry_after"] = body["retry_after"]
        if isinstance(body.get("message"), str):
            rule["message"] = body["message"]
    elif kind == "timeout":
        seconds = body.get("seconds", 30)
        if not _is_number(seconds) or seconds < 0:
            raise FaultSpecError("seconds must be a non-negative number")
        rule["seconds"] = float(seconds)
    elif kind == "drop_after_accept":
        after = body.get("after_chunks", DEFAULT_AFTER_CHUNKS)
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise FaultSpecError("after_chunks must be a non-negative integer")
        rule["after_chunks"] = after
    elif kind == "fail_task":
        if (err_code := _optional_str(body, "err_code")) is not None:
            rule["err_code"] = err_code
        if (err_msg := _optional_str(body, "err_msg")) is not None:
            rule["err_msg"] = err_msg
    return rule


def matches(rule: FaultRule, provider: str, op: str, secret: str, kinds: frozenset[str], now: float,
            body: bytes = b"") -> bool:
    needle = rule.get("body_contains")
    return (
        (needle is None or needle.encode() in body)
        and rule["kind"] in kinds
        and (rule["provider"] is None or rule["provider"] == provider)
        and (rule["op"] == "any" or rule["op"] == op)
        and (rule["secret"] is None or rule["secret"] == secret)
        and (rule["expires_at"] is None or rule["expires_at"] > now)
        and (rule["remaining"] is None or rule["remaining"] > 0)
    )


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise FaultSpecError(f"{key} must be a non-empty string")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
