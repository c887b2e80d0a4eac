"""Scope algebra for Taskcluster-compatible authorization (spec auth.md §5): what the service
runs.

Everything here is pure: no I/O, no clock, no HTTP types.

* valid scopes (§5.1): :func:`is_valid_scope`;
* satisfaction of scope expressions (§5.2): :class:`ScopeSet` (precompiled, for the hot
  path), :func:`unsatisfied` (the 403 "missing" reduction);
* normal form (§5.2): :func:`sort_scopes`, :func:`normalize`;
* endpoint templates (§5.3): :class:`ScopeTemplate` (AllOf/AnyOf, for/each, if/then/else);
* roles and ``assume:`` (§5.4): :class:`RoleResolver`;
* 403 message formatting (§7.2): :func:`format_expression`.

The rest of §5 that the shared vectors pin (free-function forms, ``satisfying_scopes``,
validity checks) lives with the tests, in ``tests/support/scopes_reference.py``.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, NoReturn, TypeAlias, TypeGuard

__all__ = [
    "ALL_OF",
    "ANY_OF",
    "DEFAULT_MAX_SCOPES",
    "RoleExpansionError",
    "RoleResolver",
    "ScopeExpression",
    "ScopeExpressionError",
    "ScopeSet",
    "ScopeTemplate",
    "ScopeTemplateError",
    "format_expression",
    "is_valid_scope",
    "js_number",
    "normalize",
    "sort_scopes",
    "unsatisfied",
]

ScopeExpression: TypeAlias = str | dict[str, list["ScopeExpression"]]
"""A scope string, ``{"AllOf": [expr, ...]}`` or ``{"AnyOf": [expr, ...]}``."""

ALL_OF: Final = "AllOf"
ANY_OF: Final = "AnyOf"

_VALID_SCOPE: Final = re.compile(r"[\x20-\x7e]*")


class ScopeExpressionError(ValueError):
    """A value that should be a scope expression is not one."""


class ScopeTemplateError(ValueError):
    """A scope expression template is malformed or cannot be rendered with the given params.

    Upstream treats this as a programming error: the request gets a 500, not a 403.
    """

    def __init__(self, message: str) -> None:
        """Keep ``message`` (upstream's exact text where the spec gives one)."""
        super().__init__(message)
        self.message = message


class RoleExpansionError(ValueError):
    """Role expansion does not terminate (parameterized roles that keep growing)."""


# --------------------------------------------------------------------------- §5.1 valid scopes


def is_valid_scope(scope: object) -> bool:
    """True iff ``scope`` is a string of characters U+0020-U+007E only (empty is valid)."""
    return isinstance(scope, str) and _VALID_SCOPE.fullmatch(scope) is not None


# --------------------------------------------------------------------------- §5.2 normal form


def _compare_key(scope: str) -> tuple[str, bool]:
    """Sort key for "``P*`` before ``P`` before ``P...``": strip one trailing star, star first."""
    if scope.endswith("*"):
        return scope[:-1], False
    return scope, True


def sort_scopes(scopes: Iterable[str]) -> list[str]:
    """Sort scopes in normal-form order, keeping duplicates (upstream ``scopeCompare``)."""
    return sorted(scopes, key=_compare_key)


def normalize(scopes: Iterable[str]) -> list[str]:
    """Return the normal form: sorted, deduplicated, without scopes an earlier star covers.

    After sorting, everything a star scope ``P*`` covers follows it contiguously, so only
    the most recently kept star scope needs to be checked.
    """
    result: list[str] = []
    star_prefix: str | None = None
    for scope in sort_scopes(scopes):
        if star_prefix is not None and scope.startswith(star_prefix):
            continue
        if result and result[-1] == scope:
            continue
        result.append(scope)
        if scope.endswith("*"):
            star_prefix = scope[:-1]
    return result


def _scope_list(scopes: Iterable[str]) -> list[str]:
    """Materialize ``scopes``, rejecting a bare string and non-string members."""
    if isinstance(scopes, str):
        raise TypeError("expected an iterable of scopes, not a single string")
    items = list(scopes)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"scopes must be strings, got {item!r}")
    return items


# --------------------------------------------------------------------------- §5.2 satisfaction


