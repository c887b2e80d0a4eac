"""Database passwords kept out of everything the service prints.

A PostgreSQL connection string may carry a password in three places: the URL's user
information (`postgresql://svc:pw@host/db`), a `password=` query parameter, or a `password=`
keyword of a libpq key/value string (`host=db password=pw`). `redact_dsn` masks all three for
display; `dsn_secrets` names the passwords so that any other text (a driver's error message,
a log line) can be scrubbed of them with `scrub`.
"""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

MASK = "***"

_QUERY_PASSWORD = re.compile(r"[?&]password=([^&#]*)")
_KEYWORD_PASSWORD = re.compile(r"(?<![\w.])password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']\S*)")


def _password_spans(dsn: str) -> list[tuple[int, int]]:
    """Where the passwords are in `dsn` (start, end), in order."""
    scheme, sep, rest = dsn.partition("://")
    if not sep:
        return [match.span(1) for match in _KEYWORD_PASSWORD.finditer(dsn)]
    spans = []
    # As libpq reads a URI: the user information ends at the first '@', unless a '/' comes first.
    end = next((i for i, char in enumerate(rest) if char in "@/"), len(rest))
    colon = rest.find(":", 0, end)
    offset = len(scheme) + len(sep)
    if end < len(rest) and rest[end] == "@" and colon >= 0:
        spans.append((offset + colon + 1, offset + end))
    spans.extend(match.span(1) for match in _QUERY_PASSWORD.finditer(dsn))
    return spans


def redact_dsn(dsn: str) -> str:
    """`dsn` with each password replaced by `***` (other text unchanged)."""
    masked, last = [], 0
    for start, end in _password_spans(dsn):
        masked += [dsn[last:start], MASK]
        last = end
    return "".join([*masked, dsn[last:]])


def dsn_secrets(dsn: str) -> tuple[str, ...]:
    """The passwords in `dsn`, as written and as a driver may print them (decoded, JSON)."""
    found: set[str] = set()
    for start, end in _password_spans(dsn):
        written = dsn[start:end]
        unquoted = re.sub(r"\\(.)", r"\1", written[1:-1]) if written[:1] == "'" else written
        for form in (written, unquote(written), unquoted):
            if form:
                found |= {form, json.dumps(form, ensure_ascii=False)[1:-1]}
    return tuple(sorted(found, key=len, reverse=True))


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every occurrence of each secret replaced by `***`."""
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text
