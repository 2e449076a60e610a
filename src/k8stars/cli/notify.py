"""``tarscli notify CMD [ARGS...]``: an admin command to the service in this pod.

Calls ``AdminObj.notify("CMD ARGS...")`` on the service's ``local`` endpoint (from
``data/server_info.yaml``, written by genconf) and prints the answer on stdout, e.g.
``tarscli notify tars.setloglevel DEBUG`` or ``tarscli notify tars.viewstatus``.

Exit status 0 when the service answered; 1 with the reason on stderr when it did not (not
listening, timed out after 5 s, or the call failed); 2 for a usage mistake or a missing or
malformed ``data/server_info.yaml``.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from k8stars.tars.endpoint import EndpointError
from k8stars.tars.errors import TarsConnectError, TarsRpcError, TarsTimeoutError

from .meta import load_server_info
from .registry_client import ADMIN_OBJ, admin_notify
from .settings import CliError, Settings

__all__ = ["TIMEOUT", "main"]

#: Time limit of the call (the original's 5000 ms).
TIMEOUT = 5.0


def main(args: list[str]) -> int:
    """Entry point of ``tarscli notify``."""
    if not args or args[0] in ("-h", "--help"):
        raise CliError("usage: tarscli notify CMD [ARGS...] (e.g. tarscli notify "
                       "tars.setloglevel DEBUG)")
    command = " ".join(args)
    settings = Settings()
    info = load_server_info(settings.tars_path)
    if not info.local:
        raise CliError(f"{info.full_name} has no local (AdminObj) endpoint in "
                       f"{settings.path('data', 'server_info.yaml')}", exit_code=1)
    target = f"{ADMIN_OBJ}@{info.local}"
    if not settings.debug:  # the failure is reported below, once
        logging.getLogger("k8stars.tars").setLevel(logging.CRITICAL)
    try:
        answer = asyncio.run(admin_notify(info.local, command, TIMEOUT))
    except EndpointError as exc:
        raise CliError(f"bad local endpoint {info.local!r}: {exc}") from None
    except TarsTimeoutError:
        raise CliError(f"{target}: no answer to {command!r} within {TIMEOUT:g} s "
                       "(is the service busy or hung?)", exit_code=1) from None
    except TarsConnectError as exc:
        raise CliError(f"{target}: cannot connect: {exc.message} (is the service "
                       "running?)", exit_code=1) from None
    except TarsRpcError as exc:
        raise CliError(f"{target}: {command!r} failed: {exc.message} (code {exc.code})",
                       exit_code=1) from None
    sys.stdout.write(answer if answer.endswith("\n") else answer + "\n")
    return 0
