#!/usr/bin/env python3
"""App.SimpleServer: ``Sum`` on MainObj, and HttpObj whose ``GET /`` calls MainObj through
the registry and answers ``sum is 3`` (the Go original's examples/simple, in Python).
"""

from __future__ import annotations

import sys
from pathlib import Path

from k8stars.app import Application, Request, Servant, load
from k8stars.tars.client import ServantProxy
from k8stars.tars.errors import TarsRpcError

SIMPLE = load(Path(__file__).with_name("simple.tars")).interface("App.SimpleServer")


class SimpleServerImp(Servant, interface=SIMPLE):
    def Sum(self, a: int, b: int) -> int:
        return a + b


class SimpleServer(Application):
    main: ServantProxy

    def initialize(self) -> None:
        self.add_servant("MainObj", SimpleServerImp())
        self.http("HttpObj").add_route("/", self.index)
        # No endpoint in the name: the communicator asks the registry (the locator of the
        # config file) where App.SimpleServer.MainObj runs, and keeps the list fresh.
        self.main = self.communicator.proxy(SIMPLE, self.servant_name("MainObj"))

    async def index(self, request: Request) -> tuple[int, str]:
        try:
            total = await self.main.Sum(1, 2)
        except TarsRpcError as exc:
            return 502, f"invoke error {exc}\n"
        return 200, f"sum is {total}"


if __name__ == "__main__":
    sys.exit(SimpleServer().run())
