"""Trick 1 by hand: the guided filter's radius and epsilon on one image, as numbers, plots and widgets.

Paper Sec. 4 ("Guided Filtering"): the predicted mask is filtered with the image as guide; the
window radius r sets how far an edge can pull the mask, epsilon how strong an edge must be to
keep one (a window whose guide variance is well below epsilon is smoothed flat, one well above
it keeps the guide's edges). :class:`GFExplorer` runs exactly what ``paperlib refine`` runs
(:func:`paperlib.refine.masks.refine_mask`) on one image and mask, so the settings found here carry
over to the command.

Public API:

* :class:`GFExplorer` -- ``refine(radius, eps)``, ``scores(radius, eps)``,
  ``grid(radii, eps_values)``, ``figure(radius, eps)``, ``grid_figure(...)``, ``widget()``;
* :func:`explorer_sample` -- an offline image, its exact mask and a degraded prediction;
* :func:`show_map` -- a map with a colour bar naming its quantity (every map the notebooks draw);
* :func:`figure_png` -- a figure as PNG bytes for the explorers' Image widgets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..checks import check_choice, check_positive, require
from ..data.degrade import degrade_mask
from ..data.synth_sample import make_sample
from ..eval.metrics import SaliencyMetrics
from ..images import read_image, read_mask, resize_mask
from ..refine.masks import RefineSettings, refine_mask
from ..refine.settings import BORDERS, PAPER_GF, check_radius


@dataclass(frozen=True)
class GFExplorer:
    """One image, a soft mask to refine and (optionally) its ground truth.

    Attributes:
        image: (H, W, 3) uint8 RGB, the guide.
        mask: (H, W) float in [0, 1], the prediction to refine (any method's).
        truth: (H, W) ground truth in [0, 1] (binarised at 0.5), or None.
        border: the guided filter's border rule (:data:`paperlib.refine.settings.BORDERS`).
    """

    image: np.ndarray
    mask: np.ndarray
    truth: np.ndarray | None = None
    border: str = PAPER_GF.border

    def __post_init__(self) -> None:
        image, mask = np.asarray(self.image), np.asarray(self.mask, dtype=np.float32)
        require(image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8,
                f"image must be RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
        require(mask.shape == image.shape[:2], f"mask must be {image.shape[:2]} like the image, got {mask.shape}")
        require(bool(np.isfinite(mask).all()) and mask.min() >= 0 and mask.max() <= 1,
                "mask must hold finite values in [0, 1]")
        if self.truth is not None:
            require(np.shape(self.truth) == image.shape[:2],
                    f"truth must be {image.shape[:2]} like the image, got {np.shape(self.truth)}")
        check_choice("border", self.border, BORDERS)
        object.__setattr__(self, "mask", mask)

    def refine(self, radius: int, eps: float) -> np.ndarray:
        """The guided-filtered mask, (H, W) float32 in [0, 1] (what ``paperlib refine`` writes)."""
        return refine_mask(self.image, self.mask, RefineSettings("gf", radius=radius, eps=eps, border=self.border))

    def scores(self, radius: int, eps: float) -> dict[str, float]:
        """IoU and MAE of the mask before and after the filter (needs ``truth``).

        Returns:
            {'iou_before', 'iou_after', 'mae_before', 'mae_after'}, with the definitions of
            :mod:`paperlib.eval.metrics` (IoU of pred > 0.5).
        """
        require(self.truth is not None, "scores need a ground truth: GFExplorer(..., truth=...)")
        after = self.refine(radius, eps)
        out = {}
        for name, pred in (("before", self.mask), ("after", after)):
            s = self._score(pred)
            out[f"iou_{name}"], out[f"mae_{name}"] = s.iou, s.mae
        return out

    def _score(self, pred: np.ndarray):
        return SaliencyMetrics().update(pred, np.asarray(self.truth, dtype=np.float32))  # ImageScores

    def grid(self, radii=(1, 2, 4, 9, 16, 32), eps_values=(1e-6, 1e-4, 1e-3, 1e-2, 1e-1)):
        """IoU after the filter over a (radius, eps) grid (needs ``truth``).

        Returns:
            pandas DataFrame, index radius, columns eps, values IoU; ``attrs['iou_before']``
            holds the unfiltered mask's IoU.
        """
        import pandas as pd

        require(self.truth is not None, "the grid scores need a ground truth: GFExplorer(..., truth=...)")
        for r in radii:
            check_radius(r)
        for e in eps_values:
            check_positive("eps", e)
        table = pd.DataFrame([[self._score(self.refine(int(r), float(e))).iou for e in eps_values] for r in radii],
                             index=pd.Index(list(radii), name="radius"),
                             columns=pd.Index(list(eps_values), name="eps"))
        table.attrs["iou_before"] = self._score(self.mask).iou
        return table

    def figure(self, radius: int = PAPER_GF.radius, eps: float = PAPER_GF.eps):
        """Image, mask, filtered mask and what the filter changed, side by side (matplotlib Figure).

        Every map has a colour bar naming its quantity; the difference map is on [-1, 1].
        """
        import matplotlib.pyplot as plt

        after = self.refine(radius, eps)
        fig, axes = plt.subplots(1, 4, figsize=(15, 3.8), layout="constrained")
        axes[0].imshow(self.image)
        axes[0].set_title("image I (the guide: its gray mean)", fontsize=10)
        axes[0].set_axis_off()
        show_map(axes[1], self.mask, title="mask p (before)", label="mask value p (1 = object)")
        show_map(axes[2], after, title=f"q = GF(p, I), r={radius}, eps={eps:.0e}",
                 label="mask value q (1 = object)")
        show_map(axes[3], after - self.mask, title="q - p: what the filter changed",
                 label="q - p (change of mask value)", cmap="coolwarm", vmin=-1, vmax=1)
        if self.truth is not None:
            s = self.scores(radius, eps)
            axes[1].set_title(f"mask p (before): IoU {s['iou_before']:.3f}", fontsize=10)
            axes[2].set_title(f"q = GF(p, I), r={radius}, eps={eps:.0e}: IoU {s['iou_after']:.3f}", fontsize=10)
        scored = "; IoU of mask > 0.5 against the ground truth" if self.truth is not None else ""
        fig.suptitle(f"Guided filter on one mask (radius r = {radius} px, eps = {eps:.0e}){scored}", fontsize=10)
        return fig

    def grid_figure(self, grid=None):
        """Heat map of :meth:`grid` (IoU gain over the unfiltered mask); matplotlib Figure."""
        import matplotlib.pyplot as plt

        grid = self.grid() if grid is None else grid
        gain = grid - grid.attrs["iou_before"]
        fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
        limit = max(float(np.abs(gain.to_numpy()).max()), 1e-6)
        im = ax.imshow(gain.to_numpy(), cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
        ax.set_xticks(range(gain.shape[1]), [f"{e:.0e}" for e in gain.columns])
        ax.set_yticks(range(gain.shape[0]), [str(r) for r in gain.index])
        ax.set_xlabel("eps (compared with the local variance of the [0, 1] gray guide)")
        ax.set_ylabel("radius r (px; window 2r + 1)")
        for (i, j), v in np.ndenumerate(gain.to_numpy()):
            ax.text(j, i, f"{v:+.3f}", ha="center", va="center", fontsize=8)
        ax.set_title(f"IoU gain of the guided filter over (r, eps) (unfiltered IoU {grid.attrs['iou_before']:.3f})",
                     fontsize=10)
        fig.colorbar(im, ax=ax, label="IoU gain (filtered - unfiltered)")
        return fig

    def widget(self, *, radius: int = PAPER_GF.radius, eps: float = PAPER_GF.eps, max_radius: int = 64):
        """Sliders for r and log10(eps) redrawing :meth:`figure` (an ipywidgets VBox).

        The sliders are ``widget.children[0]`` (radius) and ``[1]`` (eps); ``[2]`` is an
        ``ipywidgets.Image`` holding the figure as PNG (:func:`figure_png`).
        """
        import ipywidgets as widgets

        r_slider = widgets.IntSlider(value=radius, min=1, max=max_radius, description="radius r",
                                     continuous_update=False)
        e_slider = widgets.FloatLogSlider(value=eps, base=10, min=-6, max=0, step=0.25, description="eps",
                                          readout_format=".0e", continuous_update=False)
        out = widgets.Image(format="png")

        def redraw(change=None) -> None:
            out.value = figure_png(self.figure(r_slider.value, e_slider.value))

        r_slider.observe(redraw, names="value")
        e_slider.observe(redraw, names="value")
        redraw()
        return widgets.VBox([r_slider, e_slider, out])


def show_map(ax, data: np.ndarray, *, title: str, label: str, cmap: str = "gray", vmin: float | None = 0.0,
             vmax: float | None = 1.0, fontsize: int = 10):
    """Draw a 2-D map on ``ax`` with a colour bar that names its quantity (the notebooks' maps).

    The map's own axes are pixel (or patch) positions and are hidden; what a colour means is on
    the colour bar.

    Args:
        ax: matplotlib Axes, in a figure with ``layout="constrained"`` for a tidy bar.
        data: (H, W) values.
        title: what the map shows.
        label: the colour bar's label: the quantity (and unit) a colour stands for.
        cmap: matplotlib colour map; 'gray' for masks, a diverging one for differences.
        vmin, vmax: the colour range (None: the data's).
        fontsize: of the title.

    Returns:
        the matplotlib Colorbar.
    """
    im = ax.imshow(np.asarray(data), cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_title(title, fontsize=fontsize)
    ax.set_axis_off()
    return ax.figure.colorbar(im, ax=ax, shrink=0.85, label=label)


def figure_png(fig, *, dpi: int = 90) -> bytes:
    """A matplotlib figure as PNG bytes, the figure closed: what the explorers' Image widgets show.

    An ``ipywidgets.Image`` is updated by one message; drawing into an ``Output`` widget instead
    goes through the kernel's display capture, which papermill runs have been seen to hang on.
    """
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return buffer.getvalue()


def explorer_from_files(image_path: str | Path, truth_path: str | Path, *, size: int = 320,
                        degradation: str = "blocky16") -> "GFExplorer":
    """A real image and its ground truth, resized to ``size`` x ``size`` as the model sees them.

    The same shape as :func:`explorer_sample`: the mask is the truth degraded by ``degradation``.

    Args:
        image_path: an image file.
        truth_path: its ground-truth mask (same picture, any size: resized with nearest neighbours).
        size: the square side (the paper's input: 320).
        degradation: as for :func:`explorer_sample`.
    """
    from PIL import Image

    image = np.asarray(Image.fromarray(read_image(image_path)).resize((size, size), Image.BILINEAR))
    truth = (resize_mask(read_mask(truth_path), (size, size), mode="nearest") > 0.5).astype(np.float32)
    return GFExplorer(image, np.clip(degrade_mask(truth, degradation), 0, 1), truth)


def explorer_sample(seed: int = 0, *, size: int = 320, degradation: str = "blocky16"):
    """An offline image with its exact mask and a degraded copy standing in for a prediction.

    Args:
        seed: the synthetic sample's seed (:func:`paperlib.data.synth_sample.make_sample`).
        size: image side in pixels.
        degradation: how the prediction is spoiled (:data:`paperlib.data.degrade.DEGRADATIONS`;
            'blocky16' looks like a ViT-S/16 TokenCut mask).

    Returns:
        :class:`GFExplorer` with image, mask = the degraded truth, truth.
    """
    sample = make_sample(np.random.default_rng(seed), height=size, width=size)
    truth = sample.mask.astype(np.float32)
    return GFExplorer(sample.image, np.clip(degrade_mask(truth, degradation), 0, 1), truth)
