"""Upstream accounts: channels and their secrets, selection, per-secret slots, backoff and auto-disable.

The routing table is cached in memory and reloaded when `config_version` (bumped by every change,
from the CLI or a server) moves, so a running server sees a change from its next request. Cooldowns
(`backoff_until`, written by whichever process saw the failure) change too often to bump it: each
process reads the secrets cooling down with its per-second config check (`Router.read_cooldowns`).
A secret's running slot is a conditional update, so its cap holds across every process.
"""

from __future__ import annotations

import fnmatch
import json
import random
import time
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import bindparam, case, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gengate.core.crypto import SecretBox, fingerprint
from gengate.core.errors import InvalidRequest
from gengate.db.models import channel_secrets, channels, settings_kv


@dataclass(frozen=True)
class Secret:
    id: int
    channel_id: int
    value: str
    max_concurrency: int | None
    enabled: bool

    def __repr__(self) -> str:
        return f"Secret(id={self.id}, channel_id={self.channel_id})"


@dataclass(frozen=True)
class Channel:
    id: int
    name: str
    provider: str
    base_url: str
    models: tuple[str, ...] | None
    priority: int
    weight: int
    options: dict[str, str]
    enabled: bool
    secrets: tuple[Secret, ...] = field(default=())
    deleted: bool = False
    model_map: dict[str, str] = field(default_factory=dict)  # client model -> upstream model

    def serves(self, model: str) -> bool:
        return self.models is None or any(fnmatch.fnmatchcase(model, p) for p in self.models)

    def upstream_model(self, model: str) -> str:
        """The name the upstream knows `model` by (`--model-map CLIENT=UPSTREAM`), else `model`."""
        return self.model_map.get(model, model)


async def bump_config_version(conn: AsyncConnection) -> None:
    version = str(time.time_ns())
    res = await conn.execute(update(settings_kv).where(settings_kv.c.name == "config_version")
                             .values(value=version))
    if not res.rowcount:
        await conn.execute(insert(settings_kv).values(name="config_version", value=version))


async def config_version(conn: AsyncConnection) -> str:
    return await conn.scalar(select(settings_kv.c.value).where(settings_kv.c.name == "config_version")) or ""


async def add_channel(conn: AsyncConnection, box: SecretBox, *, providers: Collection[str], provider: str,
                      base_url: str, secrets: list[str], name: str | None = None, models: str | None = None,
                      priority: int = 0, weight: int = 1, max_concurrency: int | None = None,
                      options: dict[str, str] | None = None, upsert: bool = False,
                      model_map: dict[str, str] | None = None) -> int:
    """Add a channel (`providers`: the names the registry knows; the core names none)."""
    if provider not in providers:
        raise InvalidRequest(f"unknown provider {provider!r}; one of {', '.join(sorted(providers))}")
    if not secrets:
        raise InvalidRequest("at least one --key is required")
    if not base_url.startswith(("http://", "https://")):
        raise InvalidRequest("--base-url must be an http(s) URL")
    name = name or f"{provider}-{int(time.time())}"
    values = dict(name=name, provider=provider, base_url=base_url.rstrip("/"), models=models or None,
                  priority=priority, weight=max(1, weight), options=json.dumps(options or {}),
                  model_map=json.dumps(model_map) if model_map else None)
    existing = await conn.scalar(select(channels.c.id).where(channels.c.name == name,
                                                             channels.c.deleted_at.is_(None)))
    if existing is not None and not upsert:
        raise InvalidRequest(f"a channel named {name!r} exists already")
    if existing is not None:
        channel_id = existing
        await conn.execute(update(channels).where(channels.c.id == channel_id).values(**values))
        # Keep secret rows (tasks are bound to them by id) whose value is unchanged.
        rows = (await conn.execute(select(channel_secrets.c.id, channel_secrets.c.fingerprint)
                                   .where(channel_secrets.c.channel_id == channel_id))).all()
        wanted = {fingerprint(s): s for s in secrets}
        for row in rows:
            if row.fingerprint in wanted:
                await conn.execute(update(channel_secrets).where(channel_secrets.c.id == row.id)
                                   .values(max_concurrency=max_concurrency))
                wanted.pop(row.fingerprint)
            else:
                await conn.execute(update(channel_secrets).where(channel_secrets.c.id == row.id)
                                   .values(enabled=False, status_reason="removed from the channel"))
        secrets = list(wanted.values())
    else:
        channel_id = await conn.scalar(insert(channels).values(**values, created_at=time.time())
                                       .returning(channels.c.id))
    for secret in secrets:
        await conn.execute(insert(channel_secrets).values(
            channel_id=channel_id, secret_enc=box.seal(secret), fingerprint=fingerprint(secret),
            max_concurrency=max_concurrency))
    await bump_config_version(conn)
    return int(channel_id)


