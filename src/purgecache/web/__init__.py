"""The admin web page: static files shipped as package data, served at the root URL."""

from __future__ import annotations

from importlib import resources

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json; charset=utf-8",
}


class StaticFiles:
    """The files of `web/static`, read once at start-up, by URL path (`/` is index.html)."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[str, bytes]] = {}
        root = resources.files("purgecache.web") / "static"
        self._walk(root, "/")

    def _walk(self, folder: object, prefix: str) -> None:
        for entry in folder.iterdir():  # type: ignore[attr-defined]
            if entry.is_dir():
                self._walk(entry, f"{prefix}{entry.name}/")
                continue
            suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
            content_type = _TYPES.get(suffix)
            if content_type is not None:
                self.files[prefix + entry.name] = (content_type, entry.read_bytes())
        if prefix + "index.html" in self.files:
            self.files[prefix] = self.files[prefix + "index.html"]

    def lookup(self, path: str) -> tuple[str, bytes] | None:
        """(content type, body) of the file at this URL path, or None."""
        return self.files.get(path)
