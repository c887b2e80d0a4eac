"""A granian factory serving the real app plus one endpoint declared only here: proof that an
endpoint is one table entry and its handler (routing, query checks, scopes, api.json follow).

Run like `support.vector_app:app`, with `$PURGECACHE_VECTOR_SETTINGS` holding resolved settings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import orjson

from purgecache.api.app import PurgeCacheApp
from purgecache.api.endpoints import ENDPOINTS, Endpoint, QueryParam
from purgecache.api.handlers import Deps
from purgecache.api.request import Call, Request
from purgecache.api.responses import Response, json_response
from purgecache.auth.authenticators import LocalAuthenticator
from purgecache.auth.clients import load_clients
from purgecache.server import build_app, configure_logging
from purgecache.settings import Settings

from support.vector_app import SETTINGS_ENV


def _times(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 3:
        raise ValueError(f"Invalid query-string parameter times={value!r}: must be 1, 2 or 3")
    return int(value)


def echo_pool(deps: Deps, request: Request, call: Call) -> Response:
    """Say the pool back, `times` times."""
    pool = call.params["workerPoolId"]
    times = call.query.get("times", 1)
    assert isinstance(times, int)
    return json_response(200, orjson.dumps({"pools": [pool] * times}))


ECHO = Endpoint(
    "echoPool",
    "GET",
    "/ext/echo/<workerPoolId>",
    echo_pool,
    "Extensions",
    "Echo a pool",
    "Answers the pool id it was asked about (a test-only endpoint).",
    scopes="purge-cache:echo::<workerPoolId>",
    query=(QueryParam("times", _times),),
    stability="experimental",
)


def app() -> PurgeCacheApp:
    """granian's factory: the real app with ECHO added to its endpoint table."""
    settings = Settings(**json.loads(os.environ[SETTINGS_ENV]))
    configure_logging()
    authenticator = LocalAuthenticator(load_clients(Path(settings.clients_file)))
    return build_app(settings, authenticator, (*ENDPOINTS, ECHO))
