"""The registry service: a :class:`~.store.Store` (the database) and a
:class:`~.index.RegistryIndex` (the answers), kept in step, with write-behind heartbeats and a
database-outage mode.

One asyncio event loop owns the index and all the state here; database calls run in a small
thread pool. Background tasks:

* **poller** (every ``poll_interval_s``, default 0.5 s, and at once when a write asks for it):
  ``Store.load_changes`` → the index. Every replica on the same database sees the writes of the
  others within about one poll.
* **writer**: the *journal* of accepted writes, in arrival order. Heartbeats are validated on
  arrival and coalesced into the journal's open batch (last state per (node, application, server,
  pod UID) wins), written with ``Store.keep_alive_batch`` every ``flush_interval_s`` (0.1 s) or at
  ``flush_beats`` beats; onStartup / onPrestop / registerMetrics are journal entries of their own.
  A run of consecutive onStartups on distinct nodes (up to ``startup_batch``) is written in one
  transaction (``Store.on_startup_batch``: set-based, the same rows as one by one); if the
  database refuses it for a reason of its own (a constraint, a trigger: not an outage), or it
  fails unexpectedly, the run is written again one request at a time, so that one bad request
  does not hold back the others. Up to ``op_concurrency`` consecutive onPrestop /
  registerMetrics on distinct nodes are written in parallel. Per node the arrival order is kept.
* **expiry** (every ``expire_interval_s``, 10 s): ``Store.expire`` (inactive after
  ``inactive_after_s``, deleted after ``delete_after_s``) and ``Store.expire_registry_info``.
  Idempotent, so every replica may run it. It is held back for ``inactive_after_s`` after start
  and after a database outage, so that instances get the chance to heartbeat first, and while
  accepted heartbeats wait to be written (a write stuck on a connection that died silently).
* **self-registration** (every ``self_register_interval_s``, 10 s): this registry's servants in
  ``t_registry_info``, so ``tars.tarsregistry.QueryObj`` and ``tars.tarsregistry.Registry``
  resolve through QueryF.

Read-your-writes: an onStartup / onPrestop / registerMetrics returns once it is in the database
*and* a poll started after the write has been applied to the index (one poll serves a whole
run of onStartups). A heartbeat that changes an instance's state to a non-routable one
(inactive, deactivating, ...) takes the endpoint out of the answers at once (an *overlay* on
the database rows, dropped when a later poll confirms the write);
a change to ``active`` is written at once and shown after the next poll (tens of ms), so the
database decides whether a heartbeat may revive a row (pod identity, K8STARS #14).

Database outage (:class:`~.store_validate.StoreUnavailableError`): queries keep being answered from
memory; the journal keeps everything accepted (heartbeats coalesced, requests in order, at most
``max_pending_requests``) and is retried with backoff; queued onStartup / onPrestop are shown in
the answers through overlays meanwhile (a registration of a new pod, a removal); the service
reports ``degraded`` (one log line per transition, metrics, status) and recovers by itself. If
the database is down at start, the index starts empty and degraded and is loaded when it returns.
Invalid requests are refused before anything is queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from .index import RegistryIndex, ServerKey, is_routable
from .metrics import RegistryMetrics
from .model import InstanceRow, RegistrySnapshot
from .store import CleanReport, Store, StoreRefusedError, Watermark
from .store_validate import (
    Beat,
    Startup,
    StoreUnavailableError,
    StoreValidationError,
    parse_clean_before,
    validate_keep_alive,
    validate_metrics,
    validate_metrics_filter,
    validate_prestop,
    validate_startup,
)

__all__ = [
    "RegistryBusyError",
    "RegistryService",
    "ServiceOptions",
    "ServiceStatus",
]

log = logging.getLogger("k8stars.registry.service")

T = TypeVar("T")
BeatKey = tuple[str, str, str, str]  # node, application, server, pod UID

_ROUTABLE = "active"
_NO_NODES: dict[str, tuple[InstanceRow, ...]] = {}
_monotonic = time.monotonic
#: Expiry waits while accepted heartbeats are older than the flush interval plus this (s).
WRITE_LAG_S = 2.0
# outcomes of RegistryService._write_one
_WRITTEN, _REFUSED, _DOWN = "written", "refused", "down"


class RegistryBusyError(StoreUnavailableError):
    """The database is down and the queue of pending requests is full: try again later."""


@dataclass(frozen=True, slots=True)
class ServiceOptions:
    """Timings and limits of :class:`RegistryService` (seconds)."""

    poll_interval_s: float = 0.5
    flush_interval_s: float = 0.1
    flush_beats: int = 5000
    expire_interval_s: float = 10.0
    inactive_after_s: float = 90.0
    delete_after_s: float = 86400.0
    #: Hold expiry back this long after start and after an outage (None: ``inactive_after_s``).
    expire_grace_s: float | None = None
    self_register_interval_s: float = 10.0
    #: ``t_registry_info`` rows silent this long turn inactive (3 missed self-registrations).
    registry_timeout_s: float = 30.0
    retry_initial_s: float = 0.25
    retry_max_s: float = 5.0
    max_pending_requests: int = 100_000
    op_concurrency: int = 4
    #: Most onStartups written in one transaction.
    startup_batch: int = 256
    db_threads: int = 8
    #: Read-your-writes: longest wait for the refresh after a write.
    refresh_timeout_s: float = 5.0
    #: Try to write what is still pending this long when stopping.
    stop_flush_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.inactive_after_s <= self.delete_after_s:
            raise ValueError(
                "need 0 < inactive_after <= delete_after, got "
                f"{self.inactive_after_s} s and {self.delete_after_s} s"
            )
        for name in ("poll_interval_s", "flush_interval_s", "expire_interval_s",
                     "self_register_interval_s", "registry_timeout_s", "retry_initial_s",
                     "retry_max_s"):  # fmt: skip
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if (self.flush_beats < 1 or self.op_concurrency < 1 or self.startup_batch < 1
                or self.db_threads < 2):  # fmt: skip
            raise ValueError("flush_beats, op_concurrency and startup_batch must be >= 1, "
                             "db_threads >= 2")  # fmt: skip

    @property
    def grace_s(self) -> float:
        return self.inactive_after_s if self.expire_grace_s is None else self.expire_grace_s


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """A snapshot for the admin command, ``/healthz`` and the metrics."""

    degraded: bool
    reason: str
    database_up: bool
    loaded: bool
    instances_by_state: dict[str, int]
    servants: int
    pending_beats: int
    pending_requests: int
    overlays: int
    last_poll_age_s: float | None
    last_poll_ms: float | None
    polls: int
    poll_errors: int
    index_version: int
    own_servants: dict[str, str]

    def render(self) -> str:
        """``tars.viewstatus`` style lines."""
        states = ", ".join(f"{k}={v}" for k, v in sorted(self.instances_by_state.items()))
        age = "never" if self.last_poll_age_s is None else f"{self.last_poll_age_s:.2f}s ago"
        took = "" if self.last_poll_ms is None else f" (took {self.last_poll_ms:.1f} ms)"
        lines = [
            f"degraded: {self.degraded}" + (f" ({self.reason})" if self.degraded else ""),
            f"database: {'up' if self.database_up else 'down'}",
            f"index loaded: {self.loaded}",
            f"instances: {states or 'none'}",
            f"servants: {self.servants}",
            f"pending writes: heartbeats={self.pending_beats} requests={self.pending_requests}",
            f"pending overlays: {self.overlays}",
            f"last poll: {age}{took}",
            f"polls: {self.polls} ok, {self.poll_errors} failed",
            f"index version: {self.index_version}",
        ]
        lines += [f"own servant: {name} {ep}" for name, ep in sorted(self.own_servants.items())]
        return "\n".join(lines)


@dataclass(eq=False, slots=True)
class _Overlay:
    """A local change shown in the answers before the database has confirmed it.

    ``app == ""``: every server of the node (old clients). ``written``: the write epoch after
    which the database has it; the overlay goes once a poll started after that is applied.
    """

    node: str
    app: str
    server: str
    kind: str  # "state" | "startup" | "prestop"
    state: str = ""
    rows: tuple[InstanceRow, ...] = ()
    pod_uid: str = ""
    written: int | None = None


@dataclass(eq=False, slots=True)
class _BeatBatch:
    created: float
    beats: dict[BeatKey, Beat] = field(default_factory=dict)
    overlays: list[_Overlay] = field(default_factory=list)
    urgent: bool = False
    changed: bool = False  # holds a state change: poll after writing
    done: asyncio.Future[bool] | None = None  # for callers waiting for the write

    def resolve(self, written: bool) -> None:
        if self.done is not None:
            if not self.done.done():
                self.done.set_result(written)
            self.done = None

    def absorb(self, newer: _BeatBatch) -> None:
        """Merge ``newer`` (later beats win) into this batch."""
        for key, beat in newer.beats.items():
            self.beats.pop(key, None)
            self.beats[key] = beat
        self.overlays += newer.overlays
        self.urgent = self.urgent or newer.urgent
        self.changed = self.changed or newer.changed
        if newer.done is not None:
            if self.done is None:
                self.done, newer.done = newer.done, None
            else:
                newer.resolve(False)


@dataclass(eq=False, slots=True)
class _Op:
    kind: str  # "onStartup" | "onPrestop" | "registerMetrics"
    req: object  # the request (onStartup: the validated Startup)
    node: str
    overlay: _Overlay | None = None
    done: asyncio.Future[bool] | None = None  # True: written; False: queued (database down)
    epoch: int = 0  # the write epoch it was committed in


_Entry = _Op | _BeatBatch


class RegistryService:
    """See the module docstring. Create, ``await start()``, serve, ``await stop()``.

    The service owns ``store`` (closed by :meth:`stop` unless ``close_store=False``) and
    :attr:`index`, which the QueryF servant answers from.
    """

    def __init__(
        self,
        store: Store,
        options: ServiceOptions | None = None,
        *,
        metrics: RegistryMetrics | None = None,
        close_store: bool = True,
    ) -> None:
        self.store = store
        self.options = options or ServiceOptions()
        self.metrics = metrics
        self.index = RegistryIndex()
        self._close_store = close_store
        self._executor = ThreadPoolExecutor(self.options.db_threads, "registry-db")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._stopping = False
        # database mirror (what the index would show without overlays)
        self._db_rows: dict[ServerKey, dict[str, tuple[InstanceRow, ...]]] = {}
        self._node_keys: dict[str, set[ServerKey]] = {}
        self._watermark: Watermark | None = None
        self._overlays: dict[str, list[_Overlay]] = {}
        # journal
        self._journal: deque[_Entry] = deque()
        self._open: _BeatBatch | None = None  # the journal's tail batch, taking new beats
        self._writing: _BeatBatch | None = None  # the batch being written (out of the journal)
        self._pending_ops = 0
        self._writer_wake = asyncio.Event()
        self._db_back = asyncio.Event()
        self._written_epoch = 0
        # poll
        self._poll_kick = asyncio.Event()
        self._applied_epoch = -1
        self._poll_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._last_poll_ok: float | None = None
        self._last_poll_start: float | None = None
        self._last_poll_ms: float | None = None
        self._polls = 0
        self._poll_errors = 0
        # health
        self._db_up = True
        self._reason = "starting: index not loaded yet"
        self._healthy_since = _monotonic()
        # self-registration
        self._locator_id = ""
        self._own: dict[str, str] = {}
        self._own_wake = asyncio.Event()
        # getMetricsAdapters: last good answer per filter (served while the database is down)
        self._sd_cache: dict[tuple[tuple[str, str], ...], list[tuple[list[str], dict[str, str]]]]
        self._sd_cache = {}
        if metrics is not None:
            metrics.attach(self)

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Load the index (once; if the database is down, start empty and degraded and keep
        trying in the background) and start the background tasks."""
        if self._started:
            raise RuntimeError("the registry service was already started")
        self._started = True
        self._loop = asyncio.get_running_loop()
        await self._load_full()
        self._spawn(self._poller(), "poller")
        self._spawn(self._writer(), "writer")
        self._spawn(self._expirer(), "expiry")
        self._spawn(self._self_register(), "self-registration")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"registry-{name}")
        self._tasks.append(task)

    async def stop(self) -> None:
        """Stop the background tasks, write what is pending (for up to
        ``stop_flush_timeout_s``), mark this registry's own servants inactive, close."""
        if not self._started or self._stopping:
            return
        self._stopping = True
        writer = next((t for t in self._tasks if t.get_name() == "registry-writer"), None)
        for task in self._tasks:
            if task is not writer:
                task.cancel()
        self._writer_wake.set()
        if writer is not None:
            try:
                await asyncio.wait_for(asyncio.shield(writer), self.options.stop_flush_timeout_s)
            except asyncio.TimeoutError:
                writer.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        lost_beats, lost_ops = self._pending_counts()
        if lost_beats or lost_ops:
            log.error("stopping with %d heartbeat(s) and %d request(s) not written: the "
                      "database is unavailable", lost_beats, lost_ops)  # fmt: skip
        for _, waiter in self._poll_waiters:
            if not waiter.done():
                waiter.set_result(None)
        if self._own and self._locator_id:
            try:
                await asyncio.wait_for(self._db(self._deregister_sync), 3.0)
            except (StoreUnavailableError, asyncio.TimeoutError) as exc:
                log.warning("could not mark this registry's servants inactive: %s", exc)
        await asyncio.to_thread(self._executor.shutdown, True)
        if self._close_store:
            self.store.close()

    # ------------------------------------------------------------------ status

    @property
    def degraded(self) -> bool:
        return not self._db_up or self._watermark is None

    def status(self) -> ServiceStatus:
        beats, ops = self._pending_counts()
        now = _monotonic()
        return ServiceStatus(
            degraded=self.degraded,
            reason=self._reason if self.degraded else "",
            database_up=self._db_up,
            loaded=self._watermark is not None,
            instances_by_state=self.index.instances_by_state(),
            servants=len(self.index.servants()),
            pending_beats=beats,
            pending_requests=ops,
            overlays=sum(len(v) for v in self._overlays.values()),
            last_poll_age_s=None if self._last_poll_ok is None else now - self._last_poll_ok,
            last_poll_ms=self._last_poll_ms,
            polls=self._polls,
            poll_errors=self._poll_errors,
            index_version=self.index.version,
            own_servants=dict(self._own),
        )

    def metrics_status(self) -> Mapping[str, Any]:
        st = self.status()
        return {
            "instances_by_state": st.instances_by_state,
            "servants": st.servants,
            "database_up": st.database_up,
            "degraded": st.degraded,
            "pending_beats": st.pending_beats,
            "pending_requests": st.pending_requests,
            "overlays": st.overlays,
            "last_poll_age_s": st.last_poll_age_s,
        }

    def health(self) -> tuple[bool, str]:
        """(serving, text) for ``/healthz``: always serving once started; the text says
        ``degraded: <reason>`` while the database is down or the index is not loaded."""
        if self._stopping:
            return False, "stopping"
        if self.degraded:
            return True, f"degraded: {self._reason}"
        return True, "ok"

    def _pending_counts(self) -> tuple[int, int]:
        beats = sum(len(e.beats) for e in self._journal if isinstance(e, _BeatBatch))
        return beats, self._pending_ops

    # ------------------------------------------------------------------ database calls

    async def _db(self, fn: Callable[..., T], *args: Any, refused_ok: bool = False) -> T:
        """Run a store call in the pool; track the database's health. ``refused_ok``: a
        :class:`StoreRefusedError` (the caller retries otherwise) says the database is up."""
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._executor, functools.partial(fn, *args))
        except StoreUnavailableError as exc:
            if refused_ok and isinstance(exc, StoreRefusedError):
                self._set_db_up(True)
            else:
                self._set_db_up(False, str(exc))
            raise
        self._set_db_up(True)
        return result

    def _set_db_up(self, up: bool, reason: str = "") -> None:
        if up == self._db_up:
            if not up:
                self._reason = reason
            return
        self._db_up = up
        if up:
            self._healthy_since = _monotonic()
            self._db_back.set()
            self._own_wake.set()  # re-register this registry's servants now
            beats, ops = self._pending_counts()
            log.warning("database is back: writing %d pending heartbeat(s) and %d request(s)",
                        beats, ops)  # fmt: skip
        else:
            self._reason = reason
            if self.metrics is not None:
                self.metrics.counters.degraded_transitions += 1
            log.error("registry degraded: %s; answering queries from memory, keeping writes "
                      "until it returns", reason)  # fmt: skip

    # ------------------------------------------------------------------ writes (API)

    async def on_startup(self, req: object) -> bool:
        """onStartup. Returns True when written (and visible in the answers), False when
        queued because the database is down. StoreValidationError: nothing queued."""
        reg = validate_startup(req)
        rows = tuple(_startup_rows(reg))
        overlay = _Overlay(reg.node, reg.application, reg.server, "startup", rows=rows,
                           pod_uid=reg.pod_uid)  # fmt: skip
        return await self._submit(_Op("onStartup", reg, reg.node), overlay)

    async def on_prestop(self, req: object) -> bool:
        """onPrestop (see :meth:`on_startup` for the result)."""
        stop = validate_prestop(req)
        if stop.application:
            overlay = _Overlay(stop.node, stop.application, stop.server, "prestop")
        else:  # old clients: the node's servers become destroyed
            overlay = _Overlay(stop.node, "", "", "state", state="destroyed")
        return await self._submit(_Op("onPrestop", req, stop.node), overlay)

    async def register_metrics(self, req: object) -> bool:
        """registerMetrics (see :meth:`on_startup` for the result)."""
        reg = validate_metrics(req)
        return await self._submit(_Op("registerMetrics", req, reg.node), None)

    def keep_alive(self, req: object) -> Coroutine[Any, Any, bool] | None:
        """keepAlive: validated now (StoreValidationError), then coalesced and written within
        ``flush_interval_s``; returns None.

        A beat that changes an instance's state is written at once instead: the returned
        coroutine ends when the change is in the database and in the answers (True), or when
        the database turned out to be down (False: kept for later, and a change to a
        non-routable state is shown in the answers meanwhile).
        """
        beat = validate_keep_alive(req)
        batch = self.accept_beat(beat)
        if batch is None or not self._db_up:
            return None
        return self._await_batch(batch)

    def accept_beat(self, beat: Beat) -> _BeatBatch | None:
        """Queue a validated heartbeat; the batch it went into when it changes a state."""
        batch = self._open
        if batch is None:
            batch = self._open = _BeatBatch(_monotonic())
            self._journal.append(batch)
            self._writer_wake.set()  # start the flush timer
        key = (beat.node, beat.application, beat.server, beat.pod_uid)
        batch.beats.pop(key, None)
        batch.beats[key] = beat
        if self.metrics is not None:
            self.metrics.counters.beats_accepted += 1
        if self._state_changes(beat):
            batch.changed = batch.urgent = True
            overlay = self._beat_overlay(beat)
            if overlay is not None:
                batch.overlays.append(overlay)
                if not self._db_up:
                    self._add_overlay(overlay)
            self._writer_wake.set()
            return batch
        if len(batch.beats) >= self.options.flush_beats:
            batch.urgent = True
            self._writer_wake.set()
        return None

    async def _await_batch(self, batch: _BeatBatch) -> bool:
        started = _monotonic()
        if batch.done is None:
            batch.done = asyncio.get_running_loop().create_future()
        written = await batch.done
        if written:
            await self._refresh(self._written_epoch)
            if self.metrics is not None:
                self.metrics.write_visible.observe(_monotonic() - started)
        return written

    async def get_metrics_adapters(
        self, filter: Mapping[str, str] | None = None
    ) -> list[tuple[list[str], dict[str, str]]]:
        """getMetricsAdapters from the database; while it is down, the last good answer for
        the same filter (StoreUnavailableError if there is none)."""
        wanted = validate_metrics_filter(filter)
        key = tuple(sorted(wanted.items()))
        try:
            result = await self._db(self.store.get_metrics_adapters, wanted)
        except StoreUnavailableError:
            cached = self._sd_cache.get(key)
            if cached is None:
                raise
            return cached
        if len(self._sd_cache) > 256:
            self._sd_cache.clear()
        self._sd_cache[key] = result
        return result

    async def clean(self, before: datetime | str | None = None, dry_run: bool = True
                    ) -> CleanReport:  # fmt: skip
        """The admin ``clean``; the index is refreshed after a real one."""
        when = parse_clean_before(before)
        report = await self._db(self.store.clean, when, dry_run)
        if not dry_run:
            self._written_epoch += 1
            await self._refresh(self._written_epoch)
        return report

    async def refresh(self) -> None:
        """Poll the database now and wait until the result is in the index."""
        self._written_epoch += 1
        await self._refresh(self._written_epoch)

    async def register_own(self, locator_id: str, servants: Mapping[str, str]) -> bool:
        """Heartbeat ``servants`` (name → published endpoint) in ``t_registry_info`` under
        ``locator_id`` (``host:port`` of QueryObj): once now (True when it worked and the
        index shows them), then every ``self_register_interval_s``."""
        self._locator_id = locator_id
        self._own = dict(servants)
        ok = await self._register_own_once()
        if ok:
            await self.refresh()
        self._own_wake.set()
        return ok

    # ------------------------------------------------------------------ journal

    async def _submit(self, op: _Op, overlay: _Overlay | None) -> bool:
        if self._stopping:
            raise StoreUnavailableError("the registry is stopping")
        if not self._db_up and self._pending_ops >= self.options.max_pending_requests:
            raise RegistryBusyError(
                f"the database is unavailable and {self._pending_ops} requests are already "
                "queued; try again later"
            )
        started = _monotonic()
        op.overlay = overlay
        if self._open is not None:  # the beats before this request go now, then the request
            self._open.urgent = True
        self._open = None  # later beats go after this request
        self._journal.append(op)
        self._pending_ops += 1
        self._writer_wake.set()
        if not self._db_up:
            self._queued(op)  # answer at once; the writer retries with backoff
            return False
        op.done = asyncio.get_running_loop().create_future()
        written = await op.done
        if written:
            await self._refresh(op.epoch)
            if self.metrics is not None:
                self.metrics.write_visible.observe(_monotonic() - started)
        return written

    def _queued(self, op: _Op) -> None:
        """``op`` could not be written now: show it through its overlay meanwhile."""
        if op.overlay is not None and op.overlay.written is None and not _is_added(op.overlay,
                                                                                  self._overlays):
            self._add_overlay(op.overlay)
        if op.done is not None and not op.done.done():
            op.done.set_result(False)

    async def _writer(self) -> None:
        delay = self.options.retry_initial_s
        while True:
            if not self._journal:
                if self._stopping:
                    return
                self._writer_wake.clear()
                await self._writer_wake.wait()
                continue
            head = self._journal[0]
            if isinstance(head, _BeatBatch) and not head.urgent and not self._stopping:
                wait = head.created + self.options.flush_interval_s - _monotonic()
                if wait > 0 and len(head.beats) < self.options.flush_beats:
                    self._writer_wake.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._writer_wake.wait(), wait)
                    continue
            try:
                ok = await self._write_head()
            except asyncio.CancelledError:
                raise
            except Exception:  # pragma: no cover - a bug: keep the writer alive
                log.exception("registry writer failed")
                ok = False
            if ok:
                delay = self.options.retry_initial_s
                continue
            if self._stopping:
                return
            self._db_back.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._db_back.wait(), delay)
            delay = min(delay * 2, self.options.retry_max_s)

    async def _write_head(self) -> bool:
        """Write the journal's head (a heartbeat batch, a run of onStartups, or up to
        ``op_concurrency`` other requests on distinct nodes). False when the database is
        unavailable (what was not written stays at the head, in order)."""
        head = self._journal.popleft()
        if isinstance(head, _BeatBatch):
            if head is self._open:
                self._open = None
            return await self._write_batch(head)
        startups = head.kind == "onStartup"
        limit = self.options.startup_batch if startups else self.options.op_concurrency
        ops = [head]
        nodes = {head.node.lower()}  # as a case-insensitive database compares them
        while len(ops) < limit and self._journal:
            nxt = self._journal[0]
            if (not isinstance(nxt, _Op) or nxt.node.lower() in nodes
                    or (nxt.kind == "onStartup") != startups):  # fmt: skip
                break
            self._journal.popleft()
            ops.append(nxt)
            nodes.add(nxt.node.lower())
        if startups and len(ops) > 1:
            return self._settle(ops, await self._write_startups(ops))
        return self._settle(ops, await asyncio.gather(*(self._write_op(op) for op in ops)))

    def _settle(self, ops: list[_Op], results: Iterable[bool]) -> bool:
        """Finish a write of ``ops``: the written ones are done (one write epoch, so one poll
        shows them all); the others go back to the journal's head, in order, and are shown
        through their overlays meanwhile. True when all were written."""
        outcome = list(results)
        failed = [op for op, ok in zip(ops, outcome, strict=True) if not ok]
        for op in reversed(failed):
            self._journal.appendleft(op)
        for op in failed:
            self._queued(op)
        if len(failed) < len(ops):
            self._written_epoch += 1
            epoch = self._written_epoch
            for op, ok in zip(ops, outcome, strict=True):
                if ok:
                    self._pending_ops -= 1
                    op.epoch = epoch
                    if op.overlay is not None:
                        op.overlay.written = epoch
                    if op.done is not None and not op.done.done():
                        op.done.set_result(True)
            self._poll_kick.set()
        return not failed

    async def _write_startups(self, ops: list[_Op]) -> list[bool]:
        """A run of onStartups on distinct nodes in one transaction; if the database refuses
        it (not an outage) or it fails unexpectedly, one by one (:meth:`_write_each`)."""
        try:
            await self._db(self.store.on_startup_batch, [op.req for op in ops], refused_ok=True)
        except StoreRefusedError as exc:
            log.warning("a run of %d onStartup refused (%s): writing them one by one",
                        len(ops), exc)  # fmt: skip
        except StoreUnavailableError:
            return [False] * len(ops)
        except Exception as exc:  # validation happened on arrival: this is unexpected
            log.error("a run of %d onStartup failed (%s): writing them one by one", len(ops),
                      exc)  # fmt: skip
        else:
            return [True] * len(ops)
        return await self._write_each(ops)

    async def _write_each(self, ops: list[_Op]) -> list[bool]:
        """Write ``ops`` (on distinct nodes) one by one, ``op_concurrency`` at a time, as
        :meth:`_write_op`: a request the database refuses stays queued, one that fails
        unexpectedly is dropped, the others are written. Stops at an outage: the rest stays
        queued."""
        results: list[bool] = []
        step = self.options.op_concurrency
        for i in range(0, len(ops), step):
            group = ops[i : i + step]
            outcomes = await asyncio.gather(*(self._write_one(op) for op in group))
            results += [outcome == _WRITTEN for outcome in outcomes]
            if _DOWN in outcomes:
                break
        return results + [False] * (len(ops) - len(results))

    async def _write_op(self, op: _Op) -> bool:
        """Write one request: True when done with it (written, or dropped with its caller
        told), False when it stays queued."""
        return await self._write_one(op) == _WRITTEN

    async def _write_one(self, op: _Op) -> str:
        """Write one request: :data:`_WRITTEN` when done with it (written, or dropped with its
        caller told), :data:`_REFUSED` (the database refused it) or :data:`_DOWN` (the database
        is unavailable) when it stays queued."""
        fn: Callable[[object], object] = {
            "onStartup": self.store.on_startup,
            "onPrestop": self.store.on_prestop,
            "registerMetrics": self.store.register_metrics,
        }[op.kind]
        try:
            await self._db(fn, op.req)
        except StoreRefusedError:
            return _REFUSED
        except StoreUnavailableError:
            return _DOWN
        except Exception as exc:  # validation happened on arrival: this is unexpected
            log.error("%s from %s dropped: %s", op.kind, op.node, exc)
            if op.overlay is not None:
                self._remove_overlay(op.overlay)
            if op.done is not None and not op.done.done():
                op.done.set_exception(exc)
        return _WRITTEN  # done with it (counted as written by the caller)

    async def _write_batch(self, batch: _BeatBatch) -> bool:
        beats = list(batch.beats.values())
        self._writing = batch
        try:
            result = await self._db(self.store.keep_alive_batch, beats)
        except StoreUnavailableError:
            nxt = self._journal[0] if self._journal else None
            if isinstance(nxt, _BeatBatch):  # merge with the (newer) batch behind it
                batch.absorb(nxt)
                self._journal[0] = batch
                if nxt is self._open:
                    self._open = batch
            else:
                self._journal.appendleft(batch)
            batch.urgent = False
            batch.resolve(False)
            for overlay in batch.overlays:
                if overlay.written is None and not _is_added(overlay, self._overlays):
                    self._add_overlay(overlay)
            return False
        except StoreValidationError as exc:  # pragma: no cover - validated on arrival
            log.error("dropping %d heartbeat(s): %s", len(beats), exc)
            result = None
        finally:
            self._writing = None
        self._written_epoch += 1
        for overlay in batch.overlays:
            overlay.written = self._written_epoch
        batch.resolve(True)
        if self.metrics is not None and result is not None:
            self.metrics.counters.beats_written += result.beats - result.refused
            self.metrics.counters.beats_refused += result.refused
        if result is not None and result.refused:
            log.debug("%d heartbeat(s) refused: unknown server or another pod's row",
                      result.refused)  # fmt: skip
        if batch.changed or batch.overlays:
            self._poll_kick.set()
        return True

    # ------------------------------------------------------------------ overlays

    def _state_changes(self, beat: Beat) -> bool:
        """True when ``beat`` gives some instance it names another state than it has now."""
        if beat.application:
            keys: Iterable[ServerKey] = ((beat.application, beat.server),)
        else:
            keys = self._keys_of_node(beat.node)
        for key in keys:
            for row in self._node_rows(key, beat.node):
                if row.present_state.lower() != beat.state:
                    return True
        return False

    def _beat_overlay(self, beat: Beat) -> _Overlay | None:
        """An overlay for a state change: always for a non-routable state; for ``active``
        only when this replica queued the instance's registration (same pod)."""
        if beat.state != _ROUTABLE:
            return _Overlay(beat.node, beat.application, beat.server, "state", state=beat.state)
        if not beat.application:
            return None
        for overlay in reversed(self._overlays.get(beat.node, ())):
            if (overlay.app, overlay.server) != (beat.application, beat.server):
                continue
            if overlay.kind == "startup" and (
                not overlay.pod_uid or not beat.pod_uid or overlay.pod_uid == beat.pod_uid
            ):
                return _Overlay(beat.node, beat.application, beat.server, "state",
                                state=beat.state)  # fmt: skip
            if overlay.kind in ("startup", "prestop"):
                return None
        return None

    def _keys_of_node(self, node: str) -> set[ServerKey]:
        keys = set(self._node_keys.get(node, ()))
        for overlay in self._overlays.get(node, ()):
            if overlay.app:
                keys.add((overlay.app, overlay.server))
        return keys

    def _overlay_keys(self, overlay: _Overlay) -> set[ServerKey]:
        if overlay.app:
            return {(overlay.app, overlay.server)}
        return self._keys_of_node(overlay.node)

    def _add_overlay(self, overlay: _Overlay) -> None:
        self._overlays.setdefault(overlay.node, []).append(overlay)
        self._reindex(self._overlay_keys(overlay))

    def _remove_overlay(self, overlay: _Overlay) -> None:
        items = self._overlays.get(overlay.node)
        if items is None or not _is_added(overlay, self._overlays):
            return
        keys = self._overlay_keys(overlay)
        items.remove(overlay)
        if not items:
            del self._overlays[overlay.node]
        self._reindex(keys)

    def _confirm_overlays(self, epoch: int) -> set[ServerKey]:
        """Drop overlays whose write was committed before the poll that read ``epoch``
        began; the servers they touched."""
        keys: set[ServerKey] = set()
        for node in list(self._overlays):
            items = self._overlays[node]
            keep = []
            for overlay in items:
                if overlay.written is not None and overlay.written <= epoch:
                    keys |= self._overlay_keys(overlay)
                else:
                    keep.append(overlay)
            if keep:
                self._overlays[node] = keep
            else:
                del self._overlays[node]
        return keys

    def _node_rows(self, key: ServerKey, node: str) -> tuple[InstanceRow, ...]:
        """The rows of server ``key`` on ``node``, overlays applied."""
        rows = self._db_rows.get(key, _NO_NODES).get(node, ())
        items = self._overlays.get(node)
        if not items:
            return rows
        app, server = key
        out = list(rows)
        for overlay in items:
            if overlay.app and (overlay.app != app or overlay.server != server):
                continue
            if overlay.kind == "startup":
                out = list(_inherit(overlay.rows, out))
            elif overlay.kind == "prestop":
                out = []
            else:
                out = [replace(r, present_state=overlay.state) for r in out]
        return tuple(out)

    def _effective(self, key: ServerKey) -> tuple[InstanceRow, ...]:
        """The database rows of a server with the overlays applied."""
        by_node = self._db_rows.get(key, _NO_NODES)
        if not self._overlays:
            return tuple(r for rows in by_node.values() for r in rows)
        app, server = key
        nodes = set(by_node)
        for node, items in self._overlays.items():
            if any(o.app == app and o.server == server for o in items):
                nodes.add(node)
        return tuple(r for node in sorted(nodes) for r in self._node_rows(key, node))

    def _reindex(self, keys: Iterable[ServerKey]) -> None:
        changes = {key: self._effective(key) for key in keys}
        if changes:
            self.index.apply_changes(changes)

    def _set_db_rows(self, key: ServerKey, rows: tuple[InstanceRow, ...]) -> None:
        for node in self._db_rows.get(key, _NO_NODES):
            keys = self._node_keys.get(node)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._node_keys[node]
        if rows:
            by_node: dict[str, list[InstanceRow]] = {}
            for row in rows:
                by_node.setdefault(row.node_name, []).append(row)
            self._db_rows[key] = {node: tuple(r) for node, r in by_node.items()}
            for node in by_node:
                self._node_keys.setdefault(node, set()).add(key)
        else:
            self._db_rows.pop(key, None)

    # ------------------------------------------------------------------ polling

    async def _load_full(self) -> bool:
        epoch = self._written_epoch
        started = _monotonic()
        try:
            snapshot, mark = await self._db(self.store.load_snapshot)
        except StoreUnavailableError as exc:
            self._poll_errors += 1
            if self.metrics is not None:
                self.metrics.counters.polls_error += 1
            log.debug("initial load failed: %s", exc)
            return False
        by_key: dict[ServerKey, list[InstanceRow]] = {}
        for row in snapshot.instances:
            by_key.setdefault((row.application, row.server_name), []).append(row)
        for key in list(self._db_rows):
            self._set_db_rows(key, ())
        for key, rows in by_key.items():
            self._set_db_rows(key, tuple(rows))
        self._confirm_overlays(epoch)
        effective = [r for key in self._all_keys() for r in self._effective(key)]
        self.index.replace_all(RegistrySnapshot(tuple(effective), snapshot.group_rules,
                                                snapshot.group_priorities))  # fmt: skip
        first = self._watermark is None
        self._watermark = mark
        self._polled(epoch, started)
        if first:
            self._healthy_since = _monotonic()
            log.info("index loaded: %d row(s), %d servant(s)", len(snapshot.instances),
                     len(self.index.servants()))  # fmt: skip
        return True

    def _all_keys(self) -> set[ServerKey]:
        keys = set(self._db_rows)
        for items in self._overlays.values():
            for overlay in items:
                keys |= self._overlay_keys(overlay)
        return keys

    async def _poll_once(self) -> bool:
        mark = self._watermark
        assert mark is not None
        epoch = self._written_epoch
        started = _monotonic()
        try:
            changed, deleted, new_mark = await self._db(self.store.load_changes, mark)
        except StoreUnavailableError as exc:
            self._poll_errors += 1
            if self.metrics is not None:
                self.metrics.counters.polls_error += 1
            log.debug("change poll failed: %s", exc)
            return False
        if self._watermark is not mark:  # pragma: no cover - one poller only
            return True
        for key in deleted:
            self._set_db_rows(key, ())
        for key, rows in changed.items():
            self._set_db_rows(key, tuple(rows))
        keys = set(changed) | set(deleted) | self._confirm_overlays(epoch)
        self.index.apply_changes(
            {key: self._effective(key) for key in keys},
            group_rules=new_mark.group_rules,
            group_priorities=new_mark.group_priorities,
        )
        self._watermark = new_mark
        if (changed or deleted) and self.metrics is not None and self._last_poll_start:
            self.metrics.propagation.observe(_monotonic() - self._last_poll_start)
        self._polled(epoch, started)
        return True

    def _polled(self, epoch: int, started: float) -> None:
        now = _monotonic()
        self._polls += 1
        if self.metrics is not None:
            self.metrics.counters.polls_ok += 1
        self._last_poll_ok = now
        self._last_poll_start = started
        self._last_poll_ms = (now - started) * 1000.0
        self._applied_epoch = max(self._applied_epoch, epoch)
        waiting = []
        for target, waiter in self._poll_waiters:
            if target <= self._applied_epoch:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                waiting.append((target, waiter))
        self._poll_waiters = waiting

    def _poll_failed(self) -> None:
        waiters, self._poll_waiters = self._poll_waiters, []
        for _, waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _refresh(self, epoch: int) -> None:
        """Wait until a poll that began after write ``epoch`` is in the index (or a poll
        failed, or ``refresh_timeout_s`` passed)."""
        if self._applied_epoch >= epoch:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._poll_waiters.append((epoch, waiter))
        self._poll_kick.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(waiter), self.options.refresh_timeout_s)

    async def _poller(self) -> None:
        opts = self.options
        due = _monotonic() + opts.poll_interval_s
        delay = opts.retry_initial_s
        while True:
            wait = due - _monotonic()
            if wait > 0 and not self._poll_kick.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._poll_kick.wait(), wait)
            self._poll_kick.clear()
            due = _monotonic() + opts.poll_interval_s
            try:
                ok = await (self._poll_once() if self._watermark is not None
                            else self._load_full())  # fmt: skip
            except asyncio.CancelledError:
                raise
            except Exception:  # pragma: no cover - a bug: keep polling
                log.exception("change poll failed")
                ok = False
            if ok:
                delay = opts.retry_initial_s
            else:
                self._poll_failed()
                due = _monotonic() + max(delay, opts.poll_interval_s)
                delay = min(delay * 2, opts.retry_max_s)

    # ------------------------------------------------------------------ expiry

    async def _expirer(self) -> None:
        opts = self.options
        while True:
            await asyncio.sleep(opts.expire_interval_s)
            await self.expire_once()

    def beats_behind_s(self) -> float:
        """How long the oldest accepted heartbeat not yet written has waited (0: none)."""
        oldest = [b.created for b in self._journal if isinstance(b, _BeatBatch)]
        if self._writing is not None:
            oldest.append(self._writing.created)
        return _monotonic() - min(oldest) if oldest else 0.0

    async def expire_once(self, *, force: bool = False) -> bool:
        """One expiry round, unless ``force`` skipped while degraded, in the grace period, or
        while heartbeats wait to be written (the database's ``last_heartbeat`` is then behind
        through no fault of the pods: a write stuck on a dead connection). True when it ran."""
        opts = self.options
        if not force:
            if self.degraded or _monotonic() - self._healthy_since < opts.grace_s:
                return False
            behind = self.beats_behind_s()
            if behind > opts.flush_interval_s + WRITE_LAG_S:
                log.info("expiry skipped: heartbeats accepted %.1f s ago are not written yet",
                         behind)
                return False
        try:
            result = await self._db(self.store.expire, opts.inactive_after_s, opts.delete_after_s)
            stale = await self._db(self.store.expire_registry_info, opts.registry_timeout_s)
        except StoreUnavailableError:
            return False
        if result.inactive_servers or result.deleted_servers or result.deleted_nodes or stale:
            log.info("expiry: %d server(s) inactive, %d server(s) and %d node(s) deleted, %d "
                     "registry servant(s) inactive", result.inactive_servers,
                     result.deleted_servers, result.deleted_nodes, stale)  # fmt: skip
            self._written_epoch += 1
            self._poll_kick.set()
        return True

    # ------------------------------------------------------------------ self-registration

    async def _self_register(self) -> None:
        interval = self.options.self_register_interval_s
        ok = True
        while True:
            self._own_wake.clear()
            if not self._own:
                await self._own_wake.wait()
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._own_wake.wait(),
                                       interval if ok else min(interval, 2.0))  # fmt: skip
            was_ok, ok = ok, await self._register_own_once()
            if ok and not was_ok:
                self._poll_kick.set()

    async def _register_own_once(self) -> bool:
        try:
            for servant, endpoint in sorted(self._own.items()):
                await self._db(self.store.upsert_registry_info, self._locator_id, servant,
                               endpoint)  # fmt: skip
        except StoreUnavailableError:
            return False
        except StoreValidationError as exc:
            log.error("cannot register this registry's servants: %s", exc)
            return False
        return True

    def _deregister_sync(self) -> int:
        """Mark this registry's ``t_registry_info`` rows inactive (graceful stop)."""
        return self.store.deregister_registry_info(self._locator_id)


