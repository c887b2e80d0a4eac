"""Scope algebra against the shared vectors (spec auth.md §5, vectors/scopes.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from purgecache.auth.scopes import (
    RoleExpansionError,
    RoleResolver,
    ScopeExpressionError,
    ScopeSet,
    ScopeTemplate,
    ScopeTemplateError,
    format_expression,
    is_valid_scope,
    normalize,
    sort_scopes,
    unsatisfied,
)

from support.scopes_reference import (
    expand_roles,
    is_valid_expression,
    is_valid_template,
    params_sufficient,
    render_template,
    satisfies,
    satisfying_scopes,
)

VECTORS_PATH = Path(__file__).resolve().parents[3] / "shared" / "spec" / "vectors" / "scopes.json"
VECTORS: dict[str, Any] | None = (
    json.loads(VECTORS_PATH.read_text(encoding="utf-8")) if VECTORS_PATH.exists() else None
)


def _case_id(section: str, index: int, case: dict[str, Any]) -> str:
    """The vector's own id, or a readable one for sections whose cases have none."""
    if "id" in case:
        return str(case["id"])
    if section == "validScope":
        return f"{index}:{json.dumps(case['scope'])}"
    return f"{index}:{json.dumps(case['input'])}"


def cases(section: str) -> list[Any]:
    """Every case of a vectors section as pytest params (a skipped placeholder if absent)."""
    if VECTORS is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{VECTORS_PATH} is absent"))]
    return [
        pytest.param(case, id=_case_id(section, index, case))
        for index, case in enumerate(VECTORS[section]["cases"])
    ]


def _roles(case: dict[str, Any]) -> dict[str, list[str]]:
    """The vector's role list as a role id -> scopes mapping."""
    return {role["roleId"]: role["scopes"] for role in case["roles"]}


# ---------------------------------------------------------------------------- validScope


@pytest.mark.parametrize("case", cases("validScope"))
def test_valid_scope(case: dict[str, Any]) -> None:
    """A scope is valid iff it is a string of U+0020-U+007E characters only."""
    assert is_valid_scope(case["scope"]) is case["valid"]


@pytest.mark.parametrize("value", [None, 1, b"a", ["a"], {"AllOf": []}])
def test_valid_scope_rejects_non_strings(value: object) -> None:
    """Non-string values are never valid scopes."""
    assert is_valid_scope(value) is False


# ---------------------------------------------------------------------------- satisfaction


@pytest.mark.parametrize("case", cases("satisfaction"))
def test_satisfies(case: dict[str, Any]) -> None:
    """satisfies() matches upstream satisfiesExpression."""
    assert satisfies(case["held"], case["required"]) is case["expected"]


@pytest.mark.parametrize("case", cases("satisfaction"))
def test_scope_set_agrees_with_satisfies(case: dict[str, Any]) -> None:
    """A precompiled ScopeSet gives the same verdict as satisfies() for every case."""
    held = ScopeSet(case["held"])
    assert held.satisfies(case["required"]) is case["expected"]
    assert satisfies(held, case["required"]) is case["expected"]
    if isinstance(case["required"], str):
        assert held.satisfies_scope(case["required"]) is case["expected"]


@pytest.mark.parametrize("case", cases("satisfaction"))
def test_satisfying_scopes(case: dict[str, Any]) -> None:
    """satisfying_scopes() matches upstream scopesSatisfying (None when unsatisfied)."""
    assert satisfying_scopes(case["held"], case["required"]) == case["satisfyingScopes"]


@pytest.mark.parametrize("case", cases("satisfaction"))
def test_unsatisfied(case: dict[str, Any]) -> None:
    """unsatisfied() matches upstream removeGivenScopes (None when satisfied)."""
    assert unsatisfied(case["held"], case["required"]) == case["unsatisfied"]
    assert unsatisfied(ScopeSet(case["held"]), case["required"]) == case["unsatisfied"]


