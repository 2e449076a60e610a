"""tars-codec on the command line, and the JSON mapping it uses."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from k8stars.tars.codec import DOUBLE, LONG, StructType
from k8stars.tars.codec.plain import PlainValueError, from_plain, to_plain
from k8stars.tars.codec_cli import main
from k8stars.tars.idl.loader import load

HELLO = str(Path(__file__).resolve().parents[2] / "examples" / "idl" / "Hello.tars")


def test_encode_decode_dump(capsys: pytest.CaptureFixture[str]) -> None:
    value = '{"name": "k8stars", "times": 3, "counters": [["calls", 4294967296]]}'
    assert main(["encode", HELLO, "TestApp.Greeting", value]) == 0
    encoded = capsys.readouterr().out.strip()
    assert main(["decode", HELLO, "TestApp.Greeting", encoded]) == 0
    decoded = capsys.readouterr().out
    assert '"name": "k8stars"' in decoded and "4294967296" in decoded and '"mood": 3' in decoded
    assert main(["dump", encoded]) == 0
    assert 'tag 0 STRING1 "k8stars"' in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["decode", HELLO, "TestApp.Greeting", "06"], "truncated input"),
    (["decode", HELLO, "TestApp.Greeting", "zz"], "not a hex string"),
    (["encode", HELLO, "TestApp.Greeting", "{nope"], "bad JSON"),
    (["encode", HELLO, "TestApp.Greeting", '{"times": "x"}'], "expected an integer"),
    (["encode", HELLO, "TestApp.Greeting", '{"name": 5}'], "value.name: expected a string"),
    (["encode", HELLO, "TestApp.Nope", "{}"], "no struct 'TestApp.Nope'"),
    (["types", "/nonexistent.tars"], "cannot read file"),
])
def test_user_mistakes_get_one_line(argv: list[str], message: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tars-codec: ") and message in err and err.count("\n") == 1


def test_console_script_runs_without_traceback() -> None:
    result = subprocess.run([sys.executable, "-m", "k8stars.tars.codec_cli", "decode", HELLO,
                             "TestApp.Greeting", "0a"], capture_output=True, text=True, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_plain_mapping_round_trip_and_errors() -> None:
    greeting = load(HELLO).struct("TestApp.Greeting")
    value = greeting(name="x", counters={"a": -(2**63)})  # type: ignore[call-arg]
    plain = to_plain(value, StructType(greeting), long_as_str=True)
    assert plain["counters"] == [["a", str(-(2**63))]]
    assert from_plain(plain, StructType(greeting)) == value
    assert to_plain(math.inf, DOUBLE) == "Infinity" and math.isnan(from_plain("NaN", DOUBLE))
    with pytest.raises(PlainValueError, match="out of range for long"):
        from_plain(2**63, LONG)
    with pytest.raises(PlainValueError, match="has no field 'nam'"):
        from_plain({"nam": "x"}, StructType(greeting))
