"""Replies: the Response value, the headers every reply carries, request ids."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

Headers = list[tuple[str, str]]

JSON_TYPE = ("content-type", "application/json; charset=utf-8")
API_CSP = "report-uri /__cspreport__;default-src 'none';frame-ancestors 'none';"
# The admin page may load its own scripts and styles and call the API, nothing else.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Every reply under the API base, errors and 404s included (upstream's CORS and cache headers;
# the Cache-Control value really has no commas).
API_HEADERS: Headers = [
    ("access-control-allow-origin", "*"),
    ("access-control-max-age", "900"),
    ("access-control-allow-methods", "OPTIONS,GET,HEAD,POST,PUT,DELETE,TRACE,CONNECT"),
    ("access-control-request-method", "*"),
    (
        "access-control-allow-headers",
        "X-Requested-With,Content-Type,Authorization,Accept,Origin,Cache-Control",
    ),
    ("cache-control", "no-store no-cache must-revalidate"),
]


@dataclass(slots=True)
class Response:
    """What goes back: status, body and the headers beyond the standard ones."""

    status: int
    body: bytes = b""
    headers: Headers = field(default_factory=list)
    csp: str = API_CSP


def json_response(status: int, body: bytes, *extra: tuple[str, str]) -> Response:
    """A JSON reply with already serialised `body`."""
    return Response(status, body, [JSON_TYPE, *extra])


_random_bits = random.getrandbits
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_id() -> str:
    """A random UUIDv4 string for request and trace ids (not secrets: Python's Mersenne
    Twister is fine here and four times cheaper than uuid.uuid4())."""
    digits = "%032x" % (_random_bits(128) & _UUID4_CLEAR | _UUID4_SET)
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
