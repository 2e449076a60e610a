"""Query index speed: lookups per second on 10,000 instances (1,000 servants × 10 nodes).

Measures the index alone (no RPC): the encoded hot paths (findObjectByIdInSameGroup,
findObjectById, findObjectByIdInSameSet), the same answers as EndpointF lists, both without
group rules (the default install) and with IP group rules, plus the cost of a full build and
of one incremental update.

    python benchmarks/registry_index.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from k8stars.registry.index import RegistryIndex  # noqa: E402
from k8stars.registry.model import (  # noqa: E402
    GroupPriority,
    GroupRule,
    InstanceRow,
    RegistrySnapshot,
)

SERVANTS, NODES = 1000, 10


def instances() -> list[InstanceRow]:
    rows = []
    for s in range(SERVANTS):
        for n in range(NODES):
            ip = f"10.{n}.{s // 250}.{s % 250 + 1}"
            rows.append(InstanceRow(
                application="Bench", server_name=f"Server{s}", node_name=ip,
                servant=f"Bench.Server{s}.Obj", endpoint=f"tcp -h {ip} -p 10000 -t 60000",
                present_state="active" if n else "inactive", enable_group="Y",
                enable_set="Y" if s % 2 else "N", set_name="bench", set_area="sz",
                set_group=str(n % 2)))
    return rows


def rate(fn: Callable[[int], object], seconds: float) -> float:
    """Calls per second of ``fn(i)`` over about ``seconds``, after filling the memo tables."""
    for i in range(SERVANTS * 100):
        fn(i)
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for i in range(calls, calls + 1000):
            fn(i)
        calls += 1000
    return calls / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    rows = instances()
    start = time.perf_counter()
    plain = RegistryIndex(RegistrySnapshot(tuple(rows)))
    build = time.perf_counter() - start
    rules = tuple(GroupRule(n, f"g{n}", f"10.{n}.0.*|10.{n}.1.*|10.{n}.2.*|10.{n}.3.*")
                  for n in range(NODES))
    prios = (GroupPriority(1, "|".join(str(n) for n in range(NODES)), 1, "all"),)
    grouped = RegistryIndex(RegistrySnapshot(tuple(rows), rules, prios))
    ids = [f"Bench.Server{s}.Obj" for s in range(SERVANTS)]
    hosts = [f"10.{n}.0.{h}" for n in range(NODES) for h in range(1, 11)]

    def ident(i: int) -> str:
        return ids[i % SERVANTS]

    def host(i: int) -> str:  # every servant is asked by clients of every group
        return hosts[(i // SERVANTS) % len(hosts)]

    cases: list[tuple[str, Callable[[int], object]]] = [
        ("encoded_same_group, no group rules",
         lambda i: plain.encoded_same_group(ident(i), host(i))),
        ("encoded_same_group, IP group rules",
         lambda i: grouped.encoded_same_group(ident(i), host(i))),
        ("encoded_by_id", lambda i: plain.encoded_by_id(ident(i))),
        ("encoded_same_set bench.sz.1 (half fall back)",
         lambda i: plain.encoded_same_set(ident(i), "bench.sz.1", host(i))),
        ("find_object_by_id_in_same_group (lists)",
         lambda i: plain.find_object_by_id_in_same_group(ident(i), host(i))),
        ("find_object_by_id_in_same_group, rules (lists)",
         lambda i: grouped.find_object_by_id_in_same_group(ident(i), host(i))),
        ("find_object_by_id_in_same_set (lists)",
         lambda i: plain.find_object_by_id_in_same_set(ident(i), "bench.sz.1", host(i))),
    ]
    print(f"{SERVANTS * NODES} instances, {SERVANTS} servants; full build {build * 1000:.0f} ms")
    for name, fn in cases:
        print(f"{name:<50} {rate(fn, args.seconds):>12,.0f} lookups/s")
    def update(i: int) -> None:
        s = i % SERVANTS
        changed = list(rows[s * NODES:(s + 1) * NODES])
        changed[0] = dataclasses.replace(
            changed[0], present_state="active" if (i // SERVANTS) % 2 else "inactive")
        plain.apply_changes({("Bench", f"Server{s}"): changed})

    print(f"{'apply_changes, one server of 10 nodes':<50} {rate(update, args.seconds):>12,.0f} /s")
    for label in ("full reload after those updates", "full reload, nothing changed"):
        start = time.perf_counter()
        plain.replace_all(RegistrySnapshot(tuple(rows)))
        print(f"{label:<50} {(time.perf_counter() - start) * 1000:>12.0f} ms")


if __name__ == "__main__":
    main()
