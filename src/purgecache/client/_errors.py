"""Everything the client raises, as one tree.

    PurgeCacheError                  base class: `except PurgeCacheError` catches them all
    ├── ConfigurationError           bad root URL, credentials or TASKCLUSTER_* variables
    │                                (also a ValueError)
    ├── ConnectionFailed             no HTTP answer after every retry (refused, reset, DNS ...)
    │   └── RequestTimedOut          ... because an attempt ran out of time
    ├── InvalidResponse              a 2xx answer that is not what the API promises
    └── ApiError                     an error answer: status, code, message, request_id, body
        ├── AuthenticationFailed     401: credentials present but not accepted
        ├── InsufficientScopes       403: authenticated (or anonymous) but not allowed
        ├── RequestRejected          any other 3xx/4xx, e.g. 400 InvalidRequestArguments
        │   └── ExtensionUnavailable 404 from an extension (`createPurge`...): the service
        │                            does not have it (upstream Taskcluster, an older one)
        └── ServerError              5xx, after every retry

4xx answers are never retried; connection failures and 5xx are (see `Retries`).
"""

from __future__ import annotations

from collections.abc import Mapping

from purgecache.client._calls import EXTENSIONS

_FOOTER = "\n\n---\n\n"


class PurgeCacheError(Exception):
    """Base class of every error the purge-cache client raises."""


class ConfigurationError(PurgeCacheError, ValueError):
    """The client cannot be set up as asked (root URL, credentials, environment)."""


class ConnectionFailed(PurgeCacheError):
    """No HTTP answer came back, even after retrying; `__cause__` is the httpx error."""

    def __init__(self, message: str, *, url: str, attempts: int) -> None:
        super().__init__(message)
        self.url = url
        self.attempts = attempts


class RequestTimedOut(ConnectionFailed):
    """The last attempt ran out of time (see the `timeout` option)."""


class InvalidResponse(PurgeCacheError):
    """A successful status whose body does not match the API's schema."""

    def __init__(self, message: str, *, status: int, request_id: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.request_id = request_id


class ApiError(PurgeCacheError):
    """The service answered with an error status.

    `code` is Taskcluster's error code (`InsufficientScopes`, ...), `message` its full text,
    `request_id` the `X-For-Request-Id` to quote when asking the operators, `body` the
    decoded JSON body (or None).
    """

    def __init__(
        self,
        *,
        status: int,
        code: str | None,
        message: str,
        request_id: str | None,
        endpoint: str,
        body: object = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.endpoint = endpoint
        self.body = body
        super().__init__(self.summary)

    @property
    def summary(self) -> str:
        """One line: status, code and the first line of the message, without the footer."""
        text = self.message.split(_FOOTER, 1)[0]
        lines = (line.strip() for line in text.splitlines())
        text = " ".join(line for line in lines if line and not line.startswith("```"))
        return f"{self.endpoint}: {self.status} {self.code or 'error'}: {text}"


class AuthenticationFailed(ApiError):
    """401: the credentials were not accepted (unknown client, bad MAC, expired ...)."""


class InsufficientScopes(ApiError):
    """403: the caller's scopes do not satisfy the endpoint's scope expression."""


class RequestRejected(ApiError):
    """A 3xx or 4xx answer other than 401 and 403: the request itself is wrong."""


class ExtensionUnavailable(RequestRejected):
    """404 from one of this service's own endpoints (`create_purge`, `list_purge_history`):
    the service does not offer it, e.g. an upstream Taskcluster deployment. Nothing was done."""

    @property
    def summary(self) -> str:
        """One line naming the missing endpoint."""
        return (
            f"{self.endpoint}: 404: this service does not offer {self.endpoint} (an upstream "
            "Taskcluster deployment or an older purgecache?); nothing was done"
        )


class ServerError(ApiError):
    """A 5xx answer that persisted through every retry."""


def _answered_by(endpoint: str, fields: Mapping[str, object]) -> bool:
    """Whether an error body comes from the endpoint itself (its `requestInfo.method` names
    it: `cancel_purge` found no open purge), not from a service that lacks the route."""
    info = fields.get("requestInfo")
    return isinstance(info, Mapping) and info.get("method") == endpoint


def api_error(
    status: int, body: object, request_id: str | None, endpoint: str, text: str
) -> ApiError:
    """The `ApiError` subclass for an error answer, filled from its Taskcluster body."""
    fields: Mapping[str, object] = body if isinstance(body, Mapping) else {}
    code = fields.get("code")
    message = fields.get("message", fields.get("error"))
    kind: type[ApiError] = {401: AuthenticationFailed, 403: InsufficientScopes}.get(
        status, ServerError if status >= 500 else RequestRejected
    )
    if status == 404 and endpoint in EXTENSIONS and not _answered_by(endpoint, fields):
        kind = ExtensionUnavailable
    return kind(
        status=status,
        code=code if isinstance(code, str) else None,
        message=message if isinstance(message, str) else (text.strip() or "no message"),
        request_id=request_id,
        endpoint=endpoint,
        body=body,
    )
