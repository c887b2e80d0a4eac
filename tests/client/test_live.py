"""Both clients (sync and async, the same scenarios) against the real service: every endpoint,
pagination, `since`, errors, temporary credentials, authorizedScopes and signed URLs."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from client.conftest import ADMIN_CREDENTIALS, MakeClient
from purgecache.client import (
    AuthenticationFailed,
    ConfigurationError,
    Credentials,
    InsufficientScopes,
    OpenAllPurgeRequestsList,
    OpenPurgeRequestList,
    Ping,
    PurgeCacheRequestsEntry,
    RequestRejected,
    Version,
    create_temporary_credentials,
)

from conftest import LIMITED, READER, LiveServer, db_args

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def plain() -> Iterator[httpx.Client]:
    """A plain HTTP client: no credentials, no retries."""
    with httpx.Client(timeout=10) as http:
        yield http


def an_hour_from_now() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


def test_monitoring_endpoints_answer_with_typed_results(make_client: MakeClient) -> None:
    """ping, heartbeat, lbheartbeat and version all answer, without credentials too."""
    client = make_client(None)
    ping = client.ping()
    assert isinstance(ping, Ping) and ping.alive and ping.uptime > 0
    assert dict(client.heartbeat()) == {}
    assert dict(client.lbheartbeat()) == {}
    assert isinstance(client.version(), Version)


def test_purge_then_purge_requests_lists_the_caches(make_client: MakeClient, pool: str) -> None:
    """Purged caches come back sorted by name, `before` an aware UTC time of the purge."""
    client = make_client()
    started = datetime.now(UTC) - timedelta(milliseconds=1)
    assert client.purge_cache(pool, "sccache") is None
    client.purge_cache(pool, "checkouts")
    answer = client.purge_requests(pool)
    assert isinstance(answer, OpenPurgeRequestList)
    assert [entry.cache_name for entry in answer.requests] == ["checkouts", "sccache"]
    for entry in answer.requests:
        assert isinstance(entry, PurgeCacheRequestsEntry)
        assert entry.worker_pool_id == pool
        assert entry.before.tzinfo is UTC
        assert started <= entry.before <= datetime.now(UTC)


def test_repurge_moves_before(make_client: MakeClient, pool: str) -> None:
    """Purging a cache again gives one entry with a later `before`."""
    client = make_client()
    client.purge_cache(pool, "c")
    (first,) = client.purge_requests(pool).requests
    time.sleep(0.005)
    client.purge_cache(pool, "c")
    (second,) = client.purge_requests(pool).requests
    assert second.before > first.before


def test_since_accepts_datetimes_and_strings(make_client: MakeClient, pool: str) -> None:
    """`since` is inclusive, as a datetime or as the API's text; a later time gives nothing."""
    client = make_client()
    client.purge_cache(pool, "a")
    (entry,) = client.purge_requests(pool).requests
    assert client.purge_requests(pool, since=entry.before).requests == (entry,)
    assert client.purge_requests(pool, since=entry.to_json()["before"]).requests == (entry,)
    later = entry.before + timedelta(milliseconds=1)
    assert client.purge_requests(pool, since=later).requests == ()
    assert client.purge_requests(pool, since="2000-01-01").requests == (entry,)


def test_naive_since_is_refused_before_sending(make_client: MakeClient, pool: str) -> None:
    """A datetime without a time zone is ambiguous: ValueError, nothing sent."""
    with pytest.raises(ValueError, match="naive"):
        make_client().purge_requests(pool, since=datetime(2026, 1, 1))


def test_unknown_pool_has_no_requests(make_client: MakeClient, pool: str) -> None:
    """A pool nobody purged answers an empty list, not an error."""
    assert make_client().purge_requests(pool).requests == ()


def test_all_purge_requests_pages_walk_every_page(
    make_client: MakeClient, server: LiveServer, server_factory: Callable[..., LiveServer]
) -> None:
    """On an empty server, 5 purges in pages of 2: three pages, tokens, the last without."""
    fresh = server_factory(*db_args(server.backend))
    client = make_client(root_url=fresh.root_url)
    assert client.all_purge_requests() == OpenAllPurgeRequestsList((), None)
    names = [f"cache-{i}" for i in range(5)]
    for name in names:
        client.purge_cache("pages/linux", name)
    pages = list(client.all_purge_requests_pages(limit=2))
    assert [len(page.requests) for page in pages] == [2, 2, 1]
    assert [page.continuation_token is None for page in pages] == [False, False, True]
    assert [e.cache_name for page in pages for e in page.requests] == names
    everything = client.all_purge_requests()
    assert [e.cache_name for e in everything.requests] == names
    second = client.all_purge_requests(pages[0].continuation_token, 2)
    assert second == pages[1]


