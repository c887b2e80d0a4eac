"""The process that runs `serve`'s workers: granian's multi-process server with three changes.

- **One listening socket, bound here.** granian (on Linux) has every worker bind its own socket
  with SO_REUSEPORT, which lets a second `serve` on the same port come up beside the first, and
  resets the connections queued on a worker's socket when that worker stops. Here the
  supervisor binds one socket without SO_REUSEPORT (a port in use is refused, whatever the
  timing) and the workers inherit it: one accept queue outlives any worker, so a replaced or
  crashed worker leaves waiting connections to the others or its successor.
- **Reloads in place.** SIGHUP (and a change of the clients file) runs the reload hooks and
  replaces no worker; the workers pick the new clients up themselves (`LocalAuthenticator.follow`).
- **Crashed workers are replaced**, each crash logged as one `worker-crashed` line.

It relies on granian's server internals (`_init_shared_socket`, `_reload`,
`_respawn_workers`); `tests/test_workers.py` exercises each of them.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from granian._granian import SocketHolder
from granian.server.mp import MPServer

from purgecache.logs import log_event

log = logging.getLogger("purgecache")


class Supervisor(MPServer):
    """granian's process server serving `listener`, reloading in place, replacing crashed
    workers."""

    def __init__(self, target: str, listener: socket.socket, **options: Any) -> None:
        super().__init__(target, respawn_failed_workers=True, **options)
        self.listener = listener

    def _init_shared_socket(self) -> None:
        """Hand the workers our socket (granian's path for platforms without SO_REUSEPORT)."""
        self._ssp = None
        # granian's stubs type these attributes None and SocketHolder without a constructor.
        self._sfd = self.listener.fileno()  # type: ignore[assignment]
        self._shd = SocketHolder(self._sfd, False, self.backlog)  # type: ignore[call-arg,assignment]
        self._sso = self.listener  # closed by granian at shutdown

    def _reload(self, spawn_target: object, target_loader: object) -> None:
        """Run the reload hooks; the workers stay."""
        self.main_loop_interrupt.clear()
        self.reload_signal = False
        if self.interrupt_children:  # a crash noticed meanwhile is still handled
            self.main_loop_interrupt.set()
        self._call_hooks(self.hooks_reload)  # type: ignore[no-untyped-call]

    def request_reload(self) -> None:
        """Reload as on SIGHUP (safe from any thread)."""
        self.signal_handler_reload()  # type: ignore[no-untyped-call]

    def _respawn_workers(
        self, workers: list[int], spawn_target: object, target_loader: object, delay: float = 0
    ) -> None:
        """Replace crashed workers (the only respawn left: reloads replace none)."""
        for idx in workers:
            fields = _exit_of(self.wrks[idx])
            log_event(log, logging.ERROR, "worker-crashed", **fields, action="replace")
        super()._respawn_workers(workers, spawn_target, target_loader, delay)

    def shutdown(self, exit_code: int = 0) -> None:
        """Stop; when a worker crashed again just after its replacement, say so first."""
        if self.interrupt_children and not self.interrupt_signal:
            for idx in self.interrupt_children:
                fields = _exit_of(self.wrks[idx])
                log_event(log, logging.CRITICAL, "worker-crash-loop", **fields, action="stop")
        super().shutdown(exit_code)  # type: ignore[no-untyped-call]


def _exit_of(worker: Any) -> dict[str, object]:
    """Which worker ended, and how (`signal` when a signal killed it)."""
    code = worker.inner.exitcode
    fields: dict[str, object] = {"worker": worker.idx + 1, "pid": worker.inner.pid}
    if code is not None and code < 0:
        fields["signal"] = signal.Signals(-code).name
    else:
        fields["exit_code"] = code
    return fields


def poll_every(seconds: float, changed: Callable[[], bool], act: Callable[[], None]) -> None:
    """Call `act` whenever `changed()` says so, checking every `seconds` in a daemon thread."""

    def loop() -> None:
        while True:
            time.sleep(seconds)
            if changed():
                act()

    threading.Thread(target=loop, name="purgecache-poll", daemon=True).start()