# -- helpers --------------------------------------------------------------------------------------


def _is_added(overlay: _Overlay, overlays: Mapping[str, list[_Overlay]]) -> bool:
    return any(o is overlay for o in overlays.get(overlay.node, ()))


def _startup_rows(reg: Startup) -> Iterable[InstanceRow]:
    """The rows an onStartup produces (adapters joined with the server), as the store writes
    them; a server without adapters has one row without servant/endpoint."""
    base = InstanceRow(
        application=reg.application,
        server_name=reg.server,
        node_name=reg.node,
        servant="",
        endpoint="",
        setting_state="active",
        present_state=reg.state,
        flow_state="inactive" if reg.disable_flow else "active",
        enable_set=reg.enable_set,
        set_name=reg.set_name,
        set_area=reg.set_area,
        set_group=reg.set_group,
        grid_flag="NO_FLOW" if reg.disable_flow else "NORMAL",
    )
    if not reg.adapters:
        yield base
        return
    for adapter in reg.adapters:
        yield replace(base, servant=adapter.servant, endpoint=adapter.endpoint)


def _inherit(rows: Iterable[InstanceRow], old: list[InstanceRow]) -> Iterable[InstanceRow]:
    """Startup rows keep the columns onStartup does not write (group settings, bak_flag)."""
    if not old:
        yield from rows
        return
    base = old[0]
    for row in rows:
        yield replace(row, enable_group=base.enable_group, ip_group_name=base.ip_group_name,
                      bak_flag=base.bak_flag)  # fmt: skip


def is_active(row: InstanceRow) -> bool:
    """Whether ``row`` is in the active lists (re-exported for tests)."""
    return is_routable(row)
