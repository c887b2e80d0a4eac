"""The Hawk request vectors (spec/vectors/hawk.json): loading, the world as a clients file, and
which cases are "plain".

A case is **plain** when its outcome needs nothing beyond permanent credentials checked by
Hawk, the anonymous scopes and the scope check; decided from the case's own fields:

1. no temporary credentials: no `certificate` and no `temporaryCredentials`;
2. no `authorizedScopes`;
3. no bewit: no `hawk.bewit` and no `bewit=` parameter in `request.url`'s query;
4. the world client named by the Hawk `id` (when the request carries an Authorization header)
   is neither `disabled` nor expired at `server.now` (so no disabled/expires behaviour is
   tested; unknown clients are plain: "not found" needs no client fields);
5. no roles needed: when the expected verdict grants access (`expected.authorization.satisfied`)
   the required scope must already be satisfied by the client's *unexpanded* scopes plus the
   anonymous role's scopes (the anonymous role is the clients file's `anonymous_scopes`, a
   plain feature). Cases that only pass through another role (`assume:...`) need roles.

Everything else belongs to the authentication issue.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPEC_DIR = Path(__file__).resolve().parents[3] / "shared" / "spec"
HAWK_VECTORS_PATH = SPEC_DIR / "vectors" / "hawk.json"
ANONYMOUS_ROLE = "anonymous"
SKIP_PREFIX = "authentication issue: temporary credentials / authorizedScopes / bewit / roles"

Case = dict[str, Any]


def load_vectors(path: Path = HAWK_VECTORS_PATH) -> dict[str, Any] | None:
    """The parsed vectors file, or None when the shared spec is not checked out."""
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def iso_to_ms(text: str) -> int:
    """Milliseconds since the epoch of an ISO 8601 UTC date-time such as `2031-01-01T00:00Z`."""
    from datetime import datetime

    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _toml_string(value: str) -> str:
    return json.dumps(value)  # JSON string escapes are valid TOML basic-string escapes


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(_toml_string(v) for v in values) + "]"


def clients_toml(world: dict[str, Any]) -> str:
    """The `world` (clients, roles, the `anonymous` role) as a purgecache clients file."""
    roles = {role["roleId"]: role["scopes"] for role in world["roles"]}
    lines = [f"anonymous_scopes = {_toml_list(roles.get(ANONYMOUS_ROLE, []))}", ""]
    for role_id, scopes in roles.items():
        if role_id == ANONYMOUS_ROLE:
            continue
        lines += [
            "[[roles]]",
            f"role_id = {_toml_string(role_id)}",
            f"scopes = {_toml_list(scopes)}",
            "",
        ]
    for client in world["clients"]:
        lines += [
            "[[clients]]",
            f"client_id = {_toml_string(client['clientId'])}",
            f"access_token = {_toml_string(client['accessToken'])}",
            f"scopes = {_toml_list(client['scopes'])}",
            f"disabled = {'true' if client.get('disabled') else 'false'}",
        ]
        if client.get("expires"):
            lines.append(f"expires = {_toml_string(client['expires'])}")
        lines.append("")
    return "\n".join(lines)


def _satisfied_by(held: list[str], required: str) -> bool:
    """Plain scope satisfaction: an equal scope, or a `*` scope prefixing `required`."""
    return any(s == required or (s.endswith("*") and required.startswith(s[:-1])) for s in held)


def _has_bewit(case: Case) -> bool:
    url: str = case["request"]["url"]
    query = url.split("?", 1)[1] if "?" in url else ""
    return "bewit" in (case.get("hawk") or {}) or any(
        part.split("=", 1)[0] == "bewit" for part in query.split("&")
    )


def non_plain_reasons(case: Case, world: dict[str, Any]) -> list[str]:
    """Why a case is not plain (see the module docstring); empty for plain cases."""
    reasons: list[str] = []
    if "certificate" in case or "temporaryCredentials" in case:
        reasons.append("temporary credentials")
    if "authorizedScopes" in case:
        reasons.append("authorizedScopes")
    if _has_bewit(case):
        reasons.append("bewit")
    clients = {c["clientId"]: c for c in world["clients"]}
    client = clients.get(case.get("clientId") or "")
    if case["request"]["authorization"] is None:
        client = None
    now_ms = case["server"]["now"] * 1000
    if client is not None and client.get("disabled"):
        reasons.append("disabled client")
    if client is not None and client.get("expires") and iso_to_ms(client["expires"]) < now_ms:
        reasons.append("expired client")
    expected = case["expected"]
    authorization = expected.get("authorization") or {}
    if expected["verdict"] in ("auth-success", "no-auth") and authorization.get("satisfied"):
        required = authorization.get("required")
        anonymous = next((r["scopes"] for r in world["roles"] if r["roleId"] == ANONYMOUS_ROLE), [])
        held = [*(client["scopes"] if client else []), *anonymous, f"assume:{ANONYMOUS_ROLE}"]
        if not isinstance(required, str) or not _satisfied_by(held, required):
            reasons.append("roles")
    return reasons


def skip_reason(case: Case, world: dict[str, Any]) -> str | None:
    """The skip reason for a non-plain case, None for a plain one."""
    reasons = non_plain_reasons(case, world)
    return f"{SKIP_PREFIX} (this case: {', '.join(reasons)})" if reasons else None
