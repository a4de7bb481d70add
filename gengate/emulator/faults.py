"""Fault rules that tests switch on to make an emulated upstream misbehave.

A rule (JSON, as posted to `/_emulator/faults`):

    {"provider": "vidu",      # optional: default every provider
     "op": "create",          # create | poll | cancel | list | any (default any)
     "secret": "S",           # optional: only requests authenticated with this secret
     "kind": "status",        # see KINDS
     "count": 1,              # apply to the next N matching requests, then expire; null = until cleared
     "duration": 30,          # optional: expire after this many seconds
     ...kind parameters}

Kinds and their parameters:
- `status` (`status`: HTTP code, default 500; `retry_after`: optional seconds; `message`): answer
  that status in the provider's error shape. Never a job.
- `timeout` (`seconds`, default 30): sleep, then answer normally. On create the job is accepted
  first, then the reply is delayed, so a client that gives up leaves a job it never heard of.
- `malformed`: reply 200 with a body that is not JSON. On create the job is not accepted.
- `drop_after_accept`: on create, accept and store the job, then close the connection without any
  HTTP reply. On other ops, close the connection without acting.
- `unknown_state` (poll only): the reply shows a state the provider never documented.
- `fail_task` (create only; `err_code`, `err_msg`): the next `count` accepted jobs end failed.
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
    err_code: NotRequired[str]
    err_msg: NotRequired[str]


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
    elif kind == "fail_task":
        rule["err_code"] = str(body.get("err_code") or "CreationPolicyViolation")
        rule["err_msg"] = str(body.get("err_msg") or "the generated content was blocked by policy")
    return rule


def matches(rule: FaultRule, provider: str, op: str, secret: str, kinds: frozenset[str], now: float) -> bool:
    return (
        rule["kind"] in kinds
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
