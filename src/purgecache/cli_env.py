"""Command-line options that may also be set by an environment variable.

A bad value is reported under the name the operator used: `Invalid value for environment
variable PURGECACHE_PORT: ...` when it came from the variable, `'--port'` when from the flag.
"""

from __future__ import annotations

import click
from click.core import ParameterSource


class EnvOption(click.Option):
    """A click option whose errors name its environment variable when the value came from it."""

    def get_error_hint(self, ctx: click.Context | None) -> str:
        if self._set_by_variable(ctx):
            return f"environment variable {self.envvar}"
        return super().get_error_hint(ctx)

    def _set_by_variable(self, ctx: click.Context | None) -> bool:
        if ctx is None or self.name is None or not isinstance(self.envvar, str):
            return False
        return ctx.get_parameter_source(self.name) is ParameterSource.ENVIRONMENT
