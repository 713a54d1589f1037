"""The benchmark scripts run and write complete JSON (their figures are not checked: they are not timed tests)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

RUNS = {
    "bench_generator.py": ["--widths", "mini", "--variants", "fp32,channels_last,bf16", "--batch", "2", "--repeats", "1"],
    "bench_iteration.py": ["--widths", "mini", "--methods", "gdd-i", "--iterations", "1", "--batch", "4", "--channels-last"],
    "bench_sampling.py": ["--widths", "mini", "--batch", "2", "--repeats", "1"],
    "bench_data.py": ["--resolutions", "8", "--workers", "0,1", "--images", "64", "--batch", "8", "--batches", "2"],
}


@pytest.mark.parametrize("script", sorted(RUNS))
def test_benchmark_runs_and_writes_json(tmp_path, script):
    out = tmp_path / "result.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *RUNS[script], "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "failed" not in proc.stdout, proc.stdout
    result = json.loads(out.read_text())
    assert result["rows"] and not any("error" in row for row in result["rows"])
    assert "machine" in result


def test_benchmark_refuses_an_unknown_variant():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_generator.py"), "--variants", "fp23"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown variant(s) ['fp23']" in proc.stderr
