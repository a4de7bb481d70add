"""GuardedClient against real servers: pinned connections, checked redirects, body and time caps.

127.0.0.2 plays the public host (allow-listed with allow_cidrs) and 127.0.0.1 the private one, which
must never receive a request unless allow_private is set.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote

import pytest
from ssrf_targets import Targets, running_targets

from gengate.net.ssrf import (
    FetchFailed,
    FetchTimeout,
    GuardedClient,
    GuardPolicy,
    ResponseTooLarge,
    URLRefused,
    check_url,
)

PUBLIC_ONLY = GuardPolicy(allow_cidrs=(ipaddress.ip_network("127.0.0.2/32"),))


class ScriptedResolver:
    """Answers each lookup of a name with the next scripted answer (the last one repeats)."""

    def __init__(self, **answers: list[list[str]]) -> None:
        self.answers = {name.replace("_", "."): list(script) for name, script in answers.items()}
        self.calls: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        script = self.answers.get(host)
        if not script:
            raise OSError(f"no such host {host}")
        return script.pop(0) if len(script) > 1 else script[0]


@pytest.fixture(scope="module")
def targets() -> Iterator[Targets]:
    with running_targets() as started:
        yield started


@pytest.fixture
def servers(targets: Targets) -> Targets:
    targets.reset()
    return targets


@pytest.fixture
async def client() -> AsyncIterator[GuardedClient]:
    async with GuardedClient(PUBLIC_ONLY, ScriptedResolver(public_test=[["127.0.0.2"]])) as guarded:
        yield guarded


async def test_allowed_address_is_reached(servers: Targets, client: GuardedClient) -> None:
    response = await client.request("GET", f"{servers.public.base}/hello?x=1")
    assert (response.status, response.body, response.headers["X-Target"]) == (200, b"ok", "yes")
    assert response.url == f"{servers.public.base}/hello?x=1"
    assert [hit.path for hit in servers.public.hits] == ["/hello"]


async def test_private_address_is_refused_and_never_contacted(servers: Targets, client: GuardedClient) -> None:
    with pytest.raises(URLRefused, match=r"callback_url points to a loopback address \(127\.0\.0\.1\)"):
        await client.request("POST", f"{servers.private.base}/hook", data=b"{}", field="callback_url")
    with pytest.raises(URLRefused, match="loopback"):
        await client.request("GET", f"http://2130706433:{servers.private.port}/")
    assert servers.private.hits == []


async def test_host_header_keeps_the_name(servers: Targets, client: GuardedClient) -> None:
    response = await client.request("GET", f"http://public.test:{servers.public.port}/named", headers={"Host": "evil"})
    assert response.status == 200
    assert servers.public.hits[0].headers["host"] == f"public.test:{servers.public.port}"


async def test_rebinding_after_check_url_never_reaches_the_private_address(servers: Targets) -> None:
    # A naive guard checks (first answer: "public"), then connects after a second lookup (private).
    resolver = ScriptedResolver(rebind_test=[["127.0.0.2"], ["127.0.0.1"]])
    url = f"http://rebind.test:{servers.private.port}/hook"
    assert await check_url(url, PUBLIC_ONLY, resolver) == ["127.0.0.2"]
    async with GuardedClient(PUBLIC_ONLY, resolver) as guarded:
        with pytest.raises(URLRefused, match=r"resolves to a loopback address \(127\.0\.0\.1\)"):
            await guarded.request("POST", url, data=b"secret")
    assert servers.private.hits == [] and servers.public.hits == []


async def test_connection_uses_the_checked_lookup_only(servers: Targets) -> None:
    # One lookup per request, and the connection goes where that lookup (checked) pointed: a second
    # lookup would have answered 127.0.0.1.
    resolver = ScriptedResolver(rebind_test=[["127.0.0.2"], ["127.0.0.1"]])
    async with GuardedClient(PUBLIC_ONLY, resolver) as guarded:
        response = await guarded.request("GET", f"http://rebind.test:{servers.private.port}/once")
        assert response.status == 200
        assert resolver.calls == ["rebind.test"]
        assert len(servers.public.hits) == 1 and servers.private.hits == []
        await guarded.close()  # a fresh connection has to look the name up again: now refused
        with pytest.raises(URLRefused):
            await guarded.request("GET", f"http://rebind.test:{servers.private.port}/twice")
    assert servers.private.hits == []


async def test_mixed_answer_is_refused_even_if_the_first_is_allowed(servers: Targets) -> None:
    resolver = ScriptedResolver(mixed_test=[["127.0.0.2", "127.0.0.1"]])
    async with GuardedClient(PUBLIC_ONLY, resolver) as guarded:
        with pytest.raises(URLRefused, match=r"127\.0\.0\.1"):
            await guarded.request("GET", f"http://mixed.test:{servers.public.port}/")
    assert servers.public.hits == [] and servers.private.hits == []


async def test_redirect_to_private_is_refused_before_sending(servers: Targets, client: GuardedClient) -> None:
    for location in (f"{servers.private.base}/admin", f"http://localhost:{servers.private.port}/admin"):
        url = f"{servers.public.base}/redirect?to={quote(location, safe='')}"
        with pytest.raises(URLRefused, match="callback_url redirect"):
            await client.request("POST", url, data=b"payload", field="callback_url")
    assert len(servers.public.hits) == 2
    assert servers.private.hits == []


async def test_redirect_to_a_name_resolving_private_is_refused(servers: Targets) -> None:
    resolver = ScriptedResolver(inside_test=[["127.0.0.1"]])
    async with GuardedClient(PUBLIC_ONLY, resolver) as guarded:
        location = quote(f"http://inside.test:{servers.private.port}/", safe="")
        with pytest.raises(URLRefused, match=r"url redirect resolves to a loopback address"):
            await guarded.request("GET", f"{servers.public.base}/redirect?to={location}")
    assert servers.private.hits == []


@pytest.mark.parametrize("location", ["file:///etc/passwd", "gopher://127.0.0.2/", "http://[::1]/"])
async def test_redirect_hops_get_every_rule(servers: Targets, client: GuardedClient, location: str) -> None:
    with pytest.raises(URLRefused, match="url redirect"):
        await client.request("GET", f"{servers.public.base}/redirect?to={quote(location, safe='')}")


async def test_redirect_limit(servers: Targets) -> None:
    policy = GuardPolicy(allow_cidrs=PUBLIC_ONLY.allow_cidrs, max_redirects=3)
    async with GuardedClient(policy) as guarded:
        response = await guarded.request("GET", f"{servers.public.base}/chain?n=3")
        assert (response.status, response.body) == (200, b"end of chain")
        assert response.url == f"{servers.public.base}/chain?n=0"
        servers.reset()
        with pytest.raises(URLRefused, match="redirects more than 3 times"):
            await guarded.request("GET", f"{servers.public.base}/chain?n=4")
        assert len(servers.public.hits) == 4  # the original request and three redirects


async def test_redirect_not_followed_when_asked(servers: Targets, client: GuardedClient) -> None:
    location = quote(f"{servers.private.base}/", safe="")
    response = await client.request("POST", f"{servers.public.base}/redirect?to={location}", follow_redirects=False)
    assert (response.status, response.headers["Location"]) == (302, f"{servers.private.base}/")
    assert servers.private.hits == []


@pytest.mark.parametrize(
    ("status", "method", "body"), [(301, "GET", b""), (302, "GET", b""), (303, "GET", b""), (307, "POST", b"data")]
)
async def test_redirect_method_rules(
    servers: Targets, client: GuardedClient, status: int, method: str, body: bytes
) -> None:
    location = quote("/landed", safe="")
    headers = {"Content-Type": "application/json"}
    url = f"{servers.public.base}/redirect?status={status}&to={location}"
    response = await client.request("POST", url, data=b"data", headers=headers)
    assert response.status == 200 and response.url == f"{servers.public.base}/landed"
    landed = servers.public.hits[-1]
    assert (landed.method, landed.body) == (method, body)
    assert ("content-type" in landed.headers) == (method == "POST")


async def test_credentials_are_dropped_across_origins(servers: Targets, client: GuardedClient) -> None:
    headers = {"Authorization": "Bearer sk-secret", "X-Signature": "sig"}
    same = quote("/same", safe="")
    await client.request("GET", f"{servers.public.base}/redirect?to={same}", headers=headers)
    assert servers.public.hits[-1].headers["authorization"] == "Bearer sk-secret"
    other = quote(f"{servers.other.base}/other", safe="")
    await client.request("GET", f"{servers.public.base}/redirect?to={other}", headers=headers)
    assert "authorization" not in servers.other.hits[-1].headers
    assert servers.other.hits[-1].headers["x-signature"] == "sig"


async def test_allow_private_reaches_loopback_with_body_and_headers(servers: Targets) -> None:
    async with GuardedClient(GuardPolicy(allow_private=True)) as guarded:
        response = await guarded.request(
            "POST",
            f"{servers.private.base}/hook",
            data=b'{"id":"task_1"}',
            headers={"Content-Type": "application/json", "Webhook-Id": "msg_1"},
        )
    assert (response.status, response.body) == (200, b"ok")
    hit = servers.private.hits[-1]
    assert (hit.method, hit.path, hit.body) == ("POST", "/hook", b'{"id":"task_1"}')
    assert hit.headers["webhook-id"] == "msg_1" and hit.headers["content-type"] == "application/json"


@pytest.mark.parametrize("chunked", [False, True])
async def test_body_cap(servers: Targets, client: GuardedClient, chunked: bool) -> None:
    flag = "&chunked=1" if chunked else ""
    response = await client.request("GET", f"{servers.public.base}/big?size=5000{flag}", max_bytes=5000)
    assert len(response.body) == 5000
    with pytest.raises(ResponseTooLarge, match="larger than 4999 bytes") as info:
        await client.request("GET", f"{servers.public.base}/big?size=5000{flag}", max_bytes=4999)
    assert info.value.status == 400 and info.value.code == "response_too_large"


async def test_policy_body_cap_is_the_default(servers: Targets) -> None:
    policy = GuardPolicy(allow_cidrs=PUBLIC_ONLY.allow_cidrs, max_bytes=100)
    async with GuardedClient(policy) as guarded:
        with pytest.raises(ResponseTooLarge):
            await guarded.request("GET", f"{servers.public.base}/big?size=101&chunked=1")


@pytest.mark.parametrize("path", ["/slow?s=2", "/trickle?s=2"])
async def test_timeout_covers_the_whole_exchange(servers: Targets, client: GuardedClient, path: str) -> None:
    started = time.monotonic()
    with pytest.raises(FetchTimeout, match=r"within 0\.3 s") as info:
        await client.request("GET", f"{servers.public.base}{path}", timeout=0.3)
    assert time.monotonic() - started < 1.5
    assert info.value.status == 504


async def test_unreachable_target_is_a_fetch_failure(servers: Targets, client: GuardedClient) -> None:
    with pytest.raises(FetchFailed, match=r"cannot fetch from 127\.0\.0\.2") as info:
        await client.request("GET", "http://127.0.0.2:1/")
    assert not isinstance(info.value, FetchTimeout) and info.value.status == 502
