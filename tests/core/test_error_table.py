"""Every typed error, in both envelopes: status, code, shape. The expected values are written out here,
not read from the tables under test."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gengate.core import errors as e
from gengate.net import errors as net
from gengate.providers.openai.errors import openai_error
from gengate.providers.vidu.errors import vidu_error
from gengate.web import family

# class → (Vidu status, Vidu reason, OpenAI status, OpenAI type, OpenAI code)
EXPECTED: dict[type[e.GengateError], tuple[int, str, int, str, str]] = {
    e.GengateError: (500, "InternalServiceFailure", 500, "server_error", "internal_error"),
    e.AuthError: (401, "Unauthorized", 401, "invalid_request_error", "invalid_api_key"),
    e.InvalidRequest: (400, "BadRequest", 400, "invalid_request_error", "invalid_request"),
    e.BodyTooLarge: (413, "BadRequest", 413, "invalid_request_error", "request_too_large"),
    e.IdempotencyMismatch: (422, "BadRequest", 422, "invalid_request_error", "idempotency_key_reused"),
    net.URLRefused: (400, "BadRequest", 400, "invalid_request_error", "url_refused"),
    net.ResponseTooLarge: (400, "BadRequest", 400, "invalid_request_error", "response_too_large"),
    e.MethodNotAllowed: (405, "BadRequest", 405, "invalid_request_error", "method_not_allowed"),
    e.IdempotencyInProgress: (409, "Conflict", 409, "invalid_request_error", "idempotency_in_progress"),
    e.ModelNotAllowed: (400, "ModelUnavailable", 404, "invalid_request_error", "model_not_found"),
    e.NotFound: (404, "TaskNotFound", 404, "invalid_request_error", "not_found"),
    e.ReferenceNotFound: (404, "CreationNotFound", 404, "invalid_request_error", "not_found"),
    e.ReferenceUnavailable: (400, "BadRequest", 400, "invalid_request_error", "reference_unavailable"),
    e.InsufficientCredits: (400, "CreditInsufficient", 429, "insufficient_quota", "insufficient_quota"),
    e.RateLimited: (429, "TooManyRequests", 429, "requests", "rate_limit_exceeded"),
    e.Conflict: (400, "BadRequest", 409, "invalid_request_error", "conflict"),
    e.UpstreamRefused: (400, "BadRequest", 400, "invalid_request_error", "upstream_refused"),
    e.UpstreamUnavailable: (503, "InternalServiceFailure", 503, "server_error", "upstream_unavailable"),
    e.FetchFailed: (400, "ImageDownloadFailure", 400, "invalid_request_error", "fetch_failed"),
    e.FetchTimeout: (400, "ImageDownloadFailure", 400, "invalid_request_error", "fetch_timeout"),
    e.ClientGone: (499, "Canceled", 499, "invalid_request_error", "client_closed_request"),
}


def _every_error_class() -> set[type[e.GengateError]]:
    found, todo = set(), [e.GengateError]
    while todo:
        cls = todo.pop()
        if cls not in found:
            todo.extend(cls.__subclasses__())
            # the core tree; a provider's own subclasses are mapped by the MRO walk to their base's row
            if cls.__module__.startswith("gengate.") and not cls.__module__.startswith("gengate.providers."):
                found.add(cls)
    return found


def _body(response: Any) -> dict[str, Any]:
    return json.loads(bytes(response.body))


def test_every_error_class_is_expected() -> None:
    assert _every_error_class() == set(EXPECTED)


def test_method_not_allowed_lives_in_the_core_tree() -> None:
    assert family.MethodNotAllowed is e.MethodNotAllowed
    assert net.FetchFailed is e.FetchFailed and net.FetchTimeout is e.FetchTimeout
    assert issubclass(e.FetchTimeout, e.FetchFailed)


@pytest.mark.parametrize("cls", list(EXPECTED), ids=lambda c: c.__name__)
def test_vidu_envelope(cls: type[e.GengateError]) -> None:
    status, reason = EXPECTED[cls][:2]
    exc = cls("upstream said no") if cls is e.UpstreamRefused else cls("the message")
    response = vidu_error(exc)
    body = _body(response)
    assert response.status_code == status
    assert set(body) == {"code", "reason", "message", "metadata"}
    assert body["code"] == status and body["reason"] == reason
    assert len(body["metadata"]["trace_id"]) == 16
    assert body["message"] == ("internal error" if cls is e.GengateError else exc.message)


@pytest.mark.parametrize("cls", list(EXPECTED), ids=lambda c: c.__name__)
def test_openai_envelope(cls: type[e.GengateError]) -> None:
    status, kind, code = EXPECTED[cls][2:]
    exc = cls("the message")
    response = openai_error(exc)
    body = _body(response)
    assert response.status_code == status
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert (body["error"]["type"], body["error"]["code"]) == (kind, code)
    if cls is e.GengateError:
        assert "the message" not in body["error"]["message"]
    else:
        assert body["error"]["message"] == "the message"


def test_an_errors_own_status_wins_over_the_table() -> None:
    refused = e.UpstreamRefused("too long", upstream_status=422, upstream_code="FieldInvalid")
    assert vidu_error(refused).status_code == 422
    assert _body(vidu_error(refused))["reason"] == "FieldInvalid"
    assert openai_error(refused).status_code == 422
    conflict = e.Conflict("gone", status=410)
    assert vidu_error(conflict).status_code == 410 and openai_error(conflict).status_code == 410
    # a class default is the table's business: InsufficientCredits is 402 in the core, 429 for OpenAI
    assert openai_error(e.InsufficientCredits("x")).status_code == 429


def test_most_specific_class_wins_for_an_unregistered_subclass() -> None:
    class Mine(e.ReferenceNotFound):
        pass

    assert _body(vidu_error(Mine("x")))["reason"] == "CreationNotFound"
    cls, _ = e.ErrorTable({e.GengateError: 1, e.NotFound: 2}).lookup(Mine("x"))
    assert cls is e.NotFound


def test_paths_and_vidu_reasons() -> None:
    unknown = e.NotFound("Unknown path /vidu/x", code="path_not_found")
    assert _body(vidu_error(unknown))["reason"] == "NotFound"
    assert _body(openai_error(unknown))["error"]["code"] == "unknown_url"
    field = e.InvalidRequest("settings.duration", code="FieldInvalid", param="settings.duration")
    assert _body(vidu_error(field))["reason"] == "FieldInvalid"
    assert _body(openai_error(field))["error"]["param"] == "settings.duration"


def test_a_table_needs_the_root() -> None:
    with pytest.raises(ValueError):
        e.ErrorTable({e.NotFound: 1})