def _operands(expr: ScopeExpression) -> tuple[str, list[ScopeExpression]]:
    """Split an ``AllOf``/``AnyOf`` expression into its operator and parts."""
    if isinstance(expr, dict) and len(expr) == 1:
        ((op, parts),) = expr.items()
        if op in (ALL_OF, ANY_OF) and isinstance(parts, list):
            return op, parts
    raise ScopeExpressionError(f"expected a valid scope expression, got {expr!r}")


class ScopeSet:
    """An immutable, precompiled set of held scopes for fast repeated satisfaction checks.

    Holds the normal form as a frozenset of exact scopes plus a tuple of star prefixes, so
    :meth:`satisfies_scope` is one hash lookup and one ``str.startswith(tuple)`` call.
    """

    __slots__ = ("_everything", "_exact", "_prefixes", "_scopes")

    _scopes: tuple[str, ...]
    _exact: frozenset[str]
    _prefixes: tuple[str, ...]
    _everything: bool

    def __init__(self, scopes: Iterable[str] = ()) -> None:
        """Compile ``scopes`` (any iterable of strings; order and duplicates do not matter)."""
        normal = tuple(normalize(_scope_list(scopes)))
        object.__setattr__(self, "_scopes", normal)
        object.__setattr__(self, "_exact", frozenset(normal))
        object.__setattr__(self, "_prefixes", tuple(s[:-1] for s in normal if s.endswith("*")))
        object.__setattr__(self, "_everything", normal == ("*",))

    def __setattr__(self, name: str, value: object) -> NoReturn:
        """Refuse mutation: a ScopeSet is immutable."""
        raise AttributeError("ScopeSet is immutable")

    @property
    def scopes(self) -> tuple[str, ...]:
        """The held scopes in normal form."""
        return self._scopes

    def satisfies_scope(self, scope: str) -> bool:
        """True iff some held scope equals ``scope`` or is a star scope prefixing it."""
        return self._everything or scope in self._exact or scope.startswith(self._prefixes)

    def satisfies(self, expr: ScopeExpression) -> bool:
        """True iff the held scopes satisfy the scope expression ``expr``."""
        if isinstance(expr, str):
            return self.satisfies_scope(expr)
        op, parts = _operands(expr)
        if op == ALL_OF:
            return all(self.satisfies(part) for part in parts)
        return any(self.satisfies(part) for part in parts)

    def __iter__(self) -> Iterator[str]:
        """Iterate over the scopes in normal form."""
        return iter(self._scopes)

    def __len__(self) -> int:
        """Number of scopes in normal form."""
        return len(self._scopes)

    def __eq__(self, other: object) -> bool:
        """Two sets are equal when their normal forms are."""
        return isinstance(other, ScopeSet) and self._scopes == other._scopes

    def __hash__(self) -> int:
        """Hash of the normal form."""
        return hash(self._scopes)

    def __repr__(self) -> str:
        """Show the normal form."""
        return f"ScopeSet({list(self._scopes)!r})"


def _held(held: ScopeSet | Iterable[str]) -> ScopeSet:
    """Use ``held`` as is if already compiled, else compile it."""
    return held if isinstance(held, ScopeSet) else ScopeSet(held)


def unsatisfied(
    held: ScopeSet | Iterable[str], required: ScopeExpression
) -> ScopeExpression | None:
    """What is missing from ``held`` to satisfy ``required`` (upstream ``removeGivenScopes``).

    None when satisfied. Satisfied scopes vanish; an ``AllOf`` keeps its unsatisfied parts;
    an ``AnyOf`` vanishes if any part is satisfied, else keeps all its (reduced) parts; a
    single remaining part replaces its parent.
    """
    return _remove_given(_held(held), required)


def _remove_given(held: ScopeSet, expr: ScopeExpression) -> ScopeExpression | None:
    """Recursive step of :func:`unsatisfied`."""
    if isinstance(expr, str):
        return None if held.satisfies_scope(expr) else expr
    op, parts = _operands(expr)
    reduced = [_remove_given(held, part) for part in parts]
    if op == ANY_OF and None in reduced:
        return None
    missing = [part for part in reduced if part is not None]
    if op == ALL_OF and not missing:
        return None
    return missing[0] if len(missing) == 1 else {op: missing}


def format_expression(expr: ScopeExpression) -> str:
    """Render an expression for a 403 message: a bare scope as is, else 2-space JSON."""
    if isinstance(expr, str):
        return expr
    return json.dumps(expr, indent=2, ensure_ascii=False)


# --------------------------------------------------------------------------- §5.3 templates

