"""The registry's own observability: Prometheus metrics, Prometheus HTTP service discovery and a
health endpoint, served over HTTP on one port.

Endpoints (:class:`MetricsHttpServer`):

* ``GET /metrics``: the Prometheus text format (prometheus-client).
* ``GET /sd``: Prometheus HTTP service discovery: ``[{"targets": ["node:port", ...], "labels":
  {"application": .., "server": .., "set": ..}}, ...]``, the servers registered through
  ``registerMetrics`` (getMetricsAdapters data). Query parameters ``application``, ``server``
  and ``set`` filter. While the database is down the last good answer is served.
* ``GET /healthz``: 200 while the registry serves; the body is ``ok`` or ``degraded: <reason>``
  (queries are still answered from memory then), for a Kubernetes readiness probe.

Metrics (all prefixed ``tarsregistry_``):

=========================================  =========  =============================================
``calls_total{servant,method,result}``     counter    RPC calls; ``result`` is ``ok`` or the error
                                                      code (e.g. ``1001``)
``call_duration_seconds{servant,method}``  histogram  time spent in the servant method (queries:
                                                      the in-memory lookup; writes: including the
                                                      database and the index refresh)
``instances{state}``                       gauge      (application, server, node) instances in the
                                                      index by ``present_state``
``servants``                               gauge      servant names with at least one endpoint
``database_up``                            gauge      1 when the last database operation succeeded
``degraded``                               gauge      1 while degraded (database down, or the index
                                                      not loaded yet)
``degraded_transitions_total``             counter    times the registry became degraded
``pending_writes{kind}``                   gauge      writes accepted but not yet in the database:
                                                      ``heartbeat`` (coalesced) and ``request``
                                                      (onStartup/onPrestop/registerMetrics)
``pending_overlays``                       gauge      local changes shown in answers before the
                                                      database confirmed them
``poll_age_seconds``                       gauge      time since the last successful change poll
``polls_total{result}``                    counter    change polls (``ok``/``error``)
``change_propagation_seconds``             histogram  upper bound of the delay between a change
                                                      committed by any replica and its appearance
                                                      in this replica's answers (from the start of
                                                      the previous successful poll to the apply)
``write_visible_seconds``                  histogram  writes through this replica: from the RPC's
                                                      arrival to the change being in the answers
``heartbeats_total{result}``               counter    heartbeats: ``accepted`` on arrival, then
                                                      ``written``/``refused`` by the database
=========================================  =========  =============================================

Hot-path counters are plain Python numbers turned into metric families at scrape time (a
custom collector), so a QueryF lookup pays a dictionary update, not a lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .store_validate import StoreUnavailableError

__all__ = [
    "CallStats",
    "Histogram",
    "MetricsHttpServer",
    "RegistryMetrics",
    "StatusSource",
]

log = logging.getLogger("k8stars.registry.metrics")

PREFIX = "tarsregistry"
#: Latency buckets (s): 50 µs (an in-memory lookup) to 10 s (a write waiting for the database).
LATENCY_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
#: Propagation buckets (s): the goal is ≤ 1 s between replicas.
PROPAGATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0, 10.0, 30.0)


class Histogram:
    """A cumulative-at-scrape histogram without locks (one event loop writes it)."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def buckets(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        total = 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            total += n
            out.append((_float_text(bound), float(total)))
        out.append(("+Inf", float(self.count)))
        return out

    def quantile(self, q: float) -> float | None:
        """An upper bound of the q-quantile (the bucket bound), None without observations."""
        if not self.count:
            return None
        rank = q * self.count
        total = 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            total += n
            if total >= rank:
                return bound
        return float("inf")


def _float_text(value: float) -> str:
    return repr(float(value))


