"""`purgecache agent ...` commands."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Add the agent command group to the main command group."""
