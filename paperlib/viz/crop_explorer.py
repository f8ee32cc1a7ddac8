"""Trick 2 by hand: one crop-zoom box of a training step, as arrays, plots and widgets.

Paper Sec. 4 ("Multi-Scale Consistency", Fig. 3). For one box, :class:`CropZoomExplorer` shows
what :func:`paperlib.train.step.train_step` computes: the training input I (the image resized to
S x S), the box, the zoomed crop I_c = CU(I), the student's fine map s_hat = f(I), its crop-zoom
CU(s_hat), the teacher's map f(I_c), the target SG[GF(f(I_c))] and the per-pixel squared error
whose mean is L_eq -- by calling the training code itself (:mod:`paperlib.losses.crop_zoom`), so the
numbers are the ones a step would log. Boxes are drawn as training draws them: box ``k`` of
sampler ``'paper'`` / ``'official'`` with seed ``s`` is the box of step ``k`` of a run with
``TrainConfig(seed=s, crop=...)``.

The network f comes from a predictor of :mod:`paperlib.viz.crop_predictors`: a trained checkpoint
(:class:`~paperlib.viz.crop_predictors.SempartPredictor`), any function image -> soft mask
(:class:`~paperlib.viz.crop_predictors.ImageFunction`) or the offline stand-in without weights
(:class:`~paperlib.viz.crop_predictors.MaskSource`).

The maps are the raw fine sigmoids, without the evaluation's polarity flip: training compares
them unflipped.

Public API: :class:`CropZoomExplorer` (``sample_box``, ``views``, ``losses``, ``figure``,
``grid_figure``, ``widget``), :class:`CropZoomViews`, :func:`crop_explorer_sample` (offline
default) and :func:`open_crop_explorer` (the notebook's choice of files, checkpoint or offline
sample).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

import numpy as np
import torch

from ..backbones.features import normalise, resize_bilinear
from ..checks import check_choice, check_image, is_int, require
from ..images import read_image, read_mask, resize_mask
from ..losses.crop_zoom import (
    CROP_SAMPLERS,
    CropBox,
    check_box,
    crop_consistency_loss,
    crop_zoom,
    sample_box,
    teacher_target,
)
from ..losses.settings import LossWeights
from ..train.data import SEED_CROP, seeded_generator
from .crop_predictors import PREDICTORS, ImageFunction, MaskSource, SempartPredictor
from .gf_explorer import explorer_sample, figure_png, show_map

# What a colour means in each kind of map (the colour bars' labels).
PANEL_LABELS = {"gray": "mask value (sigmoid; 1 = object)",
                "coolwarm": "change of mask value",
                "magma": "squared error per pixel"}


# ----------------------------------------------------------------------------- the explorer

class CropZoomViews(NamedTuple):
    """Everything one box of one training step computes, as arrays at the model size S."""

    image: np.ndarray          # (S, S, 3) float32 in [0, 1]: I, the training input
    box: CropBox               # the box in I's pixels
    crop: np.ndarray           # (S, S, 3) float32: I_c = CU(I)
    student: np.ndarray        # (S, S) s_hat = sigmoid(f(I) fine logits)
    student_crop: np.ndarray   # (S, S) CU(s_hat)
    teacher: np.ndarray        # (S, S) sigmoid(f(I_c) fine logits)
    target: np.ndarray         # (S, S) SG[GF(teacher)], guide I_c, clamped
    error: np.ndarray          # (S, S) (CU(s_hat) - target)^2
    l_eq: float                # mean of ``error``: crop_consistency_loss


@dataclass(frozen=True, eq=False)
class CropZoomExplorer:
    """One image, a predictor f and the box sampler of training.

    Attributes:
        image: (H, W, 3) uint8 RGB; resized (bilinear, antialiased, aspect not kept) to S x S.
        predictor: :class:`SempartPredictor`, :class:`ImageFunction` or :class:`MaskSource`.
        size: S, the square training input (320, paper Sec. 5).
        sampler: 'paper' (S/4 box, zoom x4) or 'official' (160 px box at row 80, zoom x2; S >= 240).
        seed: the run's seed: box k is the box of training step k (``TrainConfig.seed``).
    """

    image: np.ndarray
    predictor: SempartPredictor | ImageFunction | MaskSource
    size: int = 320
    sampler: str = "paper"
    seed: int = 0
    _input: torch.Tensor = field(init=False, repr=False, compare=False)
    _student: torch.Tensor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        image = self.image
        check_image("image", image)
        require(isinstance(self.predictor, PREDICTORS),
                f"predictor must be a SempartPredictor, ImageFunction or MaskSource, "
                f"got {type(self.predictor).__name__}")
        require(is_int(self.size) and self.size >= 4, f"size must be an int >= 4, got {self.size!r}")
        patch = self.predictor.patch_size
        require(self.size % patch == 0, f"size must be a multiple of the checkpoint's patch size {patch}, "
                                        f"got {self.size}")
        check_choice("sampler", self.sampler, CROP_SAMPLERS)
        require(self.sampler != "official" or self.size >= 240,
                f"sampler 'official' places a 160 px box at row 80: size must be >= 240, got {self.size}")
        require(is_int(self.seed) and self.seed >= 0, f"seed must be an int >= 0, got {self.seed!r}")
        if isinstance(self.predictor, MaskSource):
            require(self.predictor.mask.shape == image.shape[:2],
                    f"the mask source's mask must be {image.shape[:2]} like the image, "
                    f"got {self.predictor.mask.shape}")
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
        x = resize_bilinear(x, (self.size, self.size), antialias=True).clamp(0.0, 1.0)   # (1, 3, S, S): I
        object.__setattr__(self, "_input", x)
        object.__setattr__(self, "_student", self.predictor.student(x))  # (1, 1, S, S) logits

    # ---------------------------------------------------------------- boxes

    def sample_box(self, step: int = 0, *, sampler: str | None = None) -> CropBox:
        """The box training step ``step`` draws (paper Sec. 5; :func:`paperlib.train.step.train_step`).

        Args:
            step: the global step index (the generator is seeded by (seed, crop stream, step)).
            sampler: 'paper' or 'official'; None: the explorer's.

        Returns:
            CropBox inside the S x S input.
        """
        sampler = self.sampler if sampler is None else sampler
        check_choice("sampler", sampler, CROP_SAMPLERS)
        require(is_int(step) and step >= 0, f"step must be an int >= 0, got {step!r}")
        g = seeded_generator(self.seed, SEED_CROP, int(step))
        S = self.size
        return sample_box(sampler, g, image_size=S)   # the box train_step draws at this step

    def _check_box(self, box) -> CropBox:
        return check_box(box, self.size, self.size)   # the S x S training input

    # ---------------------------------------------------------------- numbers

    def views(self, box: CropBox | None = None) -> CropZoomViews:
        """Every map of one box of a training step (paper Sec. 4, Fig. 3).

        Args:
            box: a CropBox in the S x S input (top, left, height, width); None: ``sample_box(0)``.

        Returns:
            :class:`CropZoomViews` (arrays (S, S) or (S, S, 3), and ``l_eq`` a float).
        """
        box = self.sample_box(0) if box is None else self._check_box(box)
        S, x, student = self.size, self._input, self._student
        crop = crop_zoom(x, box, S).clamp(0.0, 1.0)                  # (1, 3, S, S): I_c, as train_step
        teacher = self.predictor.teacher(crop, box)                   # (1, 1, S, S) logits
        target = teacher_target(normalise(crop), teacher)             # (1, 1, S, S), detached
        student_crop = crop_zoom(torch.sigmoid(student), box, S)      # (1, 1, S, S): CU(s_hat)
        l_eq = crop_consistency_loss(student, box, target)

        def hw(t: torch.Tensor) -> np.ndarray:                        # (1, C, S, S) -> (S, S[, C])
            return t[0].permute(1, 2, 0).squeeze(-1).detach().float().numpy()

        return CropZoomViews(image=hw(x), box=box, crop=hw(crop), student=hw(torch.sigmoid(student)),
                             student_crop=hw(student_crop), teacher=hw(torch.sigmoid(teacher)),
                             target=hw(target), error=hw((student_crop - target) ** 2), l_eq=float(l_eq))

    def losses(self, steps: Sequence[int] = range(8)):
        """L_eq of the boxes of several training steps.

        Returns:
            pandas DataFrame, one row per step: step, top, left, height, width, zoom, l_eq.
        """
        import pandas as pd

        rows = []
        for step in steps:
            v = self.views(self.sample_box(step))
            rows.append({"step": int(step), **v.box._asdict(), "zoom": self.size / v.box.height, "l_eq": v.l_eq})
        return pd.DataFrame(rows, columns=["step", "top", "left", "height", "width", "zoom", "l_eq"])

    # ---------------------------------------------------------------- plots

    @staticmethod
    def _panel(ax, title: str, data: np.ndarray, cmap: str | None, *, box: CropBox | None = None,
               fontsize: int = 10) -> None:
        """One map: RGB as is; masks on [0, 1], differences on [-1, 1], errors on [0, max], each
        with a colour bar naming its quantity."""
        from matplotlib.patches import Rectangle

        if cmap is None:
            ax.imshow(data)
            ax.set_title(title, fontsize=fontsize)
            ax.set_axis_off()
        else:
            low, high = {"coolwarm": (-1, 1), "magma": (0, max(float(data.max()), 1e-6))}.get(cmap, (0, 1))
            label = PANEL_LABELS.get(cmap, PANEL_LABELS["gray"])
            show_map(ax, data, title=title, label=label, cmap=cmap, vmin=low, vmax=high, fontsize=fontsize)
        if box is not None:
            ax.add_patch(Rectangle((box.left - 0.5, box.top - 0.5), box.width, box.height,
                                   fill=False, edgecolor="red", linewidth=1.5))

    def figure(self, box: CropBox | None = None):
        """The eight maps of one box, with titles (matplotlib Figure)."""
        import matplotlib.pyplot as plt

        v = self.views(box)
        zoom = f"x{self.size / v.box.height:.3g}" + ("" if v.box.height == v.box.width
                                                     else f" / x{self.size / v.box.width:.3g}")
        fig, axes = plt.subplots(2, 4, figsize=(17, 7.6), layout="constrained")
        panels = ((f"I, training input {self.size} x {self.size}", v.image, None, v.box),
                  (f"I_c = CU(I), zoom {zoom}", v.crop, None),
                  ("student s_hat = f(I)", v.student, "gray", v.box),
                  ("CU(s_hat)", v.student_crop, "gray"),
                  ("teacher f(I_c)", v.teacher, "gray"),
                  ("target SG[GF(f(I_c))], guide I_c", v.target, "gray"),
                  ("GF(f(I_c)) - f(I_c)", v.target - v.teacher, "coolwarm"),
                  (f"(CU(s_hat) - target)^2, L_eq = {v.l_eq:.4g}", v.error, "magma"))
        for ax, (title, data, cmap, *box) in zip(axes.flat, panels):
            self._panel(ax, title, data, cmap, box=box[0] if box else None)
        fig.suptitle(f"{self.predictor.label}; box (top, left, h, w) = {tuple(v.box)}; "
                     f"L_eq = {v.l_eq:.4g}, lambda_eq L_eq = {LossWeights().eq * v.l_eq:.3g}", fontsize=10)
        return fig

    def grid_figure(self, steps: Sequence[int] = range(4)):
        """Several training steps' boxes, one row each: I and box, I_c, CU(s_hat), target, error."""
        import matplotlib.pyplot as plt

        steps = list(steps)
        require(len(steps) >= 1, "steps must name at least one training step")
        fig, axes = plt.subplots(len(steps), 5, figsize=(15, 2.7 * len(steps)), layout="constrained",
                                 squeeze=False)
        for row, step in zip(axes, steps):
            v = self.views(self.sample_box(step))
            panels = ((f"step {step}: box {tuple(v.box)}", v.image, None, v.box), ("I_c", v.crop, None),
                      ("CU(s_hat)", v.student_crop, "gray"), ("target", v.target, "gray"),
                      (f"error, L_eq = {v.l_eq:.4g}", v.error, "magma"))
            for ax, (title, data, cmap, *box) in zip(row, panels):
                self._panel(ax, title, data, cmap, box=box[0] if box else None, fontsize=9)
        fig.suptitle(f"{self.predictor.label}; sampler {self.sampler!r}, seed {self.seed}", fontsize=10)
        return fig

    def widget(self, box: CropBox | None = None):
        """Sliders for the box (top, left, side) and a resample button, redrawing :meth:`figure`.

        ``widget.children``: [0] top, [1] left, [2] crop side (square boxes), [3] the sampler
        (changing it shows its box for the current step), [4] the resample button (the box of
        the next training step), [5] the figure (an ``ipywidgets.Image``, PNG).
        """
        import ipywidgets as widgets

        S = self.size
        box = self.sample_box(0) if box is None else self._check_box(box)
        require(box.height == box.width, f"the widget's boxes are square, got {tuple(box)}")
        side = widgets.IntSlider(value=box.height, min=min(8, S), max=S, description="crop side",
                                 continuous_update=False)
        top = widgets.IntSlider(value=box.top, min=0, max=S - box.height, description="top",
                                continuous_update=False)
        left = widgets.IntSlider(value=box.left, min=0, max=S - box.width, description="left",
                                 continuous_update=False)
        samplers = [name for name in CROP_SAMPLERS if name != "official" or S >= 240]
        sampler = widgets.Dropdown(options=samplers, value=self.sampler, description="sampler")
        resample = widgets.Button(description="resample (step 1)")
        out = widgets.Image(format="png")
        state = {"step": 0, "hold": False}

        def redraw(change=None) -> None:
            if state["hold"]:
                return
            out.value = figure_png(self.figure(CropBox(top.value, left.value, side.value, side.value)))

        def on_side(change) -> None:
            held, state["hold"] = state["hold"], True   # the new limits may move top / left: one redraw
            top.max = left.max = S - side.value
            state["hold"] = held
            redraw()

        def show_step(step: int) -> None:
            state["step"] = step
            new = self.sample_box(step, sampler=sampler.value)
            state["hold"] = True
            side.value = new.height                     # sets top / left's limits first
            top.value, left.value = new.top, new.left
            state["hold"] = False
            resample.description = f"resample (step {step + 1})"
            redraw()

        top.observe(redraw, names="value")
        left.observe(redraw, names="value")
        side.observe(on_side, names="value")
        sampler.observe(lambda change: show_step(state["step"]), names="value")
        resample.on_click(lambda button: show_step(state["step"] + 1))
        redraw()
        return widgets.VBox([top, left, side, sampler, resample, out])