class CallStats:
    """Calls by (servant, method, result) and latency by (servant, method)."""

    __slots__ = ("calls", "latency")

    def __init__(self) -> None:
        self.calls: dict[tuple[str, str, str], int] = {}
        self.latency: dict[tuple[str, str], Histogram] = {}

    def observe(self, servant: str, method: str, result: str, seconds: float) -> None:
        key = (servant, method, result)
        calls = self.calls
        calls[key] = calls.get(key, 0) + 1
        lkey = (servant, method)
        hist = self.latency.get(lkey)
        if hist is None:
            hist = self.latency[lkey] = Histogram(LATENCY_BUCKETS)
        hist.observe(seconds)

    def count(self, servant: str, method: str, result: str | None = None) -> int:
        return sum(
            n
            for (s, m, r), n in self.calls.items()
            if s == servant and m == method and (result is None or r == result)
        )


class StatusSource(Protocol):
    """What the metrics read from the registry service at scrape time."""

    def metrics_status(self) -> Mapping[str, Any]: ...


@dataclass
class _Counters:
    polls_ok: int = 0
    polls_error: int = 0
    degraded_transitions: int = 0
    beats_accepted: int = 0
    beats_written: int = 0
    beats_refused: int = 0


class RegistryMetrics:
    """The registry's metrics, in a private :class:`CollectorRegistry` (several registries may
    run in one process, e.g. in tests)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.calls = CallStats()
        self.propagation = Histogram(PROPAGATION_BUCKETS)
        self.write_visible = Histogram(LATENCY_BUCKETS)
        self.counters = _Counters()
        self._source: StatusSource | None = None
        self.registry.register(_Collector(self))

    def attach(self, source: StatusSource) -> None:
        """Read gauges (instances, health, pending writes) from ``source`` at scrape time."""
        self._source = source

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)

    # -- collection -----------------------------------------------------------------------

    def collect(self) -> Iterable[Metric]:
        calls = CounterMetricFamily(
            f"{PREFIX}_calls", "RPC calls by servant, method and result",
            labels=["servant", "method", "result"],
        )  # fmt: skip
        for (servant, method, result), n in sorted(self.calls.calls.items()):
            calls.add_metric([servant, method, result], n)
        yield calls
        latency = HistogramMetricFamily(
            f"{PREFIX}_call_duration_seconds", "Time spent in the servant method",
            labels=["servant", "method"],
        )  # fmt: skip
        for (servant, method), hist in sorted(self.calls.latency.items()):
            latency.add_metric([servant, method], hist.buckets(), hist.sum)
        yield latency
        yield _histogram(
            f"{PREFIX}_change_propagation_seconds",
            "Upper bound of the delay between a committed change and its appearance in this "
            "replica's answers",
            self.propagation,
        )
        yield _histogram(
            f"{PREFIX}_write_visible_seconds",
            "Writes through this replica: from arrival to visibility in the answers",
            self.write_visible,
        )
        c = self.counters
        polls = CounterMetricFamily(
            f"{PREFIX}_polls", "Change polls by result", labels=["result"]
        )
        polls.add_metric(["ok"], c.polls_ok)
        polls.add_metric(["error"], c.polls_error)
        yield polls
        beats = CounterMetricFamily(
            f"{PREFIX}_heartbeats", "keepAlive heartbeats by outcome", labels=["result"]
        )
        beats.add_metric(["accepted"], c.beats_accepted)
        beats.add_metric(["written"], c.beats_written)
        beats.add_metric(["refused"], c.beats_refused)
        yield beats
        yield CounterMetricFamily(
            f"{PREFIX}_degraded_transitions", "Times the registry became degraded",
            value=c.degraded_transitions,
        )  # fmt: skip
        if self._source is None:
            return
        status = self._source.metrics_status()
        instances = GaugeMetricFamily(
            f"{PREFIX}_instances", "Instances in the index by present_state", labels=["state"]
        )
        for state, n in sorted(dict(status.get("instances_by_state", {})).items()):
            instances.add_metric([state], n)
        yield instances
        yield GaugeMetricFamily(
            f"{PREFIX}_servants", "Servant names with at least one endpoint",
            value=status.get("servants", 0),
        )  # fmt: skip
        yield GaugeMetricFamily(
            f"{PREFIX}_database_up", "1 when the last database operation succeeded",
            value=1 if status.get("database_up") else 0,
        )  # fmt: skip
        yield GaugeMetricFamily(
            f"{PREFIX}_degraded", "1 while degraded (database down or index not loaded)",
            value=1 if status.get("degraded") else 0,
        )  # fmt: skip
        pending = GaugeMetricFamily(
            f"{PREFIX}_pending_writes", "Writes accepted but not yet in the database",
            labels=["kind"],
        )  # fmt: skip
        pending.add_metric(["heartbeat"], status.get("pending_beats", 0))
        pending.add_metric(["request"], status.get("pending_requests", 0))
        yield pending
        yield GaugeMetricFamily(
            f"{PREFIX}_pending_overlays",
            "Local changes shown in answers before the database confirmed them",
            value=status.get("overlays", 0),
        )
        age = status.get("last_poll_age_s")
        yield GaugeMetricFamily(
            f"{PREFIX}_poll_age_seconds", "Seconds since the last successful change poll",
            value=-1.0 if age is None else float(age),
        )  # fmt: skip


def _histogram(name: str, documentation: str, hist: Histogram) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation)
    family.add_metric([], hist.buckets(), hist.sum)
    return family


class _Collector(Collector):
    def __init__(self, metrics: RegistryMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics.collect()


# -- HTTP -------------------------------------------------------------------------------------

SdFetcher = Callable[[Mapping[str, str]], Awaitable[list[tuple[list[str], dict[str, str]]]]]
HealthFn = Callable[[], tuple[bool, str]]

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            503: "Service Unavailable"}  # fmt: skip
_MAX_REQUEST = 16 * 1024
_READ_TIMEOUT = 10.0


class MetricsHttpServer:
    """``/metrics``, ``/sd`` and ``/healthz`` over HTTP/1.1 (one request per connection).

    ``sd(filter)`` returns getMetricsAdapters data (StoreUnavailableError → 503, ValueError →
    400); ``health()`` returns (serving, text).
    """

    def __init__(self, metrics: RegistryMetrics, *, sd: SdFetcher, health: HealthFn) -> None:
        self.metrics = metrics
        self._sd = sd
        self._health = health
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(
            self._handle, host or None, port, reuse_address=True, limit=_MAX_REQUEST
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("metrics: serving /metrics, /sd and /healthz on %s:%d", host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError,
                    ConnectionError):  # fmt: skip
                return
            status, ctype, body = await self._respond(head)
            reason = _REASONS.get(status, "")
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("latin-1")
                + body
            )
            await writer.drain()
        except ConnectionError:
            pass
        except Exception:  # pragma: no cover - a bug must not kill the server
            log.exception("metrics: request failed")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _respond(self, head: bytes) -> tuple[int, str, bytes]:
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return 400, "text/plain", b"bad request\n"
        method, target = parts[0], parts[1]
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"only GET\n"
        url = urlsplit(target)
        path = url.path.rstrip("/") or "/"
        if path == "/metrics":
            started = time.perf_counter()
            body = self.metrics.render()
            log.debug("metrics: rendered in %.1f ms", (time.perf_counter() - started) * 1000)
            return 200, "text/plain; version=0.0.4; charset=utf-8", body
        if path == "/healthz":
            serving, text = self._health()
            return (200 if serving else 503), "text/plain; charset=utf-8", (text + "\n").encode()
        if path == "/sd":
            query = {k: v[-1] for k, v in parse_qs(url.query).items() if v}
            try:
                groups = await self._sd(query)
            except StoreUnavailableError as exc:
                return 503, "text/plain; charset=utf-8", f"{exc}\n".encode()
            except ValueError as exc:
                return 400, "text/plain; charset=utf-8", f"{exc}\n".encode()
            doc = [{"targets": targets, "labels": labels} for targets, labels in groups]
            return 200, "application/json", json.dumps(doc).encode()
        return 404, "text/plain", b"not found: try /metrics, /sd or /healthz\n"
