"""Purges that last until applied, cancelling a purge, and how each purge ended (issue 16,
item 5), on a real server with SQLite and PostgreSQL: the expiry job (`purgecache expire`)
keeps an until-applied purge past the retention until the last active worker reports it,
ends it at the maximum age, falls back to the retention on a pool without active workers;
`cancelPurge` withdraws a purge; the history and the events (a webhook receiver) say why
each ended."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from purgecache.service import PurgeService
from purgecache.storage import open_storage
from test_selector_purges import missing

from conftest import ADMIN, CLIENTS_TOML, LiveServer, db_args, start_server
from hawk_signing import HawkAuth
from support.commands import run_cli
from support.event_receivers import WebhookReceiver

AGENT = ("agent", "agent-token-0123456789")  # reports, as the purgecache agent
GW = ("gw", "gw-token-0123456789")  # only fetches, as the official generic-worker
# Anonymous reads (this test's own looks at purgeRequests) are not counted as a worker's.
CLIENTS = CLIENTS_TOML.replace("::public/*", "::*") + "".join(
    f"""
[[clients]]
client_id = "{client}"
access_token = "{token}"
scopes = ["{scope}"]
"""
    for (client, token), scope in (
        (AGENT, "purge-cache:report::ua/*"),
        (GW, "purge-cache:purge-requests::ua/*"),
    )
)
SECRET = b"webhook-secret-0123456789"
LONG_AGO = "2026-01-01T00:00:00.000Z"
RETENTION_S = 1.0
# Every until-applied purge of the first test must still be open when its convergence is
# checked, past a cron `expire` (over a second to start, 3 s on a loaded machine) and a 1 s
# fetch batch: about 7 s on a heavily loaded machine, 3 s on an idle one.
MAX_AGE_S = 12.0


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver(SECRET)
    yield hook
    hook.close()


@pytest.fixture(params=["sqlite", "postgres"])
def live(
    request: pytest.FixtureRequest, tmp_path: Path, receiver: WebhookReceiver
) -> Iterator[LiveServer]:
    """A server keeping every purge until applied by default, with a 1 s retention, a 12 s
    maximum age and a webhook receiver for its events."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "test-clients.toml").write_text(CLIENTS)
    secret = tmp_path / "webhook.secret"
    secret.write_bytes(SECRET)
    database = db_args(request.param)
    server = start_server(
        data,
        *database,
        "--retention=1s",
        f"--until-applied-max-age={MAX_AGE_S:.0f}s",
        "--until-applied-default",
        "--cache-time=0s",
        f"--webhook={receiver.url}",
        f"--webhook-secret-file={secret}",
        "--event-retry-max=300ms",
    )
    server.db_url = database[1] if database else f"sqlite:///{server.db_path}"  # type: ignore[attr-defined]
    yield server
    server.stop()


def api(live: LiveServer, method: str, path: str, creds: Any = ADMIN, **kw: Any) -> httpx.Response:
    auth = None if creds is None else HawkAuth(*creds)
    return httpx.request(method, f"{live.api}/{path}", auth=auth, timeout=10, **kw)


def create_purge(live: LiveServer, pool: str, cache: str, **policy: bool) -> str:
    """Purge through `createPurge` (an explicit policy, if given); the purge's `before`."""
    body: dict[str, object] = {"cacheName": cache}
    if "untilApplied" in policy:
        body["untilApplied"] = policy["untilApplied"]
    answer = api(live, "POST", f"ext/purge/{pool.replace('/', '%2F')}", json=body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["time"])


def v1_purge(live: LiveServer, pool: str, cache: str) -> str:
    """Purge through v1 `purgeCache` (wire unchanged: 204); the purge's `before`."""
    answer = api(live, "POST", f"purge-cache/{pool.replace('/', '%2F')}", json={"cacheName": cache})
    assert (answer.status_code, answer.content) == (204, b"")
    return history(live, pool, cache)[0]["time"]


def report(live: LiveServer, pool: str, worker: str, honoured: dict[str, str]) -> None:
    """`reportWorkerSync` as the agent of `worker`: per cache, the `before` it honoured."""
    caches = [
        {"cacheName": name, "honouredBefore": before, "instancesDeleted": 1, "bytesFreed": 10}
        | {"failures": 0, "inUse": 0}
        for name, before in honoured.items()
    ]
    body = {"workerGroup": "local", "workerId": worker, "caches": caches}
    answer = api(live, "POST", f"ext/report/{pool.replace('/', '%2F')}", AGENT, json=body)
    assert answer.status_code == 204, answer.text


