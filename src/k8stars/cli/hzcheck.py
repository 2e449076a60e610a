"""``tarscli hzcheck``: the readiness probe (``readinessProbe.exec: ["tarscli", "hzcheck"]``).

Succeeds (exit 0, no output) iff ``$TARS_PATH/data/check_status``

* exists,
* was modified less than 2 × ``TARS_REPORT_INTERVAL`` (default 30s) ago, and
* holds ``active`` or ``deactivating`` (surrounding whitespace ignored). An empty file is
  re-read up to 10 times, 50 ms apart (the supervisor may be rewriting it).

Otherwise it prints one line (``tarscli hzcheck: not ready: ...``, what Kubernetes shows in the
pod's events) and exits 1; a bad ``TARS_REPORT_INTERVAL`` exits 2. Deactivating pods stay Ready
on purpose: traffic is drained through the registry, not by Kubernetes.

The state file is written by the supervisor before any registry call, so readiness never
depends on the registry being reachable.

This runs every few seconds in every pod: it imports nothing beyond ``os``, ``time`` (both
loaded by the interpreter already) and the import-light :mod:`k8stars.cli.settings`.
"""

import os
import time

from .settings import CliError, Settings

__all__ = ["EMPTY_RETRIES", "EMPTY_RETRY_DELAY", "READY_STATES", "STATE_FILE", "check", "main"]

#: The state file under ``$TARS_PATH/data``.
STATE_FILE = "check_status"
#: States that make the pod Ready.
READY_STATES = ("active", "deactivating")
#: Re-reads of an empty state file, and the pause between them (seconds).
EMPTY_RETRIES = 10
EMPTY_RETRY_DELAY = 0.05


def check(tars_path: str, report_interval: float, now: float | None = None) -> str | None:
    """None when ready, else the reason (one line)."""
    path = os.path.join(tars_path, "data", STATE_FILE)
    try:
        mtime = os.stat(path).st_mtime
    except FileNotFoundError:
        return f"{path} does not exist (the supervisor has not checked the service yet)"
    except OSError as exc:
        return f"cannot stat {path}: {exc.strerror}"
    current = time.time() if now is None else now
    age = current - mtime
    if age > 2 * report_interval:
        return (f"{path} is {age:.0f}s old, more than 2 x TARS_REPORT_INTERVAL "
                f"({2 * report_interval:g}s): the supervisor is not alive")
    state = ""
    for attempt in range(EMPTY_RETRIES + 1):
        try:
            with open(path, "rb") as fh:
                state = fh.read(64).strip().decode("ascii", "replace")
        except FileNotFoundError:
            state = ""
        except OSError as exc:
            return f"cannot read {path}: {exc.strerror}"
        if state or attempt == EMPTY_RETRIES:
            break
        time.sleep(EMPTY_RETRY_DELAY)
    if state in READY_STATES:
        return None
    if not state:
        return f"{path} is empty"
    return f"state is {state!r} (ready when {' or '.join(READY_STATES)})"


def main(args: list[str]) -> int:
    """Entry point of ``tarscli hzcheck`` (no arguments)."""
    if args:
        raise CliError(f"takes no arguments, got {' '.join(args)!r}")
    settings = Settings()
    reason = check(settings.tars_path, settings.report_interval)
    if reason is not None:
        raise CliError(f"not ready: {reason}", exit_code=1)
    return 0