# ----------------------------------------------------------------------------- builders

def crop_explorer_sample(seed: int = 1, *, size: int = 320, degradation: str = "blocky16",
                         sampler: str = "paper", crop_seed: int = 0) -> CropZoomExplorer:
    """The offline explorer: a synthetic image and its true mask as a :class:`MaskSource`.

    The student is the true mask spoilt by ``degradation`` (exactly
    :func:`paperlib.viz.gf_explorer.explorer_sample`'s mask); the stand-in teacher the zoomed true mask
    spoilt the same way at the crop's resolution (see :class:`MaskSource`).

    Args:
        seed: the synthetic sample (:func:`paperlib.data.synth_sample.make_sample`).
        size: image side and model size S.
        degradation: D (:data:`paperlib.data.degrade.DEGRADATIONS` or 'none').
        sampler, crop_seed: the box sampler and the training seed it replays.

    Returns:
        :class:`CropZoomExplorer`.
    """
    sample = explorer_sample(seed, size=size)
    return CropZoomExplorer(sample.image, MaskSource(sample.truth, degradation), size=size,
                            sampler=sampler, seed=crop_seed)


def open_crop_explorer(*, checkpoint=None, weights=None, image_path=None, mask_path=None,
                       sample_seed: int = 1, degradation: str = "blocky16", bn_mode: str = "eval",
                       size: int = 320, sampler: str = "paper", seed: int = 0,
                       device=None) -> CropZoomExplorer:
    """The explorer the notebook's parameters describe.

    * ``checkpoint``: a trained head (:class:`SempartPredictor`, its backbone's ``weights``) on
      ``image_path`` or, without one, on the offline sample's image;
    * else ``image_path`` and ``mask_path``: that mask as a :class:`MaskSource` with ``degradation``;
    * else the offline sample (:func:`crop_explorer_sample`).

    Args:
        checkpoint, weights, bn_mode, device: the trained head (:class:`SempartPredictor`).
        image_path: an image file; None: the offline sample ``sample_seed``.
        mask_path: without ``checkpoint``, a mask of ``image_path`` (resized to it) for the
            mask source, spoilt by ``degradation``.
        size, sampler, seed: S, the box sampler and the training seed (:class:`CropZoomExplorer`).

    Returns:
        :class:`CropZoomExplorer`.
    """
    require(checkpoint is None or mask_path is None,
            "pass either checkpoint (the model predicts) or mask_path (a mask source), not both")
    require((image_path is None) or (mask_path is not None) or (checkpoint is not None),
            "image_path needs a mask_path (a mask source) or a checkpoint (a model)")
    require(mask_path is None or image_path is not None, "mask_path needs the image_path it belongs to")
    if checkpoint is not None:
        image = read_image(image_path) if image_path is not None else explorer_sample(sample_seed, size=size).image
        predictor = SempartPredictor.from_checkpoint(checkpoint, weights=weights, bn_mode=bn_mode, device=device)
        return CropZoomExplorer(image, predictor, size=size, sampler=sampler, seed=seed)
    if image_path is not None:
        image = read_image(image_path)
        mask = resize_mask(read_mask(mask_path), image.shape[:2])
        return CropZoomExplorer(image, MaskSource(mask, degradation), size=size, sampler=sampler, seed=seed)
    return crop_explorer_sample(sample_seed, size=size, degradation=degradation, sampler=sampler, crop_seed=seed)
