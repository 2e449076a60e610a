"""``tarscli supervisor``: the container's main process (the base image's default command).

What it does, in order:

1. ``genconf`` (a bad variable, ``_server_meta.yaml`` or port range: one line, exit 2);
2. writes ``activating`` to ``data/check_status`` before any registry call, so a registry
   outage never makes the pod unready (K8STARS #17); a stale ``data/prestop`` marker of an
   earlier run in the same ``$TARS_PATH`` is removed;
3. registers in the background: ``onStartup`` (the current state, adapters with resolved
   endpoints, ``disableFlow`` from ``TARS_DISABLE_FLOW``, ``Version`` = ``SERVER_VERSION``,
   ``podName``/``podUid`` from ``POD_NAME``/``POD_UID``), retried with backoff (1 s doubling to
   min(30 s, ``TARS_REPORT_INTERVAL``)) without ever delaying the service; after any failed
   registry call it registers again once the registry answers (a restarted registry may have
   lost the rows); after each successful ``onStartup``, when ``TARS_METRICS_PORT`` is set,
   ``registerMetrics`` with that port (retried with the same backoff, failures only logged), so
   that Prometheus finds ``POD_IP:port`` through the registry's ``/sd``;
4. runs ``TARS_BEFORE_CHECK_SCRIPT`` (killed after ``TARS_CHECK_SCRIPT_TIMEOUT``), then starts
   ``TARS_START_PATH`` (``sh -c``, default ``$TARS_PATH/bin/start.sh``) in its own process
   group; its stdout and stderr go to the supervisor's (``kubectl logs``) and are appended to
   ``$TARS_PATH/log/<app>.<server>.out`` (rotated to ``.out.1`` at 10 MB; a line marks each
   start); the supervisor's own log lines go to stderr and ``log/supervisor.log``;
5. every ``TARS_CHECK_INTERVAL`` (every second at most while activating) runs the script again
   and checks the service (see :mod:`k8stars.cli.supervisor_check`): ``active``, ``inactive``,
   or ``activating`` until ``TARS_ACTIVATING_TIMEOUT``; writes the state file at every check
   and sends ``keepAlive`` at once on a change and every ``TARS_REPORT_INTERVAL``;
6. once ``data/prestop`` exists (the preStop hook ran) the state is ``deactivating``: the file
   is kept fresh (hzcheck keeps the pod Ready while it drains) and nothing is reported (one
   ``keepAlive(deactivating)`` is repeated only if a heartbeat of the supervisor may have
   crossed the hook's), and a crash is not restarted;
7. a crashed service (its start command exited) is reported to tars.tarsnotify
   (``[warn] server down``) and restarted at once, at most once per 5-minute window anchored
   at the restart (the original's rule; a crash within the window waits for its end) and not
   while ``data/stop`` exists (removing it lets the next check restart the service); while it
   stays down for either reason, ``[alarm] down, server is inactive`` is reported once. Before
   a restart, ``TARS_STOP_PATH`` runs (time limit 60 s), then what is left of the old process
   group and of the supervisor's other descendants is killed. Reports run in the background:
   when tars.tarsnotify is not in the registry they are only logged, without delay;
8. SIGTERM or SIGINT: the prestop flow (:mod:`k8stars.cli.prestop`) unless the hook has run,
   ``AdminObj.shutdown``, a wait of up to 60 s for the process to exit or every endpoint to
   close, then SIGTERM to the service's process group and, 5 s later, SIGKILL; then exit 0. A
   second signal cuts the remaining waits short.

As PID 1 it reaps every zombie (``SIGCHLD``, ``waitpid(-1)``); elsewhere it is the child
subreaper of its descendants. Idle it sleeps in one asyncio loop (no polling). The process
imports no ``ssl`` (nothing here speaks TLS), which keeps it about 4 MB smaller.

The service's start command must keep running while the service runs (``exec`` the server,
or stay in the foreground): its exit is the service's exit.
"""

from __future__ import annotations

import sys

from .settings import CliError

__all__ = ["main"]


def main(args: list[str]) -> int:
    """Entry point of ``tarscli supervisor`` (no arguments)."""
    if args:
        raise CliError(f"takes no arguments, got {' '.join(args)!r}")
    if "asyncio" not in sys.modules:  # a real process, not a test importing us
        sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]
    from .supervisor_run import run

    return run()
