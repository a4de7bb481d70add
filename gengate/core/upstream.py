"""The one HTTP client that talks to upstreams: every call has connect and read timeouts, and its
failures are told apart by what they prove (not sent at all, or sent with the outcome unknown)."""

from __future__ import annotations

import logging
import time

import aiohttp

from gengate.core import metrics
from gengate.core.adaptor import Account, HttpCall, HttpReply

log = logging.getLogger("gengate.upstream")


class NotSent(Exception):
    """The request never reached the upstream (connection refused, DNS): proof of no job."""


class OutcomeUnknown(Exception):
    """The request may have reached the upstream, but no reply came (timeout, dropped connection)."""


class UpstreamClient:
    def __init__(self, connect_timeout: float, read_timeout: float) -> None:
        self._connect = connect_timeout
        self._read = read_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=512, limit_per_host=256, ttl_dns_cache=60),
                auto_decompress=True, trust_env=False)
        return self._session

    async def send(self, account: Account, call: HttpCall, read_timeout: float | None = None) -> HttpReply:
        started = time.monotonic()
        outcome = "unknown"
        try:
            reply = await self._send(account, call, read_timeout)
            outcome = metrics.upstream_outcome(reply.status)
            return reply
        except NotSent:
            outcome = "not_sent"
            raise
        finally:
            provider = account.provider or "unknown"
            metrics.UPSTREAM_REQUESTS.labels(provider, account.channel or "unknown", outcome).inc()
            metrics.UPSTREAM_DURATION.labels(provider).observe(time.monotonic() - started)

    async def _send(self, account: Account, call: HttpCall, read_timeout: float | None) -> HttpReply:
        url = account.base_url + call.path
        timeout = aiohttp.ClientTimeout(total=None, connect=self._connect,
                                        sock_read=read_timeout or self._read)
        try:
            async with self.session.request(call.method, url, json=call.json_body, params=call.query,
                                            headers=dict(call.headers), timeout=timeout,
                                            allow_redirects=False) as resp:
                body = await resp.read()
                return HttpReply(status=resp.status, body=body, headers=dict(resp.headers))
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, aiohttp.InvalidURL) as exc:
            raise NotSent(f"{type(exc).__name__}") from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise OutcomeUnknown(f"{type(exc).__name__}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