def test_error_carries_status_code_message_and_request_id(make_client: MakeClient) -> None:
    """A 400 is RequestRejected with Taskcluster's code, full message, request id."""
    with pytest.raises(RequestRejected) as caught:
        make_client().purge_requests("not-a-pool")
    error = caught.value
    assert (error.status, error.code) == (400, "InvalidRequestArguments")
    assert error.endpoint == "purgeRequests"
    assert "not-a-pool" in error.message
    assert "* errorCode:  InvalidRequestArguments" in error.message
    assert error.request_id is not None and UUID.fullmatch(error.request_id)
    assert isinstance(error.body, dict) and set(error.body) == {"code", "message", "requestInfo"}
    assert "\n" not in str(error) and str(error).startswith("purgeRequests: 400 InvalidRequest")


def test_wrong_access_token_is_authentication_failed(make_client: MakeClient, pool: str) -> None:
    """A bad MAC is a 401 AuthenticationFailed, never retried into anything else."""
    with pytest.raises(AuthenticationFailed) as caught:
        make_client(Credentials("admin", "not-the-token")).purge_cache(pool, "c")
    assert (caught.value.status, caught.value.code) == (401, "AuthenticationFailed")
    assert "Bad mac" in caught.value.message


def test_scopes_decide_what_a_client_may_purge(make_client: MakeClient) -> None:
    """`limited` may purge proj-a/linux cache-1 and nothing else (403 InsufficientScopes)."""
    client = make_client(Credentials(*LIMITED))
    client.purge_cache("proj-a/linux", "cache-1")
    with pytest.raises(InsufficientScopes) as caught:
        client.purge_cache("proj-a/linux", "cache-2")
    assert caught.value.status == 403
    assert "purge-cache:proj-a/linux:cache-2" in str(caught.value)


def test_anonymous_client_reads_what_anonymous_scopes_allow(make_client: MakeClient) -> None:
    """Without credentials: public/* pools are readable, the full listing is not."""
    client = make_client(None)
    assert client.purge_requests("public/linux").requests == ()
    with pytest.raises(InsufficientScopes):
        client.all_purge_requests()


def test_reader_reads_but_cannot_purge(make_client: MakeClient, pool: str) -> None:
    """A read-only client lists everything and gets 403 on purge."""
    client = make_client(Credentials(*READER))
    client.all_purge_requests(limit=1)
    with pytest.raises(InsufficientScopes):
        client.purge_cache(pool, "c")


@pytest.mark.parametrize("name", [None, "project-a/temp-1"], ids=["unnamed", "named"])
def test_temporary_credentials_are_accepted_within_their_scopes(
    make_client: MakeClient, pool: str, name: str | None
) -> None:
    """Minted temporary credentials purge inside their scopes and get 403 outside them."""
    temporary = create_temporary_credentials(
        ADMIN_CREDENTIALS, [f"purge-cache:{pool}:*"], expiry=an_hour_from_now(), name=name
    )
    assert temporary.client_id == (name or "admin")
    client = make_client(temporary)
    client.purge_cache(pool, "from-temp")
    with pytest.raises(InsufficientScopes) as caught:
        client.purge_cache("proj-z/linux", "c")
    assert f"Client ID {temporary.client_id} " in caught.value.message


def test_expired_temporary_credentials_are_rejected(make_client: MakeClient, pool: str) -> None:
    """Credentials that expired (beyond the 5 minute grace) give 401."""
    now = datetime.now(UTC)
    temporary = create_temporary_credentials(
        ADMIN_CREDENTIALS, ["*"], start=now - timedelta(hours=2), expiry=now - timedelta(hours=1)
    )
    with pytest.raises(AuthenticationFailed, match=r"expiry < now"):
        make_client(temporary).purge_cache(pool, "c")


def test_temporary_credentials_of_a_non_issuer_are_rejected(
    make_client: MakeClient, pool: str
) -> None:
    """A certificate for scopes its issuer does not hold is refused (401)."""
    temporary = create_temporary_credentials(
        Credentials(*LIMITED), ["purge-cache:*"], expiry=an_hour_from_now()
    )
    with pytest.raises(AuthenticationFailed, match="doesn't satisfy all certificate scopes"):
        make_client(temporary).purge_cache(pool, "c")


