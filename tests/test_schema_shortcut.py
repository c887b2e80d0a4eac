"""The purge-body shortcut never accepts what the served schema rejects."""

from __future__ import annotations

import pytest
from jsonschema import Draft6Validator, FormatChecker

from purgecache.api.pipeline import plainly_valid
from purgecache.api.reference import load_schema

SCHEMA = load_schema("purge-cache-request.json", "http://127.0.0.1:8080")
VALIDATOR = Draft6Validator(SCHEMA, format_checker=FormatChecker())
CAP = SCHEMA["properties"]["cacheName"]["maxLength"]


@pytest.mark.parametrize(
    "payload",
    [
        {"cacheName": "checkouts"},
        {"cacheName": ""},
        {"cacheName": "x" * CAP},
        {"cacheName": "x" * (CAP + 1)},
        {"cacheName": "a\x00b"},
        {"cacheName": 5},
        {"cacheName": None},
        {"cacheName": "c", "extra": 1},
        {},
        ["cacheName"],
        "cacheName",
        {"cachename": "c"},
        {"cacheName": "ünï €*/:"},
    ],
)
def test_shortcut_agrees_with_the_schema(payload: object) -> None:
    """Whatever the shortcut accepts, the schema accepts (and valid bodies take the shortcut)."""
    schema_ok = not list(VALIDATOR.iter_errors(payload))
    assert plainly_valid(payload, CAP) == schema_ok
