"""TARS_METRICS_PORT: ``tarscli supervisor`` registers the port with the real ``tarsregistry``
after every onStartup, and the registry's Prometheus HTTP service discovery (``/sd``) lists the
pod; a pod without the variable is not listed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from k8stars.tars.errors import TarsRpcError

from .registry_process import RegistryProcess
from .test_supervisor_support import Pod, TestRegistry, eventually, running


def _sd_targets(reg: RegistryProcess) -> list[Any] | None:
    """The App groups of ``/sd``; None while it does not answer 200 (e.g. just restarted)."""
    try:
        return [g for g in reg.sd() if g["labels"]["application"] == "App"]
    except OSError:
        return None


def test_supervisor_registers_the_metrics_port_and_sd_lists_it(tmp_path: Path) -> None:
    reg = RegistryProcess(tmp_path).start()
    try:
        with_metrics = Pod.create(tmp_path / "a", reg.locator, env={"TARS_METRICS_PORT": "9325"})
        without = Pod.create(tmp_path / "b", reg.locator)
        expected = [{"targets": [f"{with_metrics.ip}:9325"],
                     "labels": {"application": "App", "server": "PyServer", "set": ""}}]
        with running(with_metrics), running(without):
            with_metrics.wait_state("active")
            without.wait_state("active")
            eventually(lambda: _sd_targets(reg) == expected, 15,
                       what=f"/sd listing the pod\n{with_metrics.log()}")
            assert "registered metrics port 9325" in with_metrics.log()
            assert "registerMetrics" not in without.log()

            # the registry comes back on an empty database: the supervisor registers again,
            # metrics port included
            reg.stop()
            eventually(lambda: "keepAlive failed" in with_metrics.log(), 15,
                       what=f"a failed heartbeat\n{with_metrics.log()}")
            reg.start(tmp_path / "new.sqlite")
            eventually(lambda: _sd_targets(reg) == expected, 20,
                       what=f"/sd listing the pod again\n{with_metrics.log()}")
            assert with_metrics.log().count("registered metrics port 9325") == 2
    finally:
        reg.stop()


def test_refused_register_metrics_is_retried_and_never_fatal(tmp_path: Path) -> None:
    attempts: list[int] = []

    def on_call(method: str, req: Any) -> None:
        if method == "registerMetrics":
            attempts.append(req.metricsPort)
            if len(attempts) <= 2:
                raise TarsRpcError("metrics are switched off here", code=-42)

    with TestRegistry(on_call=on_call) as reg:
        pod = Pod.create(tmp_path / "pod", reg.locator, env={"TARS_METRICS_PORT": "8080"})
        with running(pod):
            pod.wait_state("active")
            eventually(lambda: len(attempts) == 3, 15, what=f"3 attempts\n{pod.log()}")
            eventually(lambda: "registered metrics port 8080" in pod.log(), what="the log line")
            before = len(reg.of("keepAlive", state="active"))
            eventually(lambda: len(reg.of("keepAlive", state="active")) > before,
                       what="heartbeats going on")
            assert pod.hzcheck() == 0
        assert attempts == [8080, 8080, 8080]
        assert len(reg.of("onStartup")) == 1  # a refused registerMetrics does not re-register
        log = pod.log()
        failures = [line for line in log.splitlines() if "registerMetrics failed" in line]
        assert len(failures) == 1, log  # logged once per reason
        assert failures[0].endswith("metrics are switched off here (code -42); retrying with "
                                    "backoff")
