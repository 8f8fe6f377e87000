"""aiohttp's connection handler, answering what its HTTP parser refuses with our envelope.

A request the parser cannot read (a control character in a header value, a broken request
line) never reaches the application or its middleware: aiohttp answers it from
`RequestHandler.handle_error` with a plain-text 400. aiohttp offers no hook for that answer
(aio-libs/aiohttp#3287, #9882), so every server we start uses this subclass instead.
"""

from __future__ import annotations

from http import HTTPStatus

from aiohttp import web, web_protocol, web_server

from .web import error_envelope

# The parser's message can echo the bytes it refused; ours says what happened, no more.
PARSER_MESSAGES = {
    HTTPStatus.BAD_REQUEST: "malformed HTTP request",
    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE: "request headers are too large",
}


class EnvelopeRequestHandler(web_protocol.RequestHandler):
    """aiohttp's handler, but its own error answers are our JSON envelope."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # aiohttp's version logs the error and refuses when a response is already under way.
        super().handle_error(request, status, exc, message)
        text = PARSER_MESSAGES.get(HTTPStatus(status), HTTPStatus(status).phrase.lower())
        response = error_envelope(status, text)
        response.force_close()
        return response


def answer_parser_errors_with_envelopes() -> None:
    """Make every aiohttp server of this process use EnvelopeRequestHandler (idempotent)."""
    web_server.RequestHandler = EnvelopeRequestHandler  # type: ignore[attr-defined]
