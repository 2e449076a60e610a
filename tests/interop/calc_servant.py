"""Our Python implementation of ``Interop.Calc``, with the semantics of the Node peer's."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from k8stars.tars.errors import TarsRpcError
from k8stars.tars.idl.loader import TarsIdl, load
from k8stars.tars.servant import Servant

IDL: TarsIdl = load(Path(__file__).resolve().parent / "idl" / "InteropRpc.tars")
CALC = IDL.interface("Interop.Calc")


class CalcImp(Servant, interface=CALC):
    """add, echo, divide (out params), roundTrip (structs), countWords (maps), touch, fail."""

    def __init__(self) -> None:
        self.touched: list[str] = []

    def add(self, a: int, b: int) -> int:
        return a + b

    def echo(self, s: str) -> str:
        if s == "__touched__":
            return ",".join(self.touched)
        return s

    def divide(self, a: int, b: int) -> tuple[int, int, int]:
        if b == 0:
            return -1, 0, 0
        quotient = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)
        return 0, quotient, a - b * quotient

    async def roundTrip(self, value: Any) -> tuple[Any, list[Any]]:
        return value, value.inners

    def countWords(self, words: list[str]) -> dict[str, int]:
        return dict(Counter(words))

    def touch(self, name: str) -> None:
        self.touched.append(name)

    def fail(self, message: str) -> int:
        if message.startswith("code="):
            code, _, text = message[5:].partition(":")
            raise TarsRpcError(text, int(code))
        raise ValueError(message)
