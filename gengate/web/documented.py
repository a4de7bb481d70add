"""Routes that FastAPI documents but does not run: OpenAPI sees the path parameters, the request and reply
models and the error envelope; a request goes straight to the handler, which takes the raw `Request`
(no parameter solving or body validation on the hot path: the adaptors validate, in the family's
envelope). A documented route has exactly one method, so every operation id is unique."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Body, Path, Query, Security
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic import BaseModel
from starlette.convertors import FloatConvertor, IntegerConvertor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import compile_path, request_response

Handler = Callable[[Request], Awaitable[Response]]

JSON = "application/json"
# The documented client auth; never called (documentation only), so `auto_error` is moot.
CLIENT_KEY = HTTPBearer(auto_error=False, scheme_name="ClientKey",
                        description="A gengate client key `sk-...` (`Authorization: Bearer sk-...`).")


def _response_class(media_type: str, reply: type[BaseModel] | None) -> type[Response]:
    """Only its `media_type` is read (for the documented 200): a JSON-like class documents `reply`'s
    schema (each event of a stream), a plain one a string of bytes."""
    if media_type == JSON:
        return JSONResponse
    return type("DocumentedResponse", (JSONResponse if reply else Response,), {"media_type": media_type})


def errors_as_json(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents every response of an operation in the 200's media type; an error envelope is
    JSON even where the 200 reply is a stream or a file, so 4XX/5XX content is moved to JSON."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content") or {}
                if status[:1] in "45" and JSON not in content and len(content) == 1:
                    response["content"] = {JSON: next(iter(content.values()))}
    return schema


def _doc_signature(path: str, body: type[BaseModel] | None, body_media_type: str,
                   query: type[BaseModel] | None) -> inspect.Signature:
    """The signature FastAPI reads to document the operation's parameters and body."""
    params = []
    for name, convertor in compile_path(path)[2].items():
        kind: type = int if isinstance(convertor, IntegerConvertor) else (
            float if isinstance(convertor, FloatConvertor) else str)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[kind, Path()]))
    if query is not None:
        params.append(inspect.Parameter("query", inspect.Parameter.KEYWORD_ONLY,
                                        annotation=Annotated[query, Query()]))
    if body is not None:
        params.append(inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY,
                                        annotation=Annotated[body, Body(media_type=body_media_type)]))
    return inspect.Signature(params)


def _stub(handler: Handler, signature: inspect.Signature) -> Callable[..., Any]:
    def documented(**_: Any) -> Any:
        raise AssertionError("documentation only: requests go to the raw handler")

    documented.__signature__ = signature  # type: ignore[attr-defined]
    documented.__name__ = getattr(handler, "__name__", "endpoint")
    documented.__doc__ = handler.__doc__
    return documented


class DocumentedRoute(APIRoute):
    def __init__(self, path: str, handler: Handler, method: str, *, operation_id: str, tags: list[str],
                 summary: str | None = None, description: str | None = None,
                 body: type[BaseModel] | None = None, body_media_type: str = JSON,
                 query: type[BaseModel] | None = None,
                 reply: type[BaseModel] | None = None, reply_media_type: str = JSON,
                 reply_description: str = "Success",
                 error_model: type[BaseModel] | None = None, error_description: str = "",
                 auth: bool = True, include_in_schema: bool = True, family: str | None = None,
                 family_prefix: str = "") -> None:
        responses: dict[int | str, dict[str, Any]] = {}
        if reply is not None:
            responses[200] = {"model": reply}
        if error_model is not None:
            what = error_description or f"the {tags[0]} error envelope"
            responses["4XX"] = {"model": error_model, "description": f"Client error, in {what}"}
            responses["5XX"] = {"model": error_model, "description": f"Server or upstream error, in {what}"}
        super().__init__(
            path, _stub(handler, _doc_signature(path, body, body_media_type, query)),
            methods=[method], name=operation_id, operation_id=operation_id, tags=list(tags),
            summary=summary, description=description, responses=responses,
            response_description=reply_description, response_class=_response_class(reply_media_type, reply),
            dependencies=[Security(CLIENT_KEY)] if auth else None, include_in_schema=include_in_schema,
        )
        self.family = family  # the family whose envelope every reply of this route uses (None: no family)
        self.family_prefix = family_prefix  # the composer tries longer family prefixes first
        self.endpoint = handler
        self.app = request_response(handler)
