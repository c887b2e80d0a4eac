"""Drive an OFFICIAL Taskcluster Python client against a purge-cache server; print JSON.

Runs inside a client environment made by scripts/setup-client-envs.sh, never in the
project's own venv:

    .ci-work/clients/tc19/bin/python tests/clients/tc_scenario.py SCENARIO [ARG]
    .ci-work/clients/tc113/bin/python tests/clients/tc_scenario.py SCENARIO [ARG]

Connection settings come from the options `--root-url`, `--client-id`, `--access-token`,
falling back to the environment variables TC_ROOT_URL, TC_CLIENT_ID and TC_ACCESS_TOKEN.
Without a client id and access token the client makes anonymous calls.

The script works with both client generations: taskcluster 19.0.0 (seed-era API, pool
given as `provisionerId, workerType`) and 113.x (pool given as one `workerPoolId`).
Scenarios take pool ids as `provisionerId/workerType` and pass them the way the
installed client expects.

Scenarios (ARG is JSON where given):

- `info`: client version and the argument names of its `purgeCache`.
- `ping`: the result of `ping()`.
- `calls '[CALL, ...]'`: each CALL is `{"method": NAME, "pool": "p/w" (optional),
  "payload": {...} (optional), "query": {...} (optional), "credentials": "anonymous" |
  {"clientId": ..., "accessToken": ...} (optional; default: the connection's),
  "temporary": {"scopes": [...], "name": NAME (optional)} (optional: temporary credentials
  minted with `createTemporaryCredentials` from the credentials above, valid from one
  minute ago for an hour), "authorizedScopes": [...] (optional client option)}`;
  prints a list with `{"result": ...}` or `{"error": {...}}` per call, in order.
- `publish`: upstream's "Publish purge-cache requests" test; prints what each step saw.
- `paginate '{"pool": "p/w", "count": N, "limit": L}'`: purges N caches, then pages
  through `allPurgeRequests` by hand and with the client's `paginationHandler`.
- `signed-urls '{"pool": "p/w", "since": ISO}'`: builds bewit-signed URLs for `purgeRequests`
  (without and with `since`) and `allPurgeRequests` with the connection's credentials and
  fetches them, plus the unsigned `purgeRequests` URL, with plain anonymous GETs.
- `reference`: builds a client with `taskcluster.client.createApiClient` from the server's own
  `references/purge-cache/v1/api.json` and calls `ping`, `purgeCache` and
  `purgeRequests` through it.

The client is created with `maxRetries: 0` (as upstream's tests do), so a server error
surfaces at once. Exit status 0 means the scenario ran to its end (an API error that a
`calls` entry provoked is data, not a failure); anything else is a harness failure and
is described on stderr.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import os
import sys
import time
from typing import Any

# taskcluster 19.0.0 calls base64.encodestring, which Python 3.9 removed (its
# replacement has the same behaviour). Alias it BEFORE importing the client, so that
# the client itself stays exactly as released.
if not hasattr(base64, "encodestring"):
    base64.encodestring = base64.encodebytes  # type: ignore[attr-defined]

import taskcluster
import taskcluster.exceptions

# Upstream's own pool ids in its test: longer than v19's old 22-character limit.
POOL_1 = "dummy-provisioner-extended-extended/dummy-worker-extended-extended"
POOL_2 = "dummy-provisioner-extended-extended-2/dummy-worker-extended-extended"
POOL_3 = "dummy-provisioner-extended-extended/dummy-worker-extended-extended-2"

Json = Any


def client_version() -> str:
    """The installed distribution version of the client."""
    from importlib import metadata

    return metadata.version("taskcluster")


def pool_arg_names() -> list[str]:
    """How the installed client names the pool arguments of `purgeCache`."""
    return list(taskcluster.PurgeCache.funcinfo["purgeCache"]["args"])


def pool_args(pool: str) -> list[str]:
    """`provisionerId/workerType` as positional arguments for the installed client."""
    if pool_arg_names() == ["workerPoolId"]:
        return [pool]
    provisioner_id, worker_type = pool.split("/")
    return [provisioner_id, worker_type]


def now_iso() -> str:
    """The current time as `YYYY-MM-DDTHH:MM:SS.sssZ` (what the JS `Date.toJSON` gives)."""
    now = datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class Harness:
    """Makes clients for one server and runs scenarios with them."""

    def __init__(self, root_url: str, client_id: str | None, access_token: str | None) -> None:
        self.root_url = root_url
        self.credentials: dict[str, str] | None = None
        if client_id and access_token:
            self.credentials = {"clientId": client_id, "accessToken": access_token}

    def options(self, credentials: Json = None) -> dict[str, Json]:
        """Client options; `credentials` "anonymous" means none, None the connection's."""
        creds = self.credentials if credentials is None else credentials
        options: dict[str, Json] = {"rootUrl": self.root_url, "maxRetries": 0}
        # An explicit empty dict keeps 113.x from falling back to TASKCLUSTER_* env vars.
        # (A copy: 19.0.0 re-encodes the values of the dict it is given in place.)
        options["credentials"] = {} if creds in ("anonymous", None) else dict(creds)
        return options

    def client(self, credentials: Json = None) -> Any:
        return taskcluster.PurgeCache(self.options(credentials))

    def spec_client(self, spec: dict[str, Json]) -> Any:
        """The client a `calls` entry asks for."""
        options = self.options(spec.get("credentials"))
        if "temporary" in spec:
            issuer = options["credentials"]
            now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
            options["credentials"] = taskcluster.createTemporaryCredentials(
                issuer["clientId"],
                issuer["accessToken"],
                now - datetime.timedelta(minutes=1),
                now + datetime.timedelta(hours=1),
                spec["temporary"]["scopes"],
                name=spec["temporary"].get("name"),
            )
        if "authorizedScopes" in spec:
            options["authorizedScopes"] = spec["authorizedScopes"]
        return taskcluster.PurgeCache(options)

    # -- primitives ------------------------------------------------------------------

    def call(self, spec: dict[str, Json]) -> dict[str, Json]:
        """Run one call described by `spec`; an API error is returned as data."""
        client = self.spec_client(spec)
        args: list[Json] = pool_args(spec["pool"]) if "pool" in spec else []
        if "payload" in spec:
            args.append(spec["payload"])
        kwargs: dict[str, Json] = {"query": spec["query"]} if "query" in spec else {}
        try:
            result = getattr(client, spec["method"])(*args, **kwargs)
        except taskcluster.exceptions.TaskclusterRestFailure as err:
            return {"error": describe_error(err)}
        except taskcluster.exceptions.TaskclusterAuthFailure as err:
            return {"error": describe_error(err)}
        return {"result": result}

    # -- scenarios -------------------------------------------------------------------

    def publish(self) -> dict[str, Json]:
        """Upstream's "Publish purge-cache requests", recording what every step returns."""
        client = self.client()
        seen: dict[str, Json] = {}
        seen["empty"] = client.allPurgeRequests()
        client.purgeCache(*pool_args(POOL_1), {"cacheName": "my-test-cache"})
        seen["one"] = client.allPurgeRequests()
        time.sleep(0.05)  # `before` has millisecond precision: make the next one later
        client.purgeCache(*pool_args(POOL_1), {"cacheName": "my-test-cache"})
        seen["repurged"] = client.allPurgeRequests()
        client.purgeCache(*pool_args(POOL_1), {"cacheName": "my-test-cache-2"})
        seen["two_names"] = client.allPurgeRequests()
        client.purgeCache(*pool_args(POOL_2), {"cacheName": "my-test-cache"})
        client.purgeCache(*pool_args(POOL_3), {"cacheName": "my-test-cache"})
        seen["three_pools"] = client.allPurgeRequests()
        seen["pool_2"] = client.purgeRequests(*pool_args(POOL_2))
        seen["pool_3"] = client.purgeRequests(*pool_args(POOL_3))
        seen["pool_1"] = client.purgeRequests(*pool_args(POOL_1))
        first, second = seen["pool_1"]["requests"][:2]
        seen["since_first"] = client.purgeRequests(
            *pool_args(POOL_1), query={"since": first["before"]}
        )
        seen["since_second"] = client.purgeRequests(
            *pool_args(POOL_1), query={"since": second["before"]}
        )
        time.sleep(0.01)
        seen["now"] = now_iso()
        seen["since_now"] = client.purgeRequests(*pool_args(POOL_1), query={"since": seen["now"]})
        return seen

    def paginate(self, pool: str, count: int, limit: int) -> dict[str, Json]:
        """Purge `count` caches, then list them `limit` at a time, twice."""
        client = self.client()
        for i in range(count):
            client.purgeCache(*pool_args(pool), {"cacheName": f"cache-{i:03d}"})
        manual: list[Json] = []
        query: dict[str, Json] = {"limit": limit}
        while True:
            page = client.allPurgeRequests(query=dict(query))
            manual.append(page)
            if not page.get("continuationToken") or len(manual) > count + 1:
                break
            query["continuationToken"] = page["continuationToken"]
        handled: list[Json] = []
        returned = client.allPurgeRequests(paginationHandler=handled.append, paginationLimit=limit)
        return {"manual": manual, "handler": handled, "handler_returned": returned}

    def signed_urls(self, pool: str, since: str) -> dict[str, Json]:
        """Fetch bewit URLs made by the client with anonymous GETs (status and body)."""
        import requests

        client = self.client()
        urls = {
            "purgeRequests": client.buildSignedUrl("purgeRequests", *pool_args(pool)),
            "purgeRequests_since": client.buildSignedUrl(
                "purgeRequests", *pool_args(pool), query={"since": since}
            ),
            "allPurgeRequests": client.buildSignedUrl("allPurgeRequests"),
            "unsigned": client.buildUrl("purgeRequests", *pool_args(pool)),
        }
        seen: dict[str, Json] = {}
        for name, url in urls.items():
            response = requests.get(url, timeout=10)
            seen[name] = {"url": url, "status": response.status_code, "body": response.json()}
        return seen

    def reference(self) -> dict[str, Json]:
        """A client built from the served api.json, used for a few calls."""
        import requests

        url = f"{self.root_url}/references/purge-cache/v1/api.json"
        response = requests.get(url, timeout=10)
        response.raise_for_status()
        reference = response.json()
        # Not re-exported at the package top level: it lives in taskcluster.client.
        from taskcluster.client import createApiClient

        cls = createApiClient("PurgeCache", {"reference": reference})
        client = cls(self.options())
        pool = "reference-built/client"
        seen: dict[str, Json] = {
            "functions": sorted(cls.funcinfo),
            "purgeCache_args": cls.funcinfo["purgeCache"]["args"],
        }
        seen["ping"] = client.ping()
        seen["purgeCache"] = client.purgeCache(pool, {"cacheName": "from-reference"})
        seen["purgeRequests"] = client.purgeRequests(pool)
        seen["allPurgeRequests"] = client.allPurgeRequests(query={"limit": 5})
        return seen


