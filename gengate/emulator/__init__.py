"""Emulated upstream providers: real HTTP servers built from the spec files, for `gengate emulate`,
`gengate serve --sandbox`, benchmarks and tests.

How to write a provider emulator (one file)
-------------------------------------------
Create `gengate/providers/<name>/emulator.py`, written from `/work/shared/specs/<name>.md` alone:
it imports nothing from `gengate.providers` (a misread format must not hide on both sides) and
ends with `EMULATORS = [MyEmulator()]`; the registry finds it, and the app serves it under
`/<provider>` with `/_emulator/*` controls and a signed media route. The class has two members:

    class MyEmulator:
        provider: ClassVar[str] = "kling"            # the `channels add --provider` name
        def routes(self, ctx: EmulatorContext) -> Sequence[BaseRoute]: ...   # the provider's own paths
        def error_response(self, status, message, reason=None, headers=None) -> Response: ...

`error_response` is the provider's error envelope; every `ProviderError(status, message, reason)`
a handler raises, and every unknown path or wrong method, is answered with it.

A task provider (create, poll, cancel, list):

    async def create(request):
        secret = ctx.authenticate(request, BEARER)                  # or TOKEN, header_key("x-api-key"),
        if (fault := await ctx.before(request, "create", secret)):  #   BEARER.verified_by(jwt_check)
            return fault                                            # status / malformed: no job
        body = await read_json(request)                             # strict JSON, else 400
        ...validate: raise ProviderError(400, "prompt is required", "1201")
        task = ctx.new_task(digits_id(19), secret, {...your payload...})
        if not ctx.accept(task, fail_code="..."):                   # cap reached: not a job
            raise ProviderError(429, "too many running tasks", "1303")
        if (fault := await ctx.after_accept(request, secret)):      # timeout / drop_after_accept
            return fault
        return json_response(render(task, ctx.now()))

    async def poll(request):                                        # op "poll"
        secret = ctx.authenticate(request, BEARER)
        async with ctx.polling(secret, task_id):                    # counts polls and overlaps
            if (fault := await ctx.before(request, "poll", secret)):
                return fault
            task = ctx.own_task(task_id, secret) or raise 404       # other secrets' tasks do not exist
            ...WALK.state(task.progress(ctx.now())), or an unknown state if ctx.unknown_state(secret)

A state stream (SSE) is `ctx.before(request, "poll", secret, streaming=True)`, then
`return ctx.stream(request, "poll", secret, events)`, which `drop_after_accept` cuts after its
`after_chunks` events. Cancel is `ctx.before(request, "cancel", ...)` then `ctx.cancel(task)`; a list is op "list",
`page_params`/`offset_params` for the query and `ctx.store.list_tasks(...)` (newest first).
A task's state is a function of the clock (`TaskRecord.progress(now)` → `Phase`, fraction); a
`StateWalk` names the provider's states over it. Media: `ctx.media_url(MediaSpec(...), name)`
gives a signed URL of a real MP4/PNG/JPEG/MP3 whose size and duration the spec fixes.

A synchronous provider (chat, embeddings, images; op "create", nothing stored):

    async def chat(request):
        secret = ctx.authenticate(request, BEARER)
        if (fault := await ctx.before(request, "create", secret)):
            return fault
        body = await read_json(request) ...validate...
        if body.get("stream"):
            return await ctx.stream_call(request, secret, [sse_event(chunk) for chunk in ...] + [DONE])
        return await ctx.answer_call(request, secret, reply)

`answer_call`/`stream_call` apply `timeout` (answer, or send the headers, late) and
`drop_after_accept` (hang up; on a stream after the rule's `after_chunks` chunks, default 2), and
count the call once in `creates`, also when a fault or the client cuts it.

What the framework gives
------------------------
- replies.py: `ProviderError`, `json_response`, `read_json`/`parse_json` (RFC 8259 only, no lone
  surrogates, depth <= 512: bad bodies are the provider's 400, never a stored job or a 500).
- auth.py: `AuthScheme` (`BEARER`, `TOKEN`, `header_key(name)`, `.verified_by(fn)` for JWTs or
  key pairs), `hs256_claims`, `unverified_claims`; `ctx.authenticate` answers 401 in your shape.
- clock.py: `iso_z(ts, digits=6|3|0)`, `epoch_ms`, `epoch_s`. ids.py: `digits_id(n)`,
  `derived_digits_id(seed, n)`, `uuid_id`, `derived_uuid(seed)`, `prefixed_id(prefix, n)`.
- sse.py: `sse_event(data, event=None)`, `DONE`, `SSE_HEADERS`. paging.py: `page_params`,
  `offset_params`, `int_param` (plain decimals in range, else 400).
- timeline.py: `TaskRecord`, `Phase`, `Progress`, `StateWalk`. media.py/cdn.py: real files behind
  signed, expiring URLs. store.py/sqlite_store.py: tasks, aliases (ids of things a task made),
  history, faults, caps, holds, in memory or in SQLite shared by processes and kept across restarts.

How the controls plug in
------------------------
- Faults (faults.py, the contract's rule format): `ctx.before` (status, malformed, and for
  non-create ops timeout/drop), `ctx.after_accept` (a create's timeout/drop once its job is stored),
  `ctx.unknown_state` (poll), `ctx.accept` (fail_task), `answer_call`/`stream_call` (synchronous),
  `ctx.stream` (a cut state stream).
- Stats (`GET /_emulator/stats`): `ctx.accept` counts a create and `running`/`max_running`;
  `answer_call`/`stream_call` count a synchronous call; `ctx.polling` counts polls; `ctx.cancel`
  cancels. Nothing refused (auth, validation, cap, status/malformed faults) is counted.
- Caps (`POST /_emulator/caps`): `ctx.accept` checks the cap and stores the job in one store step
  (one SQLite transaction), so concurrent creates never exceed it; refuse with your 429.
- Hold (`POST /_emulator/hold`): frozen tasks stay in their current state with no code of yours.
"""

