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

# A stand-in for a TokenCut checkout: the released solver's interface (BilateralGrid(image,
# sigma_spatial, sigma_luma, sigma_chroma); BilateralSolver(grid, params).solve(x, w) on (P, 1)
# columns) and its pre-scipy-1.14 call cg(..., tol=...), answered by paperlib's own solver. The
# real file is not in this project; the stand-in checks the bench's plumbing, not the speed.
STAND_IN = """
import numpy as np
from scipy.sparse.linalg import cg
from paperlib.refine.bilateral_solver import BilateralGrid as PaperlibGrid, BilateralSolverParams


class BilateralGrid:
    def __init__(self, im, sigma_spatial=32, sigma_luma=8, sigma_chroma=8):
        self.im, self.sigmas = im, (sigma_spatial, sigma_luma, sigma_chroma)


class BilateralSolver:
    def __init__(self, grid, params):
        self.grid, self.params = grid, params

    def solve(self, x, w):
        cg(np.eye(2), np.ones(2), tol=self.params["cg_tol"], maxiter=1)
        s, l, c = self.grid.sigmas
        params = BilateralSolverParams(sigma_spatial=s, sigma_luma=l, sigma_chroma=c, lam=self.params["lam"],
                                       cg_tol=self.params["cg_tol"], cg_maxiter=self.params["cg_maxiter"],
                                       confidence=float(w[0, 0]))
        h, w_ = self.grid.im.shape[:2]
        return PaperlibGrid(self.grid.im, params=params).solve(x.reshape(h, w_)).reshape(-1, 1)
"""


@pytest.mark.realdata
@pytest.mark.slow
def test_make_bench_script_measures_every_row(real_data_root, tmp_path):
    out_json, out_md = tmp_path / "bench.json", tmp_path / "bench.md"
    checkout = tmp_path / "TokenCut"
    (checkout / "unsupervised_saliency_detection").mkdir(parents=True)
    (checkout / "unsupervised_saliency_detection" / "bilateral_solver.py").write_text(STAND_IN)
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_tools.py"), "--rounds", "1",
                           "--images", "8", "--metric-masks", "16", "--data", str(real_data_root),
                           "--json", str(out_json), "--markdown", str(out_md), "--tokencut", str(checkout)],
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out_json.read_text())
    works = [row["work"] for row in result["rows"]]
    for needle in ("count border", "reflect border", "differentiable path", "1024²", "`paperlib refine`",
                   "`paperlib eval-masks`", "`paperlib --help`", "`paperlib train --help`", "metrics",
                   "N = 1600", "N = 3600", "bilateral solver, 320 x 320", "bilateral solver, 640 x 480"):
        assert any(needle in w for w in works), (needle, works)
    assert sum("(outputs differ by 0e+00)" in w for w in works) == 4     # the stand-in is paperlib itself
    for row in result["rows"]:
        assert row["paperlib"] > 0 and row["reference_time"] > 0
        assert row["ratio"] == pytest.approx(row["paperlib"] / row["reference_time"], rel=1e-9)
        if row["peak_mib"] is not None:
            assert row["peak_mib"]["paperlib"] > 0 and row["peak_mib"]["reference"] > 0
    assert len(result["throughput"]) == 4 and all(r["images_per_s"] > 0 for r in result["throughput"])
    table = out_md.read_text()
    assert table.count("\n| ") == len(result["rows"]) + len(result["throughput"]) + 2
    assert result["command"] in table