def test_scope_set_is_normalized_and_immutable() -> None:
    """ScopeSet keeps its scopes in normal form and refuses attribute assignment."""
    held = ScopeSet(["b", "a", "a*", "ab", "b"])
    assert held.scopes == ("a*", "b")
    assert list(held) == ["a*", "b"]
    assert len(held) == 2
    assert held == ScopeSet(["b", "a*"])
    assert hash(held) == hash(ScopeSet(["a*", "b"]))
    with pytest.raises(AttributeError):
        held._scopes = ()


def test_scope_set_lone_star() -> None:
    """A held `*` satisfies every scope, but still not an empty AnyOf."""
    held = ScopeSet(["x", "*"])
    assert held.scopes == ("*",)
    assert held.satisfies_scope("")
    assert held.satisfies({"AllOf": ["a", {"AnyOf": ["b"]}]})
    assert not held.satisfies({"AnyOf": []})


def test_scope_set_rejects_bare_string_and_non_strings() -> None:
    """A single string or non-string members are refused rather than iterated."""
    with pytest.raises(TypeError):
        ScopeSet("abc")
    with pytest.raises(TypeError):
        ScopeSet(["a", 1])  # type: ignore[list-item]


@pytest.mark.parametrize(
    "expr",
    [{"AllOf": [], "AnyOf": []}, {"OneOf": ["a"]}, {"AllOf": "a"}, {}, ["a"], None],
)
def test_malformed_expression_raises(expr: Any) -> None:
    """Evaluating something that is not a scope expression raises ScopeExpressionError."""
    assert not is_valid_expression(expr)
    with pytest.raises(ScopeExpressionError):
        satisfies(["*"], expr)
    with pytest.raises(ScopeExpressionError):
        unsatisfied([], expr)


def test_valid_expression() -> None:
    """is_valid_expression accepts nested AllOf/AnyOf of valid scopes only."""
    assert is_valid_expression({"AnyOf": [{"AllOf": []}, "a", {"AllOf": ["b"]}]})
    assert not is_valid_expression({"AllOf": ["tab\there"]})


def test_format_expression() -> None:
    """A bare scope is shown as is, anything else as 2-space-indented JSON (as in 403s)."""
    assert format_expression("purge-cache:proj-a/linux:cache-2") == (
        "purge-cache:proj-a/linux:cache-2"
    )
    assert format_expression({"AnyOf": ["a", {"AllOf": []}]}) == (
        '{\n  "AnyOf": [\n    "a",\n    {\n      "AllOf": []\n    }\n  ]\n}'
    )


# ---------------------------------------------------------------------------- normalize


@pytest.mark.parametrize("case", cases("normalize"))
def test_sort_scopes(case: dict[str, Any]) -> None:
    """sort_scopes orders `P*` before `P` before `P...` and keeps duplicates."""
    assert sort_scopes(case["input"]) == case["sorted"]


@pytest.mark.parametrize("case", cases("normalize"))
def test_normalize(case: dict[str, Any]) -> None:
    """normalize sorts, dedupes and drops scopes covered by an earlier star scope."""
    assert normalize(case["input"]) == case["normalized"]
    assert normalize(case["normalized"]) == case["normalized"]
    assert ScopeSet(case["input"]).scopes == tuple(case["normalized"])


# ---------------------------------------------------------------------------- templates


@pytest.mark.parametrize("case", cases("templates"))
def test_render_template(case: dict[str, Any]) -> None:
    """render_template gives the expected expression or upstream's exact error message."""
    if "expectedError" in case:
        with pytest.raises(ScopeTemplateError) as caught:
            render_template(case["template"], case["params"])
        assert str(caught.value) == case["expectedError"]
        assert caught.value.message == case["expectedError"]
    else:
        assert render_template(case["template"], case["params"]) == case["expected"]


@pytest.mark.parametrize("case", cases("templates"))
def test_precompiled_template_renders_the_same(case: dict[str, Any]) -> None:
    """A ScopeTemplate compiled once renders exactly like render_template."""
    template = ScopeTemplate(case["template"])
    if "expectedError" in case:
        with pytest.raises(ScopeTemplateError) as caught:
            template.render(case["params"])
        assert str(caught.value) == case["expectedError"]
    else:
        assert template.render(case["params"]) == case["expected"]


