"""The Hawk request vectors (spec/vectors/hawk.json): loading, and the world as a clients file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPEC_DIR = Path(__file__).resolve().parents[3] / "shared" / "spec"
HAWK_VECTORS_PATH = SPEC_DIR / "vectors" / "hawk.json"
ANONYMOUS_ROLE = "anonymous"

Case = dict[str, Any]


def load_vectors(path: Path = HAWK_VECTORS_PATH) -> dict[str, Any] | None:
    """The parsed vectors file, or None when the shared spec is not checked out."""
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


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
