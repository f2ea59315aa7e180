"""A benchmark script run as an operator runs it, at a tiny size, for the tests of bench/."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[2] / "bench"


@dataclass(frozen=True)
class BenchRun:
    code: int
    report: dict[str, Any]  # what it wrote with --json ({} when it wrote nothing)
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_bench(script: str, tmp_path: Path, *args: str) -> BenchRun:
    """Run ``bench/<script>`` with ``args`` and ``--json`` into ``tmp_path``, in a process of its own."""
    out = tmp_path / f"{Path(script).stem}.json"
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    report = json.loads(out.read_text()) if out.exists() else {}
    return BenchRun(done.returncode, report, done.stdout, done.stderr)
