"""Rolling update (surge 1, unavailable 0) of 3 replicas of examples/hello under load.

    python benchmarks/rollout.py [--replicas 3]

Kubelet-simulated pods (``k8stars.local.pod``), one ``tarsregistry`` on SQLite, a Python client
and a TarsNode client calling continuously through the registry (endpoint refresh 1 s, preStop
wait 2.5 s). Prints the rollout wall time and the calls and failures of each client.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.lifecycle.test_rollout import run_rollout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="k8stars-rollout-") as tmp:
        result = asyncio.run(run_rollout(Path(tmp), args.replicas))
    print(f"rollout of {args.replicas} replicas: {result['rollout']:.1f} s")
    print(f"{'client':<8} {'calls':>7} {'failed':>7}")
    failed = 0
    for name in ("python", "node"):
        c = result[name]
        print(f"{name:<8} {c.ok + c.failed:>7} {c.failed:>7}")  # type: ignore[attr-defined]
        failed += c.failed  # type: ignore[attr-defined]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