def open_caches(live: LiveServer, pool: str, creds: Any = None) -> list[str]:
    """The cache names v1 `purgeRequests` serves the pool's workers (to `creds`)."""
    answer = api(live, "GET", f"purge-cache/{pool.replace('/', '%2F')}", creds)
    assert answer.status_code == 200, answer.text
    return [entry["cacheName"] for entry in answer.json()["requests"]]


def history(live: LiveServer, pool: str, cache: str) -> list[dict[str, Any]]:
    query = {"workerPoolId": pool, "cacheName": cache}
    answer = api(live, "GET", "ext/history", params=query)
    assert answer.status_code == 200, answer.text
    events: list[dict[str, Any]] = answer.json()["events"]
    return events


def status(live: LiveServer, pool: str, cache: str) -> dict[str, Any]:
    """The cache's open purge as `purgeStatus` tallies it."""
    answer = api(live, "GET", f"ext/status/{pool.replace('/', '%2F')}", params={"cacheName": cache})
    assert answer.status_code == 200, answer.text
    purge: dict[str, Any] = answer.json()["purges"][0]
    return purge


def not_seen(live: LiveServer, pool: str, cache: str) -> int:
    """How many active workers `purgeStatus` counts as not having seen the cache's purge."""
    return int(status(live, pool, cache)["notSeen"])


def ended(live: LiveServer, pool: str, cache: str) -> str | None:
    """Why the latest purge of the cache ended (None: open)."""
    reason: str | None = history(live, pool, cache)[0].get("endReason")
    return reason


def expire(live: LiveServer, cron: bool = False) -> None:
    """One run of the expiry job: as cron runs it (`purgecache expire`), or in this process
    as the service runs it (the command takes over a second to start)."""
    db_url: str = live.db_url  # type: ignore[attr-defined]
    if cron:
        result = run_cli("expire", "--db", db_url, "--activity-window=1h")
        assert result.returncode == 0, result.stderr
        return

    async def run() -> None:
        service = PurgeService(open_storage(db_url), retention_ms=1000, activity_window_ms=3600_000)
        try:
            assert await service.expire() is not None
            await service.settle()
        finally:
            await service.close()

    asyncio.run(run())


