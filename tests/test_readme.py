"""The README's endpoint table says what the endpoint table declares."""

from __future__ import annotations

import re
from pathlib import Path

from purgecache.api.endpoints import ENDPOINTS

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_endpoint_rows() -> dict[str, tuple[str, str]]:
    """`name -> (method and route cell, scope cell)` from the README's `### Endpoints` table."""
    text = README.read_text("utf-8")
    section = text.split("### Endpoints", 1)[1]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = (cells[1], cells[2])
        elif rows and not line.startswith("|"):
            break
    return rows


def test_the_readme_lists_every_endpoint_with_its_route_and_scope() -> None:
    """One README row per declared endpoint, with its method, route and scope template."""
    rows = readme_endpoint_rows()
    assert set(rows) == {endpoint.name for endpoint in ENDPOINTS}
    for endpoint in ENDPOINTS:
        route, scope = rows[endpoint.name]
        assert route.startswith(f"`{endpoint.method} {endpoint.route}"), endpoint.name
        if endpoint.scopes is None:
            assert scope == "none", endpoint.name
        elif isinstance(endpoint.scopes, str):
            assert re.match(rf"`{re.escape(endpoint.scopes)}`", scope), endpoint.name
        else:  # a structured template: each scope it renders is shown
            for text in template_texts(endpoint.scopes):
                assert re.search(rf"`{re.escape(text)}`", scope), (endpoint.name, text)


def template_texts(template: object) -> list[str]:
    """The scope texts of a structured scope template (strings and for/each's `each`)."""
    if isinstance(template, str):
        return [template]
    if isinstance(template, list):
        return [text for item in template for text in template_texts(item)]
    assert isinstance(template, dict)
    if "each" in template:
        return [template["each"]]
    parts = [template[key] for key in ("AllOf", "AnyOf", "then", "else") if key in template]
    return [text for part in parts for text in template_texts(part)]
