"""Smoke test of the @tars/stream peer against the worked bytes of tars-protocol.md §2.15."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .node_peer import NodePeerError, NodeStreamPeer, node_available

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not node_available(), reason="Node.js / npm not available"),
]

SAMPLES = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "samples.json"

# §2.15: sBuffer of the findObjectByIdInSameGroup response, one active endpoint, none inactive.
HOST = b"10.0.0.7".hex()
WORKED_SBUFFER = bytes.fromhex(
    "".join(
        [
            "0c",  # t0 ret = 0 (ZeroTag)
            "290001",  # t2 LIST, count 1
            "0a",  # StructBegin
            "0608" + HOST,  # host
            "11271f",  # port 10015
            "220000ea60",  # timeout 60000
            "3001",  # istcp 1
            "4c",  # grid 0
            "50ff",  # groupworkid -1
            "60ff",  # grouprealid -1
            "b0ff",  # weight -1 (tag 11)
            "e608" + HOST,  # nodeName (tag 14)
            "0b",  # StructEnd
            "390c",  # t3 LIST, count 0
        ]
    )
)
WORKED_ENDPOINT = WORKED_SBUFFER[4:-2]  # StructBegin .. StructEnd of the one EndpointF

ENDPOINT_10_0_0_7: dict[str, Any] = {
    "host": "10.0.0.7", "port": 10015, "timeout": 60000, "istcp": 1, "grid": 0,
    "groupworkid": -1, "grouprealid": -1, "weight": -1, "nodeName": "10.0.0.7",
}  # fmt: skip


@pytest.fixture(scope="module")
def peer() -> Iterator[NodeStreamPeer]:
    with NodeStreamPeer() as p:
        yield p


@pytest.fixture(scope="module")
def samples() -> dict[str, Any]:
    with open(SAMPLES, encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


MAP_FIELDS = ("counts", "byId", "tagged")  # AllTypes maps: entry order is not significant


def _normalise(value: dict[str, Any]) -> dict[str, Any]:
    out = dict(value)
    for name in MAP_FIELDS:
        if name in out:
            out[name] = sorted(out[name], key=lambda kv: json.dumps(kv[0]))
    return out


def test_worked_example_sbuffer(peer: NodeStreamPeer) -> None:
    body = {"ret": 0, "activeEp": [ENDPOINT_10_0_0_7], "inactiveEp": []}
    assert len(WORKED_SBUFFER) == 45
    assert peer.encode("QueryAnswer", body) == WORKED_SBUFFER
    decoded = peer.decode("QueryAnswer", WORKED_SBUFFER)
    assert decoded["activeEp"][0] == {
        **ENDPOINT_10_0_0_7, "setId": "", "qos": 0, "bakFlag": 0, "weightType": 0, "authType": 0,
    }  # fmt: skip


def test_sample_first_endpoint_matches_worked_example(
    peer: NodeStreamPeer, samples: dict[str, Any]
) -> None:
    answer = samples["query_answer"]
    data = peer.encode("QueryAnswer", answer)
    assert data[:4] == bytes.fromhex("0c29000a")  # ret 0, LIST of 10
    assert WORKED_ENDPOINT[:1] == b"\x0a" and WORKED_ENDPOINT[-1:] == b"\x0b"
    assert data[4 : 4 + len(WORKED_ENDPOINT)] == WORKED_ENDPOINT
    assert data.endswith(bytes.fromhex("390c"))


@pytest.mark.parametrize(
    ("name", "type_name"), [("query_answer", "QueryAnswer"), ("all_types", "AllTypes")]
)
def test_samples_round_trip(
    peer: NodeStreamPeer, samples: dict[str, Any], name: str, type_name: Any
) -> None:
    value = samples[name]
    data = peer.encode(type_name, value)
    assert _normalise(peer.decode(type_name, data)) == _normalise(value)


def test_bad_input_is_an_error_not_a_crash(peer: NodeStreamPeer) -> None:
    with pytest.raises(NodePeerError, match="require field not exist"):
        peer.decode("AllTypes", b"")
    with pytest.raises(NodePeerError, match="truncated"):
        peer.decode("Inner", bytes.fromhex("0c16ff61"))
    with pytest.raises(NodePeerError, match="unknown type"):
        peer.encode("Nope", {})  # type: ignore[arg-type]
    assert peer.decode("Inner", bytes.fromhex("0c")) == {"id": 0, "label": "inner"}
