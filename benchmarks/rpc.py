"""RPC server throughput: our Python server beside a TarsNode (@tars/rpc) server, one run.

Both servers serve ``Interop.Calc`` on 127.0.0.1; the same load generator (``rpc_load.js``, a
@tars/rpc client keeping N calls in flight on one connection) drives each in turn with
``add(int, int)`` and ``echo`` of a 4 KiB string. Prints calls/s and p50/p99 latency per server
and the ratio ours / node.

    python benchmarks/rpc.py [--seconds 3] [--concurrency 1,50]
    python benchmarks/rpc.py --metrics      # ours with call metrics on vs off (TARS_METRICS_PORT)

``--metrics`` compares two of our servers instead, one without and one with call statistics
(``Server(stats=ServerStats())``, what an Application does when ``TARS_METRICS_PORT`` is set),
measured alternately, best of ``--rounds``; the ratio is on / off.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.interop.calc_servant import CalcImp  # noqa: E402
from tests.interop.node_rpc import calc_server, run_rpc_load  # noqa: E402

from k8stars.tars.server import Server  # noqa: E402
from k8stars.tars.stats import ServerStats  # noqa: E402

SERVANT = "App.PyServer.CalcObj"


@contextmanager
def python_server(stats: ServerStats | None = None) -> Iterator[str]:
    """Our server on its own thread and event loop; yields its proxy string."""
    loop = asyncio.new_event_loop()
    server = Server(app="App", server="PyServer", stats=stats)
    server.add_servant(SERVANT, CalcImp(), "tcp -h 127.0.0.1 -p 0 -t 60000")
    started = threading.Event()

    def main() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield server.proxy(SERVANT)
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(1), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def measure(proxy: str, call: str, concurrency: int, seconds: float) -> dict[str, Any]:
    return run_rpc_load(proxy, call=call, concurrency=concurrency,  # type: ignore[arg-type]
                        seconds=seconds, warmup=min(1.0, seconds / 2))


def metrics_overhead(levels: list[int], seconds: float, rounds: int) -> None:
    """Our server with call statistics on vs off: calls/s, best of ``rounds`` each."""
    stats = ServerStats()
    rows = []
    with python_server() as off, python_server(stats) as on:
        for call in ("add", "echo4k"):
            for level in levels:
                best: dict[str, dict[str, Any]] = {}
                for _ in range(rounds):
                    for name, proxy in (("off", off), ("on", on)):
                        got = measure(proxy, call, level, seconds)
                        if name not in best or got["calls_per_s"] > best[name]["calls_per_s"]:
                            best[name] = got
                rows.append((call, level, best["off"], best["on"]))
    recorded = sum(m.count for s in stats.servants.values() for m in s.methods.values())
    print(f"Calc server: k8stars (Python {sys.version.split()[0]}), call metrics off vs on, "
          f"load from rpc_load.js, {seconds:g} s each, best of {rounds}")
    header = (f"{'call':<7} {'conc':>4} {'off/s':>9} {'on/s':>9} {'on/off':>7} "
              f"{'p50 off':>9} {'p50 on':>9} {'p99 off':>9} {'p99 on':>9}")
    print(header)
    print("-" * len(header))
    for call, level, a, b in rows:
        print(f"{call:<7} {level:>4} {a['calls_per_s']:>9,.0f} {b['calls_per_s']:>9,.0f} "
              f"{b['calls_per_s'] / a['calls_per_s']:>7.3f} {a['p50_ms']:>7.2f}ms "
              f"{b['p50_ms']:>7.2f}ms {a['p99_ms']:>7.2f}ms {b['p99_ms']:>7.2f}ms")
    print(f"({recorded:,} calls recorded by the server with metrics on)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--concurrency", default="1,50", help="calls in flight, comma list")
    parser.add_argument("--metrics", action="store_true",
                        help="compare our server with call metrics on and off (no Node server)")
    parser.add_argument("--rounds", type=int, default=3, help="--metrics: rounds per setting")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    if args.metrics:
        metrics_overhead(levels, args.seconds, args.rounds)
        return
    rows = []
    with python_server() as ours, calc_server() as node:
        for call in ("add", "echo4k"):
            for level in levels:
                a = measure(ours, call, level, args.seconds)
                b = measure(node.proxy, call, level, args.seconds)
                rows.append((call, level, a, b))
    print(f"Calc server: k8stars (Python {sys.version.split()[0]}) vs @tars/rpc (Node), "
          f"load from rpc_load.js, {args.seconds:g} s each")
    header = (f"{'call':<7} {'conc':>4} {'ours/s':>9} {'node/s':>9} {'ratio':>6} "
              f"{'p50 ours':>9} {'p50 node':>9} {'p99 ours':>9} {'p99 node':>9} {'errors':>7}")
    print(header)
    print("-" * len(header))
    for call, level, a, b in rows:
        print(f"{call:<7} {level:>4} {a['calls_per_s']:>9,.0f} {b['calls_per_s']:>9,.0f} "
              f"{a['calls_per_s'] / b['calls_per_s']:>6.2f} {a['p50_ms']:>7.2f}ms "
              f"{b['p50_ms']:>7.2f}ms {a['p99_ms']:>7.2f}ms {b['p99_ms']:>7.2f}ms "
              f"{a['errors'] + b['errors']:>7}")


if __name__ == "__main__":
    main()
