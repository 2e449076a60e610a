#!/usr/bin/env python3
"""TestApp.HelloPy: the SayHello servant of SayHello.tars on SayHelloObj.

Run it the way ``tarscli supervisor`` does: ``tarscli genconf`` writes the config file,
``start.sh`` starts this script with ``--config=$TARS_PATH/conf/HelloPy.conf``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from k8stars.app import Application, Servant, current, load

log = logging.getLogger("hello")
IDL = load(Path(__file__).with_name("SayHello.tars"))


class SayHelloImp(Servant, interface=IDL.interface("TestApp.SayHello")):
    async def SayHello(self, name: str) -> str:
        log.debug("SayHello(%r) from %s", name, current().host)
        return f"hello {name}"

    def Add(self, a: int, b: int) -> tuple[int, int]:
        return 0, a + b  # the return value, then the out parameter c


app = Application()
app.add_servant("SayHelloObj", SayHelloImp())


@app.on_prestop
def prestop() -> None:
    # tarscli prestop sends this before the drain wait: the registry no longer hands out
    # this replica, calls in flight still arrive for a while.
    log.info("prestop: draining")


if __name__ == "__main__":
    sys.exit(app.run())
