"""benchmarks/bench_tools.py, the script behind `make bench`, run shrunk on the real DUTS-TE sample.

No timing is asserted (speed is the benchmark's business, not a test's): the test checks that
every row is measured, that each ratio is the quotient it claims to be, and that the JSON and
the Markdown table it writes agree.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.realdata
@pytest.mark.slow
def test_make_bench_script_measures_every_row(real_data_root, tmp_path):
    out_json, out_md = tmp_path / "bench.json", tmp_path / "bench.md"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_tools.py"), "--rounds", "1",
                           "--images", "8", "--metric-masks", "16", "--data", str(real_data_root),
                           "--json", str(out_json), "--markdown", str(out_md)],
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out_json.read_text())
    works = [row["work"] for row in result["rows"]]
    for needle in ("count border", "reflect border", "differentiable torch path", "1024²", "`paperlib refine`",
                   "`paperlib eval-masks`", "`paperlib --help`", "`paperlib train --help`", "metrics",
                   "N = 1600", "N = 3600"):
        assert any(needle in w for w in works), (needle, works)
    for row in result["rows"]:
        assert row["paperlib"] > 0 and row["reference_time"] > 0
        assert row["ratio"] == pytest.approx(row["paperlib"] / row["reference_time"], rel=1e-9)
        if row["peak_mib"] is not None:
            assert row["peak_mib"]["paperlib"] > 0 and row["peak_mib"]["reference"] > 0
    assert len(result["throughput"]) == 4 and all(r["images_per_s"] > 0 for r in result["throughput"])
    table = out_md.read_text()
    assert table.count("\n| ") == len(result["rows"]) + len(result["throughput"]) + 2
    assert result["command"] in table
