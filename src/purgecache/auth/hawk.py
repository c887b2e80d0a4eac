"""Hawk 1.x as Taskcluster uses it (spec auth.md §1 and §4): header and bewit parsing, the MAC,
the payload hash and the `ext` attribute. No HTTP types, no credentials: see `credentials.py`.
The arithmetic the client shares (normalized string, MAC, payload hash) lives in
`purgecache.hawk_mac` and is re-exported here.

Failures raise `AuthFailure` whose text is upstream's exact message.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import json
import re
from dataclasses import dataclass

from purgecache.hawk_mac import compute_mac as compute_mac
from purgecache.hawk_mac import hmac_sha256 as hmac_sha256
from purgecache.hawk_mac import mac_input as mac_input
from purgecache.hawk_mac import payload_hash as payload_hash

MAX_HEADER_LENGTH = 4096
MAX_SKEW_MS = 900_000  # 15 minutes either way, boundary included

_HEADER_RE = re.compile(r"(\w+)(?:\s+(.*))?")
_ATTRIBUTE_RE = re.compile(r'(\w+)="([^"\\]*)"\s*(?:,\s*|$)')
_VALUE_RE = re.compile(r"[ \w!#$%&'()*+,\-./:;<=>?@\[\]^`{|}~]+", re.ASCII)
_ATTRIBUTE_NAMES = frozenset(("id", "ts", "nonce", "hash", "ext", "mac", "app", "dlg"))
_REQUIRED = ("id", "ts", "nonce", "mac")
_TS_RE = re.compile(r"[0-9]{1,15}")
_BEWIT_RE = re.compile(r"(/.*)([?&])bewit=([^&]*)(?:&(.+))?", re.DOTALL)
_BEWIT_VALUE_RE = re.compile(r"[\w-]*", re.ASCII)
_LEADING_INT_RE = re.compile(r"\s*([+-]?\d+)")
HAS_BEWIT_RE = re.compile(r"/.*[?&]bewit=", re.DOTALL)


class AuthFailure(Exception):
    """Authentication failed; `str(self)` is the message the caller gets in the 401."""


@dataclass(frozen=True, slots=True)
class Bewit:
    """A decoded bewit and the resource it signs (the request target without it)."""

    client_id: str
    exp: int  # Unix seconds
    mac: str
    ext: str
    resource: str


_V = r"[ \w!#$%&'()*+,\-./:;<=>?@\[\]^`{|}~]+"
# The two layouts the Taskcluster clients send (Python/mohawk; JavaScript and Go). A header that
# matches one of them is valid by the full grammar too; anything else takes the full parser.
_FAST_LAYOUTS = (
    re.compile(
        rf'Hawk mac="(?P<mac>{_V})", hash="(?P<hash>{_V})", id="(?P<id>{_V})", '
        rf'ts="(?P<ts>[0-9]{{1,15}})", nonce="(?P<nonce>{_V})"(?:, ext="(?P<ext>{_V})")?',
        re.ASCII,
    ),
    re.compile(
        rf'Hawk id="(?P<id>{_V})", ts="(?P<ts>[0-9]{{1,15}})", nonce="(?P<nonce>{_V})"'
        rf'(?:, hash="(?P<hash>{_V})")?(?:, ext="(?P<ext>{_V})")?, mac="(?P<mac>{_V})"',
        re.ASCII,
    ),
)


_OPTIONAL_GROUPS = ("hash", "ext")  # in both layouts; the others always match


def parse_header(header: str) -> dict[str, str]:
    """The attributes of a Hawk Authorization header, checked as upstream checks them."""
    if len(header) <= MAX_HEADER_LENGTH:
        for layout in _FAST_LAYOUTS:
            match = layout.fullmatch(header)
            if match is not None:
                found = match.groupdict()
                for optional in _OPTIONAL_GROUPS:  # absent: no key, as the full parser gives
                    if found[optional] is None:
                        del found[optional]
                return found  # no None value left
    return _parse_header_fully(header)


def _parse_header_fully(header: str) -> dict[str, str]:
    if len(header) > MAX_HEADER_LENGTH:
        raise AuthFailure("Bad Request: Header length too long")
    parts = _HEADER_RE.fullmatch(header)
    if parts is None:
        raise AuthFailure("Bad Request: Invalid header syntax")
    if parts[1].lower() != "hawk":
        raise AuthFailure("Unauthorized: Unauthorized")
    rest = parts[2]
    if not rest:
        raise AuthFailure("Bad Request: Invalid header syntax")
    attributes: dict[str, str] = {}
    error, covered = "", 0
    for match in _ATTRIBUTE_RE.finditer(rest):
        name, value = match[1], match[2]
        if name not in _ATTRIBUTE_NAMES:
            error = f"Unknown attribute: {name}"
        elif _VALUE_RE.fullmatch(value) is None:
            error = f"Bad attribute value: {name}"
        elif name in attributes:
            error = f"Duplicate attribute: {name}"
        else:
            attributes[name] = value
            covered += len(match[0])
    if error or covered != len(rest):
        raise AuthFailure(f"Bad Request: {error or 'Bad header format'}")
    if any(name not in attributes for name in _REQUIRED):
        raise AuthFailure("Bad Request: Missing attributes")
    if _TS_RE.fullmatch(attributes["ts"]) is None:
        raise AuthFailure("Bad Request: Invalid timestamp")
    return attributes


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_bewit(method: str, resource: str) -> Bewit:
    """Take the bewit out of a request target (auth.md §4.3 steps 1-6)."""
    if len(resource) > MAX_HEADER_LENGTH:
        raise AuthFailure("Bad Request: Resource path exceeds max length")
    match = _BEWIT_RE.fullmatch(resource)
    if match is None:
        raise AuthFailure("Unauthorized: Empty bewit")
    before, separator, value, after = match.groups()
    if not value:
        raise AuthFailure("Unauthorized: Empty bewit")
    if method not in ("GET", "HEAD"):
        raise AuthFailure("Unauthorized: Invalid method")
    if _BEWIT_VALUE_RE.fullmatch(value) is None:
        raise AuthFailure("Bad Request: Invalid bewit encoding")
    try:
        decoded = _b64url_decode(value).decode("utf-8")
    except (binascii.Error, ValueError) as error:
        raise AuthFailure("Bad Request: Invalid bewit encoding") from error
    parts = decoded.split("\\")
    if len(parts) != 4:
        raise AuthFailure("Bad Request: Invalid bewit structure")
    exp_match = _LEADING_INT_RE.match(parts[1])
    exp = int(exp_match[1]) if exp_match else 0
    if not parts[0] or not exp or not parts[2]:
        raise AuthFailure("Bad Request: Missing bewit attributes")
    signed = before + (separator + after if after else "")
    return Bewit(parts[0], exp, parts[2], parts[3], signed)


def header_mac_input(
    attributes: dict[str, str], method: str, resource: str, host: str, port: int
) -> str:
    """The normalized string of a header request (with Hawk's `app`/`dlg` lines if present)."""
    text = mac_input(
        "header",
        attributes["ts"],
        attributes["nonce"],
        method,
        resource,
        host,
        port,
        attributes.get("hash", ""),
        attributes.get("ext", ""),
    )
    if "app" in attributes:
        text += f"{attributes['app']}\n{attributes.get('dlg', '')}\n"
    return text


def same(a: str, b: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


@functools.lru_cache(maxsize=1024)
def decode_ext(ext: str) -> dict[str, object]:
    """Decode `ext`: base64 (standard or URL-safe, padding optional) of a JSON object.

    Cached: a client sends the same `ext` (often `e30=`, or its certificate) on every request.
    Callers must not modify the result.
    """
    try:
        raw = base64.b64decode(ext.replace("-", "+").replace("_", "/") + "=" * (-len(ext) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError) as error:
        raise AuthFailure("Failed to parse ext") from error
    if not isinstance(value, dict):
        raise AuthFailure("Failed to parse ext")
    return value