from gengate.emulator.app import EmulatorRuntime, build_emulator_app, serve_emulator
from gengate.emulator.auth import BEARER, TOKEN, AuthScheme, header_key, hs256_claims, unverified_claims
from gengate.emulator.base import EmulatorContext, ProviderEmulator
from gengate.emulator.clock import epoch_ms, epoch_s, iso_z
from gengate.emulator.ids import derived_digits_id, derived_uuid, digits_id, prefixed_id, uuid_id
from gengate.emulator.media import MediaSpec
from gengate.emulator.paging import Page, int_param, offset_params, page_params
from gengate.emulator.replies import ProviderError, json_response, parse_json, read_json
from gengate.emulator.sse import DONE, SSE_HEADERS, SSE_MEDIA_TYPE, sse_event
from gengate.emulator.timeline import Phase, Progress, StateWalk, TaskRecord

__all__ = [
    "BEARER",
    "DONE",
    "SSE_HEADERS",
    "SSE_MEDIA_TYPE",
    "TOKEN",
    "AuthScheme",
    "EmulatorContext",
    "EmulatorRuntime",
    "MediaSpec",
    "Page",
    "Phase",
    "Progress",
    "ProviderEmulator",
    "ProviderError",
    "StateWalk",
    "TaskRecord",
    "build_emulator_app",
    "derived_digits_id",
    "derived_uuid",
    "digits_id",
    "epoch_ms",
    "epoch_s",
    "header_key",
    "hs256_claims",
    "int_param",
    "iso_z",
    "json_response",
    "offset_params",
    "page_params",
    "parse_json",
    "prefixed_id",
    "read_json",
    "serve_emulator",
    "sse_event",
    "unverified_claims",
    "uuid_id",
]
