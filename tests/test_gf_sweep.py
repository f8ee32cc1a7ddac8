"""The guided-filter study: degradations and the sweep table."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paperlib.checks import InputError
from paperlib.data.degrade import DEGRADATIONS, degrade_mask
from paperlib.eval.metrics import SaliencyMetrics
from paperlib.paper.gf_sweep import markdown_table, plot_sweep, sweep
from paperlib.refine.guided_filter import guided_filter


def _pairs(n=3, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = 64 + 16 * i, 80
        yy, xx = np.mgrid[:h, :w]
        gt = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (12 + 4 * i) ** 2).astype(np.float32)
        image = np.where(gt[..., None] > 0, 210, 50) + rng.normal(0, 8, (h, w, 3))
        out.append((np.clip(image, 0, 255).astype(np.uint8), gt))
    return out


@pytest.mark.parametrize("name", list(DEGRADATIONS))
def test_degradations_keep_shape_and_range(name):
    _, gt = _pairs(1)[0]
    out = degrade_mask(gt, name)
    assert out.shape == gt.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    assert not np.array_equal(out, gt)                     # it really spoils the mask
    assert np.abs(out - gt).mean() < 0.2                   # but keeps the object
    const = degrade_mask(np.full((32, 48), 0.7), name)
    # A constant mask stays constant (float32 averaging rounds at 1e-6); blocky binarises it.
    np.testing.assert_allclose(const, 1.0 if DEGRADATIONS[name].upsample == "nearest" and
                               DEGRADATIONS[name].factor > 1 else 0.7, atol=1e-5)


def test_blocky_is_binary_and_unknown_name_fails():
    _, gt = _pairs(1)[0]
    assert set(np.unique(degrade_mask(gt, "blocky16"))) <= {0.0, 1.0}
    with pytest.raises(InputError, match="degradation"):
        degrade_mask(gt, "jpeg")


def test_sweep_rows_equal_direct_computation(tmp_path):
    pairs = _pairs()
    table = sweep(pairs, radii=(2, 9), eps=(1e-3, 1e-1), degradations=("down8", "blur4"),
                  progress=False)
    assert len(table) == 2 * (1 + 2 * 2)
    assert (table[table.radius == 0][["d_iou", "d_max_fbeta"]] == 0).all().all()
    # One row recomputed by hand: guided filter (mean-RGB guide, r=9, eps=1e-3), then metrics.
    metrics = SaliencyMetrics()
    for image, gt in pairs:
        guide = torch.from_numpy(image).permute(2, 0, 1)[None].double().mean(1, keepdim=True) / 255
        src = torch.from_numpy(degrade_mask(gt, "down8")).double()[None, None]
        out = guided_filter(guide, src, radius=9, eps=1e-3).clamp(0, 1)[0, 0].float().numpy()
        metrics.update(out, gt)
    row = table[(table.degradation == "down8") & (table.radius == 9) & (table.eps == 1e-3)].iloc[0]
    expected = metrics.compute()
    assert row.iou == pytest.approx(expected.iou, abs=1e-9)
    assert row.max_fbeta == pytest.approx(expected.max_fbeta, abs=1e-9)
    assert row.n_images == 3
    text = markdown_table(table)
    assert text.count("\n") == len(table) + 1 and "| down8 | none |" in text
    plot_sweep(table, tmp_path / "sweep.png")
    assert (tmp_path / "sweep.png").stat().st_size > 1000
