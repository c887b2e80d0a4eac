"""Domain values of the purge-cache service: pool ids, purge requests and time formats.

Times are integers of milliseconds since the Unix epoch everywhere inside the service; they are
turned into text only at the edges (`format_time`, `parse_since`). No I/O in this module.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import NamedTuple

IDENTIFIER_PATTERN = r"[A-Za-z0-9_-]{1,38}"
WORKER_POOL_ID_PATTERN = f"{IDENTIFIER_PATTERN}/{IDENTIFIER_PATTERN}"
# Upstream prints the JavaScript form of the pattern in its error messages.
WORKER_POOL_ID_JS_PATTERN = r"/^[A-Za-z0-9_-]{1,38}\/[A-Za-z0-9_-]{1,38}$/"
WORKER_POOL_ID_RE = re.compile(WORKER_POOL_ID_PATTERN)  # use `.fullmatch` (a match is a prefix)

# A cache name may hold any character but NUL (PostgreSQL text cannot store it); this cap keeps
# one purge request small while leaving room for any real cache name.
MAX_CACHE_NAME_LENGTH = 4096

DAY_MS = 86_400_000


def is_worker_pool_id(value: str) -> bool:
    """Whether `value` is a valid `provisionerId/workerType` pair (full match, no newline)."""
    return WORKER_POOL_ID_RE.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class PurgeRequest:
    """One open purge request: caches `cache_name` of a pool older than `before` must go."""

    worker_pool_id: str
    cache_name: str
    before: int  # ms since the epoch
    expires: int  # ms since the epoch
    # The until-applied policy: the end of the normal retention, after which the request
    # stays (until `expires`, its maximum age) only until every active worker applied it.
    # None: the normal policy (it ends at `expires`). Not part of the wire entry.
    until_applied: int | None = None

    def to_wire(self) -> dict[str, str]:
        """The entry as the API sends it (schema `purge-cache-requests.json#`)."""
        provisioner_id, _, worker_type = self.worker_pool_id.partition("/")
        return {
            "provisionerId": provisioner_id,
            "workerType": worker_type,
            "cacheName": self.cache_name,
            "before": format_time(self.before),
        }

    def to_entry(self) -> bytes:
        """The entry as the API serves it, compact JSON in UTF-8: what storage keeps with the
        row, so listing pages are joined from stored bytes.

        Copied to a bytes object of its own size: orjson (3.12 on) returns its 4 KiB work
        buffer with only the length cut, so every kept entry (the per-pool cache keeps one
        per row, the write batcher one per queued purge) held 4 KiB for ~130 bytes of JSON
        (bench/memory, issue 17 item 6). The copy costs about 0.1 µs."""
        import orjson  # a server dependency: the client and the agent use this module without it

        return b"".join((orjson.dumps(self.to_wire()), b""))


# How the pool id appeared in the request target a Hawk signature verified: `%2F` (every
# current client) or a literal slash (the seed era's clients).
# A `purgeRequests` call carrying this header (any value) is someone looking, not a worker:
# the admin page and `purgecache requests` send it, so an operator viewing a pool is not
# counted as a fetching worker in purgeStatus (and `purge --wait`). Official clients never do.
OBSERVER_HEADER = "x-purgecache-observer"
SPELLING_ENCODED = "%2F"
SPELLING_SLASH = "slash"
MAX_USER_AGENT_KEPT = 512  # a longer User-Agent is kept cut to this many characters


class Provenance(NamedTuple):  # a named tuple: made on every purge, cheaper than a dataclass
    """Who asked for a purge, how and why: what the history keeps beside the purge itself
    (in the history table's column order)."""

    endpoint: str  # `purgeCache` (v1), `createPurge` or `createSelectorPurge`
    client_id: str | None = None  # None: an anonymous caller
    source_ip: str | None = None
    signed_spelling: str | None = None  # SPELLING_ENCODED, SPELLING_SLASH, None: not signed
    user_agent: str | None = None
    reason: str | None = None  # createPurge only
    link: str | None = None  # createPurge only
    selector_pool_pattern: str | None = None  # createSelectorPurge: the selector applied
    selector_cache_pattern: str | None = None


# Why a purge stopped being served: every active worker applied it, its retention (or
# maximum age) passed, a newer purge of the same pool and cache replaced it, or it was
# cancelled.
CONVERGED = "converged"
EXPIRED = "expired"
SUPERSEDED = "superseded"
CANCELLED = "cancelled"
END_REASONS = (CONVERGED, EXPIRED, SUPERSEDED, CANCELLED)


@dataclass(frozen=True, slots=True)
class PurgeEvent:
    """One accepted purge as the history keeps it (a re-purge is another event)."""

    worker_pool_id: str
    cache_name: str
    time: int  # ms since the epoch: the purge's `before`
    provenance: Provenance
    event_id: int = 0  # given by the database; 0 until stored
    ended: int | None = None  # when it stopped being served (None: still open, or unknown)
    end_reason: str | None = None  # one of END_REASONS
    until_applied: bool = False  # made with the until-applied policy (see PurgeRequest)

    def to_wire(self) -> dict[str, object]:
        """The event as the API sends it (absent facts are left out, the id too until the
        database gave one)."""
        origin = self.provenance
        wire: dict[str, object] = {"eventId": str(self.event_id)} if self.event_id else {}
        wire |= {
            "workerPoolId": self.worker_pool_id,
            "cacheName": self.cache_name,
            "time": format_time(self.time),
            "endpoint": origin.endpoint,
            "untilApplied": self.until_applied,
        }
        optional = {
            "clientId": origin.client_id,
            "sourceIp": origin.source_ip,
            "signedSpelling": origin.signed_spelling,
            "userAgent": origin.user_agent,
            "reason": origin.reason,
            "link": origin.link,
            "ended": None if self.ended is None else format_time(self.ended),
            "endReason": self.end_reason,
        }
        wire.update((key, value) for key, value in optional.items() if value is not None)
        if origin.selector_pool_pattern is not None:
            wire["selector"] = {
                "workerPoolPattern": origin.selector_pool_pattern,
                "cacheNamePattern": origin.selector_cache_pattern,
            }
        return wire


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    """Which purge events a history listing shows: every given condition holds."""

    worker_pool_id: str | None = None
    cache_name: str | None = None
    client_id: str | None = None
    since: int | None = None  # ms since the epoch, inclusive
    until: int | None = None  # ms since the epoch, exclusive


WORKER_PART_RE = re.compile(IDENTIFIER_PATTERN)  # a workerGroup or workerId (`.fullmatch`)


@dataclass(frozen=True, slots=True)
class CacheReceipt:
    """What a worker says it did about one cache name for the newest purge it honoured."""

    cache_name: str
    honoured_before: int  # ms, service clock: the newest purge `before` honoured
    instances_deleted: int  # copies deleted for that purge
    bytes_freed: int  # their size, as recorded when each was released
    oldest_deleted_age_ms: int | None  # the oldest deleted copy's age when it went
    failures: int  # copies that could not be deleted (retried)
    in_use: int  # copies in use: deleted on release


@dataclass(frozen=True, slots=True)
class CacheInventory:
    """What a worker holds of one cache name: copies, their recorded size, last use."""

    cache_name: str
    instances: int
    bytes: int  # as recorded when each copy was last released
    last_used: int | None  # ms, the worker's clock


@dataclass(frozen=True, slots=True)
class WorkerReport:
    """One `reportWorkerSync`: a worker's receipts for the caches of its pool, and its
    inventory (None: not reported, the stored one stays)."""

    worker_pool_id: str
    worker_group: str
    worker_id: str
    caches: tuple[CacheReceipt, ...]
    inventory: tuple[CacheInventory, ...] | None = None


_last_second: tuple[int, str] = (0, "1970-01-01T00:00:00.")  # the last second formatted


def format_time(ms: int) -> str:
    """ISO 8601 UTC with exactly three fractional digits and `Z`, as JavaScript prints dates.

    A purge formats its time twice (its entry, its audit line) and a busy second holds many
    purges: the text up to the second is kept for the last second asked for."""
    global _last_second
    seconds, milli = divmod(ms, 1000)
    last = _last_second
    if last[0] != seconds:
        t = time.gmtime(seconds)  # about twice as fast as datetime + strftime
        last = _last_second = (seconds, "%04d-%02d-%02dT%02d:%02d:%02d." % t[:6])  # noqa: UP031
    return f"{last[1]}{milli:03d}Z"


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime (sub-millisecond digits dropped)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * DAY_MS + delta.seconds * 1000 + delta.microseconds // 1000


_ISO_RE = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})"
    r"(?:[T ](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<frac>\d+))?)?"
    r"(?P<tz>Z|z|[+-]\d{2}:?\d{2})?)?"
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# JavaScript's Date.prototype.toString(): "Mon Oct 07 2019 15:46:01 GMT+0000 (Coordinated ...)".
_JS_STRING_RE = re.compile(
    r"(?:[A-Za-z]{3}\s+)?(?P<mon>[A-Za-z]{3})\s+(?P<d>\d{1,2})\s+(?P<y>\d{4})\s+"
    r"(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?\s+(?:GMT|UTC)(?P<tz>[+-]\d{4})?"
    r"(?:\s*\([^()]*\))?"
)


