"""The page's modules run in the browser: WebCrypto Hawk signing reproduces the official JS
client's headers; the formatting helpers say times and problems as the page shows them."""

from __future__ import annotations

import re
from collections.abc import Callable

import mohawk.util
import pytest

from web.admin_page import AdminPage

from conftest import ADMIN, LiveServer
from support.hawk_vectors import load_vectors

VECTORS = load_vectors()
JS_CASES = [
    "js-plain-get",
    "js-authorizedScopes-standard-b64-ext",
    "js-named-temp-authorizedScopes-post",
]

SIGN = """async (c) => {
  const { authorization } = await import("/hawk.js");
  const credentials = { clientId: c.clientId, accessToken: c.accessToken,
    certificate: c.certificate, authorizedScopes: c.authorizedScopes };
  return authorization({ credentials, method: c.request.method, url: new URL(c.request.url),
    ts: String(c.hawk.ts), nonce: c.hawk.nonce });
}"""


@pytest.mark.skipif(VECTORS is None, reason="shared spec vectors/hawk.json not found")
@pytest.mark.parametrize("case_id", JS_CASES)
def test_header_matches_the_js_client_byte_for_byte(
    open_admin: Callable[..., AdminPage], page_server: LiveServer, case_id: str
) -> None:
    """Same credentials, URL, ts and nonce give the JS client's exact Authorization header."""
    assert VECTORS is not None
    case = next(c for c in VECTORS["cases"] if c["id"] == case_id)
    admin = open_admin(server=page_server)
    assert admin.page.evaluate(SIGN, case) == case["request"]["authorization"]


def test_payload_hash_agrees_with_mohawk(
    open_admin: Callable[..., AdminPage], page_server: LiveServer
) -> None:
    """WebCrypto's payload hash of a non-ASCII body is the one mohawk (the Python client) makes."""
    admin = open_admin(server=page_server)
    body = '{"cacheName":"caché"}'
    computed = admin.page.evaluate(
        "async (b) => (await import('/hawk.js')).payloadHash('application/json', b)", body
    )
    expected = mohawk.util.calculate_payload_hash(body.encode(), "sha256", "application/json")
    assert computed == expected.decode()


def test_purge_is_sent_with_a_payload_hash_the_service_accepts(
    open_admin: Callable[..., AdminPage],
) -> None:
    """The POST carries `hash` (JS-client attribute order otherwise) and a non-ASCII name passes."""
    admin = open_admin()
    admin.sign_in(*ADMIN)
    with admin.page.expect_request(lambda r: r.method == "POST") as posted:
        heading = admin.purge("proj-h/linux", "caché")
    header = posted.value.headers["authorization"]
    assert re.fullmatch(
        r'Hawk id="admin", ts="\d+", nonce="\w+", hash="[\w+/=]+", mac="[\w+/=]+"', header
    )
    assert heading == "Purge requested for 1 cache on proj-h/linux."


RELATIVE = [
    (0, "just now"),
    (4, "just now"),
    (42, "42 s ago"),
    (180, "3 min ago"),
    (2 * 3600 + 5, "2 h ago"),
    (86400, "1 day ago"),
    (5 * 86400, "5 days ago"),
    (-120, "in 2 min"),
]


def test_relative_times_read_like_a_person_would_say_them(
    open_admin: Callable[..., AdminPage], page_server: LiveServer
) -> None:
    """ "3 min ago", "2 h ago", "5 days ago"; a `before` ahead of the local clock is "in …"."""
    admin = open_admin(server=page_server)
    said = admin.page.evaluate(
        """async (offsets) => {
             const { relativeTime } = await import("/format.js");
             const now = Date.parse("2026-05-01T12:00:00.000Z");
             return offsets.map((s) => relativeTime(new Date(now - s * 1000).toISOString(), now));
           }""",
        [offset for offset, _ in RELATIVE],
    )
    assert said == [words for _, words in RELATIVE]


def test_taskcluster_message_splits_into_prose_and_scope_blocks(
    open_admin: Callable[..., AdminPage], page_server: LiveServer
) -> None:
    """The ``` fences of a 403 message become code blocks, the rest paragraphs."""
    admin = open_admin(server=page_server)
    message = (
        "Client ID x does not have sufficient scopes and is missing the following scopes:\n\n"
        "```\npurge-cache:a/b:c\n```\n\nThis request requires the client to satisfy the "
        'following scope expression:\n\n```\n{\n  "AllOf": []\n}\n```'
    )
    blocks = admin.page.evaluate(
        "async (m) => (await import('/format.js')).messageBlocks(m)", message
    )
    assert [(b["code"], b["text"].splitlines()[0]) for b in blocks] == [
        (False, "Client ID x does not have sufficient scopes and is missing the following scopes:"),
        (True, "purge-cache:a/b:c"),
        (False, "This request requires the client to satisfy the following scope expression:"),
        (True, "{"),
    ]
