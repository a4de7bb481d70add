"""Sending one synchronous call upstream: channel choice, failover before the first byte, cooldown
and auto-disable (interface.md "Synchronous calls").

- Candidates come from the in-process routing table (`Router`): the lowest `--priority` number
  first, weighted random inside a tier. Secrets cooling down go last: those this process cooled at
  once, those another process cooled from the router's per-second read of `backoff_until` (each
  cooldown is written there). Secrets this process just disabled are skipped until the table
  reloads (a disable bumps `config_version`, so every process reloads within a second).
- A connect error, a timeout, a 408/409/429 or a 5xx is retried on another channel (never the same
  channel twice in a row, at most `MAX_TRIES`); the secret cools down (`Retry-After` wins).
- A 401/403, a 402 or an "insufficient quota/balance" reply disables the secret with the reason and
  the call moves on; the client sees the upstream's own 4xx only when no other channel is left.
- Any other 4xx is the client's mistake: relayed as the upstream's reply, not retried.
- One pooled aiohttp session per process (keep-alive), the body sent as the bytes the client sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from gengate.core import channels as chan
from gengate.core import metrics
from gengate.core.channels import Channel, Router, Secret
from gengate.core.errors import GengateError, UpstreamUnavailable
from gengate.db.engine import Database
from gengate.providers.openai.errors import UpstreamReply

log = logging.getLogger("gengate.openai.relay")

PROVIDER = "openai"
MAX_TRIES = 3
RETRYABLE = frozenset({408, 409, 429})
DISABLING = frozenset({401, 403, 402})
_OUTCOMES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
QUOTA_WORDS = (b"insufficient_quota", b"insufficient balance", b"insufficient_balance", b"billing_hard_limit")


@dataclass(slots=True)
class Opened:
    """An upstream reply whose status is 2xx, its body not read yet."""

    response: aiohttp.ClientResponse
    channel: Channel
    secret: Secret
    upstream_model: str


BodyFor = Callable[[Channel], tuple[bytes, str]]  # the body to send to a channel, and the upstream model
# The `Authorization` header value for a channel's secret (a provider signing its own tokens).
AuthFor = Callable[[Channel, Secret], str]


def bearer_auth(channel: Channel, secret: Secret) -> str:
    return f"Bearer {secret.value}"


class Relay:
    def __init__(self, db: Database, router: Router, *, connect_timeout: float, read_timeout: float,
                 backoff_base: float, backoff_max: float, provider: str = PROVIDER,
                 auth: AuthFor = bearer_auth, on_disabled: Callable[[], None] | None = None) -> None:
        self.db, self.router = db, router
        self.on_disabled = on_disabled  # after a disable is written: tell the other processes at once
        self.provider, self.auth = provider, auth  # the channels' provider; how a secret is sent
        self.read_timeout = read_timeout
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=read_timeout)
        self._session: aiohttp.ClientSession | None = None
        self.cooling: dict[int, float] = {}  # secret id -> monotonic time its cooldown ends
        self.disabled: dict[int, str | None] = {}  # secret id -> router version when this process disabled it
        self._background: set[asyncio.Task[None]] = set()
        self.meter = metrics.UpstreamMeter(provider)  # gengate_upstream_requests_total and its duration

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300, keepalive_timeout=30),
                auto_decompress=False, trust_env=False, skip_auto_headers=("User-Agent", "Accept-Encoding"))
        return self._session

    async def close(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    # ------------------------------------------------------------------ candidates
    def serves(self, model: str) -> bool:
        return self.router.has_channel(self.provider, model)

    def candidates(self, model: str, want: Callable[[Channel], bool] | None = None) -> list[tuple[Channel, Secret]]:
        router = self.router
        ready: list[tuple[Channel, Secret]] = []
        cooling: list[tuple[Channel, Secret]] = []
        now = time.monotonic()
        shared = router.cooldowns  # another process's cooldowns (wall clock), usually empty
        wall = time.time() if shared else 0.0
        for secret in router.candidates(self.provider, model):
            if self.disabled:
                seen = self.disabled.get(secret.id, "-")
                if seen == router.version:
                    continue
                if seen != "-":  # the table reloaded since: it knows the secret's state now
                    self.disabled.pop(secret.id, None)
            channel = router.channels[secret.channel_id]
            if want is not None and not want(channel):
                continue
            until = self.cooling.get(secret.id)
            if until is not None:
                if until > now:
                    cooling.append((channel, secret))
                    continue
                self.cooling.pop(secret.id, None)
            if shared and shared.get(secret.id, 0.0) > wall:
                cooling.append((channel, secret))
                continue
            ready.append((channel, secret))
        return ready + cooling

    # ------------------------------------------------------------------ sending
    async def open(self, model: str, path: str, body_for: BodyFor, content_type: str,
                   want: Callable[[Channel], bool] | None = None, *, exclude: frozenset[int] = frozenset(),
                   last_channel: int | None = None, tried: int = 0) -> Opened:
        """POST to the first candidate that answers 2xx (failover as the module says). `exclude`:
        secrets already tried by this call; `last_channel`, `tried`: where a caller's retry resumes."""
        last_error: GengateError | None = None
        pending = [c for c in self.candidates(model, want) if c[1].id not in exclude]
        if not pending:
            if exclude:
                raise UpstreamUnavailable("Every channel failed for this request.", status=502)
            raise UpstreamUnavailable(f"No channel is available for the model `{model}` right now.", status=503)
        while pending and tried < MAX_TRIES:
            pick = next((i for i, (c, _) in enumerate(pending) if c.id != last_channel), None)
            if pick is None:
                break
            channel, secret = pending.pop(pick)
            tried += 1
            last_channel = channel.id
            data, upstream_model = body_for(channel)
            headers = {"Authorization": self.auth(channel, secret), "Content-Type": content_type}
            started = time.perf_counter()
            try:
                response = await self.session.post(channel.base_url + path, data=data, headers=headers,
                                                   timeout=self.timeout, allow_redirects=False)
            except (aiohttp.ClientError, TimeoutError) as exc:
                not_sent = isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError))
                self.meter.count(channel.name, "not_sent" if not_sent else "unknown", time.perf_counter() - started)
                self.cool_down(secret, None)
                last_error = UpstreamUnavailable(f"The upstream could not be reached ({type(exc).__name__}).",
                                                 status=502)
                log.info("%s channel %s: %s, trying another", self.provider, channel.name, type(exc).__name__)
                continue
            status = response.status
            # Duration to the reply's headers (a stream's body is the client's pace, not the upstream's).
            self.meter.count(channel.name, _OUTCOMES.get(status // 100, "unknown"), time.perf_counter() - started)
            if status < 300:
                return Opened(response, channel, secret, upstream_model)
            try:
                raw = await response.read()
            except (aiohttp.ClientError, TimeoutError):
                raw = b""
            finally:
                response.release()
            ctype = response.headers.get("Content-Type", "application/json")
            raw = raw.replace(secret.value.encode(), b"[redacted]") if secret.value else raw
            lowered = raw[:2000].lower()
            if status in DISABLING or (status == 429 and any(w in lowered for w in QUOTA_WORDS)):
                reason = f"upstream answered {status}: {_message(raw)}"
                self.disable(secret, reason)
                last_error = UpstreamReply(status, raw, ctype)
                continue
            if status in RETRYABLE or status >= 500:
                self.cool_down(secret, _retry_after(response.headers.get("Retry-After")))
                last_error = UpstreamUnavailable(f"The upstream failed (HTTP {status}).", status=502)
                log.info("%s channel %s answered %s, trying another", self.provider, channel.name, status)
                continue
            raise UpstreamReply(status, raw, ctype)
        raise last_error or UpstreamUnavailable("No channel could serve this request.", status=502)

    def fail_after_headers(self, opened: Opened) -> None:
        """A 2xx that broke before its first byte reached the client: cool the secret down."""
        self.cool_down(opened.secret, None)

    # ------------------------------------------------------------------ secret health
    def cool_down(self, secret: Secret, retry_after: float | None) -> None:
        delay = min(max(retry_after if retry_after is not None else self.backoff_base, 0.1), self.backoff_max)
        self.cooling[secret.id] = time.monotonic() + delay
        # The same delay in the database, for the other processes (and the secret's failure streak).
        self._spawn(self._record_failure(secret.id, delay))

    def disable(self, secret: Secret, reason: str) -> None:
        self.disabled[secret.id] = self.router.version
        log.warning("%s secret %s disabled: %s", self.provider, secret.id, reason)
        self._spawn(self._disable(secret.id, reason))

    def _spawn(self, coro: object) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _record_failure(self, secret_id: int, retry_after: float | None) -> None:
        try:
            async with self.db.write() as conn:
                await chan.record_failure(conn, secret_id, time.time(), base=self.backoff_base,
                                          cap=self.backoff_max, retry_after=retry_after)
        except Exception as exc:
            log.warning("recording a failure of secret %s failed: %s", secret_id, exc)

    async def _disable(self, secret_id: int, reason: str) -> None:
        try:
            async with self.db.write() as conn:
                await chan.disable_secret(conn, secret_id, reason[:300])
        except Exception as exc:
            log.warning("disabling secret %s failed: %s", secret_id, exc)
            return
        if self.on_disabled is not None:
            self.on_disabled()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _message(raw: bytes) -> str:
    """The upstream's error message (never a secret: OpenAI masks keys in its messages)."""
    import orjson

    try:
        err = orjson.loads(raw).get("error") or {}
        text = err.get("message") if isinstance(err, dict) else str(err)
    except (orjson.JSONDecodeError, AttributeError):
        text = raw[:200].decode("utf-8", "replace")
    return (text or "no message")[:200]
