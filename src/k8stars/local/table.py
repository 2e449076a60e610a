"""The table of services, replicas, POD_IPs, endpoints and states, and the terminal that shows it.

On a terminal, :class:`Console` keeps a *live region* at the bottom (a progress line and the
table) and redraws it in place while log lines scroll above it; elsewhere (a pipe, a CI log)
it prints plain lines and no escape codes.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import Any, TextIO

__all__ = ["Console", "render_table"]

_COLUMNS = ("SERVICE", "POD", "POD_IP", "STATE", "TARS", "REGISTRY", "RESTARTS", "AGE",
            "ENDPOINTS")


def _age(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def _endpoints(pod: dict[str, Any]) -> str:
    parts = []
    for ep in pod.get("endpoints", []):
        obj = str(ep["servant"]).rsplit(".", 1)[-1]
        text = f"{obj} {ep['host']}:{ep['port']}"
        if ep.get("protocol") not in ("tars", "", None):
            text += f" ({ep['protocol']})"
        parts.append(text)
    return ", ".join(parts) or "-"


def render_table(snapshot: dict[str, Any], now: float | None = None) -> list[str]:
    """The status table of a runner snapshot (``state.json``), as lines."""
    now = time.time() if now is None else now
    reg = snapshot.get("registry", {})
    lines = [f"registry  {reg.get('host')}:{reg.get('query_port')}  {reg.get('state')}  "
             f"pid {reg.get('pid')}  (locator {reg.get('locator')})"]
    rows: list[tuple[str, ...]] = [_COLUMNS]
    details: dict[int, str] = {}
    services = snapshot.get("services", [])
    pods = snapshot.get("pods", [])
    for service in services:
        mine = [p for p in pods if p.get("service") == service["name"]]
        if not mine:
            rows.append((service["name"], "-", "-", f"0/{service.get('replicas', 0)} replicas",
                         "", "", "", "", ""))
        for pod in mine:
            rows.append((
                service["name"], pod["name"], pod["ip"], pod["state"],
                pod.get("tars_state") or "-", pod.get("registry") or "-",
                str(pod.get("restarts", 0)), _age(now - float(pod.get("created", now))),
                _endpoints(pod),
            ))
            if pod.get("detail") and pod["state"] != "ready":
                details[len(rows) - 1] = str(pod["detail"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index in details:
            lines.append(" " * (widths[0] + 2) + "└ " + details[index])
    ready = sum(p["state"] == "ready" for p in pods)
    lines.append(f"{ready}/{len(pods)} pods ready; state dir {snapshot.get('state_dir')} "
                 f"(runner pid {snapshot.get('pid')}, {snapshot.get('mode')}, "
                 f"{snapshot.get('phase')})")
    return lines


class Console:
    """Log lines, a transient progress line and a live table on a terminal; plain lines
    elsewhere."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self._progress = ""
        self._table: list[str] = []
        self._drawn = 0
        self._last_draw = 0.0

    def _width(self) -> int:
        return shutil.get_terminal_size((120, 40)).columns

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _draw(self) -> None:
        width = self._width()
        region = ([self._progress] if self._progress else []) + self._table
        for line in region:
            self.stream.write(line[: width - 1] + "\n")
        self._drawn = len(region)
        self._last_draw = time.monotonic()
        self.stream.flush()

    def log(self, line: str) -> None:
        if self.live:
            self._clear()
            self.stream.write(line + "\n")
            self._draw()
        else:
            self.stream.write(line + "\n")
            self.stream.flush()

    def progress(self, line: str) -> None:
        if self.live:
            self._progress = line
            self._clear()
            self._draw()
        else:
            self.stream.write(line + "\n")
            self.stream.flush()

    def table(self, snapshot: dict[str, Any], *, force: bool = False) -> None:
        """Update the live table (terminals only; throttled to 5 redraws a second)."""
        if not self.live:
            return
        self._table = render_table(snapshot)
        if force or time.monotonic() - self._last_draw > 0.2:
            self._clear()
            self._draw()

    def done(self, snapshot: dict[str, Any] | None = None) -> None:
        """End the live region: drop the progress line, print the final table for good."""
        if self.live:
            self._progress = ""
            self._clear()
            self._table = []
        if snapshot is not None:
            for line in render_table(snapshot):
                self.stream.write(line + "\n")
        self.stream.flush()

    def handle(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        message = str(event.get("message", ""))
        if kind == "log" and message:
            self.log(message)
        elif kind == "progress" and message:
            self.progress(message)
        elif kind == "state" and isinstance(event.get("state"), dict):
            self.table(event["state"])
