"""The rest of the scope algebra of spec auth.md §5, which the service itself never needs but
the shared vectors (vectors/scopes.json) pin: free-function forms of what
`purgecache.auth.scopes` offers as classes, `satisfying_scopes` (upstream's `scopesSatisfying`),
expression and template validity, and whether parameters suffice for a template.

Built on `purgecache.auth.scopes`, so the vectors test the service's own code through it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from purgecache.auth.scopes import (
    ALL_OF,
    ANY_OF,
    RoleResolver,
    ScopeExpression,
    ScopeSet,
    ScopeTemplate,
    ScopeTemplateError,
    is_valid_scope,
    normalize,
)


def is_valid_expression(expr: object) -> bool:
    """True iff ``expr`` is a scope expression made of valid scopes."""
    if isinstance(expr, str):
        return is_valid_scope(expr)
    if not isinstance(expr, dict) or len(expr) != 1:
        return False
    ((op, parts),) = expr.items()
    return (
        op in (ALL_OF, ANY_OF)
        and isinstance(parts, list)
        and all(is_valid_expression(part) for part in parts)
    )


def _held(held: ScopeSet | Iterable[str]) -> ScopeSet:
    return held if isinstance(held, ScopeSet) else ScopeSet(held)


def satisfies(held: ScopeSet | Iterable[str], required: ScopeExpression) -> bool:
    """True iff the held scopes satisfy the scope expression ``required``."""
    return _held(held).satisfies(required)


def satisfying_scopes(
    held: ScopeSet | Iterable[str], required: ScopeExpression
) -> list[str] | None:
    """The required scopes that ``held`` uses to satisfy ``required``, in normal form.

    Upstream ``scopesSatisfying``: not minimal (every satisfied ``AnyOf`` branch counts);
    None when ``required`` is not satisfied.
    """
    used: list[str] = []
    if not _collect_used(_held(held), required, used):
        return None
    return normalize(used)


def _collect_used(held: ScopeSet, expr: ScopeExpression, used: list[str]) -> bool:
    """Append satisfied scopes of ``expr`` to ``used``; on failure leave ``used`` unchanged."""
    if isinstance(expr, str):
        if held.satisfies_scope(expr):
            used.append(expr)
            return True
        return False
    ((op, parts),) = expr.items()
    mark = len(used)
    if op == ALL_OF:
        ok = all(_collect_used(held, part, used) for part in parts)
    else:
        ok = False
        for part in parts:
            ok = _collect_used(held, part, used) or ok
    if not ok:
        del used[mark:]
    return ok


def is_valid_template(template: object) -> bool:
    """True iff ``template`` compiles as a (root) scope expression template.

    Slightly stricter than a syntax check: a parameter read with two types is refused too.
    """
    try:
        ScopeTemplate(template)
    except ScopeTemplateError:
        return False
    return True


def render_template(template: object, params: Mapping[str, object]) -> ScopeExpression | None:
    """Compile and render a template in one go; None when it renders to nothing."""
    return ScopeTemplate(template).render(params)


def params_sufficient(template: object, params: Mapping[str, object]) -> bool:
    """True iff ``params`` give every parameter, in every branch, a value of its type."""
    return all(
        _has_type(params.get(name), kind) for name, kind in ScopeTemplate(template).params.items()
    )


def _has_type(value: object, kind: str) -> bool:
    """True iff ``value`` fits a template parameter of type ``kind``."""
    if kind == "string":
        return isinstance(value, str) or (
            isinstance(value, int | float) and not isinstance(value, bool)
        )
    if kind == "array":
        return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    return isinstance(value, bool)


def expand_roles(scopes: Iterable[str], roles: Mapping[str, Sequence[str]]) -> list[str]:
    """Expand ``assume:`` scopes through ``roles`` once; result in normal form."""
    return RoleResolver(roles).expand(scopes)
