"""API errors: one table from code to status and headers, and the one place that renders
Taskcluster's error body.

Exception tree (all raised inside request handling, all rendered by `error_body`):

    ApiError(code, text, details)       -> status and headers from ERRORS
      raised as e.g. ApiError("InvalidRequestArguments", "...")

Failures of what the API stands on become ApiErrors in `pipeline.as_api_error` (storage or
auth service down: 503). Anything else escaping a handler becomes a 500
`InternalServerError` whose message carries only an incident id: internal exception text never
reaches a caller.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import orjson

Headers = tuple[tuple[str, str], ...]
RETRY_AFTER_SECONDS = 5

# code -> (status, headers every reply of that code carries)
ERRORS: Mapping[str, tuple[int, Headers]] = {
    "MalformedPayload": (400, ()),
    "InvalidRequestArguments": (400, ()),
    "InputValidationError": (400, ()),
    "InputError": (400, ()),
    "AuthenticationFailed": (401, (("www-authenticate", "hawk"),)),
    "InsufficientScopes": (403, ()),
    "ResourceNotFound": (404, ()),
    "RequestTimeout": (408, ()),
    "RequestConflict": (409, ()),
    "InputTooLarge": (413, ()),
    "InternalServerError": (500, ()),
    "ServiceUnavailable": (503, (("retry-after", str(RETRY_AFTER_SECONDS)),)),
}

NOT_FOUND_BODY = b'{"error":"Not found"}'


class ApiError(Exception):
    """An error reply: a Taskcluster error `code` and its specific text.

    `{{name}}` placeholders in `text` are filled from `details` when rendered.
    """

    def __init__(self, code: str, text: str, details: Mapping[str, object] | None = None) -> None:
        super().__init__(text)
        self.code = code
        self.status, self.headers = ERRORS[code]
        self.text = text
        self.details = details or {}


def fill_placeholders(text: str, details: Mapping[str, object]) -> str:
    """Replace `{{key}}` by the detail: strings as-is, anything else as indented JSON."""
    for key, value in details.items():
        rendered = value if isinstance(value, str) else json.dumps(value, indent=2)
        text = text.replace("{{" + key + "}}", rendered)
    return text


def error_body(
    error: ApiError,
    method: str,
    params: Mapping[str, str],
    payload: object,
    time: str,
) -> bytes:
    """The `{code, message, requestInfo}` body of an error reply."""
    message = (
        fill_placeholders(error.text, error.details)
        + f"\n\n---\n\n* method:     {method}\n* errorCode:  {error.code}"
        + f"\n* statusCode: {error.status}\n* time:       {time}"
    )
    return orjson.dumps(
        {
            "code": error.code,
            "message": message,
            "requestInfo": {
                "method": method,
                "params": dict(params),  # a plain dict for orjson, whatever Mapping it is
                "payload": payload,
                "time": time,
            },
        }
    )
