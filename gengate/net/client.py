"""An HTTP client for client-influenced URLs (url-analysis.md §3.2, steps 3 to 5).

Every hop is checked with the same rules as `check_url`. For host names the check runs inside the
connector's resolver, so the addresses it returns (all checked) are the ones aiohttp connects to:
no second lookup, no DNS rebinding. IP literals never reach a resolver in aiohttp, so they are
checked before each hop is sent. Host header, TLS SNI and certificate checks keep the host name.

Redirects are followed here, not by aiohttp: at most ``max_redirects``, each Location checked before
anything is sent to it. Method changes follow browsers and the Fetch standard: 303 turns anything
but HEAD into a GET without body, 301 and 302 turn a POST into a GET without body, 307 and 308 keep
method and body. Credentials (Authorization, Cookie) are dropped when a redirect leaves the origin.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from gengate.net.addresses import HostError, parse_host
from gengate.net.check import Resolver, SystemResolver, Target, checked_addresses, parse_target
from gengate.net.errors import FetchFailed, FetchTimeout, ResponseTooLarge, URLRefused
from gengate.net.policy import GuardPolicy, warn_allow_private

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# The caller may not choose these: they belong to the connection, not to the request.
_HOP_HEADERS = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie"})
_BODY_HEADERS = frozenset({"content-type", "content-encoding", "content-language", "content-location"})
_CHUNK = 64 * 1024

# The field name for refusal messages, seen by the connector's resolver, which runs in the
# requesting task (aiohttp calls it inline while connecting).
_field: ContextVar[str] = ContextVar("gengate_net_field", default="url")


@dataclass(frozen=True)
class GuardedResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str  # the final URL, after redirects


class GuardedClient:
    """Sends requests to client-influenced URLs; one per process, shared (it pools connections)."""

    def __init__(self, policy: GuardPolicy, resolver: Resolver | None = None) -> None:
        self.policy = policy
        self._resolver = resolver or SystemResolver()
        self._session: aiohttp.ClientSession | None = None
        if policy.allow_private:
            warn_allow_private()

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        max_bytes: int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (covers redirects and the body read too)
        follow_redirects: bool = True,
        field: str = "url",
    ) -> GuardedResponse:
        """Send the request, following checked redirects, and read the body up to ``max_bytes``.

        Any HTTP status is returned, not raised. Raises URLRefused for a refused URL or hop (nothing
        is sent to it), ResponseTooLarge over the byte cap, FetchTimeout past ``timeout`` seconds and
        FetchFailed when the target cannot be reached.
        """
        seconds = self.policy.timeout if timeout is None else timeout
        limit = self.policy.max_bytes if max_bytes is None else max_bytes
        target = parse_target(url, self.policy, field)
        token = _field.set(field)
        try:
            async with asyncio.timeout(seconds):
                return await self._follow(method.upper(), target, _outgoing(headers), data, limit, follow_redirects)
        except TimeoutError:
            raise FetchTimeout(f"{field}: no complete answer from {target.url.host} within {seconds:g} s") from None
        finally:
            _field.reset(token)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> GuardedClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _follow(
        self, method: str, target: Target, headers: dict[str, str], data: bytes | None, limit: int, follow: bool
    ) -> GuardedResponse:
        field = _field.get()
        for hop in range(self.policy.max_redirects + 1):
            if not isinstance(target.host, str):
                await checked_addresses(target.host, target.port, self.policy, self._resolver, _field.get())
            try:
                async with self._client().request(
                    method, target.url, headers=headers, data=data, allow_redirects=False
                ) as response:
                    location = response.headers.get("Location") if follow and response.status in _REDIRECTS else None
                    if location is None:
                        body = await _read_capped(response, limit, _field.get())
                        return GuardedResponse(response.status, response.headers, body, str(response.url))
                    status = response.status
            except aiohttp.ClientError as exc:
                raise FetchFailed(f"{_field.get()}: cannot fetch from {target.url.host}: {_describe(exc)}") from None
            if hop == self.policy.max_redirects:
                break
            _field.set(f"{field} redirect")
            try:
                next_url = target.url.join(URL(location))
            except ValueError:
                raise URLRefused(f"{field} redirects to an invalid URL") from None
            next_target = parse_target(next_url, self.policy, _field.get())
            method, data, headers = _redirected(status, method, data, headers, target.url, next_url)
            target = next_target
        raise URLRefused(f"{field} redirects more than {self.policy.max_redirects} times")

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                resolver=_PinnedResolver(self.policy, self._resolver),
                use_dns_cache=False,  # a cached answer would skip the check's own lookup, harmlessly but opaquely
                limit=100,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),  # cookies must not travel between clients' requests
                trust_env=False,  # an environment proxy would connect on our behalf, unchecked
                timeout=aiohttp.ClientTimeout(total=None),  # request() bounds the whole exchange
            )
        return self._session


class _PinnedResolver(AbstractResolver):
    """aiohttp's resolver for the guarded client: resolves once, checks, returns only checked addresses."""

    def __init__(self, policy: GuardPolicy, resolver: Resolver) -> None:
        self._policy = policy
        self._resolver = resolver

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        field = _field.get()
        try:
            parsed = parse_host(host)
        except HostError as exc:
            raise URLRefused(f"{field} {exc}") from None
        results: list[ResolveResult] = []
        for address in await checked_addresses(parsed, port, self._policy, self._resolver, field):
            found = socket.AF_INET if ipaddress.ip_address(address).version == 4 else socket.AF_INET6
            if family in (socket.AF_INET, socket.AF_INET6) and found != family:
                continue
            results.append(
                ResolveResult(
                    hostname=host,
                    host=address,
                    port=port,
                    family=found,
                    proto=0,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
            )
        if not results:
            raise OSError(f"{host} has no address of family {family!r}")
        return results

    async def close(self) -> None:
        return None


def _outgoing(headers: Mapping[str, str] | None) -> dict[str, str]:
    return {name: value for name, value in (headers or {}).items() if name.lower() not in _HOP_HEADERS}


def _redirected(
    status: int, method: str, data: bytes | None, headers: dict[str, str], old: URL, new: URL
) -> tuple[str, bytes | None, dict[str, str]]:
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, data = "GET", None
        headers = {k: v for k, v in headers.items() if k.lower() not in _BODY_HEADERS}
    if old.origin() != new.origin():
        headers = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIAL_HEADERS}
    return method, data, headers


async def _read_capped(response: aiohttp.ClientResponse, limit: int, field: str) -> bytes:
    # Content-Length may be absent or wrong, so the count while reading is what holds the cap.
    declared = response.content_length
    if declared is not None and declared > limit:
        raise ResponseTooLarge(f"{field}: the response is larger than {limit} bytes")
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > limit:
            raise ResponseTooLarge(f"{field}: the response is larger than {limit} bytes")
    return bytes(body)


def _describe(exc: aiohttp.ClientError) -> str:
    # Never str(exc) for every kind: some aiohttp errors quote the full URL, credentials included.
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"{type(exc).__name__} ({exc.os_error.strerror or exc.os_error})"
    return type(exc).__name__
