"""The admin page's files as the installed package serves them (no browser needed)."""

from __future__ import annotations

import re
from importlib import resources

import httpx
import pytest

from conftest import LiveServer

STATIC = resources.files("purgecache.web") / "static"
TYPES = {"html": "text/html", "js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}


def static_files() -> dict[str, str]:
    """Name -> text of every page file (the page has no sub-folders)."""
    return {entry.name: entry.read_text("utf-8") for entry in STATIC.iterdir() if entry.is_file()}


def test_every_page_file_is_served_with_its_type_and_the_page_policy(
    page_server: LiveServer,
) -> None:
    """Each file under web/static is served at the root with its content type and page CSP."""
    names = static_files()
    assert "index.html" in names
    for name in [*names, ""]:
        reply = httpx.get(f"{page_server.root_url}/{name}")
        assert reply.status_code == 200, name
        expected = TYPES[(name or "index.html").rsplit(".", 1)[-1]]
        assert reply.headers["content-type"].startswith(expected), name
        policy = reply.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "connect-src 'self'" in policy


def test_html_has_no_inline_script_style_or_handler() -> None:
    """The page works under `script-src 'self'; style-src 'self'`: nothing inline."""
    html = static_files()["index.html"]
    assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []
    assert "<style" not in html
    assert re.findall(r"\sstyle=|\son[a-z]+=", html) == []


@pytest.mark.parametrize("name", sorted(static_files()))
def test_nothing_is_loaded_from_another_origin(name: str) -> None:
    """No CDN, font service or absolute URL: every asset comes from the service itself."""
    text = static_files()[name]
    if name.endswith(".svg"):
        text = text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert re.findall(r"https?://|[\"'(]//", text) == []


def test_scripts_import_only_files_that_ship() -> None:
    """Every ES module import, and every src/href of the HTML, names a shipped file."""
    files = static_files()
    wanted = set(re.findall(r'(?:src|href)="([\w.-]+\.(?:js|css|svg))"', files["index.html"]))
    for name, text in files.items():
        if name.endswith(".js"):
            wanted |= set(re.findall(r'from "\./([\w.-]+)"', text))
    assert wanted and wanted <= set(files)


PAGE_ONLY_HEADERS = ("referrer-policy", "permissions-policy", "cross-origin-opener-policy")
WIRE_PATHS = [
    "/api/purge-cache/v1/ping",
    "/api/purge-cache/v1/purge-cache/list",
    "/api/purge-cache/v1/no-such-endpoint",
    "/references/manifest.json",
    "/references/purge-cache/v1/api.json",
    "/schemas/purge-cache/v1/purge-cache-request.json",
]


def test_page_files_keep_referrers_features_and_openers_to_themselves(
    page_server: LiveServer,
) -> None:
    """The page's files send no Referer, deny powerful features and isolate their window."""
    for name in ["", *static_files()]:
        headers = httpx.get(f"{page_server.root_url}/{name}").headers
        assert headers["referrer-policy"] == "no-referrer", name
        assert headers["cross-origin-opener-policy"] == "same-origin", name
        denied = dict(item.split("=") for item in headers["permissions-policy"].split(", "))
        assert {denied[f] for f in ("camera", "microphone", "geolocation", "usb")} == {"()"}, name


@pytest.mark.parametrize("path", WIRE_PATHS)
def test_wire_answers_carry_none_of_the_page_headers(page_server: LiveServer, path: str) -> None:
    """/api/, /references/ and /schemas/ answers are the Taskcluster wire: no page headers."""
    headers = httpx.get(page_server.root_url + path).headers
    assert [name for name in PAGE_ONLY_HEADERS if name in headers] == []
