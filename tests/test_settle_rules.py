"""The convergence sweep's rules (no I/O): when a purge counts as applied everywhere, when
`purge.converged` is sent, and when a purge kept until applied may go."""

from __future__ import annotations

import pytest

from purgecache.convergence import applied_everywhere, settle
from purgecache.model import PurgeRequest
from purgecache.storage.fetches import PurgeTally

NOW = 1_900_000_000_000
NORMAL = PurgeRequest("p/w", "c", NOW - 50, NOW + 50)
UNTIL_APPLIED = PurgeRequest("p/w", "c", NOW - 50, NOW + 900, NOW - 10)  # past its retention
NOT_YET = PurgeRequest("p/w", "c", NOW - 50, NOW + 900, NOW + 10)  # within its retention


def tally(reporters: int, applied: int, fetchers: int = 0, served: int = 0) -> PurgeTally:
    return PurgeTally((reporters, applied, 0, 0, 0, 0), [], (fetchers, served), [])


@pytest.mark.parametrize(
    ("counts", "everywhere"),
    [
        ((0, 0, 0, 0), None),  # no active worker
        ((2, 2), True),
        ((2, 1), False),
        ((1, 1, 2, 1), False),  # a fetch-only client id was not served the purge
        ((1, 1, 2, 2), True),  # fetch-only client ids count once served it
        ((0, 0, 1, 1), True),
    ],
)
def test_applied_everywhere_counts_receipts_and_fetches(
    counts: tuple[int, ...], everywhere: bool | None
) -> None:
    """Every active worker applied it: reporters by receipt, fetch-only client ids by having
    been served it; None without any active worker."""
    assert applied_everywhere(tally(*counts)) is everywhere


@pytest.mark.parametrize(
    ("purge", "converged", "counts", "event", "end"),
    [
        (NORMAL, False, (2, 2), True, None),  # converged: sent once, the purge stays
        (NORMAL, True, (2, 2), False, None),  # already sent
        (NORMAL, False, (2, 1), False, None),
        (NORMAL, False, (0, 0), False, None),  # the retention ends it, not the sweep
        (NOT_YET, False, (2, 2), True, None),  # within its retention it stays
        (UNTIL_APPLIED, False, (2, 1), False, None),  # kept: a worker has not applied it
        (UNTIL_APPLIED, False, (2, 2), True, "converged"),
        (UNTIL_APPLIED, True, (2, 2), False, "converged"),
        (UNTIL_APPLIED, False, (0, 0), False, "expired"),  # no active worker: the retention
    ],
)
def test_the_sweep_sends_converged_once_and_ends_until_applied_purges(
    purge: PurgeRequest,
    converged: bool,
    counts: tuple[int, int],
    event: bool,
    end: str | None,
) -> None:
    """`purge.converged` the first time a purge is applied everywhere; a purge kept until
    applied goes past its retention once applied everywhere, or when nobody is active."""
    decided = settle(purge, converged, tally(*counts), NOW)
    if not event and end is None:
        assert decided is None
        return
    assert decided is not None
    assert (decided.converged is not None, decided.end) == (event, end)
    if decided.converged is not None:
        assert decided.converged.kind == "purge.converged"
