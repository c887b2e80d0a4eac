"""When and how long to wait before trying a request again (api.md §12)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import httpx

# Failures that may pass: the network, a timeout, a connection the server dropped. Not
# retried: a malformed URL or an unsupported scheme (they fail the same way every time).
RETRYABLE_TRANSPORT_ERRORS = (httpx.NetworkError, httpx.TimeoutException, httpx.ProtocolError)


@dataclass(frozen=True, slots=True)
class Retries:
    """Retry connection failures and 5xx answers, never 4xx, with exponential back-off.

    The wait before retry `n` (1-based) is `base_delay * 2**(n-1)`, randomised by
    ±`jitter` (a fraction) and capped at `max_delay` seconds; a `Retry-After` answer
    header lengthens it up to that cap. The defaults are the official clients': 5 retries
    (6 attempts), 0.1 s, ±25 %, 30 s. `Retries(max_retries=0)` turns retrying off.
    """

    max_retries: int = 5
    base_delay: float = 0.1
    max_delay: float = 30.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("max_retries, base_delay and max_delay cannot be negative")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter is a fraction between 0 and 1")

    def delay(
        self,
        retry: int,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait before retry number `retry` (1 for the first retry)."""
        delay = self.base_delay * 2.0 ** (retry - 1)
        delay *= 1 + self.jitter * (rand() * 2 - 1)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, self.max_delay)


def retry_after(response: httpx.Response) -> float | None:
    """The `Retry-After` header in seconds, when it is a plain number."""
    value = response.headers.get("retry-after", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(seconds, 0.0) if math.isfinite(seconds) else None
