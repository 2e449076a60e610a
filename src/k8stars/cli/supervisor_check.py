"""The supervisor's view of the service: the state file, the endpoint checks, the state rule
and the restart limit.

* ``data/check_status`` holds one state (``activating``, ``active``, ``inactive``,
  ``deactivating``); :func:`write_state` replaces it atomically (a reader never sees it half
  written) and :func:`touch_state` only refreshes its time when the state is unchanged.
  ``hzcheck`` reads it. ``data/prestop`` marks that the prestop flow has started
  (:func:`claim_prestop`: exactly one of the hook and the supervisor gets it).
* :class:`ServiceChecker`: a ``tars_ping`` to every adapter of protocol ``tars`` and to
  ``AdminObj`` on ``local``, a TCP connect to the other adapters (``udp`` endpoints are not
  checked, as the original's UDP "dial" never failed); each target is retried until it answers
  or ``TARS_CHECK_RETRY_TIMEOUT`` has passed. Every check uses fresh connections, closed after,
  so it also proves that the service still accepts them. A listening host ``0.0.0.0`` / ``::``
  is checked on the loopback address.
* :func:`next_state`: ``active`` when every target answers; otherwise ``activating`` while the
  service has never been active and ``TARS_ACTIVATING_TIMEOUT`` has not passed since the
  supervisor started it, else ``inactive``.
* :class:`RestartLimiter`: the original's rule, at most one restart per 5-minute window
  anchored at the restart (its ``RecentUse`` kept the first use time): the first crash restarts
  at once, a crash within 5 minutes of that restart waits until those 5 minutes are over.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from k8stars.tars.client import Communicator
from k8stars.tars.endpoint import Endpoint, EndpointError, parse_endpoint
from k8stars.tars.errors import TarsRpcError

from .registry_client import ADMIN_OBJ, InfoLike, describe

__all__ = [
    "ACTIVATING",
    "ACTIVE",
    "DEACTIVATING",
    "INACTIVE",
    "PRESTOP_MARKER",
    "STATE_FILE",
    "STOP_MARKER",
    "CheckTarget",
    "RestartLimiter",
    "ServiceChecker",
    "claim_prestop",
    "next_state",
    "prestop_claimed",
    "read_state",
    "touch_state",
    "write_state",
]

ACTIVATING = "activating"
ACTIVE = "active"
INACTIVE = "inactive"
DEACTIVATING = "deactivating"

#: Files under ``$TARS_PATH/data``.
STATE_FILE = "check_status"
PRESTOP_MARKER = "prestop"
STOP_MARKER = "stop"

#: Time limit of one connection attempt (the original dialled with 300 ms).
ATTEMPT_TIMEOUT = 1.0
#: Pause between two attempts on a target that did not answer.
RETRY_PAUSE = 0.2
_WILDCARD = {"0.0.0.0": "127.0.0.1", "::": "::1"}


def _data(tars_path: str, name: str) -> str:
    return os.path.join(tars_path, "data", name)


def write_state(tars_path: str, state: str) -> None:
    """Replace ``data/check_status`` with ``state`` (atomically: temporary file + rename)."""
    path = _data(tars_path, STATE_FILE)
    tmp = f"{path}.{os.getpid()}.tmp"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with open(tmp, "w", encoding="ascii") as fh:
            fh.write(state)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def touch_state(tars_path: str, state: str) -> None:
    """Refresh the time of ``data/check_status`` (rewrite it if it does not hold ``state``)."""
    if read_state(tars_path) == state:
        with contextlib.suppress(FileNotFoundError):
            os.utime(_data(tars_path, STATE_FILE))
            return
    write_state(tars_path, state)


def read_state(tars_path: str) -> str:
    """The state in ``data/check_status`` ("" when missing or unreadable)."""
    try:
        with open(_data(tars_path, STATE_FILE), "rb") as fh:
            return fh.read(64).strip().decode("ascii", "replace")
    except OSError:
        return ""


def claim_prestop(tars_path: str, who: str) -> bool:
    """Create ``data/prestop``; False if it exists (the prestop flow ran or is running)."""
    path = _data(tars_path, PRESTOP_MARKER)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(f"done by {who} (pid {os.getpid()}) at {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
    return True


def prestop_claimed(tars_path: str) -> bool:
    """True when ``data/prestop`` exists."""
    return os.path.exists(_data(tars_path, PRESTOP_MARKER))


def stop_requested(tars_path: str) -> bool:
    """True when ``data/stop`` exists (an operator asked not to restart the service)."""
    return os.path.exists(_data(tars_path, STOP_MARKER))


@dataclass(frozen=True)
class CheckTarget:
    """One endpoint to check: ``servant`` (None: TCP connect only) at ``endpoint``."""

    label: str
    endpoint: Endpoint
    servant: str | None

    @property
    def address(self) -> tuple[str, int]:
        host = self.endpoint.host
        return _WILDCARD.get(host, host), self.endpoint.port


def targets_of(info: InfoLike) -> tuple[list[CheckTarget], list[str]]:
    """The targets of a service, and warnings about endpoints that cannot be checked."""
    targets: list[CheckTarget] = []
    warnings: list[str] = []
    items = [(a.servant, a.endpoint, a.protocol) for a in info.adapters]
    if info.local:
        items.append((ADMIN_OBJ, info.local, "tars"))
    for servant, text, protocol in items:
        try:
            endpoint = parse_endpoint(text)
        except EndpointError as exc:
            warnings.append(f"{servant}: endpoint {text!r} is not checked: {exc}")
            continue
        if endpoint.protocol == "udp":
            warnings.append(f"{servant}: udp endpoint {text!r} is not checked")
            continue
        ping = protocol == "tars" and endpoint.protocol == "tcp"
        targets.append(CheckTarget(f"{servant} ({endpoint.protocol} {endpoint.host}:"
                                   f"{endpoint.port})", endpoint, servant if ping else None))
    return targets, warnings


class ServiceChecker:
    """Checks every target of a service; :meth:`check` returns the failures (empty: healthy)."""

    def __init__(self, targets: Sequence[CheckTarget], retry_timeout: float) -> None:
        self.targets = tuple(targets)
        self.retry_timeout = retry_timeout

    async def check(self, retry_timeout: float | None = None) -> list[str]:
        """One reason per target that did not answer within the retry timeout."""
        if not self.targets:
            return []
        limit = self.retry_timeout if retry_timeout is None else retry_timeout
        results = await asyncio.gather(*(self._target(t, limit) for t in self.targets))
        return [r for r in results if r is not None]

    async def _target(self, target: CheckTarget, limit: float) -> str | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while True:
            reason = await self._attempt(target)
            if reason is None:
                return None
            left = deadline - loop.time()
            if left <= 0:
                return f"{target.label}: {reason}"
            await asyncio.sleep(min(RETRY_PAUSE, left))

    async def _attempt(self, target: CheckTarget) -> str | None:
        host, port = target.address
        if target.servant is None:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                   ATTEMPT_TIMEOUT)
            except (OSError, asyncio.TimeoutError) as exc:
                return "connect timed out" if isinstance(exc, asyncio.TimeoutError) else (
                    f"connect failed: {exc.strerror or exc}")
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return None
        endpoint = Endpoint("tcp", host, port, timeout=target.endpoint.timeout)
        ms = round(ATTEMPT_TIMEOUT * 1000)
        try:
            async with Communicator(connect_timeout=ms, sync_invoke_timeout=ms) as comm:
                proxy = comm.proxy(None, f"{target.servant}@{endpoint.render()}")
                await proxy.tars_ping(timeout=ATTEMPT_TIMEOUT)
        except TarsRpcError as exc:
            return f"tars_ping failed: {describe(exc)}"
        return None


def next_state(current: str, healthy: bool, *, ever_active: bool, since_start: float,
               activating_timeout: float) -> str:
    """The state after one check (see the module docstring)."""
    if current == DEACTIVATING:
        return DEACTIVATING
    if healthy:
        return ACTIVE
    if not ever_active and since_start < activating_timeout:
        return ACTIVATING
    return INACTIVE


class RestartLimiter:
    """At most one restart per ``window`` seconds, the window anchored at the restart."""

    def __init__(self, window: float = 300.0) -> None:
        self.window = window
        self.last: float | None = None

    def allowed(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return self.last is None or now - self.last >= self.window

    def next_allowed(self) -> float:
        """The monotonic time from which a restart is allowed."""
        return 0.0 if self.last is None else self.last + self.window

    def record(self, now: float | None = None) -> None:
        self.last = time.monotonic() if now is None else now
