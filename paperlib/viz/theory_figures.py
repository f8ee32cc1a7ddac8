"""The figures of the background notebook (``notebooks/theory.py``): each quantity on its axes.

The notebook computes every array with the package (:mod:`paperlib.losses.ncut`,
:mod:`paperlib.losses.graph_tv`, :mod:`paperlib.refine.guided_filter`, :mod:`paperlib.losses.crop_zoom`); these
functions only draw them, so that every map has a colour bar naming its quantity and every plot
labels its axes with their units, and a test can check that they do.

Public API:

* :func:`plot_affinity_rows` -- two rows of the affinity W of paper eq. (2) on the patch grid;
* :func:`plot_fiedler` -- TokenCut's second-smallest generalised eigenvector and its split;
* :func:`plot_ncut_curve` -- the relaxed Ncut of eq. (3) along a path of soft masks;
* :func:`plot_profiles` -- one image row through the guide, the masks and the guided filter;
* :func:`plot_crop_zoom` -- CU(I, s) and the teacher's target of trick 2.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..checks import require
from .gf_explorer import show_map


def _hw(name: str, data, ndim: int = 2) -> np.ndarray:
    array = np.asarray(data)
    require(array.ndim == ndim, f"{name} must be {ndim}-D, got shape {array.shape}")
    return array


def _mark(ax, flat_index: int, w: int) -> None:
    """A red ring on token ``flat_index`` (row-major) of a grid w tokens wide."""
    row, col = divmod(int(flat_index), w)
    ax.plot(col, row, marker="o", markersize=9, markerfacecolor="none", markeredgecolor="red", markeredgewidth=2)


def plot_affinity_rows(image: np.ndarray, truth_patch: np.ndarray, W, *, inside: int, outside: int,
                       tau: float, eps: float):
    """The image, its true mask on the patch grid and the rows of W of two patches (eq. 2).

    Args:
        image: (H, W, 3) RGB uint8.
        truth_patch: (h, w) boolean true mask on the patch grid.
        W: (N, N) affinity, N = h * w tokens row-major (``affinity(keys, tau=, eps=)[0]``).
        inside, outside: the token index of a patch on the object and one on the background;
            each is ringed in red on its row.
        tau, eps: the thresholds W was built with (named in the colour bars).

    Returns:
        matplotlib Figure with four panels (and a colour bar beside each map).
    """
    import matplotlib.pyplot as plt

    truth_patch = _hw("truth_patch", truth_patch)
    h, w = truth_patch.shape
    W = np.asarray(W)
    require(W.shape == (h * w, h * w), f"W must be (N, N) with N = {h * w} tokens, got {W.shape}")
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8), layout="constrained")
    axes[0].imshow(image)
    axes[0].set_title("image I", fontsize=10)
    axes[0].set_axis_off()
    show_map(axes[1], truth_patch.astype(float), title=f"true mask on the {h} x {w} patch grid",
             label="1 = object patch")
    label = f"w_ij: 1 if cos > {tau:g}, else {eps:g}"
    for ax, token, where in ((axes[2], inside, "an object patch i"), (axes[3], outside, "a background patch i")):
        show_map(ax, W[token].reshape(h, w), title=f"row i of W, {where} (red ring)", label=label)
        _mark(ax, token, w)
    fig.suptitle(f"Affinity of paper eq. (2): which patches j each patch i is linked to (tau = {tau:g})",
                 fontsize=10)
    return fig


def plot_fiedler(v, eigenvalue: float, split: np.ndarray):
    """TokenCut's eigenvector of ``(D - W) v = lambda D v`` on the patch grid, and its split.

    Args:
        v: (h, w) second-smallest generalised eigenvector, reshaped to the grid.
        eigenvalue: its eigenvalue lambda_2.
        split: (h, w) boolean, ``v > mean(v)``.

    Returns:
        matplotlib Figure with two maps, each with its colour bar.
    """
    import matplotlib.pyplot as plt

    v = _hw("v", v).astype(float)
    split = _hw("split", split)
    require(v.shape == split.shape, f"v and split must have the same grid, got {v.shape} and {split.shape}")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), layout="constrained")
    limit = float(np.abs(v - v.mean()).max()) or 1.0
    show_map(axes[0], v, title=f"eigenvector v (lambda_2 = {float(eigenvalue):.3g})",
             label="v_i (white: the mean of v)", cmap="coolwarm", vmin=v.mean() - limit, vmax=v.mean() + limit)
    show_map(axes[1], split.astype(float), title="split at the mean: v_i > mean(v)", label="1 = set A")
    fig.suptitle("Spectral relaxation of the normalized cut (paper eq. 1; TokenCut)", fontsize=10)
    return fig


def plot_ncut_curve(curve, *, x: str = "alpha", columns: tuple[str, ...] = ("Ncut(s)", "Ncut(1 - s)")):
    """The relaxed Ncut of eq. (3) along a path of soft masks, and of their complements.

    Args:
        curve: pandas DataFrame with the column ``x`` (the path's parameter in [0, 1]: 0 is
            s = 0.5 everywhere, 1 the true mask) and ``columns``.
        x: the path's column.
        columns: the Ncut columns drawn.

    Returns:
        matplotlib Figure with one labelled plot.
    """
    import matplotlib.pyplot as plt

    missing = [c for c in (x, *columns) if c not in curve.columns]
    require(not missing, f"curve has no columns {missing}: got {list(curve.columns)}")
    fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
    for column, style in zip(columns, ("-", "--", ":", "-.")):
        ax.plot(curve[x], curve[column], style, label=column)
    ax.set_xlabel("alpha in s = (1 - alpha) 0.5 + alpha * true mask")
    ax.set_ylabel("relaxed Ncut, eq. (3) (no unit, 0-2)")
    ax.set_title("Sempart's Ncut loss from an uninformative mask to the true one", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def plot_profiles(profiles, *, row: int, styles: Mapping[str, str] | None = None):
    """Values along one image row: the gray guide, masks and guided-filter outputs.

    Args:
        profiles: pandas DataFrame, one column per curve, indexed by the column (pixel).
        row: the image row the profiles were taken from (in the title).
        styles: optional line style per column (default: solid).

    Returns:
        matplotlib Figure with one labelled plot.
    """
    import matplotlib.pyplot as plt

    styles = styles or {}
    fig, ax = plt.subplots(figsize=(11, 3.6), layout="constrained")
    for column in profiles.columns:
        ax.plot(profiles.index, profiles[column], styles.get(column, "-"), label=column, alpha=0.9)
    ax.set_xlabel(f"image column (px), row {row}")
    ax.set_ylabel("gray level or mask value (0-1)")
    ax.set_title(f"The guided filter along image row {row}: the mask's edge moves to the guide's", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return fig


def plot_crop_zoom(image: np.ndarray, box, crop_image: np.ndarray, crop_mask: np.ndarray, target: np.ndarray):
    """Trick 2's first steps: the box on I, I_c = CU(I), the zoomed mask and GF of it on I_c.

    Args:
        image: (H, W, 3) the input (uint8, or float in [0, 1]).
        box: :class:`paperlib.losses.crop_zoom.CropBox` in the input's pixels (drawn in red).
        crop_image: (S, S, 3) the zoomed crop I_c, float in [0, 1].
        crop_mask: (S, S) the zoomed crop of the mask, in [0, 1].
        target: (S, S) the guided-filtered zoomed mask, in [0, 1].

    Returns:
        matplotlib Figure with four panels (a colour bar beside each mask).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8), layout="constrained")
    axes[0].imshow(image)
    axes[0].add_patch(Rectangle((box.left - 0.5, box.top - 0.5), box.width, box.height, fill=False,
                                edgecolor="red", linewidth=1.5))
    axes[0].set_title(f"I and the box ({box.height} x {box.width} px, red)", fontsize=10)
    axes[1].imshow(np.clip(crop_image, 0, 1))
    axes[1].set_title(f"zoomed crop I_c = CU(I), x{crop_image.shape[0] / box.height:.3g}", fontsize=10)
    for ax in axes[:2]:
        ax.set_axis_off()
    show_map(axes[2], crop_mask, title="zoomed crop of the mask s_c", label="mask value (1 = object)")
    show_map(axes[3], target, title="GF(s_c) with guide I_c (the target's filter)",
             label="mask value (1 = object)")
    fig.suptitle("Crop-zoom (paper Sec. 4, Fig. 3): the same box of the image and of the mask, enlarged "
                 "to the input size", fontsize=10)
    return fig
