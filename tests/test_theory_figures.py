"""paperlib.viz.theory_figures: the background notebook's figures label what they show."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from figure_checks import assert_labelled_map, assert_labelled_plot, map_colorbar, panels

from paperlib.checks import InputError
from paperlib.images import resize_mask
from paperlib.losses.crop_zoom import CropBox
from paperlib.losses.ncut import affinity, second_smallest_eigenvector
from paperlib.viz.gf_explorer import explorer_sample
from paperlib.viz.theory_figures import (
    plot_affinity_rows,
    plot_crop_zoom,
    plot_fiedler,
    plot_ncut_curve,
    plot_profiles,
)


@pytest.fixture(scope="module")
def graph():
    """A 6 x 6 grid of two feature clusters (object in the middle) and its TokenCut graph."""
    truth = np.zeros((6, 6), bool)
    truth[1:5, 2:5] = True
    keys = torch.where(torch.from_numpy(truth)[None, None], 1.0, -1.0).expand(1, 2, 6, 6).clone()
    keys[:, 1] = 0.3                                          # (1, 2, h, w): two directions, cos < 0.2 across
    W = affinity(keys.double(), tau=0.2, eps=1e-5)[0]         # (N, N)
    return truth, W


def test_affinity_rows_are_labelled_maps(graph):
    truth, W = graph
    image = np.zeros((48, 48, 3), np.uint8)
    fig = plot_affinity_rows(image, truth, W.numpy(), inside=int(np.flatnonzero(truth)[0]), outside=0,
                             tau=0.2, eps=1e-5)
    image_ax, truth_ax, row_in, row_out = panels(fig)
    assert map_colorbar(image_ax) is None and fig.get_suptitle()
    for ax in (truth_ax, row_in, row_out):
        assert_labelled_map(ax)
    assert "0.2" in map_colorbar(row_in).ax.get_ylabel()      # the threshold is named on the bar
    np.testing.assert_array_equal(row_in.images[0].get_array(), np.where(truth, 1.0, 1e-5))   # its row of W
    assert len(row_in.lines) == 1                             # the ring on patch i
    with pytest.raises(InputError, match="N = 36"):
        plot_affinity_rows(image, truth, W.numpy()[:5], inside=0, outside=1, tau=0.2, eps=1e-5)
    plt.close("all")


def test_fiedler_map_is_centred_on_its_mean(graph):
    truth, W = graph
    v, lam = second_smallest_eigenvector(W)
    v = v.reshape(6, 6).numpy()
    fig = plot_fiedler(v, float(lam), v > v.mean())
    eigen, split = panels(fig)
    assert_labelled_map(eigen)
    assert_labelled_map(split)
    low, high = eigen.images[0].get_clim()
    assert (low + high) / 2 == pytest.approx(v.mean())       # white is the split's threshold
    assert f"{float(lam):.3g}" in eigen.get_title()
    with pytest.raises(InputError, match="same grid"):
        plot_fiedler(v, float(lam), (v > v.mean())[:3])
    plt.close("all")


def test_curves_label_their_axes_with_units():
    curve = pd.DataFrame({"alpha": np.linspace(0, 1, 5), "Ncut(s)": np.linspace(1, 0.1, 5),
                          "Ncut(1 - s)": np.linspace(1, 0.1, 5)})
    (ax,) = plot_ncut_curve(curve).axes
    assert_labelled_plot(ax)
    assert len(ax.lines) == 2
    with pytest.raises(InputError, match="Ncut"):
        plot_ncut_curve(curve.drop(columns="Ncut(s)"))
    profiles = pd.DataFrame({"guide": np.linspace(0, 1, 10), "mask": np.r_[np.zeros(5), np.ones(5)]})
    (ax,) = plot_profiles(profiles, row=7, styles={"mask": "--"}).axes
    assert_labelled_plot(ax)
    assert "px" in ax.get_xlabel() and "7" in ax.get_title() and ax.lines[1].get_linestyle() == "--"
    plt.close("all")


def test_crop_zoom_panels():
    ex = explorer_sample(1, size=64)
    box = CropBox(top=16, left=16, height=16, width=16)
    zoomed = resize_mask(ex.mask[16:32, 16:32], (64, 64))
    fig = plot_crop_zoom(ex.image, box, np.zeros((64, 64, 3)), zoomed, zoomed)
    image_ax, crop_ax, mask_ax, target_ax = panels(fig)
    assert map_colorbar(image_ax) is None and map_colorbar(crop_ax) is None
    assert len(image_ax.patches) == 1 and "x4" in crop_ax.get_title()   # the box, the zoom
    assert_labelled_map(mask_ax)
    assert_labelled_map(target_ax)
    plt.close("all")
