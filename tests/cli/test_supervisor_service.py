"""The fake service the supervisor tests start (``start.sh`` execs it; no tests here).

``python test_supervisor_service.py --config FILE`` serves ``Interop.Calc`` on every adapter of
the TARS config genconf wrote and AdminObj on ``local`` (:func:`k8stars.tars.server.serve`).
It writes its pid to ``$TARS_PATH/data/service.pid``, one line to stdout and one to stderr,
and records ``prestop`` (AdminObj notify), ``stop`` (AdminObj shutdown or SIGTERM) and ``exit``
with their times in ``$TARS_PATH/data/events``.
"""

from __future__ import annotations

import os
import sys
import time


def _event(name: str) -> None:
    path = os.path.join(os.environ["TARS_PATH"], "data", "events")
    with open(path, "a") as fh:
        fh.write(f"{name} {time.time():.6f}\n")


def _main() -> int:
    from k8stars.tars.server import Server, serve
    from k8stars.tars.server_config import ServerConfig
    from tests.interop.calc_servant import CalcImp

    argv = sys.argv[1:]
    config = ServerConfig.load(argv[argv.index("--config") + 1])
    servants = {a.servant: CalcImp() for a in config.adapters}

    def configure(server: Server) -> None:
        assert server.admin is not None
        server.admin.add_prestop_hook(lambda: _event("prestop"))
        original = server.request_stop

        def request_stop(deadline: float | None = None) -> object:
            _event("stop")
            return original(deadline)

        server.request_stop = request_stop  # type: ignore[method-assign,assignment]

    path = os.path.join(os.environ["TARS_PATH"], "data", "service.pid")
    with open(path, "w") as fh:
        fh.write(str(os.getpid()))
    print(f"fake service started (pid {os.getpid()})", flush=True)
    print("fake service stderr line", file=sys.stderr, flush=True)
    code = serve(servants, argv, configure=configure)
    _event("exit")
    return code


if __name__ == "__main__":
    sys.exit(_main())
