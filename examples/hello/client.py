#!/usr/bin/env python3
"""Call TestApp.SayHello, through the registry or directly.

    python client.py Ada                                   # through the locator
    python client.py --endpoint "tcp -h 127.0.0.1 -p 13000" Ada        # directly
    python client.py --servant TestApp.HelloNode.SayHelloObj Ada       # the Node server
    python client.py --count 100 --interval 0.1 Ada        # call in a loop

The locator is ``--locator``, else ``$TARS_LOCATOR``, else the registry on 127.0.0.1:17890.
Exit status: 0 when every call succeeded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

from k8stars.tars.client import Communicator
from k8stars.tars.errors import TarsRpcError
from k8stars.tars.idl.loader import load

IDL = load(Path(__file__).with_name("SayHello.tars"))
SAY_HELLO = IDL.interface("TestApp.SayHello")
DEFAULT_LOCATOR = "tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 17890"


async def main(args: argparse.Namespace) -> int:
    target = f"{args.servant}@{args.endpoint}" if args.endpoint else args.servant
    failures = 0
    async with Communicator(locator=args.locator, sync_invoke_timeout=args.timeout) as comm:
        hello = comm.proxy(SAY_HELLO, target)
        for i in range(args.count):
            if i:
                await asyncio.sleep(args.interval)
            started = time.monotonic()
            try:
                greeting = await hello.SayHello(args.name)
                ret, total = await hello.Add(1, 2)
            except TarsRpcError as exc:
                failures += 1
                print(f"call {i + 1} failed: {exc}", file=sys.stderr)
                continue
            ms = (time.monotonic() - started) * 1000
            print(f"{greeting} (Add(1, 2) = {total}, ret {ret}; {ms:.1f} ms)")
    if args.count > 1:
        print(f"{args.count - failures}/{args.count} calls succeeded")
    return 1 if failures else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", nargs="?", default="world")
    parser.add_argument("--servant", default="TestApp.HelloPy.SayHelloObj")
    parser.add_argument("--locator", default=os.environ.get("TARS_LOCATOR") or DEFAULT_LOCATOR)
    parser.add_argument("--endpoint", help="call this endpoint directly (no registry)")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between calls")
    parser.add_argument("--timeout", type=int, default=3000, help="call timeout in ms")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
