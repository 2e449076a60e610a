"""Call statistics of a :class:`~k8stars.tars.server.Server`: plain counters, no locks.

A server built with ``Server(stats=ServerStats())`` records every answered call (and every
oneway call) of every adapter: a count per (servant, method, return code) and a latency
histogram per (servant, method), the latency running from the arrival of the bytes that
carried the request to its answer. The server's event loop is the only writer; readers (a
Prometheus collector, see :mod:`k8stars.app.metrics`) run on the same loop, so a scrape
sees a consistent snapshot.

Method names a client made up are counted under :data:`UNKNOWN_METHOD`, so the label set
stays bounded by the servants' interfaces.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence

__all__ = ["LATENCY_BUCKETS", "UNKNOWN_METHOD", "MethodStats", "ServantStats", "ServerStats"]

#: Latency bucket bounds (s): 100 µs (an inline call) to 10 s.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
)  # fmt: skip
#: The method label of calls to a function the servant does not have.
UNKNOWN_METHOD = "(unknown)"


class MethodStats:
    """One method: calls by return code, and latency counts per bucket (not cumulative; the
    last slot counts the calls above the largest bound)."""

    __slots__ = ("bounds", "buckets", "codes", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.buckets = [0] * (len(bounds) + 1)
        self.codes: dict[int, int] = {}
        self.sum = 0.0

    @property
    def count(self) -> int:
        return sum(self.buckets)

    def cumulative(self) -> Iterator[tuple[float, int]]:
        """``(bound, calls <= bound)`` per bucket, ending with ``(inf, all calls)``."""
        total = 0
        for bound, n in zip((*self.bounds, float("inf")), self.buckets, strict=True):
            total += n
            yield bound, total


class ServantStats:
    """The methods of one servant; ``known`` names the methods that get their own label."""

    __slots__ = ("bounds", "known", "methods", "name")

    def __init__(self, name: str, known: Iterable[str],
                 bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.name = name
        self.known = frozenset(known)
        self.bounds = bounds
        self.methods: dict[str, MethodStats] = {}

    def record(self, method: str, code: int, seconds: float) -> None:
        """Count one call (the hot path: two dict updates and a bisect)."""
        stats = self.methods.get(method)
        if stats is None:
            stats = self._add(method)
        stats.buckets[bisect_left(stats.bounds, seconds)] += 1
        stats.sum += seconds
        codes = stats.codes
        codes[code] = codes.get(code, 0) + 1

    def _add(self, method: str) -> MethodStats:
        if method not in self.known:
            method = UNKNOWN_METHOD
        stats = self.methods.get(method)
        if stats is None:
            stats = self.methods[method] = MethodStats(self.bounds)
        return stats


class ServerStats:
    """Every servant of a server, by servant name."""

    __slots__ = ("bounds", "servants")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(sorted(bounds))
        self.servants: dict[str, ServantStats] = {}

    def servant(self, name: str, methods: Iterable[str]) -> ServantStats:
        """The stats of servant ``name`` (created on first use) with its method names."""
        found = self.servants.get(name)
        if found is None:
            found = self.servants[name] = ServantStats(name, methods, self.bounds)
        return found
