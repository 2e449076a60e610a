"""Wall time of ``tarscli hzcheck`` (the readiness probe) against a bare interpreter, in one run.

Runs, round-robin so that machine load hits every row alike (default 50 runs each):

* ``python -S -c pass``: the interpreter alone (baseline of the ratio);
* ``python -c pass``: the interpreter with ``site`` (what every console script pays);
* ``tarscli hzcheck`` through the venv's console script, with compiled bytecode (as after
  ``pip install``: pip compiles ``.pyc`` files; here they go to a private
  ``PYTHONPYCACHEPREFIX``, so the checkout is not touched);
* the same without bytecode (``PYTHONDONTWRITEBYTECODE=1`` and no cache, as in a development
  checkout where that variable is set): every module is compiled on each run.

The state file is ``active`` in a temporary ``TARS_PATH``, so hzcheck succeeds (checked).
When the venv has no ``tarscli`` script yet, an identical one is written to a temporary
directory (pip's template: ``import sys`` + the entry point, nothing else).

    python benchmarks/hzcheck.py [--runs 50]

Goal: hzcheck median <= 20 ms.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_MS = 20.0

# What pip (>= 22) writes for a console_scripts entry point.
PIP_SCRIPT = """#!{python}
import sys
from k8stars.cli.main import main
if __name__ == '__main__':
    sys.argv[0] = sys.argv[0].removesuffix('.exe')
    sys.exit(main())
"""


def find_script(tmp: Path) -> tuple[Path, str]:
    """The venv's ``tarscli`` console script, or a pip-identical one written to ``tmp``."""
    script = Path(sys.executable).parent / "tarscli"
    if script.is_file():
        return script, "the venv's console script"
    shim = tmp / "tarscli"
    shim.write_text(PIP_SCRIPT.format(python=sys.executable))
    shim.chmod(0o755)
    return shim, "a pip-identical script (tarscli is not installed in the venv yet)"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


def run_once(cmd: list[str], env: dict[str, str], expect: int) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          check=False)
    elapsed = (time.perf_counter() - start) * 1000
    if proc.returncode != expect:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.decode()}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="runs per command (default 50)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hzcheck-bench-") as tmpdir:
        tmp = Path(tmpdir)
        tars_path = tmp / "tars"
        (tars_path / "data").mkdir(parents=True)
        (tars_path / "data" / "check_status").write_text("active")
        script, script_kind = find_script(tmp)

        base_env = {k: v for k, v in os.environ.items() if not k.startswith("TARS")}
        base_env.pop("PYTHONDONTWRITEBYTECODE", None)
        base_env["TARS_PATH"] = str(tars_path)
        cached = dict(base_env, PYTHONPYCACHEPREFIX=str(tmp / "pycache"))
        uncached = dict(base_env, PYTHONDONTWRITEBYTECODE="1",
                        PYTHONPYCACHEPREFIX=str(tmp / "empty-pycache"))
        python = sys.executable
        rows: list[tuple[str, list[str], dict[str, str]]] = [
            ("python -S -c pass (baseline)", [python, "-S", "-c", "pass"], base_env),
            ("python -c pass", [python, "-c", "pass"], base_env),
            ("tarscli hzcheck (with .pyc)", [str(script), "hzcheck"], cached),
            ("tarscli hzcheck (no .pyc)", [str(script), "hzcheck"], uncached),
        ]
        # warm-up: fills the bytecode cache of the cached row and the OS page cache
        for _, cmd, env in rows:
            for _ in range(3):
                run_once(cmd, env, 0)
        times: dict[str, list[float]] = {label: [] for label, _, _ in rows}
        for _ in range(args.runs):
            for label, cmd, env in rows:
                times[label].append(run_once(cmd, env, 0))
        shutil.rmtree(tmp / "pycache", ignore_errors=True)

    baseline = statistics.median(times[rows[0][0]])
    print(f"tarscli hzcheck start-up, {args.runs} runs each, round-robin; script: {script_kind}")
    print(f"python: {sys.executable} ({sys.version.split()[0]})")
    print()
    print(f"{'command':<32} {'median ms':>10} {'p95 ms':>8} {'x baseline':>11}")
    for label, _, _ in rows:
        values = times[label]
        median = statistics.median(values)
        print(f"{label:<32} {median:>10.1f} {percentile(values, 0.95):>8.1f} "
              f"{median / baseline:>11.2f}")
    hz = statistics.median(times["tarscli hzcheck (with .pyc)"])
    verdict = "meets" if hz <= GOAL_MS else "misses"
    print()
    print(f"hzcheck median {hz:.1f} ms {verdict} the goal of {GOAL_MS:.0f} ms "
          f"({hz - baseline:+.1f} ms over the bare interpreter)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
