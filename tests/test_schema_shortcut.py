"""The body shortcuts (the purge body's by hand, every other by the compiled schema) never
accept what the served schema rejects."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from jsonschema import Draft6Validator, FormatChecker

from purgecache.api.pipeline import BodyCheck, plainly_valid
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


# One valid body per input schema of the endpoint table; a new input schema needs one here
# (the test below fails until it has it).
EXAMPLES: dict[str, dict[str, object]] = {
    "purge-cache-request.json": {"cacheName": "checkouts"},
    "cancel-purge-request.json": {"cacheName": "checkouts", "reason": "wrong cache"},
    "create-purge-request.json": {
        "cacheName": "checkouts",
        "reason": "disk full",
        "link": "https://bugs.example/1",
        "untilApplied": True,
    },
    "create-selector-purge-request.json": {
        "workerPoolPattern": "proj-a/*",
        "cacheNamePattern": "level-3-*",
        "dryRun": False,
        "digest": "sha256:" + "0" * 64,
        "reason": "toolchain bump",
        "link": "https://bugs.example/2",
        "untilApplied": True,
    },
    "cancel-selector-purge-request.json": {
        "workerPoolPattern": "proj-a/*",
        "cacheNamePattern": "level-3-*",
        "reason": "wrong selector",
    },
    "worker-sync-report.json": {
        "workerGroup": "local",
        "workerId": "w1",
        "caches": [
            {
                "cacheName": "checkouts",
                "honouredBefore": "2026-12-05T10:00:00.000Z",
                "instancesDeleted": 1,
                "bytesFreed": 2048,
                "oldestDeletedAgeMs": 86400000,
                "failures": 0,
                "inUse": 0,
            }
        ],
        "inventory": [
            {
                "cacheName": "checkouts",
                "instances": 1,
                "bytes": 2048,
                "lastUsed": "2026-12-05T10:00:00.000Z",
            }
        ],
    },
}
ODD_VALUES: tuple[object, ...] = (
    None, True, 0, -1, 1.5, 2**53, "", "x" * 5000, "a\x00b", "2026-13-99", [], {}, ["x"],
)  # fmt: skip


def input_schemas() -> list[str]:
    from purgecache.api.endpoints import ENDPOINTS

    return sorted({e.input for e in ENDPOINTS if e.input is not None})


def mutations(value: object) -> Iterator[object]:
    """The body with one change each: every value (at any depth) replaced by odd values, every
    key dropped, an unknown key added to every object, every list emptied or doubled."""
    yield from ODD_VALUES
    if isinstance(value, dict):
        yield {**value, "unexpected": 1}
        for key, item in value.items():
            yield {k: v for k, v in value.items() if k != key}
            for changed in mutations(item):
                yield {**value, key: changed}
    elif isinstance(value, list) and value:
        yield []
        yield [*value, *value]
        for changed in mutations(value[0]):
            yield [changed, *value[1:]]


def test_every_input_schema_has_an_example() -> None:
    """The compiled checks below cover every body an endpoint takes."""
    assert sorted(EXAMPLES) == input_schemas()


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_compiled_schema_is_never_laxer_than_jsonschema(name: str) -> None:
    """A valid body passes the compiled check (valid bodies skip jsonschema, ~25 times
    dearer); whatever the compiled check passes, jsonschema passes too (it alone decides and
    explains a refusal), over hundreds of bodies one change away from a valid one."""
    schema = load_schema(name, "http://127.0.0.1:8080")
    check = BodyCheck(schema)
    validator = Draft6Validator(schema, format_checker=FormatChecker())
    example = EXAMPLES[name]
    assert not list(validator.iter_errors(example))
    assert check.shortcut(example)
    tried = 0
    for body in mutations(example):
        tried += 1
        if check.shortcut(body):
            assert not list(validator.iter_errors(body)), body
    assert tried > 20
