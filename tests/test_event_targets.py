"""Event targets end to end: a purge the service accepts while its targets are still being
registered has its event all the same (the write waits for the registration), and replicas
configured with different targets keep each other's (the later one warns)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from purgecache.storage.postgres import PostgresStorage
from test_events import SECRET, purge, wait_for

import pg
from conftest import ADMIN, db_args, log_records, start_server
from hawk_signing import HawkAuth
from support.event_receivers import WebhookReceiver

POOL = "ev-p/linux"


@pytest.fixture
def hooks() -> Iterator[tuple[WebhookReceiver, WebhookReceiver]]:
    """Two webhook receivers on loopback."""
    first, second = WebhookReceiver(SECRET), WebhookReceiver(SECRET)
    yield first, second
    first.close()
    second.close()


def webhook_args(tmp_path: Path, receiver: WebhookReceiver) -> list[str]:
    secret = tmp_path / "webhook.secret"
    secret.write_bytes(SECRET)
    return [f"--webhook={receiver.url}", f"--webhook-secret-file={secret}"]


def caches(receiver: WebhookReceiver) -> list[str]:
    return sorted(event["cacheName"] for event in receiver.events)


def test_a_purge_accepted_while_the_targets_are_registered_has_its_event(
    tmp_path: Path, hooks: tuple[WebhookReceiver, WebhookReceiver]
) -> None:
    """On a database where no target is registered yet, with the registration held up (a lock
    on the targets table), start-up waits a little and then serves; a purge sent meanwhile
    waits for the registration instead of being stored without its event, and is delivered
    once the lock goes."""
    receiver = hooks[0]
    url = pg.create_database()
    asyncio.run(_upgrade(url))
    with psycopg.connect(url) as locker:
        locker.execute("LOCK TABLE event_targets IN SHARE MODE")  # until the commit
        live = start_server(tmp_path / "data", "--db", url, *webhook_args(tmp_path, receiver))
        try:
            answers: list[int] = []
            early = threading.Thread(target=lambda: answers.append(_purge(live.api, "early")))
            early.start()
            early.join(1.0)
            (slow,) = {str(r["error"]) for r in log_records(live, "event-targets-failed")}
            assert slow == "not registered within 5 s"
            locker.commit()
            early.join(10)
            assert answers == [204]
            purge(live, "late")
            wait_for(lambda: "late" in caches(receiver))
            assert caches(receiver) == ["early", "late"]
        finally:
            live.stop()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_replicas_with_different_webhooks_keep_each_others_targets(
    backend: str, tmp_path: Path, hooks: tuple[WebhookReceiver, WebhookReceiver]
) -> None:
    """Two replicas on one database, each with its own webhook: the second one's start-up
    leaves the first one's target registered (and logs a warning naming it), so a purge sent
    to either reaches both receivers."""
    database = db_args(backend)
    first = start_server(tmp_path / "data", *database, *webhook_args(tmp_path, hooks[0]))
    try:
        second = start_server(tmp_path / "data", *database, *webhook_args(tmp_path, hooks[1]))
        try:
            purge(first, "via-first")
            purge(second, "via-second")
            wait_for(lambda: all(caches(hook) == ["via-first", "via-second"] for hook in hooks))
            warnings = {str(r["targets"]) for r in log_records(second, "event-targets-not-ours")}
            assert warnings == {str([f"webhook:{hooks[0].url}"])}
        finally:
            second.stop()
    finally:  # also when the second fails to start
        first.stop()


async def _upgrade(url: str) -> None:
    storage = PostgresStorage(url)
    await storage.upgrade()
    await storage.close()


def _purge(api: str, cache: str) -> int:
    pool = POOL.replace("/", "%2F")
    answer = httpx.post(
        f"{api}/purge-cache/{pool}", json={"cacheName": cache}, auth=HawkAuth(*ADMIN), timeout=15
    )
    return answer.status_code