def as_admin(live: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    """A `purgecache` client command with the admin's credentials."""
    credentials = {"TASKCLUSTER_CLIENT_ID": ADMIN[0], "TASKCLUSTER_ACCESS_TOKEN": ADMIN[1]}
    return run_cli(*args, env={"TASKCLUSTER_ROOT_URL": live.root_url, **credentials})


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def sent(receiver: WebhookReceiver, kind: str, cache: str) -> list[dict[str, Any]]:
    return [e for e in receiver.events if e["event"] == kind and e["cacheName"] == cache]


def cancelled_event(receiver: WebhookReceiver, cache: str) -> tuple[str, str, str]:
    """The `before`, client id and reason of the cache's one `purge.cancelled` event."""
    wait_for(lambda: len(sent(receiver, "purge.cancelled", cache)) == 1)
    (event,) = sent(receiver, "purge.cancelled", cache)
    return event["before"], event["clientId"], event["reason"]


def test_a_purge_kept_until_applied_outlives_the_retention_until_the_last_worker_reports(
    live: LiveServer, receiver: WebhookReceiver
) -> None:
    """With the default on, a v1 purge stays served past the 1 s retention while an active
    worker has not applied it (a reporting one: by receipt; a fetch-only client id: until it
    fetched it), and ends (converged, one `purge.converged`) once the last one did; a purge
    made with `untilApplied: false` expires at the retention; one nobody applies ends at the
    maximum age; on a pool without active workers the retention applies."""
    pool, idle = "ua/pool", "ua/idle"
    report(live, pool, "w1", {"kept": LONG_AGO})  # three active workers
    report(live, pool, "w2", {"kept": LONG_AGO})
    assert open_caches(live, pool, GW) == []
    kept = v1_purge(live, pool, "kept")
    create_purge(live, pool, "normal", untilApplied=False)
    # Looked at at once: served for the 1 s retention only, it may be gone a few calls later
    # on a slow machine.
    assert "untilApplied" not in status(live, pool, "normal")
    aged = create_purge(live, pool, "aged", untilApplied=True)
    aged_at = time.monotonic()  # its maximum age runs from about now
    create_purge(live, idle, "alone")
    made = time.monotonic()  # the last purge whose retention must pass, made by now
    report(live, pool, "w1", {"kept": kept, "aged": aged})
    assert status(live, pool, "kept")["untilApplied"] is True  # the service's default

    time.sleep(max(0.0, made + RETENTION_S + 0.2 - time.monotonic()))
    expire(live, cron=True)
    assert open_caches(live, pool) == ["aged", "kept"]  # w2 applied neither
    assert (ended(live, pool, "normal"), ended(live, pool, "kept")) == ("expired", None)
    assert ended(live, idle, "alone") == "expired"  # no active worker: the retention applies

    report(live, pool, "w2", {"kept": kept})
    expire(live)
    assert "kept" in open_caches(live, pool)  # generic-worker has not fetched it yet
    assert open_caches(live, pool, GW) == ["aged", "kept"]
    wait_for(lambda: not_seen(live, pool, "kept") == 0)  # its fetch is written (1 s batches)
    expire(live)
    assert "kept" not in open_caches(live, pool)
    assert ended(live, pool, "kept") == "converged"
    expire(live)  # another run sends nothing new
    wait_for(lambda: len(sent(receiver, "purge.converged", "kept")) == 1)
    converged = sent(receiver, "purge.converged", "kept")[0]
    assert (converged["before"], converged["activeWorkers"]) == (kept, 3)

    time.sleep(max(0.0, aged_at + MAX_AGE_S + 0.1 - time.monotonic()))
    expire(live)
    assert open_caches(live, pool) == []
    assert ended(live, pool, "aged") == "expired"
    assert sent(receiver, "purge.converged", "aged") == []
    wait_for(lambda: len(sent(receiver, "purge.expired", "aged")) == 1)


def test_cancel_withdraws_the_purge_and_the_history_says_so(
    live: LiveServer, receiver: WebhookReceiver
) -> None:
    """`purge --no-until-applied` overrides the service's default; `purgecache cancel`
    removes the open purge from v1 `purgeRequests` and leaves the pool's others, the history
    says `cancelled` (and `superseded` for the purge a re-purge replaced), `purge.cancelled`
    carries who and why; cancelling again is a 404 (exit 1)."""
    pool = "ua/cancel"
    normal = as_admin(live, "purge", "ua/normal", "cli", "--no-until-applied")
    assert normal.returncode == 0, normal.stderr
    assert "untilApplied" not in status(live, "ua/normal", "cli")  # the default is overridden
    # The bystander keeps the default policy: served for the 12 s maximum age, not the 1 s
    # retention, so a slow machine cannot expire it before the check below.
    create_purge(live, pool, "keep")
    first = create_purge(live, pool, "oops")
    second = create_purge(live, pool, "oops")
    done = as_admin(live, "cancel", pool, "oops", "--reason", "wrong pool")
    assert done.returncode == 0, done.stderr
    assert f"cancelled the purge of oops on {pool} made {second}" in done.stdout
    assert open_caches(live, pool) == ["keep"]
    newest, older = history(live, pool, "oops")
    assert (older["time"], older["endReason"], older["ended"]) == (first, "superseded", second)
    assert (newest["time"], newest["endReason"]) == (second, "cancelled")
    shown = as_admin(live, "history", pool)
    assert "cancelled" in shown.stdout and "superseded" in shown.stdout, shown.stdout

    again = as_admin(live, "cancel", pool, "oops")
    assert again.returncode == 1
    assert "404 ResourceNotFound: No open purge request of cache oops" in again.stderr, again.stderr
    assert cancelled_event(receiver, "oops") == (second, "admin", "wrong pool")


def apply_selector(live: LiveServer, pool_pattern: str, cache_pattern: str, **policy: bool) -> str:
    """Apply a selector (an explicit policy, if given); the purges' `before`."""
    body = {"workerPoolPattern": pool_pattern, "cacheNamePattern": cache_pattern, **policy}
    answer = api(live, "POST", "ext/selector-purge", json=body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["before"])


def served_selectors(live: LiveServer, pool: str) -> list[str]:
    """The cache-name patterns of the selectors `listPoolSelectors` serves the pool's agents."""
    answer = api(live, "GET", f"ext/selectors/{pool.replace('/', '%2F')}")
    assert answer.status_code == 200, answer.text
    return sorted(selector["cacheNamePattern"] for selector in answer.json()["selectors"])


def test_a_selector_purge_is_kept_until_applied_and_never_shortens_one(
    live: LiveServer, receiver: WebhookReceiver
) -> None:
    """A selector applied under the service's default keeps its pairs' purges past the 1 s
    retention, and is served to agents meanwhile, until the active worker reports them
    (converged, the history naming the selector); one applied with `untilApplied: false`
    expires its new pair at the retention but leaves a pair already kept until applied so."""
    pool = "ua/sel"
    report(live, pool, "w1", {"x": LONG_AGO})  # one active worker
    create_purge(live, pool, "a-keep")  # kept until applied (the default)
    create_purge(live, pool, "a-plain", untilApplied=False)
    create_purge(live, pool, "b-default", untilApplied=False)
    plain = apply_selector(live, pool, "a-*", untilApplied=False)
    default = apply_selector(live, pool, "b-*")
    # The retention of the last purges written (the selectors') runs from no later than now;
    # timed from before the calls, a loaded machine checked before `a-plain` (re-purged by
    # the selector) was past it.
    made = time.monotonic()
    assert status(live, pool, "a-keep")["untilApplied"] is True  # not shortened
    assert "untilApplied" not in status(live, pool, "a-plain")
    assert status(live, pool, "b-default")["untilApplied"] is True

    time.sleep(max(0.0, made + RETENTION_S + 0.2 - time.monotonic()))
    expire(live)
    assert open_caches(live, pool) == ["a-keep", "b-default"]
    assert ended(live, pool, "a-plain") == "expired"
    assert served_selectors(live, pool) == ["b-*"]  # served as long as its purges may be

    report(live, pool, "w1", {"a-keep": plain, "b-default": default})
    expire(live)
    assert open_caches(live, pool) == []
    (event, *_) = history(live, pool, "b-default")
    assert (event["time"], event["endReason"]) == (default, "converged")
    assert event["selector"] == {"workerPoolPattern": pool, "cacheNamePattern": "b-*"}
    wait_for(lambda: len(sent(receiver, "purge.converged", "b-default")) == 1)


def test_cancelling_a_selector_withdraws_it_and_the_purges_it_wrote(
    live: LiveServer, receiver: WebhookReceiver
) -> None:
    """`purgecache cancel --match` (cancelSelectorPurge): agents are no longer served the
    selector, the open purge it wrote goes (not the pair purged by name since), recorded
    `cancelled` with a `purge.cancelled` carrying who and why; a caller without the scopes
    gets a 403 naming the read and selector scopes and no cache; again, a 404 (exit 1)."""
    pool = "ua/csel"
    create_purge(live, pool, "c-1")
    create_purge(live, pool, "c-2")
    before = apply_selector(live, pool, "c-*")
    create_purge(live, pool, "c-2")  # purged again by name: not the selector's to withdraw
    assert served_selectors(live, pool) == ["c-*"]
    body = {"workerPoolPattern": pool, "cacheNamePattern": "c-*"}
    refused = api(live, "POST", "ext/selector-cancel", AGENT, json=body)
    assert refused.status_code == 403, refused.text
    assert missing(refused.json()) == ["purge-cache:history::ua/csel", "purge-cache:ua/csel:c-*"]

    done = as_admin(live, "cancel", "--match", pool, "c-*", "--reason", "wrong selector")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"cancelled the selector {pool} c-* applied {before}; withdrew 1 purges\n  {pool}  c-1\n"
    )
    assert served_selectors(live, pool) == []
    assert open_caches(live, pool) == ["c-2"]
    (event, _) = history(live, pool, "c-1")
    assert (event["time"], event["endReason"]) == (before, "cancelled")
    assert cancelled_event(receiver, "c-1") == (before, "admin", "wrong selector")
    again = as_admin(live, "cancel", "--match", pool, "c-*")
    assert again.returncode == 1
    assert "404 ResourceNotFound: No open selector ua/csel c-*" in again.stderr, again.stderr


