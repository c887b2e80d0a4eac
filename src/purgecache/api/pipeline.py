"""The request pipeline under the API base, one set of steps for every transport:

    match -> read body -> [authorize, when the URL alone renders the scope] -> validate
          -> [authorize, when the scope needs the body] -> handle -> render

Authentication happens at most once per request (the `Authorizer` keeps the verdict on the
`Call`); a verdict from the clients file and a cached answer need no awaiting. The fast path is
not a second set of rules: a request that passes `plain` (an endpoint marked `fast`, no body
tricks) takes the same step functions; a GET of that kind is answered by `answer_now`
without awaiting anything (no body to read; its rules come from the same `check_url`,
`parse_query`, `required_scopes`, `verdict_now`/`check` and handler as `answer`'s), a POST has
its body read in one go. `purgecache_fast_path_answers_total` counts their successes.
"""

from __future__ import annotations

import functools
import gzip
import logging
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from typing import Any

import fastjsonschema
from jsonschema import Draft6Validator, FormatChecker

from purgecache.api import reference
from purgecache.api.authorization import Authorizer
from purgecache.api.endpoints import Endpoint, EndpointTable
from purgecache.api.errors import NOT_FOUND_BODY, ApiError, error_body
from purgecache.api.handlers import Answer, Deps
from purgecache.api.request import (
    BodyDeadlines,
    Call,
    Request,
    parse_payload,
    parse_query,
    read_body,
)
from purgecache.api.responses import (
    API_CSP,
    API_HEADERS,
    NOSNIFF,
    Headers,
    Response,
    json_response,
    new_id,
)
from purgecache.auth.authenticators import AuthServiceError
from purgecache.circuit import CircuitOpen
from purgecache.logs import log_event
from purgecache.model import format_time
from purgecache.service import InvalidContinuationToken
from purgecache.storage import StorageError

log = logging.getLogger("purgecache")

GZIP_MIN_BYTES = 1024
GZIP_KEEP = 128  # compressed answers kept, each at most GZIP_KEEP_MAX_BYTES before compression
GZIP_KEEP_MAX_BYTES = 64 * 1024
GZIP_HEADERS = (("content-encoding", "gzip"), ("vary", "Accept-Encoding"))
_LEADINGS_KEPT = 64
NOT_FOUND = json_response(404, NOT_FOUND_BODY)


def plainly_valid(payload: object, max_cache_name: int) -> bool:
    """The one shape a valid purge body has, checked without the schema machinery (the served
    schema still decides, and explains, everything else; a test pins the two together)."""
    if type(payload) is not dict or len(payload) != 1:
        return False
    name = payload.get("cacheName")
    return type(name) is str and len(name) <= max_cache_name and "\x00" not in name


def compiled_check(schema: dict[str, Any]) -> Callable[[object], bool]:
    """The schema compiled to Python by fastjsonschema (as draft 6, like the validator): True
    when a payload is valid. A schema it cannot compile on its own (a `$ref` to fetch, a
    keyword it lacks) gets a check that accepts nothing, leaving every body to jsonschema."""
    local = {**schema, "$schema": "http://json-schema.org/draft-06/schema#"}
    try:
        validate = fastjsonschema.compile(local, handlers={}, use_default=False)
    except (fastjsonschema.JsonSchemaDefinitionException, ValueError, KeyError):
        return lambda payload: False

    def check(payload: object) -> bool:
        try:
            validate(payload)
        except fastjsonschema.JsonSchemaValueException:
            return False
        return True

    return check


