"""What a webhook URL may be: RFC 3986's host and port grammar as one pattern, and why not."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048

# So strict that whatever matches passes every check of `url_problem` (a host name or IP
# literal, a port from 1 to 65535, printable ASCII after it).
_H16 = "[0-9A-Fa-f]{1,4}"
_DEC_OCTET = "25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]"
_IPV4 = rf"(?:{_DEC_OCTET})(?:\.(?:{_DEC_OCTET})){{3}}"
_LS32 = f"(?:{_H16}:{_H16}|{_IPV4})"


def _before_gap(pieces: int) -> str:
    """RFC 3986's `[ *(pieces-1)( h16 ":" ) h16 ]` before a "::"."""
    return f"(?:(?:{_H16}:){{0,{pieces - 1}}}{_H16})?" if pieces else ""


# RFC 3986 §3.2.2 IPv6address, each of its nine forms in order (IPv4-embedded ones included).
_IPV6 = "|".join(
    [
        f"(?:{_H16}:){{6}}{_LS32}",
        *(f"{_before_gap(5 - after)}::(?:{_H16}:){{{after}}}{_LS32}" for after in range(5, -1, -1)),
        f"{_before_gap(6)}::{_H16}",
        f"{_before_gap(7)}::",
    ]
)
_PORT = "6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}"
_LABEL = "[A-Za-z0-9-]{1,63}"
URL_PATTERN = (
    rf"^[Hh][Tt][Tt][Pp][Ss]?://(?:(?:{_LABEL}\.)*{_LABEL}\.?|\[(?:{_IPV6})\])"
    rf"(?::(?:{_PORT}))?(?:[/?#][!-~]*)?$"
)


def url_problem(value: str) -> str | None:
    """Why a URL is refused, naming the field (None: it is not); the specific reasons
    first, then the pattern for whatever is left."""
    if len(value) > MAX_URL_LENGTH:
        return f"url must be at most {MAX_URL_LENGTH} characters, got {len(value)}"
    if any(ch.isspace() or not " " < ch < "\x7f" for ch in value):
        return "url must not contain whitespace or control characters"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        return f"url is not a valid URL: {exc}"
    if parts.scheme.lower() not in ("http", "https"):
        return f"url must be an absolute http or https URL, got scheme {parts.scheme!r}"
    if not parts.hostname:
        return "url must be an absolute http or https URL with a host"
    if parts.username is not None or parts.password is not None:
        return "url must not contain credentials; use custom_headers instead"
    if port == 0:
        return "url port must be between 1 and 65535"
    if not re.fullmatch(URL_PATTERN, value):
        return f"url host {parts.hostname!r} is not a valid host name or IP address"
    return None
