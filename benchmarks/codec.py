"""Codec throughput: our TARS codec beside TarsNode's @tars/stream, in one run.

Cases: a QueryF answer (findObjectByIdInSameGroup result with 10 EndpointF) and a struct with
every type (``Interop.AllTypes``), both from ``benchmarks/data/samples.json``. Prints encodes
and decodes per second for each side and the ratio ours / @tars/stream.

    python benchmarks/codec.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.interop.node_peer import NodeStreamPeer  # noqa: E402

from k8stars.tars.codec import Struct, StructType  # noqa: E402
from k8stars.tars.codec.plain import from_plain  # noqa: E402
from k8stars.tars.idl.loader import framework, load  # noqa: E402


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``fn`` over about ``seconds`` (after a short warm-up)."""
    for _ in range(200):
        fn()
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(100):
            fn()
        calls += 100
    return calls / elapsed


def cases() -> list[tuple[str, str, Struct, dict[str, object]]]:
    samples = json.loads((ROOT / "benchmarks" / "data" / "samples.json").read_text())
    query = framework().interface("tars.QueryF").methods["findObjectByIdInSameGroup"].result
    answer = samples["query_answer"]
    ours_answer = from_plain({"tars_ret": answer["ret"], "activeEp": answer["activeEp"],
                              "inactiveEp": answer["inactiveEp"]}, StructType(query))
    all_types = load(ROOT / "tests" / "interop" / "idl" / "Interop.tars").struct("Interop.AllTypes")
    ours_all = from_plain(samples["all_types"], StructType(all_types))
    return [
        ("QueryF answer, 10 EndpointF", "QueryAnswer", ours_answer, answer),
        ("AllTypes (every type)", "AllTypes", ours_all, samples["all_types"]),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    try:
        from k8stars.tars.codec.accel import ACCELERATED
    except ImportError:
        ACCELERATED = False
    rows = []
    with NodeStreamPeer() as peer:
        for title, peer_type, value, plain in cases():
            data = value.tars_encode()
            cls = type(value)
            ours_enc = rate(value.tars_encode, args.seconds)
            ours_dec = rate(lambda cls=cls, data=data: cls.tars_decode(data), args.seconds)
            node = peer.bench(peer_type, plain, args.seconds)  # type: ignore[arg-type]
            rows.append((title, len(data), ours_enc, node["encode_per_s"],
                         ours_dec, node["decode_per_s"]))
    impl = "C accelerator" if ACCELERATED else "pure Python"
    print(f"k8stars codec ({impl}) vs @tars/stream, per second, {args.seconds:g} s each")
    header = (f"{'case':<30} {'bytes':>6} {'enc ours':>10} {'enc node':>10} {'ratio':>6} "
              f"{'dec ours':>10} {'dec node':>10} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    for title, size, enc, node_enc, dec, node_dec in rows:
        print(f"{title:<30} {size:>6} {enc:>10,.0f} {node_enc:>10,.0f} {enc / node_enc:>6.2f} "
              f"{dec:>10,.0f} {node_dec:>10,.0f} {dec / node_dec:>6.2f}")


if __name__ == "__main__":
    main()
