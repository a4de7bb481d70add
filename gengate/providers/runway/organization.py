"""Runway's organization endpoints for the calling gengate key (runway.md §2 "Other"; the `runwayml`
5.24 `organization.retrieve()` and `organization.retrieve_usage()` types), answered from gengate's own
records, never from upstream (the upstream organization is the channel owner's, not the client's).

Credits are Runway credits as the task objects show them: one Runway credit is 10,000 gengate
credits (US$0.01, `adaptor.CREDIT`). The balance is rounded down (a part of a credit buys nothing);
usage sums are rounded to the nearest credit (they may be negative: a refund on a later day).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gengate.core import ledger
from gengate.core.keys import ClientKey
from gengate.db.models import keys, ledger_entries, tasks
from gengate.providers.runway import rules, rules_audio, rules_video
from gengate.providers.runway.adaptor import CREDIT
from gengate.providers.runway.errors import ValidationFailed

UNLIMITED = 1_000_000_000  # what a key without a credit limit shows as its balance and monthly cap
DEFAULT_DAYS = 30
MAX_DAYS = 90
DAY = 86_400.0
MODELS = (*rules.VIDEO_MODELS, *rules.IMAGE_MODELS, *rules.TEXT_VIDEO_MODELS, *rules_video.ALEPH_MODELS,
          *rules_video.ACT_MODELS, *rules_audio.AUDIO_MODELS)


async def organization(conn: AsyncConnection, key: ClientKey) -> dict[str, Any]:
    """`GET /v1/organization`: the key's balance, its grant as the monthly cap, no per-model limits
    (gengate has none: `null`), and how many tasks of each model the key created in the last 24 h."""
    row = (await conn.execute(select(keys.c.credits).where(keys.c.id == key.id))).first()
    left = None if row is None else row.credits
    if left is None:
        balance = cap = UNLIMITED
    else:
        spent = await ledger.spent(conn, key.id)
        balance, cap = max(0, left) // CREDIT, max(0, left + spent) // CREDIT
    since = time.time() - DAY
    counts = await conn.execute(
        select(tasks.c.model, func.count()).where(tasks.c.key_id == key.id, tasks.c.provider == "runway",
                                                  tasks.c.created_at >= since).group_by(tasks.c.model))
    usage = {model: {"dailyGenerations": int(n)} for model, n in counts}
    limits = {m: {"maxConcurrentGenerations": None, "maxDailyGenerations": None} for m in MODELS if key.allows(m)}
    return {"creditBalance": int(balance), "tier": {"maxMonthlyCreditSpend": int(cap), "models": limits},
            "usage": {"models": usage}}


def usage_window(body: Any, today: date) -> tuple[date, date]:
    """`startDate` (default: 29 days before today, or 30 before `beforeDate`) and `beforeDate`
    (exclusive; default 30 days after the start, at most 90), or a 400 with `issues`."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ValidationFailed([{"code": "invalid_type", "expected": "object", "path": [],
                                 "message": "Expected object"}])
    issues: list[dict[str, Any]] = []
    start = _date(body, "startDate", issues)
    before = _date(body, "beforeDate", issues)
    if issues:
        raise ValidationFailed(issues)
    # Without dates: the 30 days that end with today (Runway's literal defaults, start 30 days ago and
    # end 30 days later exclusive, would leave today out).
    start = start or (today - timedelta(days=DEFAULT_DAYS - 1) if before is None
                      else before - timedelta(days=DEFAULT_DAYS))
    before = before or start + timedelta(days=DEFAULT_DAYS)
    if before <= start:
        raise ValidationFailed([{"code": "custom", "path": ["beforeDate"],
                                 "message": "beforeDate must be after startDate"}])
    if (before - start).days > MAX_DAYS:
        raise ValidationFailed([{"code": "custom", "path": ["beforeDate"],
                                 "message": f"beforeDate must be at most {MAX_DAYS} days after startDate"}])
    return start, before


def _date(body: dict[str, Any], name: str, issues: list[dict[str, Any]]) -> date | None:
    raw = body.get(name)
    if raw is None:
        return None
    try:
        if not isinstance(raw, str) or len(raw) != 10:
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        issues.append({"code": "invalid_string", "path": [name], "message": f"{name} must be a date as YYYY-MM-DD"})
        return None


async def usage(conn: AsyncConnection, key: ClientKey, start: date, before: date) -> dict[str, Any]:
    """`POST /v1/organization/usage`: the key's net credits per UTC day and model over its Runway
    tasks (reservations, settlements and refunds on the day they happened)."""
    lo = datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()
    hi = datetime(before.year, before.month, before.day, tzinfo=UTC).timestamp()
    rows = await conn.execute(
        select(ledger_entries.c.created_at, ledger_entries.c.amount, tasks.c.model)
        .select_from(ledger_entries.join(tasks, tasks.c.id == ledger_entries.c.task_id))
        .where(and_(ledger_entries.c.key_id == key.id, tasks.c.provider == "runway",
                    ledger_entries.c.created_at >= lo, ledger_entries.c.created_at < hi)))
    sums: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for created_at, amount, model in rows:
        day = datetime.fromtimestamp(created_at, UTC).date().isoformat()
        sums[day][model] += int(amount)
    results = []
    models: set[str] = set()
    for day in sorted(sums):
        used = [{"amount": _credits(total), "model": model} for model, total in sorted(sums[day].items())]
        models.update(u["model"] for u in used)
        results.append({"date": day, "usedCredits": used})
    return {"models": sorted(models), "results": results}


def _credits(gengate_credits: int) -> int:
    """gengate credits as Runway credits, to the nearest whole one (halves away from zero)."""
    sign = -1 if gengate_credits < 0 else 1
    return sign * math.floor(abs(gengate_credits) / CREDIT + 0.5)