def describe_error(err: Any) -> dict[str, Json]:
    """The parts of a client exception that tests assert on."""
    body = getattr(err, "body", None)
    return {
        "class": type(err).__name__,
        "status_code": getattr(err, "status_code", None),
        "code": body.get("code") if isinstance(body, dict) else None,
        "body": body,
        "message": str(err),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario")
    parser.add_argument("arg", nargs="?", default=None, help="JSON argument of the scenario")
    parser.add_argument("--root-url", default=os.environ.get("TC_ROOT_URL"))
    parser.add_argument("--client-id", default=os.environ.get("TC_CLIENT_ID"))
    parser.add_argument("--access-token", default=os.environ.get("TC_ACCESS_TOKEN"))
    opts = parser.parse_args(argv)
    if not opts.root_url:
        parser.error("a root URL is needed (--root-url or TC_ROOT_URL)")
    harness = Harness(opts.root_url.rstrip("/"), opts.client_id, opts.access_token)
    arg: Json = json.loads(opts.arg) if opts.arg is not None else None

    result: Json
    if opts.scenario == "info":
        result = {"version": client_version(), "purgeCache_args": pool_arg_names()}
    elif opts.scenario == "ping":
        result = harness.client().ping()
    elif opts.scenario == "calls":
        result = [harness.call(spec) for spec in arg]
    elif opts.scenario == "publish":
        result = harness.publish()
    elif opts.scenario == "paginate":
        result = harness.paginate(arg["pool"], int(arg["count"]), int(arg["limit"]))
    elif opts.scenario == "signed-urls":
        result = harness.signed_urls(arg["pool"], arg["since"])
    elif opts.scenario == "reference":
        result = harness.reference()
    else:
        parser.error(f"unknown scenario {opts.scenario!r}")
    json.dump(result, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