_PARAM_NAME: Final = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*")
_PLACEHOLDER: Final = re.compile(r"<([a-zA-Z][a-zA-Z0-9_]*)>")


@dataclass(frozen=True, slots=True)
class _Text:
    """A string template split at placeholders: odd entries are parameter names."""

    parts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Group:
    """An ``AllOf``/``AnyOf`` of templates."""

    op: str
    items: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _ForEach:
    """``{"for": var, "in": source, "each": text}``, spliced into the parent group."""

    var: str
    source: str
    each: _Text


@dataclass(frozen=True, slots=True)
class _If:
    """``{"if": cond, "then": ..., "else": ...}``; ``otherwise`` None when there is no else."""

    cond: str
    then: _Node
    otherwise: _Node | None


_Node: TypeAlias = _Text | _Group | _ForEach | _If


def _invalid_template(template: object) -> ScopeTemplateError:
    """The error for a syntactically invalid template."""
    return ScopeTemplateError(f"Invalid scope expression template: {template!r}")


def _is_param_name(value: object) -> bool:
    """True iff ``value`` is a string matching ``[a-zA-Z][a-zA-Z0-9_]*``."""
    return isinstance(value, str) and _PARAM_NAME.fullmatch(value) is not None


def _compile_text(template: str) -> _Text:
    """Split a string template at its ``<name>`` placeholders."""
    return _Text(tuple(_PLACEHOLDER.split(template)))


def _compile(template: object, *, root: bool) -> _Node:
    """Check and compile a template; ``for`` is allowed only when not ``root``."""
    if isinstance(template, str):
        return _compile_text(template)
    if not isinstance(template, dict):
        raise _invalid_template(template)
    keys = set(template)
    if keys in ({ALL_OF}, {ANY_OF}):
        return _compile_group(template)
    if keys == {"for", "in", "each"} and not root:
        return _compile_for(template)
    if keys in ({"if", "then"}, {"if", "then", "else"}):
        return _compile_if(template)
    raise _invalid_template(template)


def _compile_group(template: dict[object, object]) -> _Group:
    """Compile ``{"AllOf": [...]}`` / ``{"AnyOf": [...]}``."""
    ((op, items),) = template.items()
    if not isinstance(items, list):
        raise _invalid_template(template)
    return _Group(str(op), tuple(_compile(item, root=False) for item in items))


def _compile_for(template: dict[object, object]) -> _ForEach:
    """Compile ``{"for": ..., "in": ..., "each": "<string>"}``."""
    var, source, each = template["for"], template["in"], template["each"]
    if not (_is_param_name(var) and _is_param_name(source) and isinstance(each, str)):
        raise _invalid_template(template)
    return _ForEach(str(var), str(source), _compile_text(each))


def _compile_if(template: dict[object, object]) -> _If:
    """Compile ``{"if": ..., "then": ...[, "else": ...]}``."""
    cond = template["if"]
    if not _is_param_name(cond):
        raise _invalid_template(template)
    then = _compile(template["then"], root=True)
    otherwise = _compile(template["else"], root=True) if "else" in template else None
    return _If(str(cond), then, otherwise)


def _merge_types(first: dict[str, str], second: dict[str, str]) -> dict[str, str]:
    """Union of two ``{param: type}`` maps; a parameter may not have two types."""
    merged = dict(first)
    for name, kind in second.items():
        if merged.setdefault(name, kind) != kind:
            raise ScopeTemplateError(
                f"Parameter {name} cannot be both '{kind}' and '{merged[name]}'"
            )
    return merged


def _param_types(node: _Node) -> dict[str, str]:
    """``{param: "string" | "array" | "boolean"}`` for every parameter the template reads."""
    if isinstance(node, _Text):
        return {name: "string" for name in node.parts[1::2]}
    if isinstance(node, _Group):
        merged: dict[str, str] = {}
        for item in node.items:
            merged = _merge_types(merged, _param_types(item))
        return merged
    if isinstance(node, _ForEach):
        merged = _merge_types({node.source: "array", node.var: "string"}, _param_types(node.each))
        del merged[node.var]
        return merged
    branches = _param_types(node.then)
    if node.otherwise is not None:
        branches = _merge_types(branches, _param_types(node.otherwise))
    return _merge_types({node.cond: "boolean"}, branches)


