"""API errors and the one place that renders Taskcluster's error body.

Exception tree (all raised inside request handling, all rendered by `error_body`):

    ApiError(code, text, details)       -> status from STATUS_BY_CODE
      raised as e.g. ApiError("InvalidRequestArguments", "...")

Anything else escaping a handler becomes a 500 `InternalServerError` whose message carries
only an incident id: internal exception text never reaches a caller.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import orjson

STATUS_BY_CODE: Mapping[str, int] = {
    "MalformedPayload": 400,
    "InvalidRequestArguments": 400,
    "InputValidationError": 400,
    "InputError": 400,
    "AuthenticationFailed": 401,
    "InsufficientScopes": 403,
    "ResourceNotFound": 404,
    "InputTooLarge": 413,
    "InternalServerError": 500,
    "ServiceUnavailable": 503,
}

NOT_FOUND_BODY = b'{"error":"Not found"}'


class ApiError(Exception):
    """An error reply: a Taskcluster error `code` and its specific text.

    `{{name}}` placeholders in `text` are filled from `details` when rendered.
    """

    def __init__(
        self,
        code: str,
        text: str,
        details: Mapping[str, object] | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(text)
        self.code = code
        self.status = STATUS_BY_CODE[code]
        self.text = text
        self.details = details or {}
        self.headers = headers


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
            "requestInfo": {"method": method, "params": params, "payload": payload, "time": time},
        }
    )
