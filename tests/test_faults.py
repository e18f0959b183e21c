"""Fault injection: kill -9 at a seeded random moment in each command, resume, compare (the real CLI).

The benchmark ``benchmarks/fault_injection.py`` is the longer version (5 kill points per command).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_command_resumes_after_kill_minus_nine_without_losing_data(tmp_path):
    argv = [sys.executable, str(ROOT / "benchmarks" / "fault_injection.py"), "--points", "1", "--seed", "3"]
    result = subprocess.run([*argv, "--work", str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    summary = re.search(r"kill points: (\d+), resumed exactly: (\d+), data lost: (\d+)", result.stdout)
    assert summary, result.stdout + result.stderr
    points, exact, lost = map(int, summary.groups())
    assert points == 4 and lost == 0 and result.returncode == 0, result.stdout + result.stderr
    # collect and train-skills resume to the same bytes and tensors from any moment
    for name in ("collect", "train-skills"):
        assert f"{name}: 1 kill points, resumed exactly 1, data lost 0" in result.stdout, result.stdout
    killed = [line for line in result.stdout.splitlines() if "kill at" in line and "finished first" not in line]
    assert len(killed) >= 3, "most kills land while the command runs" + result.stdout
