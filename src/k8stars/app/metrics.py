"""Prometheus metrics of an :class:`~k8stars.app.Application`, served over HTTP.

When ``TARS_METRICS_PORT`` is set (the variable ``tarscli supervisor`` registers with the
registry, whose ``/sd`` then lists ``POD_IP:port`` to Prometheus), the application serves
``GET /metrics`` on ``POD_IP`` (else the config's ``localip``, else every interface) at that
port, on its own event loop:

* ``tars_server_calls_total{servant,method,code}`` (counter): calls answered, and oneway
  calls, by return code (``0``, ``-99``, a servant's own code; ``(unknown)`` methods are
  functions the servant does not have);
* ``tars_server_call_duration_seconds{servant,method}`` (histogram): from the arrival of the
  request's bytes to its answer;

plus everything in prometheus-client's default registry: the process, platform and GC
collectors, and any metric the service defines itself (``prometheus_client.Counter(...)``).

The server counts calls in plain numbers (:mod:`k8stars.tars.stats`); :class:`CallCollector`
turns them into metric families only when scraped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from k8stars.tars.config import ConfigError
from k8stars.tars.stats import ServerStats

from .http import HttpApp, HttpServer, Response

__all__ = ["METRICS_PORT_VARIABLE", "CallCollector", "MetricsExporter", "metrics_address"]

log = logging.getLogger("k8stars.app.metrics")

#: The environment variable that turns metrics on (also read by ``tarscli supervisor``).
METRICS_PORT_VARIABLE = "TARS_METRICS_PORT"
PREFIX = "tars_server"


def metrics_address(environ: Mapping[str, str], localip: str) -> tuple[str, int] | None:
    """``(host, port)`` to serve metrics on, or None when ``TARS_METRICS_PORT`` is unset
    or empty; ConfigError for a value that is not a port number."""
    raw = environ.get(METRICS_PORT_VARIABLE, "")
    if not raw:
        return None
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise ConfigError(f"{METRICS_PORT_VARIABLE}={raw!r}: expected a port number from 1 to "
                          "65535 (or unset: no metrics)")
    host = environ.get("POD_IP", "").strip() or localip or "0.0.0.0"
    return host, int(text)


class CallCollector(Collector):
    """The server's call statistics as Prometheus metric families, built at scrape time."""

    def __init__(self, stats: ServerStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        calls = CounterMetricFamily(f"{PREFIX}_calls", "TARS calls served, by return code",
                                    labels=("servant", "method", "code"))
        latency = HistogramMetricFamily(
            f"{PREFIX}_call_duration_seconds",
            "Time from the arrival of a TARS request to its answer",
            labels=("servant", "method"))
        for servant in list(self.stats.servants.values()):
            for method, stats in list(servant.methods.items()):
                for code, n in sorted(stats.codes.items()):
                    calls.add_metric((servant.name, method, str(code)), n)
                buckets = [("+Inf" if bound == float("inf") else repr(bound), float(n))
                           for bound, n in stats.cumulative()]
                latency.add_metric((servant.name, method), buckets, stats.sum)
        yield calls
        yield latency


class _DefaultRegistry(Collector):
    """prometheus-client's default registry (process, platform, GC and user metrics)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


class MetricsExporter:
    """``GET /metrics`` for ``stats`` on ``host:port`` (see the module docstring)."""

    def __init__(self, stats: ServerStats, host: str, port: int) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(CallCollector(stats))
        self.registry.register(_DefaultRegistry())
        app = HttpApp()
        app.add_route("/metrics", self._metrics)
        self.http = HttpServer(app, f"tcp -h {host} -p {port} -t 60000", name="MetricsAdapter",
                               max_body=0)

    def _metrics(self) -> Response:
        return Response(200, generate_latest(self.registry), content_type=CONTENT_TYPE_PLAIN_0_0_4)

    def url(self) -> str:
        return self.http.url("/metrics")

    async def start(self) -> None:
        await self.http.start()

    async def stop(self, deadline: float = 1.0) -> None:
        await self.http.stop(deadline)