def _is_number(value: object) -> TypeGuard[int | float]:
    """True for ints and floats, but not booleans (JavaScript ``typeof === 'number'``)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def js_number(value: int | float) -> str:
    """Format a number the way JavaScript's ``Number.prototype.toString`` does."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if 1e-6 <= abs(value) < 1e21:
        return format(Decimal(text), "f")
    mantissa, _, exponent = text.partition("e")
    power = int(exponent)
    return f"{mantissa}e{'+' if power > 0 else '-'}{abs(power)}"


def _param_text(name: str, params: Mapping[str, object]) -> str:
    """The text a ``<name>`` placeholder is replaced with."""
    value = params.get(name)
    if isinstance(value, str):
        return value
    if _is_number(value):
        return js_number(value)
    raise ScopeTemplateError(
        f"Scope expression template expected parameter '{name}' to be a string or number"
    )


def _render_text(node: _Text, params: Mapping[str, object]) -> str:
    """Substitute the placeholders of a string template (verbatim, not recursively)."""
    pieces = list(node.parts)
    for index in range(1, len(pieces), 2):
        pieces[index] = _param_text(pieces[index], params)
    return "".join(pieces)


def _render_for(node: _ForEach, params: Mapping[str, object]) -> list[ScopeExpression]:
    """Render ``each`` once per element of the array parameter ``source``."""
    values = params.get(node.source)
    if not isinstance(values, list | tuple):
        raise ScopeTemplateError(
            f"Scope expression template expected parameter '{node.source}' to be a array"
        )
    scoped = dict(params)
    rendered: list[ScopeExpression] = []
    for value in values:
        scoped[node.var] = value
        rendered.append(_render_text(node.each, scoped))
    return rendered


def _render_group(node: _Group, params: Mapping[str, object]) -> ScopeExpression:
    """Render an ``AllOf``/``AnyOf``: ``for`` splices, an ``if`` without result vanishes."""
    items: list[ScopeExpression] = []
    for item in node.items:
        if isinstance(item, _ForEach):
            items.extend(_render_for(item, params))
            continue
        rendered = _render(item, params)
        if rendered is not None:
            items.append(rendered)
    return {node.op: items}


def _render_if(node: _If, params: Mapping[str, object]) -> ScopeExpression | None:
    """Render ``then`` or ``else`` by a strictly boolean parameter; None if no else applies."""
    value = params.get(node.cond)
    if value is True:
        return _render(node.then, params)
    if value is False:
        return None if node.otherwise is None else _render(node.otherwise, params)
    raise ScopeTemplateError(
        f"Scope expression template expected parameter '{node.cond}' to be a boolean"
    )


def _render(node: _Node, params: Mapping[str, object]) -> ScopeExpression | None:
    """Render a compiled template; None when it renders to nothing."""
    if isinstance(node, _Text):
        return _render_text(node, params)
    if isinstance(node, _Group):
        return _render_group(node, params)
    if isinstance(node, _If):
        return _render_if(node, params)
    raise ScopeTemplateError("a 'for' template is only allowed inside AllOf/AnyOf")


class ScopeTemplate:
    """A checked, precompiled scope expression template (an endpoint's ``scopes``)."""

    __slots__ = ("_params", "_root", "template")

    def __init__(self, template: object) -> None:
        """Compile ``template``; raise :class:`ScopeTemplateError` if it is malformed."""
        self.template = template
        self._root = _compile(template, root=True)
        self._params = _param_types(self._root)

    @property
    def params(self) -> dict[str, str]:
        """Every parameter the template reads, mapped to "string", "array" or "boolean"."""
        return dict(self._params)

    def render(self, params: Mapping[str, object]) -> ScopeExpression | None:
        """Render with ``params``; None means the endpoint is public for this request."""
        return _render(self._root, params)


# --------------------------------------------------------------------------- §5.4 roles

_ASSUME: Final = "assume:"
_ROLE_PARAM: Final = "<..>"
DEFAULT_MAX_SCOPES: Final = 100_000


def _substitute(scope: str, param: str) -> str:
    """Put ``param`` in place of ``<..>``; a starred param also drops what follows ``<..>``."""
    head, mark, _ = scope.partition(_ROLE_PARAM)
    if not mark:
        return scope
    if param.endswith("*"):
        return head + param
    return scope.replace(_ROLE_PARAM, param)