def _offset_minutes(tz: str | None) -> int:
    if tz is None or tz in ("Z", "z"):
        return 0
    digits = tz[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + int(digits[2:])
    return -minutes if tz[0] == "-" else minutes


def _build(
    year: int, month: int, day: int, hour: int, minute: int, second: int, ms: int, tz_min: int
) -> int:
    if hour == 24 and minute == 0 and second == 0 and ms == 0:
        base = datetime(year, month, day, tzinfo=UTC) + timedelta(days=1)
    else:
        base = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    return to_ms(base) + ms - tz_min * 60_000


def _parse_iso(text: str) -> int | None:
    m = _ISO_RE.fullmatch(text)
    if m is None:
        return None
    frac = (m["frac"] or "")[:3].ljust(3, "0")
    return _build(
        int(m["y"]),
        int(m["mo"]),
        int(m["d"]),
        int(m["h"] or 0),
        int(m["mi"] or 0),
        int(m["s"] or 0),
        int(frac),
        _offset_minutes(m["tz"]),
    )


def _parse_js_string(text: str) -> int | None:
    return _named_month(_JS_STRING_RE.fullmatch(text))


def _named_month(m: re.Match[str] | None) -> int | None:
    """The instant of a match with the groups mon (Jan ...), d, y, h, mi, s and tz."""
    if m is None or m["mon"].lower() not in _MONTHS:
        return None
    month = _MONTHS.index(m["mon"].lower()) + 1
    return _build(
        int(m["y"]),
        month,
        int(m["d"]),
        int(m["h"]),
        int(m["mi"]),
        int(m["s"] or 0),
        0,
        _offset_minutes(m["tz"]),
    )


def _parse_rfc2822(text: str) -> int | None:
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # "-0000" or no zone: JavaScript would use the server's zone, UTC
        moment = moment.replace(tzinfo=UTC)
    return to_ms(moment)


# RFC 2822's usual form only (4-digit year, numeric or GMT/UT/UTC zone, none meaning UTC).
_RFC2822_RE = re.compile(
    r"(?:[A-Za-z]{3},\s*)?(?P<d>\d{1,2})\s+(?P<mon>[A-Za-z]{3})\s+(?P<y>\d{4})\s+"
    r"(?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?(?:\s+(?:GMT|UTC?|(?P<tz>[+-]\d{4})))?"
)


def _parse_rfc2822_usual(text: str) -> int | None:
    return _named_month(_RFC2822_RE.fullmatch(text))


def parse_since(text: str) -> int:
    """Parse a `since` query value into ms since the epoch, or raise ValueError.

    Accepts the forms real clients send (spec api.md §3.5.2): ISO 8601 / RFC 3339 with or
    without offset and fraction, a bare date, JavaScript's `Date.toString()` form and RFC 2822.
    The epoch itself is rejected, as upstream's truthiness test does.
    """
    return _parse_with(text, (_parse_iso, _parse_js_string, _parse_rfc2822))


SINCE_FORMS = (
    "ISO 8601 (2026-05-01T12:30:00Z, 2026-05-01 12:30, 2026-05-01) or an age (2h, 30m, 3d)"
)


def parse_typed_since(text: str) -> int:
    """A `since` typed by a person (the CLI; the admin page's `parseSince` is its twin, and
    tests/data/since_cases.json holds both to one table), in ms since the epoch, or raise
    ValueError saying what is accepted. The service's own forms less RFC 2822's lenient
    readings, which take "May 1, 2026, 2:30:00 PM" for 02:30; times without an offset are UTC.
    Ages (`2h`) are `parse_duration`'s, read before this."""
    try:
        return _parse_with(text, (_parse_iso, _parse_js_string, _parse_rfc2822_usual))
    except ValueError:
        raise ValueError(f"{text!r} is not a time: use {SINCE_FORMS}") from None


def _parse_with(text: str, parsers: tuple[Callable[[str], int | None], ...]) -> int:
    value = text.strip()
    for parse in parsers:
        try:
            ms = parse(value)
        except (ValueError, OverflowError):
            ms = None
        if ms is not None:
            if ms == 0:
                raise ValueError("Invalid Date")
            return ms
    raise ValueError("Invalid Date")


_DURATION_RE = re.compile(r"\s*(\d+)\s*(ms|s|m|h|d|w)\s*")
_DURATION_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": DAY_MS, "w": 7 * DAY_MS}


def parse_duration(text: str, *, allow_zero: bool = False) -> int:
    """Parse `30d`, `12h`, `1h30m`, `90s`, `500ms` (units w d h m s ms) into milliseconds;
    `0s` only with `allow_zero`."""
    pos, total = 0, 0
    value = text.strip().lower()
    while pos < len(value):
        m = _DURATION_RE.match(value, pos)
        if m is None:
            break
        total += int(m[1]) * _DURATION_UNITS_MS[m[2]]
        pos = m.end()
    if not value or pos != len(value) or (total == 0 and not allow_zero):
        raise ValueError(f"invalid duration {text!r}: use e.g. 30d, 12h, 45m or 90s")
    return total