async def list_channels(conn: AsyncConnection) -> list[dict[str, Any]]:
    out = []
    for ch in (await conn.execute(select(channels).where(channels.c.deleted_at.is_(None))
                                  .order_by(channels.c.id))).all():
        secrets = (await conn.execute(select(channel_secrets).where(channel_secrets.c.channel_id == ch.id)
                                      .order_by(channel_secrets.c.id))).all()
        out.append({
            "id": ch.id, "name": ch.name, "provider": ch.provider, "base_url": ch.base_url,
            "models": ch.models, "model_map": json.loads(ch.model_map) if ch.model_map else {},
            "priority": ch.priority, "weight": ch.weight, "enabled": ch.enabled,
            "status_reason": ch.status_reason,
            "secrets": [{"id": s.id, "fingerprint": s.fingerprint, "enabled": s.enabled,
                         "status_reason": s.status_reason, "running": s.running,
                         "max_concurrency": s.max_concurrency} for s in secrets],
        })
    return out


async def set_channel_enabled(conn: AsyncConnection, name_or_id: str, enabled: bool) -> bool:
    cond = channels.c.name == name_or_id
    if name_or_id.isdigit():
        cond = or_(cond, channels.c.id == int(name_or_id))
    channel_id = await conn.scalar(select(channels.c.id).where(cond, channels.c.deleted_at.is_(None)))
    if channel_id is None:
        return False
    reason = None if enabled else "disabled by the operator"
    await conn.execute(update(channels).where(channels.c.id == channel_id)
                       .values(enabled=enabled, status_reason=reason))
    if enabled:  # manual re-enable also re-enables secrets that were auto-disabled
        await conn.execute(update(channel_secrets).where(channel_secrets.c.channel_id == channel_id,
                                                         channel_secrets.c.status_reason != "removed from the channel")
                           .values(enabled=True, status_reason=None, failures=0, backoff_until=0))
    await bump_config_version(conn)
    return True


async def delete_channel(conn: AsyncConnection, name_or_id: str) -> bool:
    """Take a channel out of routing for good. Its secret rows stay: tasks already bound to them
    finish on them (their slots, polls and cancels still need the secret)."""
    cond = channels.c.name == name_or_id
    if name_or_id.isdigit():
        cond = or_(cond, channels.c.id == int(name_or_id))
    res = await conn.execute(update(channels).where(cond, channels.c.deleted_at.is_(None))
                             .values(deleted_at=time.time(), enabled=False, status_reason="deleted",
                                     name=channels.c.name + "#deleted-" + str(time.time_ns())))
    if not res.rowcount:
        return False
    await bump_config_version(conn)
    return True


# A task occupying `u` units fits when the secret has no cap, when `running + u` stays within it, or
# when nothing runs (a task larger than the whole cap still gets to run, alone).
_ACQUIRE = (update(channel_secrets)
            .where(channel_secrets.c.id == bindparam("sid"), channel_secrets.c.backoff_until <= bindparam("now"),
                   or_(channel_secrets.c.max_concurrency.is_(None),
                       channel_secrets.c.running + bindparam("u") <= channel_secrets.c.max_concurrency,
                       channel_secrets.c.running == 0))
            .values(running=channel_secrets.c.running + bindparam("u")))
