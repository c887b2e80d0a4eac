"""Why a sync could not rely on the service's answer: nothing was deleted or recorded.

    FetchFailed                 exit status 3 unless said otherwise
      ServiceUnreachable        no answer, 5xx, or an answer that makes no sense
        ImplausibleAnswer       its clock (Date) or its `before` values contradict the worker's
      ServiceRefused            credentials, scopes, settings: exit status 2

No network library is imported here: the registry and the sync use these without one.
"""

from __future__ import annotations


class FetchFailed(Exception):
    """No answer to rely on: nothing may be deleted."""

    exit_code = 3  # `agent sync`: service unreachable, nothing deleted


class ServiceUnreachable(FetchFailed):
    """The service did not answer, kept failing (5xx) or answered nonsense."""


class ImplausibleAnswer(ServiceUnreachable):
    """The answer's times contradict each other or the worker's own clocks by more than the
    clock skew: a lying proxy, or a clock to fix; trusting it could lose a purge."""


class ServiceRefused(FetchFailed):
    """The service refused (credentials, scopes, a bad request) or the TASKCLUSTER_*
    settings are unusable: a configuration problem, retrying will not help."""

    exit_code = 2
