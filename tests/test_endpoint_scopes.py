"""The scope each endpoint enforces is the scope `api.json` publishes, proven from outside: for
every published entry, a client holding only the rendered template gets past authorization, and
a client holding every other endpoint's scope gets 403 naming exactly that scope as required."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest

from conftest import LiveServer, start_server
from hawk_signing import HawkAuth

POOL = "scope-probe/pool"
REQUIRED_RE = re.compile(r"satisfy the following scope expression:\n\n```\n(.*?)\n```", re.S)


# Values a template reads that the service works out itself, as they are for the probe's
# request: its selector (the schema's examples, proj-a/* and level-3-*) matches nothing on the
# probe server, so its expansion has no pools and no pairs, and it applies (no `dryRun`),
# which needs the selector scope alone; cancelling it finds no open selector (no purges),
# which needs the same.
DERIVED: dict[str, dict[str, Any]] = {
    "createSelectorPurge": {"matchedPools": [], "pairs": [], "apply": True},
    "cancelSelectorPurge": {"matchedPools": [], "pairs": [], "apply": True},
}


def render(template: Any, params: dict[str, Any]) -> Any:
    """A published scope template with `<param>` placeholders filled in: strings, AllOf/AnyOf,
    and inside them for/each (spliced) and if/then/else (dropped without a branch)."""
    if isinstance(template, str):
        return re.sub(r"<([A-Za-z][A-Za-z0-9_]*)>", lambda m: params[m[1]], template)
    ((op, items),) = template.items()
    rendered = []
    for item in items:
        if isinstance(item, dict) and "for" in item:
            each = item["each"]
            rendered += [render(each, {**params, item["for"]: v}) for v in params[item["in"]]]
        elif isinstance(item, dict) and "if" in item:
            branch = item["then"] if params[item["if"]] else item.get("else")
            if branch is not None:
                rendered.append(render(branch, params))
        else:
            rendered.append(render(item, params))
    return {op: rendered}


def scopes_of(expression: Any) -> list[str]:
    if isinstance(expression, str):
        return [expression]
    ((_, items),) = expression.items()
    return [scope for item in items for scope in scopes_of(item)]


def sample_body(schema: dict[str, Any]) -> dict[str, str]:
    """A valid body for a served input schema: each required string property set (to its
    first published example, if it has one)."""
    properties = schema.get("properties", {})
    return {
        name: properties.get(name, {}).get("examples", [f"probe-{name}"])[0]
        for name in schema.get("required", [])
    }


def published(root_url: str) -> list[dict[str, Any]]:
    """Every entry of the served api.json, with the request that calls it."""
    reference = httpx.get(f"{root_url}/references/purge-cache/v1/api.json").json()
    entries = []
    for entry in reference["entries"]:
        params: dict[str, Any] = {"workerPoolId": POOL, **DERIVED.get(entry["name"], {})}
        body = None
        if "input" in entry:
            name = entry["input"].removeprefix("v1/").removesuffix("#")
            schema = httpx.get(f"{root_url}/schemas/purge-cache/v1/{name}").json()
            body = sample_body(schema)
            params.update(body)
        path = entry["route"]
        for arg in entry["args"]:
            path = path.replace(f"<{arg}>", quote(params[arg], safe=""))
        # a scope parameter that is neither in the URL nor in the body is a query parameter
        read = re.findall(r"<([A-Za-z][A-Za-z0-9_]*)>", json.dumps(entry.get("scopes")))
        query = {name: params[name] for name in read if name in entry["query"]}
        if query:
            path += "?" + urlencode(query)
        required = render(entry["scopes"], params) if "scopes" in entry else None
        entries.append({**entry, "path": path, "body": body, "required": required})
    return entries


@pytest.fixture(scope="module", params=["rsgi", "asgi"])
def probe(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, list[dict[str, Any]]]]:
    """A server whose clients file has, per scoped endpoint, `only-<name>` holding just its
    rendered scope and `others-<name>` holding every other endpoint's."""
    data = tmp_path_factory.mktemp("scopes")
    first = start_server(data / "discover")
    try:
        entries = published(first.root_url)
    finally:  # a failed read must not leave the server running after the test
        first.stop()
    scoped = [entry for entry in entries if entry["required"] is not None]
    clients = ["anonymous_scopes = []"]
    for entry in scoped:
        mine = scopes_of(entry["required"])
        others = sorted(
            {s for other in scoped for s in scopes_of(other["required"]) if s not in mine}
        )
        for client_id, scopes in (
            (f"only-{entry['name']}", mine),
            (f"others-{entry['name']}", others),
        ):
            clients.append(
                f'[[clients]]\nclient_id = "{client_id}"\naccess_token = "{client_id}-token"\n'
                f"scopes = {scopes!r}".replace("'", '"')
            )
    (data / "live").mkdir()
    (data / "live" / "test-clients.toml").write_text("\n".join(clients) + "\n")
    live = start_server(data / "live", "--interface", request.param)
    yield live, entries
    live.stop()


def call(live: LiveServer, entry: dict[str, Any], client_id: str | None) -> httpx.Response:
    auth = None if client_id is None else HawkAuth(client_id, f"{client_id}-token")
    return httpx.request(
        entry["method"].upper(), f"{live.api}{entry['path']}", json=entry["body"], auth=auth
    )


def test_every_endpoint_is_published_with_its_request(
    probe: tuple[LiveServer, list[dict[str, Any]]],
) -> None:
    """The probe covers every published endpoint, the scoped ones included."""
    _, entries = probe
    names = {entry["name"] for entry in entries}
    assert {"purgeCache", "purgeRequests", "allPurgeRequests", "ping"} <= names
    assert {e["name"] for e in entries if e["required"] is not None} >= {
        "purgeCache",
        "purgeRequests",
        "allPurgeRequests",
    }


def test_the_published_scope_alone_gets_past_authorization(
    probe: tuple[LiveServer, list[dict[str, Any]]],
) -> None:
    """For each endpoint, its rendered published template is enough."""
    live, entries = probe
    for entry in entries:
        client = None if entry["required"] is None else f"only-{entry['name']}"
        response = call(live, entry, client)
        assert response.status_code < 300, (entry["name"], response.text)


def test_every_other_scope_is_refused_naming_the_published_one(
    probe: tuple[LiveServer, list[dict[str, Any]]],
) -> None:
    """For each scoped endpoint, all the other endpoints' scopes get 403 InsufficientScopes
    whose required expression is exactly the rendered published template."""
    live, entries = probe
    for entry in entries:
        if entry["required"] is None:
            continue
        response = call(live, entry, f"others-{entry['name']}")
        assert response.status_code == 403, (entry["name"], response.text)
        body = response.json()
        assert body["code"] == "InsufficientScopes"
        (required,) = REQUIRED_RE.findall(body["message"])
        expected = entry["required"]
        found = required if isinstance(expected, str) else json.loads(required)
        assert found == expected, entry["name"]
