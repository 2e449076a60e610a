"""``tarscli prestop``: the preStop hook (``lifecycle.preStop.exec: ["tarscli", "prestop"]``).

Runs once per pod (marker ``data/prestop``; a second run, or the supervisor's SIGTERM handling
after the hook, does nothing), in this order:

1. write ``deactivating`` to ``data/check_status`` (hzcheck keeps the pod Ready on purpose:
   traffic is drained through the registry, not by Kubernetes);
2. ``keepAlive(state=deactivating)``: the registry stops handing out this instance;
3. ``AdminObj.notify("prestop")`` to the service (timeout 1 s): its own prestop hooks;
4. wait ``TARS_PRESTOP_WAITTIME`` (80s) while clients drop the instance from their caches;
   if step 2 failed it is retried, with backoff, during this wait;
5. ``onPrestop``: the registry deletes the instance's rows.

Every step that fails (registry or service already gone) is logged on stderr and the flow goes
on; the exit status is 0 unless tarscli is misconfigured (a bad variable or locator, no
``data/server_info.yaml``: exit 2). :func:`run_flow` is the same flow for the supervisor.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from dataclasses import dataclass, field

from .registry_client import (
    Backoff,
    InfoLike,
    RegistryClient,
    admin_notify,
    describe,
    sleep_or,
)
from .settings import CliError, Settings
from .supervisor_check import DEACTIVATING, claim_prestop, write_state

__all__ = ["NOTIFY_TIMEOUT", "PrestopFlow", "main", "run_flow"]

log = logging.getLogger("k8stars.cli.prestop")

#: Time limit of ``AdminObj.notify("prestop")``.
NOTIFY_TIMEOUT = 1.0
#: How long onPrestop is retried after the wait (once only if the registry was unreachable
#: all along).
DEREGISTER_PATIENCE = 3.0


@dataclass
class PrestopFlow:
    """What the flow needs: ``client`` None means no registry calls (no locator).

    ``skip_wait`` ends the drain wait early when set (a second SIGTERM to the supervisor).
    """

    tars_path: str
    info: InfoLike
    client: RegistryClient | None
    wait: float
    who: str = "tarscli prestop"
    skip_wait: asyncio.Event = field(default_factory=asyncio.Event)


async def _keep_alive_deactivating(client: RegistryClient, tried: asyncio.Event) -> None:
    """keepAlive(deactivating) until it succeeds (cancelled at the end of the wait);
    ``tried`` is set after the first attempt."""
    backoff = Backoff(0.5, 10.0)
    last = ""
    while True:
        try:
            await client.keep_alive(DEACTIVATING)
        except Exception as exc:
            tried.set()
            reason = describe(exc)
            if reason != last:
                log.warning("keepAlive(deactivating): registry %s; retrying during the wait",
                            reason)
            last = reason
            await asyncio.sleep(backoff.next())
            continue
        log.info("keepAlive(deactivating) sent: the registry no longer hands out %s on %s",
                 client.info.full_name, client.info.node_name)
        tried.set()
        return


async def run_flow(flow: PrestopFlow) -> bool:
    """The prestop flow (module docstring); False if it had already run (nothing done)."""
    if not claim_prestop(flow.tars_path, flow.who):
        log.info("prestop has already run (data/prestop exists): nothing to do")
        return False
    info, client = flow.info, flow.client
    start = time.monotonic()
    write_state(flow.tars_path, DEACTIVATING)
    log.info("prestop: %s is deactivating (wait %gs)", info.full_name, flow.wait)

    tried = asyncio.Event()
    beat: asyncio.Task[None] | None = None
    if client is not None:
        beat = asyncio.ensure_future(_keep_alive_deactivating(client, tried))
        await sleep_or(tried, 3.5)  # the first attempt, before telling the service
    if info.local:
        try:
            answer = await admin_notify(info.local, "prestop", NOTIFY_TIMEOUT)
            log.info("AdminObj.notify(prestop): %s", answer.strip() or "(empty answer)")
        except Exception as exc:
            log.warning("AdminObj.notify(prestop) failed: service %s", describe(exc))
    left = flow.wait - (time.monotonic() - start)
    if left > 0 and await sleep_or(flow.skip_wait, left):
        log.info("prestop: drain wait cut short")
    reachable = True
    if beat is not None:
        if not beat.done():
            beat.cancel()
            reachable = False
            log.warning("keepAlive(deactivating) never reached the registry")
        await asyncio.gather(beat, return_exceptions=True)
    if client is not None:
        await _deregister(client, DEREGISTER_PATIENCE if reachable else 0.0)
    return True


async def _deregister(client: RegistryClient, patience: float) -> None:
    """onPrestop, retried for ``patience`` seconds (0: one attempt)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    backoff = Backoff(0.5, 2.0)
    while True:
        try:
            await client.on_prestop()
        except Exception as exc:
            if loop.time() + 0.5 < deadline:
                await asyncio.sleep(min(backoff.next(), max(0.0, deadline - loop.time())))
                continue
            log.warning("onPrestop failed: registry %s; the registry's expiry will remove "
                        "the instance", describe(exc))
            return
        log.info("onPrestop sent: %s on %s deregistered", client.info.full_name,
                 client.info.node_name)
        return


def setup_logging(name: str, debug: bool) -> None:
    """One line per message on stderr: ``time tarscli NAME: LEVEL message``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s tarscli {name}: %(levelname)s "
                                           "%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    # our own lines say what failed; the client's retries are noise unless debugging
    logging.getLogger("k8stars.tars").setLevel(logging.DEBUG if debug else logging.ERROR)


async def _main(settings: Settings, info: InfoLike) -> None:
    client = RegistryClient(info, locator=settings.locator)
    try:
        await run_flow(PrestopFlow(settings.tars_path, info, client, settings.prestop_waittime))
    finally:
        await client.close()


def main(args: list[str]) -> int:
    """Entry point of ``tarscli prestop`` (no arguments)."""
    if args:
        raise CliError(f"takes no arguments, got {' '.join(args)!r}")
    settings = Settings()
    settings.check("prestop")
    from .meta import load_server_info

    info = load_server_info(settings.tars_path)
    setup_logging("prestop", settings.debug)
    asyncio.run(_main(settings, info))
    return 0