def test_authorized_scopes_narrow_every_request(make_client: MakeClient, pool: str) -> None:
    """With authorized_scopes the admin may do only that; beyond held scopes is 401."""
    narrowed = make_client(authorized_scopes=[f"purge-cache:{pool}:allowed"])
    narrowed.purge_cache(pool, "allowed")
    with pytest.raises(InsufficientScopes):
        narrowed.purge_cache(pool, "other")
    greedy = make_client(Credentials(*LIMITED), authorized_scopes=["purge-cache:*"])
    with pytest.raises(AuthenticationFailed, match="do not satisfy authorizedScopes"):
        greedy.purge_cache(pool, "c")


def test_authorized_scopes_combine_with_temporary_credentials(
    make_client: MakeClient, pool: str
) -> None:
    """Temporary credentials narrowed further by authorized_scopes are still accepted."""
    temporary = create_temporary_credentials(
        ADMIN_CREDENTIALS, ["purge-cache:*"], expiry=an_hour_from_now()
    )
    client = make_client(temporary, authorized_scopes=[f"purge-cache:{pool}:one"])
    client.purge_cache(pool, "one")
    with pytest.raises(InsufficientScopes):
        client.purge_cache(pool, "two")


def test_signed_urls_work_without_credentials(
    make_client: MakeClient, plain: httpx.Client, pool: str
) -> None:
    """Signed URLs of purge_requests (with since) and all_purge_requests answer a plain GET."""
    client = make_client()
    client.purge_cache(pool, "signed")
    expected = client.purge_requests(pool).to_json()
    url = client.signed_url("purge_requests", pool, expires_in=60)
    assert plain.get(url).json() == expected
    since_url = client.signed_url("purge_requests", pool, since="2000-01-01T00:00:00Z")
    assert plain.get(since_url).json() == expected
    listing = plain.get(client.signed_url("all_purge_requests", limit=1))
    assert listing.status_code == 200 and len(listing.json()["requests"]) == 1
    assert plain.get(client.signed_url("ping")).json()["alive"] is True


def test_signed_urls_carry_their_limits(
    make_client: MakeClient, plain: httpx.Client, pool: str
) -> None:
    """An expired signed URL is 401; one signed by a client lacking the scope is 403."""
    expired = make_client().signed_url("purge_requests", pool, expires_in=-5)
    assert plain.get(expired).status_code == 401
    limited = make_client(Credentials(*LIMITED)).signed_url("all_purge_requests")
    assert plain.get(limited).status_code == 403


def test_signed_urls_of_temporary_narrowed_credentials(
    make_client: MakeClient, plain: httpx.Client, pool: str
) -> None:
    """A bewit carries the certificate and authorizedScopes in its ext."""
    temporary = create_temporary_credentials(
        ADMIN_CREDENTIALS, ["purge-cache:*"], expiry=an_hour_from_now(), name="signer/1"
    )
    client = make_client(temporary, authorized_scopes=[f"purge-cache:purge-requests::{pool}"])
    assert plain.get(client.signed_url("purge_requests", pool)).status_code == 200
    assert plain.get(client.signed_url("all_purge_requests")).status_code == 403


def test_signed_url_needs_credentials_and_the_right_arguments(make_client: MakeClient) -> None:
    """No credentials: ConfigurationError; arguments an endpoint does not take: ValueError."""
    with pytest.raises(ConfigurationError, match="need credentials"):
        make_client(None).signed_url("ping")
    with pytest.raises(ValueError, match="needs a worker pool id"):
        make_client().signed_url("purge_requests")
    with pytest.raises(ValueError, match="takes no worker pool id"):
        make_client().signed_url("ping", "a/b")


def test_worker_pool_id_is_sent_as_one_encoded_segment(
    make_client: MakeClient, server: LiveServer
) -> None:
    """The pool id travels as `a%2Fb` (like the current official clients) and signs as such."""
    url = make_client().signed_url("purge_requests", "proj-a/linux")
    assert url.startswith(f"{server.api}/purge-cache/proj-a%2Flinux?bewit=")


def test_a_client_passed_in_is_left_open(make_client: MakeClient, server: LiveServer) -> None:
    """`http_client` is the caller's: usable after the purge-cache client is closed."""
    with httpx.Client() as http:
        from purgecache.client import PurgeCache

        client = PurgeCache(server.root_url, http_client=http)
        assert client.ping().alive
        client.close()
        assert http.get(f"{server.api}/ping").status_code == 200


def test_large_answers_arrive_whole(make_client: MakeClient, pool: str) -> None:
    """An answer over 1 KiB (gzip-compressed by the server for us) decodes to every entry."""
    client = make_client()
    names = [f"cache-{i:02d}-{'x' * 40}" for i in range(30)]
    for name in names:
        client.purge_cache(pool, name)
    assert [entry.cache_name for entry in client.purge_requests(pool).requests] == names
