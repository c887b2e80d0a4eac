"""Replies: the Response value, the headers every reply carries, request ids."""

from __future__ import annotations

import itertools
import os
import random
from typing import NamedTuple

Headers = list[tuple[str, str]]

JSON_TYPE = ("content-type", "application/json; charset=utf-8")
API_CSP = "report-uri /__cspreport__;default-src 'none';frame-ancestors 'none';"
# The admin page may load its own scripts and styles and call the API, nothing else.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# The admin page's own files only, never the wire (/api/, /references/, /schemas/): send no
# Referer anywhere, use none of the powerful browser features, share no window with other sites.
PAGE_HEADERS: tuple[tuple[str, str], ...] = (
    ("referrer-policy", "no-referrer"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), hid=(), "
        "midi=(), display-capture=(), clipboard-read=()",
    ),
    ("cross-origin-opener-policy", "same-origin"),
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


NOSNIFF = ("x-content-type-options", "nosniff")


class Response(NamedTuple):
    """What goes back: status, body and the headers beyond the standard ones."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    csp: str = API_CSP


NO_CONTENT = Response(204)


_JSON_ONLY = (JSON_TYPE,)


_make = tuple.__new__  # all four fields at once, without the defaults' slower constructor


def json_response(status: int, body: bytes, *extra: tuple[str, str]) -> Response:
    """A JSON reply with already serialised `body`."""
    headers = (JSON_TYPE, *extra) if extra else _JSON_ONLY
    return _make(Response, (status, body, headers, API_CSP))


def _seed() -> None:
    """A fresh random prefix and counter start (at import and in every forked child)."""
    global _prefix, _counter
    bits = random.SystemRandom().getrandbits(80)
    # hex digit 12 holds the version (4), digit 16 the variant (8, 9, a or b)
    digits = "%020x" % (bits & ~(0xF << 28) & ~(0xC << 12) | (0x4 << 28) | (0x8 << 12))
    _prefix = f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-"
    _counter = itertools.count(random.SystemRandom().getrandbits(40))


_prefix = ""
_counter = itertools.count()
_seed()
os.register_at_fork(after_in_child=_seed)


def new_id() -> str:
    """A request or trace id shaped like a UUIDv4 string: a random per-process prefix and a
    counter (unique, not secret, and about ten times cheaper than uuid.uuid4()). Every forked
    worker draws its own prefix, so no two processes share one."""
    return f"{_prefix}{next(_counter):012x}"
