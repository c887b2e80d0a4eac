"""Client-side commands of the `purgecache` CLI (purge, list, requests, ping, signed-url)."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Add the client commands to the main command group."""