@pytest.mark.parametrize("case", cases("templates"))
def test_template_validity(case: dict[str, Any]) -> None:
    """is_valid_template matches upstream's template syntax check (validTemplate)."""
    assert is_valid_template(case["template"]) is case["validTemplate"]


@pytest.mark.parametrize("case", cases("templates"))
def test_params_sufficient(case: dict[str, Any]) -> None:
    """params_sufficient checks every parameter of every branch has the right type."""
    assert params_sufficient(case["template"], case["params"]) is case["paramsSufficient"]


@pytest.mark.parametrize(
    "template",
    [
        {"for": "a", "in": "b", "each": "<a>"},
        {"if": "p", "then": {"for": "a", "in": "b", "each": "<a>"}},
        {"AllOf": [{"for": "a", "in": "b", "each": {"AllOf": []}}]},
        {"AllOf": [{"for": "a.b", "in": "b", "each": "x"}]},
        {"if": "1p", "then": "x"},
        {"if": "p", "then": "x", "else": None},
        {"AllOf": "x"},
        {"AllOf": [], "AnyOf": []},
        5,
        None,
    ],
)
def test_invalid_template(template: object) -> None:
    """Malformed templates are rejected, and rendering them raises ScopeTemplateError."""
    assert not is_valid_template(template)
    with pytest.raises(ScopeTemplateError):
        render_template(template, {})


def test_template_params_and_numbers() -> None:
    """ScopeTemplate lists its parameter types; numbers render like JavaScript numbers."""
    template = ScopeTemplate(
        {"AllOf": ["x:<a>", {"for": "c", "in": "cs", "each": "<c>"}, {"if": "p", "then": "y"}]}
    )
    assert template.params == {"a": "string", "cs": "array", "p": "boolean"}
    for value, text in [(5.0, "5"), (1.5, "1.5"), (1e-5, "0.00001"), (1e21, "1e+21")]:
        assert render_template("n:<n>", {"n": value}) == f"n:{text}"
    with pytest.raises(ScopeTemplateError, match="cannot be both"):
        ScopeTemplate({"AllOf": ["<p>", {"if": "p", "then": "x"}]})


# ---------------------------------------------------------------------------- roleExpansion


@pytest.mark.parametrize("case", cases("roleExpansion"))
def test_expand_roles(case: dict[str, Any]) -> None:
    """expand_roles gives the input plus everything its roles grant, in normal form."""
    expanded = expand_roles(case["input"], _roles(case))
    assert expanded == normalize(case["expected"])
    assert set(expanded) == set(case["expected"])


@pytest.mark.parametrize("case", cases("roleExpansion"))
def test_role_resolver_reusable(case: dict[str, Any]) -> None:
    """One RoleResolver expands repeatedly with the same result as expand_roles."""
    resolver = RoleResolver(_roles(case))
    first = resolver.expand(case["input"])
    assert first == normalize(case["expected"])
    assert resolver.expand(reversed(case["input"])) == first


def test_role_cycle_terminates() -> None:
    """Roles that assume each other expand to a fixed point instead of looping."""
    roles = {"a": ["assume:b", "x"], "b": ["assume:a", "y"]}
    assert expand_roles(["assume:a"], roles) == ["assume:a", "assume:b", "x", "y"]


def test_runaway_parameterized_role_is_refused() -> None:
    """A parameterized role that keeps generating new assume: scopes hits the size guard."""
    resolver = RoleResolver({"grow:*": ["assume:grow:<..>x"]}, max_scopes=50)
    with pytest.raises(RoleExpansionError):
        resolver.expand(["assume:grow:a"])


def test_star_held_reaches_exact_and_parameterized_roles() -> None:
    """`assume:w*` reaches roles it prefixes; a parameterized one gets the parameter `*`."""
    roles = {"worker-pool:*": ["p::<..>:tail"], "worker-admin": ["admin"], "other": ["o"]}
    assert expand_roles(["assume:w*"], roles) == ["admin", "assume:w*", "p::*"]
