"""Network namespaces for network-fault scenarios: a bridge on this machine (a node's pod network)
with namespaces plugged into it (pods, a database host), and partitions that drop traffic silently.

Layout: the bridge holds ``.1`` (where clients on this machine send from) and any extra host
addresses (a registry's); each namespace gets ``eth0`` with its own address and no default route
(traffic stays on this machine). A *cut* between a namespace (or this machine) and an address
points the neighbour entry of that address at a MAC nobody has: packets, new connections and
established ones alike, vanish without an error, as in a real partition; *heal* removes it.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field

#: A locally administered MAC no interface has: the destination of cut-off traffic.
NOWHERE_MAC = "02:00:5e:00:de:ad"


class NetnsUnavailable(RuntimeError):
    """This machine cannot create network namespaces (not root, no iproute2, no support)."""


def _ip(*args: str, ns: str | None = None) -> None:
    cmd = ["ip", *(("-n", ns) if ns else ()), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=10)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip()}")


def _used_prefixes() -> set[str]:
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True,
                         check=False).stdout
    return {word.rsplit(".", 1)[0] for word in out.split() if word.count(".") == 3}


@dataclass
class Namespace:
    name: str
    ip: str
    host_veth: str

    def command(self, *argv: str) -> list[str]:
        """``argv`` run inside this namespace."""
        return ["ip", "netns", "exec", self.name, *argv]


@dataclass
class Network:
    """A bridge with a /24 of its own, namespaces on it, and cuts between them."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:5])
    prefix: str = ""
    namespaces: list[Namespace] = field(default_factory=list)
    host_addresses: list[str] = field(default_factory=list)
    _cuts: list[tuple[str | None, str, str]] = field(default_factory=list)
    _next_host: int = 2

    @property
    def bridge(self) -> str:
        return f"k8br{self.tag}"

    @property
    def host_ip(self) -> str:
        return f"{self.prefix}.1"

    def create(self) -> None:
        if os.geteuid() != 0 or shutil.which("ip") is None:
            raise NetnsUnavailable("network namespaces need root and iproute2 (ip)")
        used = _used_prefixes()
        while not self.prefix or self.prefix in used:
            self.prefix = f"10.{random.randrange(200, 250)}.{random.randrange(256)}"
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
        except RuntimeError as exc:
            raise NetnsUnavailable(str(exc)) from None
        _ip("addr", "add", f"{self.host_ip}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def add_host_address(self) -> str:
        """One more address of this machine on the bridge (a second "node" address)."""
        ip = f"{self.prefix}.{self._next_host}"
        self._next_host += 1
        _ip("addr", "add", f"{ip}/24", "dev", self.bridge)
        self.host_addresses.append(ip)
        return ip

    def add_namespace(self, role: str) -> Namespace:
        n = len(self.namespaces) + 1
        name, ip = f"k8s-{self.tag}-{role}{n}", f"{self.prefix}.{10 + n}"
        host_veth, inner = f"k8v{self.tag}{n}", f"k8i{self.tag}{n}"
        _ip("netns", "add", name)
        ns = Namespace(name, ip, host_veth)
        self.namespaces.append(ns)
        _ip("link", "add", host_veth, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", name)
        _ip("link", "set", host_veth, "master", self.bridge)
        _ip("link", "set", host_veth, "up")
        _ip("link", "set", inner, "name", "eth0", ns=name)
        _ip("addr", "add", f"{ip}/24", "dev", "eth0", ns=name)
        _ip("link", "set", "eth0", "up", ns=name)
        _ip("link", "set", "lo", "up", ns=name)
        return ns

    def cut(self, source: Namespace | None, address: str) -> None:
        """Traffic from ``source`` (None: this machine) to ``address`` is silently dropped."""
        ns, dev = (source.name, "eth0") if source else (None, self.bridge)
        _ip("neigh", "replace", address, "lladdr", NOWHERE_MAC, "dev", dev, "nud", "permanent",
            ns=ns)
        self._cuts.append((ns, dev, address))

    def heal(self) -> None:
        """Remove every cut."""
        while self._cuts:
            ns, dev, address = self._cuts.pop()
            with contextlib.suppress(RuntimeError):
                _ip("neigh", "del", address, "dev", dev, ns=ns)

    def close(self) -> None:
        self.heal()
        for ns in self.namespaces:
            with contextlib.suppress(RuntimeError):
                _ip("link", "del", ns.host_veth)
            with contextlib.suppress(RuntimeError):
                _ip("netns", "del", ns.name)
        self.namespaces.clear()
        with contextlib.suppress(RuntimeError):
            _ip("link", "del", self.bridge)