_RELEASE = (update(channel_secrets)
            .where(channel_secrets.c.id == bindparam("sid"))
            .values(running=case((channel_secrets.c.running > bindparam("u"),
                                  channel_secrets.c.running - bindparam("u")), else_=0)))


_COOLING = (select(channel_secrets.c.id, channel_secrets.c.backoff_until)
            .where(channel_secrets.c.backoff_until > bindparam("now")))


async def acquire_slot(conn: AsyncConnection, secret_id: int, now: float, units: int = 1) -> bool:
    res = await conn.execute(_ACQUIRE, {"sid": secret_id, "now": now, "u": max(1, units)})
    return res.rowcount > 0


async def release_slot(conn: AsyncConnection, secret_id: int, units: int = 1) -> None:
    await conn.execute(_RELEASE, {"sid": secret_id, "u": max(1, units)})


async def record_failure(conn: AsyncConnection, secret_id: int, now: float, *, base: float, cap: float,
                         retry_after: float | None = None, back_off: bool = True) -> None:
    """Count one failure of the secret (its streak, for its health) and back it off: by the upstream's
    `Retry-After` when it gave one, else, with `back_off`, exponentially in the secret's own streak
    (never in one task's retries). A 5xx to one task's create passes `back_off=False`: one payload
    the upstream chokes on must not hold the secret back for other clients (interface.md "Submit").
    Without either, nothing is counted either: a streak that never backs the secret off must not
    lengthen the next real backoff.
    """
    if retry_after is None and not back_off:
        return
    failures = int(await conn.scalar(
        update(channel_secrets).where(channel_secrets.c.id == secret_id)
        .values(failures=channel_secrets.c.failures + 1).returning(channel_secrets.c.failures)) or 0)
    if retry_after is not None:
        delay = min(max(retry_after, 0.1), cap)
    else:
        delay = min(base * 2 ** min(failures - 1, 10), cap) * random.uniform(0.8, 1.2)
    await conn.execute(update(channel_secrets).where(channel_secrets.c.id == secret_id)
                       .values(backoff_until=now + delay))


async def clear_failures(conn: AsyncConnection, secret_id: int) -> None:
    """The secret just worked: its failure streak (and so its next backoff) starts again from zero."""
    await conn.execute(update(channel_secrets)
                       .where(channel_secrets.c.id == secret_id, channel_secrets.c.failures > 0)
                       .values(failures=0))


async def lock_secret(conn: AsyncConnection, secret_id: int) -> None:
    """Hold the secret's row until the transaction ends (SQLite: the one writer holds it anyway)."""
    await conn.execute(select(channel_secrets.c.id).where(channel_secrets.c.id == secret_id).with_for_update())


async def disable_secret(conn: AsyncConnection, secret_id: int, reason: str) -> None:
    await conn.execute(update(channel_secrets).where(channel_secrets.c.id == secret_id)
                       .values(enabled=False, status_reason=reason))
    await bump_config_version(conn)