class BodyCheck:
    """An input schema, served and enforced. `shortcut` accepts valid bodies fast (the purge
    body's one shape by hand, any other by the compiled schema); jsonschema decides the rest
    and explains a refusal, so a shortcut may only ever be stricter (tests pin that)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema_id: str = schema["$id"]
        self.validator = Draft6Validator(schema, format_checker=FormatChecker())
        self.shortcut: Callable[[object], bool] = compiled_check(schema)
        if schema["$id"].endswith("/purge-cache-request.json#"):
            cap: int = schema["properties"]["cacheName"]["maxLength"]
            self.shortcut = functools.partial(plainly_valid, max_cache_name=cap)

    def check(self, payload: object) -> None:
        """400 InputValidationError listing every problem, unless the payload is valid."""
        if self.shortcut(payload):
            return
        errors = sorted(self.validator.iter_errors(payload), key=lambda e: list(e.path))
        if errors:
            lines = "\n".join(
                f" * data{''.join(f'[{p!r}]' for p in e.path)}: {e.message}" for e in errors
            )
            raise ApiError(
                "InputValidationError",
                f"Request payload must match the schema {self.schema_id}:\n{lines}",
            )


def as_api_error(error: Exception, call: Call) -> ApiError:
    """The reply for an exception escaping the steps: the one place a 500 is made."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, StorageError):
        if not isinstance(error, CircuitOpen):  # refusals: the circuit logs when it opens
            log_event(log, logging.WARNING, "storage-error", route=call.name, error=str(error))
        return ApiError("ServiceUnavailable", "The database is unavailable; retry.")
    if isinstance(error, AuthServiceError):
        return ApiError("ServiceUnavailable", "The authentication service is unavailable; retry.")
    if isinstance(error, InvalidContinuationToken):
        return ApiError("InputError", "invalid continuation token")
    incident = str(uuid.uuid4())
    log.error("internal error in %s, incident %s", call.name, incident, exc_info=error)
    return ApiError("InternalServerError", f"Internal Server Error, incidentId {incident}.")