def policies(live: LiveServer, pool: str, cache: str) -> list[bool]:
    """The until-applied policy of each purge of the cache in the history, newest first."""
    return [event["untilApplied"] for event in history(live, pool, cache)]


def test_the_history_records_the_policy_each_purge_was_made_with(live: LiveServer) -> None:
    """Under the service's default, a v1 purge, a `createPurge` without a policy and a
    selector's new pairs are recorded kept until applied; `untilApplied: false` is recorded
    as it was asked, but for a selector's pair already kept until applied, which stays so;
    `purgecache history` says so too (its table and its JSON lines)."""
    pool = "ua/hist"
    v1_purge(live, pool, "v1")
    create_purge(live, pool, "asked")
    create_purge(live, pool, "asked", untilApplied=False)
    create_purge(live, pool, "p-new", untilApplied=False)
    apply_selector(live, pool, "p-*")
    create_purge(live, pool, "q-kept")
    apply_selector(live, pool, "q-*", untilApplied=False)
    assert policies(live, pool, "v1") == [True]
    assert policies(live, pool, "asked") == [False, True]
    assert policies(live, pool, "p-new") == [True, False]
    assert policies(live, pool, "q-kept") == [True, True]  # kept already: never shortened

    shown = as_admin(live, "history", pool, "--cache", "asked")
    assert shown.returncode == 0, shown.stderr
    newest, older = shown.stdout.splitlines()[1:]
    assert "until-applied" in older and "until-applied" not in newest, shown.stdout
    lines = as_admin(live, "history", pool, "--cache", "asked", "--json").stdout.splitlines()
    assert [json.loads(line)["untilApplied"] for line in lines] == [False, True]
