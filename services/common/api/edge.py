"""Where the API's models meet HTTP: input validated into models, models answered as JSON."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from services.common.web import BadRequest

from .shapes import Envelope, Page

Model = TypeVar("Model", bound=BaseModel)
# Parametrised once: `Envelope[Any]` looks the class up in pydantic's cache on every use.
ANY_ENVELOPE = Envelope[Any]
ANY_PAGE = Page[Any]
# The error type of our own checks, whose message is complete as it is.
REFUSED = "refused"


def refuse(message: str) -> PydanticCustomError:
    """An error for a check of ours inside a model: `message` names the field itself."""
    return PydanticCustomError(REFUSED, "{reason}", {"reason": message})


def _place(error: ErrorDetails) -> str:
    return ".".join(str(part) for part in error["loc"]) or "value"


def refusal(exc: ValidationError) -> BadRequest:
    """The 400 for a validation error: unknown fields first, then the first problem."""
    errors = exc.errors(include_url=False)
    unknown = sorted(str(e["loc"][-1]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        return BadRequest(f"unknown field(s): {', '.join(unknown)}")
    first = errors[0]
    if first["type"] == REFUSED:
        return BadRequest(first["msg"])
    place = _place(first)
    if first["type"] == "missing":
        return BadRequest(f"{place} is required")
    return BadRequest(f"{place}: {first['msg']}")


def validated(model: type[Model], value: Any) -> Model:
    """`value` as `model`, or a 400 that names the field and what is wrong with it."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise refusal(exc) from None


def query_of(
    request: web.Request, model: type[Model], defaults: dict[str, Any] | None = None
) -> Model:
    """The query string as `model`; of a repeated parameter the first value counts."""
    given = {name: request.query[name] for name in request.query}
    return validated(model, {**(defaults or {}), **given})


def parse_path_id(raw: str, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a UUID, got {raw!r}") from None


def _json(envelope: BaseModel, status: int, headers: dict[str, str] | None) -> web.Response:
    return web.Response(
        body=envelope.model_dump_json().encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def respond(
    data: BaseModel | list[Any] | dict[str, Any],
    message: str = "Successfully !",
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The envelope around `data`."""
    return _json(ANY_ENVELOPE(message=message, data=data), status, headers)


def respond_page(items: list[Any], next_cursor: str | None) -> web.Response:
    """A page of a list: the envelope with `next_cursor`."""
    return _json(ANY_PAGE(message="Successfully !", data=items, next_cursor=next_cursor), 200, None)
