"""Tests of paperlib.viz.gf_explorer: the guided-filter explorer behind the notebook's sliders."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import inspect

import numpy as np
import pytest
from figure_checks import assert_labelled_map, assert_labelled_plot, map_colorbar, panels
from scipy import ndimage as ndi

from paperlib.checks import InputError
from paperlib.refine.settings import PAPER_GF, check_radius
from paperlib.viz.gf_explorer import GFExplorer, explorer_from_files, explorer_sample, show_map


@pytest.fixture(scope="module")
def ex():
    return explorer_sample(1, size=128)


def _iou(pred, truth):
    p, t = pred > 0.5, truth > 0.5
    return (p & t).sum() / (p | t).sum()


def test_sample_is_seeded_and_degraded(ex):
    again = explorer_sample(1, size=128)
    assert np.array_equal(ex.image, again.image) and np.array_equal(ex.mask, again.mask)
    assert set(np.unique(ex.truth)) == {0.0, 1.0}
    assert 0.3 < _iou(ex.mask, ex.truth) < 1.0   # spoilt, but still the object


def test_scores_are_the_iou_and_mae_of_the_masks(ex):
    s = ex.scores(4, 1e-3)
    after = ex.refine(4, 1e-3)
    assert s["iou_before"] == pytest.approx(_iou(ex.mask, ex.truth), abs=1e-12)
    assert s["iou_after"] == pytest.approx(_iou(after, ex.truth), abs=1e-12)
    assert s["mae_after"] == pytest.approx(np.abs(after - ex.truth).mean(), abs=1e-6)


def test_huge_eps_is_a_double_box_filter():
    # eps >> var(I): a = cov / (var + eps) -> 0 and b -> mean(p), so q = box(box(p)). With the
    # 'reflect' border (OpenCV's BORDER_REFLECT, scipy's 'reflect') scipy computes the same.
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    mask = rng.random((40, 50)).astype(np.float32)
    ex = GFExplorer(image, mask, border="reflect")
    r = 3
    expected = ndi.uniform_filter(ndi.uniform_filter(mask.astype(np.float64), 2 * r + 1, mode="reflect"),
                                  2 * r + 1, mode="reflect")
    np.testing.assert_allclose(ex.refine(r, 1e8), expected, atol=1e-5)


def test_grid_matches_single_scores(ex):
    grid = ex.grid(radii=(1, 4), eps_values=(1e-4, 1e-2))
    assert list(grid.index) == [1, 4] and list(grid.columns) == [1e-4, 1e-2]
    assert grid.loc[4, 1e-2] == pytest.approx(ex.scores(4, 1e-2)["iou_after"], abs=1e-12)
    assert grid.attrs["iou_before"] == pytest.approx(_iou(ex.mask, ex.truth), abs=1e-12)
    with pytest.raises(InputError, match="radius must be >= 0"):   # the guided filter's own rule
        ex.grid(radii=(-1,))
    with pytest.raises(InputError, match="eps"):
        ex.grid(eps_values=(-1.0,))


def test_figures_show_the_scores(ex):
    fig = ex.figure(4, 1e-3)
    image, mask, after, change = panels(fig)
    assert f"IoU {ex.scores(4, 1e-3)['iou_after']:.3f}" in after.get_title() and fig.get_suptitle()
    assert image.get_title() and map_colorbar(image) is None          # RGB: no colour bar
    for ax in (mask, after):
        assert_labelled_map(ax)
    assert_labelled_map(change, diverging=True)                        # q - p on [-1, 1]
    assert change.images[0].get_clim() == (-1, 1)
    grid_fig = ex.grid_figure(ex.grid(radii=(1, 2), eps_values=(1e-3,)))
    (ax,) = panels(grid_fig)
    assert "IoU gain" in ax.get_title()
    assert_labelled_plot(ax)
    assert_labelled_map(ax, diverging=True)


def test_show_map_names_its_quantity():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(layout="constrained")
    bar = show_map(ax, np.linspace(-0.5, 0.5, 12).reshape(3, 4), title="t", label="q - p", cmap="coolwarm",
                   vmin=-1, vmax=1)
    assert bar.ax.get_ylabel() == "q - p" and ax.images[0].colorbar is bar and not ax.axison
    assert ax.images[0].get_clim() == (-1, 1) and ax.get_title() == "t"
    plt.close(fig)


def test_widget_redraws_on_each_slider(ex, monkeypatch):
    calls = []
    original = GFExplorer.figure
    monkeypatch.setattr(GFExplorer, "figure", lambda self, r, e: calls.append((r, e)) or original(self, r, e))
    box = ex.widget(radius=5, eps=1e-2)
    r_slider, e_slider, image = box.children
    assert (r_slider.min, r_slider.max, r_slider.value) == (1, 64, 5)
    first = bytes(image.value)
    assert first.startswith(b"\x89PNG")                   # the figure itself, as PNG
    r_slider.value = 7
    e_slider.value = 1e-4
    assert calls[0] == (5, pytest.approx(1e-2)) and calls[1][0] == 7 and calls[2] == (7, pytest.approx(1e-4))
    assert bytes(image.value) != first


def test_defaults_are_the_paper_guided_filter(ex):
    for name in ("figure", "widget"):
        params = inspect.signature(getattr(GFExplorer, name)).parameters
        assert (params["radius"].default, params["eps"].default) == (PAPER_GF.radius, PAPER_GF.eps), name
    assert GFExplorer(ex.image, ex.mask).border == PAPER_GF.border


@pytest.mark.parametrize("radius", [-1, 2.5, True])
def test_grid_radius_rule_is_the_guided_filters(ex, radius):
    with pytest.raises(InputError) as rule:
        check_radius(radius)
    with pytest.raises(InputError) as err:
        ex.grid(radii=(radius,), eps_values=(1e-3,))
    assert str(err.value) == str(rule.value)


def test_bad_inputs_name_the_parameter(ex):
    with pytest.raises(InputError, match="mask must be"):
        GFExplorer(ex.image, ex.mask[:-1])
    with pytest.raises(InputError, match="\\[0, 1\\]"):
        GFExplorer(ex.image, ex.mask * 2)
    with pytest.raises(InputError, match="border"):
        GFExplorer(ex.image, ex.mask, border="wrap")
    with pytest.raises(InputError, match="ground truth"):
        GFExplorer(ex.image, ex.mask).scores(9, 1e-3)
    with pytest.raises(InputError, match="uint8"):
        GFExplorer(ex.image.astype(np.float32), ex.mask)


def test_explorer_from_files_resizes_a_real_image_and_its_truth(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    image = (rng.random((60, 90, 3)) * 255).astype(np.uint8)
    truth = np.zeros((60, 90), np.uint8)
    truth[17:43, 25:61] = 255
    Image.fromarray(image).save(tmp_path / "a.png")
    Image.fromarray(truth).save(tmp_path / "a_gt.png")
    ex = explorer_from_files(tmp_path / "a.png", tmp_path / "a_gt.png", size=96, degradation="blocky16")
    assert ex.image.shape == (96, 96, 3) and ex.image.dtype == np.uint8 and ex.truth.shape == (96, 96)
    assert set(np.unique(ex.truth)) == {0.0, 1.0}
    assert abs(ex.truth.mean() - (26 * 36) / (60 * 90)) < 0.02          # the object keeps its share
    assert ex.mask.shape == (96, 96) and not np.array_equal(ex.mask, ex.truth)   # degraded, as the sample's