@dataclass(frozen=True, slots=True)
class _Role:
    """A role; ``prefix`` is the id without its trailing ``*`` for star roles, else None."""

    role_id: str
    scopes: tuple[str, ...]
    prefix: str | None
    parameterized: bool

    def grant(self, param: str) -> Iterable[str]:
        """The scopes this role grants when reached with the ``*``-matched part ``param``."""
        if not self.parameterized:
            return self.scopes
        return [_substitute(scope, param) for scope in self.scopes]


def _make_role(role_id: str, scopes: Sequence[str]) -> _Role:
    """Build a :class:`_Role` from one entry of the roles mapping."""
    if not isinstance(role_id, str):
        raise TypeError(f"role ids must be strings, got {role_id!r}")
    granted = tuple(_scope_list(scopes))
    if not role_id.endswith("*"):
        return _Role(role_id, granted, None, False)
    parameterized = any(_ROLE_PARAM in scope for scope in granted)
    return _Role(role_id, granted, role_id[:-1], parameterized)


class RoleResolver:
    """Expands ``assume:`` scopes through a fixed set of roles (§5.4).

    Roles are indexed once: exact ids in a dict, star roles by prefix (probed by length),
    and all ids sorted for the "held star reaches every role it prefixes" range lookup.
    """

    __slots__ = ("_exact", "_ids", "_max_scopes", "_roles", "_star", "_star_lengths")

    def __init__(
        self, roles: Mapping[str, Sequence[str]], *, max_scopes: int = DEFAULT_MAX_SCOPES
    ) -> None:
        """Index ``roles`` (role id -> its unexpanded scopes)."""
        self._roles = {role_id: _make_role(role_id, s) for role_id, s in roles.items()}
        self._exact = {r.role_id: r for r in self._roles.values() if r.prefix is None}
        self._star = {r.prefix: r for r in self._roles.values() if r.prefix is not None}
        self._star_lengths = sorted({len(prefix) for prefix in self._star})
        self._ids = sorted(self._roles)
        self._max_scopes = max_scopes

    def expand(self, scopes: Iterable[str]) -> list[str]:
        """The input scopes plus everything their roles grant, recursively, in normal form."""
        found = set(_scope_list(scopes))
        pending = list(found)
        while pending:
            if "*" in found:
                return ["*"]
            for granted in self._direct_grants(pending.pop()):
                if granted not in found:
                    found.add(granted)
                    pending.append(granted)
            if len(found) > self._max_scopes:
                raise RoleExpansionError(
                    f"role expansion exceeded {self._max_scopes} scopes; do the roles form a cycle?"
                )
        return normalize(found)

    def _direct_grants(self, scope: str) -> Iterator[str]:
        """Scopes granted directly (one level) by the roles that ``scope`` reaches."""
        for role, param in self._reached(scope):
            yield from role.grant(param)

    def _reached(self, scope: str) -> Iterator[tuple[_Role, str]]:
        """Roles ``scope`` reaches, each with the parameter for its ``<..>``."""
        if scope.endswith("*"):
            yield from self._reached_by_star(scope[:-1])
        elif scope.startswith(_ASSUME):
            name = scope[len(_ASSUME) :]
            exact = self._exact.get(name)
            if exact is not None:
                yield exact, ""
            yield from self._star_roles_matching(name, "")

    def _reached_by_star(self, held_prefix: str) -> Iterator[tuple[_Role, str]]:
        """Roles reached by a held star scope ``<held_prefix>*``."""
        if _ASSUME.startswith(held_prefix):
            for role in self._roles.values():
                yield role, "*"
            return
        if not held_prefix.startswith(_ASSUME):
            return
        name = held_prefix[len(_ASSUME) :]
        seen: set[str] = set()
        for role, param in self._star_roles_matching(name, "*"):
            seen.add(role.role_id)
            yield role, param
        for role_id in self._ids_starting_with(name):
            if role_id not in seen:
                yield self._roles[role_id], "*"

    def _star_roles_matching(self, name: str, suffix: str) -> Iterator[tuple[_Role, str]]:
        """Star roles whose prefix starts ``name``; parameter = the rest of ``name`` + suffix."""
        for length in self._star_lengths:
            if length > len(name):
                break
            role = self._star.get(name[:length])
            if role is not None:
                yield role, name[length:] + suffix

    def _ids_starting_with(self, prefix: str) -> Iterator[str]:
        """Role ids starting with ``prefix``, via binary search on the sorted ids."""
        index = bisect.bisect_left(self._ids, prefix)
        while index < len(self._ids) and self._ids[index].startswith(prefix):
            yield self._ids[index]
            index += 1
