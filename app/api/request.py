"""The app's Request class: a body that can't be decoded is a 400, whatever the decoder
raised."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import FormMultiDict

from app.errors import JSON_ERRORS, InvalidRequest


class AppRequest(Request[Any, Any, Any]):
    """Litestar's Request, whose json() and form() turn every decoder failure into
    InvalidRequest. Litestar itself maps only msgspec.DecodeError: invalid UTF-8 in a JSON
    string or a multipart field, and JSON nested deeper than the recursion limit, raised
    past it as 500s."""

    async def json(self) -> Any:
        try:
            return await super().json()
        except JSON_ERRORS as exc:
            raise InvalidRequest("the body is not valid JSON") from exc

    async def form(self) -> FormMultiDict:
        try:
            return await super().form()
        except UnicodeDecodeError as exc:
            raise InvalidRequest("the form is not valid UTF-8") from exc