class Router:
    """The in-memory routing table: which secrets may take a new task for a provider and model.

    Loaded once per `config_version` (see `refresh`); the channels that serve a (provider, model) are
    matched once and kept until the next refresh, so a request only draws the weighted order."""

    MAX_ROUTES = 4096  # (provider, model) pairs remembered; model names come from clients

    def __init__(self, box: SecretBox) -> None:
        self._box = box
        self.version: str | None = None
        self.channels: dict[int, Channel] = {}
        self.secrets: dict[int, Secret] = {}
        # (provider, model) -> enabled serving channels with live secrets, lowest --priority number first
        self._routes: dict[tuple[str, str], tuple[tuple[Channel, ...], ...]] = {}
        self._served: dict[tuple[str, str], bool] = {}
        # secret id -> wall-clock end of its cooldown (`backoff_until`), as of the last read
        self.cooldowns: dict[int, float] = {}

    async def read_cooldowns(self, conn: AsyncConnection) -> None:
        """The secrets cooling down now, whichever process cooled them (one small query)."""
        rows = (await conn.execute(_COOLING, {"now": time.time()})).all()
        self.cooldowns = {r.id: float(r.backoff_until) for r in rows}

    async def refresh(self, conn: AsyncConnection, version: str | None = None) -> None:
        version = version if version is not None else await config_version(conn)
        if version == self.version:
            return
        chans: dict[int, Channel] = {}
        secrets: dict[int, Secret] = {}
        rows = (await conn.execute(select(channel_secrets))).all()
        now = time.time()
        self.cooldowns = {r.id: float(r.backoff_until) for r in rows if (r.backoff_until or 0) > now}
        by_channel: dict[int, list[Secret]] = {}
        for r in rows:
            s = Secret(id=r.id, channel_id=r.channel_id, value=self._box.open(r.secret_enc),
                       max_concurrency=r.max_concurrency, enabled=r.enabled)
            secrets[s.id] = s
            by_channel.setdefault(r.channel_id, []).append(s)
        for ch in (await conn.execute(select(channels))).all():
            models = tuple(p.strip() for p in ch.models.split(",") if p.strip()) if ch.models else None
            chans[ch.id] = Channel(id=ch.id, name=ch.name, provider=ch.provider, base_url=ch.base_url,
                                   models=models, priority=ch.priority, weight=ch.weight,
                                   options=json.loads(ch.options or "{}"), enabled=ch.enabled,
                                   secrets=tuple(by_channel.get(ch.id, ())), deleted=ch.deleted_at is not None,
                                   model_map=json.loads(ch.model_map) if ch.model_map else {})
        self.load(chans, secrets, version)

    def load(self, chans: dict[int, Channel], secrets: dict[int, Secret], version: str | None) -> None:
        """Install a routing table (what `refresh` read), forgetting every per-model match."""
        self.channels, self.secrets, self.version = chans, secrets, version
        self._routes, self._served = {}, {}

    def _remember(self, cache: dict[tuple[str, str], Any], key: tuple[str, str], value: Any) -> None:
        if len(cache) >= self.MAX_ROUTES:  # a flood of made-up model names must not grow memory
            cache.clear()
        cache[key] = value

    def takes_new_work(self, secret_id: int | None) -> bool:
        """Whether a new task may be bound to this secret (a child pinned to its parent's account):
        the secret exists and is enabled, on a channel that is enabled and not deleted."""
        secret = self.secrets.get(secret_id) if secret_id is not None else None
        channel = self.channels.get(secret.channel_id) if secret is not None else None
        return bool(secret and secret.enabled and channel and channel.enabled and not channel.deleted)

    def has_channel(self, provider: str, model: str) -> bool:
        served = self._served.get((provider, model))
        if served is None:
            served = any(c.provider == provider and not c.deleted and c.serves(model)
                         for c in self.channels.values())
            self._remember(self._served, (provider, model), served)
        return served

    def _tiers(self, provider: str, model: str) -> tuple[tuple[Channel, ...], ...]:
        tiers = self._routes.get((provider, model))
        if tiers is None:
            by_prio: dict[int, list[Channel]] = {}
            for ch in self.channels.values():
                if ch.enabled and ch.provider == provider and ch.serves(model):
                    live = tuple(s for s in ch.secrets if s.enabled)
                    if live:
                        by_prio.setdefault(ch.priority, []).append(replace(ch, secrets=live))
            tiers = tuple(tuple(by_prio[p]) for p in sorted(by_prio))
            self._remember(self._routes, (provider, model), tiers)
        return tiers

    def candidates(self, provider: str, model: str, avoid_channel: int | None = None) -> list[Secret]:
        """Enabled secrets that serve the model: the lowest `priority` number first (interface.md),
        weighted random in a tier, the channel to avoid (the one that just failed) last."""
        ordered: list[Secret] = []
        for tier in self._tiers(provider, model):
            pool = list(tier)
            while pool:
                pick = pool[0] if len(pool) == 1 else random.choices(pool, weights=[c.weight for c in pool])[0]
                pool.remove(pick)
                live = list(pick.secrets)
                if len(live) > 1:
                    random.shuffle(live)
                ordered.extend(live)
        if avoid_channel is not None:
            ordered.sort(key=lambda s: s.channel_id == avoid_channel)
        return ordered