@functools.lru_cache(maxsize=256)  # clients send a handful of distinct Accept-Encoding values
def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding value allows gzip (mentioned, and not with q=0)."""
    accept_encoding = accept_encoding.lower()
    if "gzip" not in accept_encoding:
        return False
    refused = ("gzip;q=0", "gzip;q=0.0", "gzip;q=0.00", "gzip;q=0.000")
    return not any(p.strip().replace(" ", "") in refused for p in accept_encoding.split(","))


class Pipeline:
    """The steps every API request takes, whichever server interface brought it."""

    def __init__(
        self,
        table: EndpointTable,
        authorizer: Authorizer,
        deps: Deps,
        *,
        root_url: str,
        max_body_bytes: int,
        clock: Callable[[], int],
        body_deadlines: BodyDeadlines,
    ) -> None:
        self.table = table
        self.authorizer = authorizer
        self.deps = deps
        self.max_body_bytes = max_body_bytes
        self.body_deadlines = body_deadlines
        self.clock = clock
        self.bodies: Mapping[str, BodyCheck] = {
            e.input: BodyCheck(reference.load_schema(e.input, root_url))
            for e in table.endpoints
            if e.input is not None
        }
        # Everything a reply under the API base carries after its own headers.
        self.tail = (*API_HEADERS, ("content-security-policy", API_CSP), NOSNIFF)
        self._gzipped: dict[bytes, bytes] = {}
        self._leadings: dict[tuple[tuple[tuple[str, str], ...], str | None], Headers] = {}

    # ---- the steps ---------------------------------------------------------------------

    async def answer(
        self, request: Request, chunks: AsyncIterable[bytes], sub: str, call: Call
    ) -> Response:
        """Run the steps for the API sub-path `sub`; `call` learns the endpoint reached and
        who called (a call `answer_now` left to these steps has its endpoint matched)."""
        try:
            endpoint = call.endpoint or self.match(request, sub, call)
            if isinstance(endpoint, Response):
                return endpoint
            if request.method == "GET":
                call.fast = False  # a plain GET here is one `answer_now` left (remote verdict)
            await self.read(request, chunks)
            # The scope check, inline here (it runs on every request): before validation when
            # the URL alone renders the template, else after it; a verdict from the clients
            # file needs no awaiting, an auth service is asked once.
            authorizer = self.authorizer
            if endpoint.authorizes_early:
                required = endpoint.required_scopes(call.params, None)
                verdict = authorizer.verdict_now(request, call) or await authorizer.ask(
                    request, call
                )
                authorizer.check(verdict, required)
            if endpoint.checks_request or request.query:  # else nothing to check
                self.validate(request, call, endpoint)
            if endpoint.template is not None and not endpoint.authorizes_early:
                verdict = authorizer.verdict_now(request, call) or await authorizer.ask(
                    request, call
                )
                if endpoint.staged_scopes:  # the handler checks, once it knows the values
                    authorizer.authenticated(verdict)
                else:
                    required = endpoint.required_scopes(call.params, request.payload, call.query)
                    authorizer.check(verdict, required)
            answer = endpoint.handler(self.deps, request, call)
            return answer if isinstance(answer, Response) else await answer
        except Exception as error:
            return self.error(as_api_error(error, call), request, call)

    def answer_now(self, request: Request, sub: str, call: Call) -> Answer | None:
        """The fast path: `answer`'s steps without awaiting, for a GET that `plain` lets
        through (no body to read) with a verdict at hand (the clients file); its answer, or an
        awaitable one from the handler. None: `answer` it (nothing with an effect has happened
        yet; the call's verdict, if any, is kept)."""
        try:
            endpoint = self.match(request, sub, call)
            if isinstance(endpoint, Response):
                return endpoint
            if not call.fast or request.method != "GET":
                return None
            # GET endpoints have no body, so their template is rendered from the URL alone
            authorizer = self.authorizer
            if endpoint.template is not None:
                verdict = authorizer.verdict_now(request, call)
                if verdict is None:
                    return None
                authorizer.check(verdict, endpoint.required_scopes(call.params, None))
            if call.url_problem is not None:
                self.check_url(call)
            if request.query:
                call.query = parse_query(request.query, endpoint.query)
            answer = endpoint.handler(self.deps, request, call)
        except Exception as error:
            return self.error(as_api_error(error, call), request, call)
        return answer if isinstance(answer, Response) else self._settle(answer, request, call)

    async def _settle(self, pending: Awaitable[Response], request: Request, call: Call) -> Response:
        """A handler's awaitable answer, its failure rendered as `answer` renders it."""
        try:
            return await pending
        except Exception as error:
            return self.error(as_api_error(error, call), request, call)

    def check_url(self, call: Call) -> None:
        """The URL parameters by their rules (400 InvalidRequestArguments)."""
        if call.url_problem is not None:
            raise ApiError("InvalidRequestArguments", call.url_problem)

    def match(self, request: Request, sub: str, call: Call) -> Endpoint | Response:
        """The endpoint and its URL parameters, or the reply (404, OPTIONS) when none is."""
        route = self.table.route(sub, request.path_decoded)
        if route is None:
            return NOT_FOUND
        methods = route.methods
        method = request.method
        if method == "OPTIONS":
            allow = ", ".join(sorted({*methods, *(["HEAD"] if "GET" in methods else [])}))
            return Response(200, allow.encode(), (("allow", allow),))
        endpoint = methods.get("GET" if method == "HEAD" else method)
        if endpoint is None:
            return NOT_FOUND
        call.endpoint, call.name = endpoint, endpoint.name
        if endpoint.args:
            call.params, call.url_problem = route.params, route.problem
        if endpoint.fast:  # the fast path's precondition (see `plain`)
            call.fast = self.plain(request, endpoint)
        return endpoint

    def plain(self, request: Request, endpoint: Endpoint) -> bool:
        """The fast path's precondition: the endpoint's own method and a body that needs no
        decoding (none on a GET; a JSON one of declared, acceptable length on a POST)."""
        headers = request.headers
        if request.method != endpoint.method or "transfer-encoding" in headers:
            return False
        length = headers.get("content-length")
        if endpoint.method == "GET":
            return length is None  # no body, so nothing to decode
        return (
            length is not None
            and "content-encoding" not in headers
            and length.isdigit()
            and int(length) <= self.max_body_bytes
            and str(headers.get("content-type", "")).partition(";")[0].strip().lower()
            == "application/json"
        )

    async def read(self, request: Request, chunks: AsyncIterable[bytes]) -> None:
        """The body (size limit, inflation) and its JSON (spec api.md §2 step 2)."""
        request.body = await read_body(request, chunks, self.max_body_bytes, self.body_deadlines)
        parse_payload(request)

    def validate(self, request: Request, call: Call, endpoint: Endpoint) -> None:
        """URL parameters, then the query, then the body, each by the endpoint's rules."""
        self.check_url(call)
        if request.query:
            call.query = parse_query(request.query, endpoint.query)
        if endpoint.input is None:
            return
        if not request.is_json:
            content_type = request.headers.get("content-type")
            raise ApiError(
                "MalformedPayload",
                f"Payload must be JSON with content-type: application/json "
                f"got content-type: {content_type if content_type is not None else 'null'}",
            )
        self.bodies[endpoint.input].check(request.payload)

    def error(self, error: ApiError, request: Request, call: Call) -> Response:
        """The Taskcluster error reply."""
        now = format_time(self.clock())
        body = error_body(error, call.name, call.params, request.payload, now)
        return json_response(error.status, body, *error.headers)

    # ---- render ------------------------------------------------------------------------

    def render(
        self, request: Request, call: Call, response: Response, api: bool, request_id: str
    ) -> tuple[Headers, bytes]:
        """Every header of the reply (`api`: under the API base) and its body, compressed for
        a listing that is large enough when the client accepts gzip."""
        status, body, own, csp = response
        if (
            status == 200
            and len(body) >= GZIP_MIN_BYTES
            and call.endpoint is not None
            and call.endpoint.output is not None
            and accepts_gzip(request.headers.get("accept-encoding") or "")
        ):
            body, own = self._gzip(body), (*own, *GZIP_HEADERS)
        trace_id = request.headers.get("x-taskcluster-trace-id") or new_id()
        key = (own, None if api else csp)
        reply = [
            *(self._leadings.get(key) or self._leading(key)),
            ("x-for-request-id", request_id),
            ("x-for-trace-id", trace_id),
        ]
        # granian's RSGI sets Content-Length itself (and faster); a HEAD answer needs the GET's
        if status != 204 and (not request.path_decoded or request.method == "HEAD"):
            reply.append(("content-length", str(len(body))))
        return reply, body

    def _leading(self, key: tuple[tuple[tuple[str, str], ...], str | None]) -> Headers:
        """A reply's own headers followed by those every reply under the API base carries
        (CSP None), else by its CSP and nosniff; kept for the few combinations handlers use."""
        own, csp = key
        tail = self.tail if csp is None else (("content-security-policy", csp), NOSNIFF)
        leading = [*own, *tail]
        if len(self._leadings) < _LEADINGS_KEPT:
            self._leadings[key] = leading
        return leading

    def _gzip(self, body: bytes) -> bytes:
        """gzip of an answer; the last few compressed answers are kept (a pool's answer is
        one bytes object for as long as it is cached, and every worker of a fleet asks for
        it: compress it once, not once per request)."""
        if len(body) > GZIP_KEEP_MAX_BYTES:
            return gzip.compress(body, compresslevel=5, mtime=0)
        packed = self._gzipped.get(body)
        if packed is None:
            packed = self._gzipped[body] = gzip.compress(body, compresslevel=5, mtime=0)
            if len(self._gzipped) > GZIP_KEEP:
                del self._gzipped[next(iter(self._gzipped))]  # the oldest
        return packed
