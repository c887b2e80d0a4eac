"""Hawk Authorization headers exactly as the Taskcluster Python client (mohawk) sends them.

Written from the spec (auth.md §1.1-1.4, §1.7), independently of the service's own code, so a
broken verifier cannot hide behind a matching bug here: HMAC-SHA256 over
`hawk.1.header\\nts\\nnonce\\nMETHOD\\nresource\\nhost\\nport\\nhash\\next\\n`, the payload hash of
the body as sent (the Python client sends one even for a GET: empty body, empty content type),
`ext="e30="` (`{}`), attributes in the Python client's order `mac, hash, id, ts, nonce, ext`.
(Checked byte for byte against `mohawk.Sender` when this was written.)

Every header gets a current timestamp and a nonce never used before by this harness run, so
every request of a run is distinct and the service cannot answer any of them from a cache of
verified headers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

Bodies = Callable[[], str]  # a new JSON body each call (BodyMaker, reports.ReportBodies)
EXT = "e30="  # base64 of "{}": what the Python client sends for permanent credentials
JSON_TYPE = "application/json"

_nonces = itertools.count()
_run_id = base64.urlsafe_b64encode(os.urandom(3)).decode()  # nonces differ across runs too


@dataclass(frozen=True)
class Credentials:
    """A client of the clients file the service is started with."""

    client_id: str
    access_token: str


@dataclass(frozen=True)
class Target:
    """What the headers sign: the request as the service will see it."""

    method: str
    resource: str  # raw path + query, exactly as sent (`a%2Fb` stays encoded)
    host: str
    port: int


def payload_hash(content_type: str, body: bytes) -> str:
    """base64(SHA-256(`hawk.1.payload\\n<type>\\n<body>\\n`))."""
    digest = hashlib.sha256(b"hawk.1.payload\n%s\n%s\n" % (content_type.encode(), body)).digest()
    return base64.b64encode(digest).decode()


EMPTY_PAYLOAD_HASH = payload_hash("", b"")


def fresh_nonce() -> str:
    """A nonce unique within this harness run (Hawk nonces are free text; mohawk uses 6 chars)."""
    return f"{_run_id}{next(_nonces):x}"


class Signer:
    """Headers for one client and target, with the fixed part of the MAC input prebuilt."""

    def __init__(self, credentials: Credentials, target: Target) -> None:
        self.key = credentials.access_token.encode()
        self.client_id = credentials.client_id
        self.request_lines = (
            f"\n{target.method.upper()}\n{target.resource}\n{target.host.lower()}\n{target.port}\n"
        ).encode()

    def __call__(self, ts: int, nonce: str, payload: str) -> str:
        """The Authorization header value for this timestamp, nonce and payload hash."""
        normalized = b"hawk.1.header\n%d\n%s%s%s\n%s\n" % (
            ts,
            nonce.encode(),
            self.request_lines,
            payload.encode(),
            EXT.encode(),
        )
        mac = base64.b64encode(hmac.digest(self.key, normalized, hashlib.sha256)).decode()
        return (
            f'Hawk mac="{mac}", hash="{payload}", id="{self.client_id}", '
            f'ts="{ts}", nonce="{nonce}", ext="{EXT}"'
        )


class BodyMaker:
    """JSON bodies for purgeCache: `{"cacheName":"<prefix>-<n>"}`, a new cache name each call."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._counter = itertools.count()

    def __call__(self) -> str:
        return f'{{"cacheName":"{self.prefix}-{next(self._counter):08d}"}}'


def signed_lines(
    credentials: Credentials, target: Target, count: int, bodies: Bodies | None = None
) -> Iterator[str]:
    """`count` lines: `<Authorization>` (no body) or `<Authorization>\\t<JSON body>`."""
    sign = Signer(credentials, target)
    json_prefix = hashlib.sha256(b"hawk.1.payload\n%s\n" % JSON_TYPE.encode())
    ts = int(time.time())
    for index in range(count):
        if index % 4096 == 0:
            ts = int(time.time())
        if bodies is None:
            yield sign(ts, fresh_nonce(), EMPTY_PAYLOAD_HASH)
            continue
        body = bodies()
        digest = json_prefix.copy()
        digest.update(body.encode() + b"\n")
        payload = base64.b64encode(digest.digest()).decode()
        yield f"{sign(ts, fresh_nonce(), payload)}\t{body}"


def write_signed_file(
    path: Path,
    credentials: Credentials,
    target: Target,
    count: int,
    bodies: Bodies | None = None,
) -> float:
    """Write `count` signed lines to `path`; return the seconds it took."""
    started = time.perf_counter()
    lines = signed_lines(credentials, target, count, bodies)
    with path.open("w", encoding="ascii") as out:
        while batch := list(itertools.islice(lines, 8192)):
            out.write("\n".join(batch) + "\n")
    return time.perf_counter() - started


def header_for(credentials: Credentials, target: Target, body: bytes | None = None) -> str:
    """One header for a one-off request (preflight checks, fetching bodies, paging)."""
    payload = EMPTY_PAYLOAD_HASH if body is None else payload_hash(JSON_TYPE, body)
    return Signer(credentials, target)(int(time.time()), fresh_nonce(), payload)
