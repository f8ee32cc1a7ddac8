"""What every segmentation method is: the interface commands, evaluation and the tricks rely on.

A method turns an RGB image into a :class:`Prediction`: a soft or hard mask at the image's
size (before any refinement) and, where the method defines one, its own object box for CorLoc.
Methods whose outputs depend on the other images of a batch (Sempart's polarity rule and
train-mode BatchNorm) say so with ``batch_size > 1``; callers then hand them images in chunks
of that size, in the dataset's order. Methods that see one image at a time inherit
:class:`ImageByImage`, which supplies the batch and frame parts of the interface.

    method.predict(image, image_id=)            -> Prediction
    method.predict_batch(images, image_ids=)    -> [Prediction]   (chunks of method.batch_size)
    method.view(image, mask)                    -> EvalView: the frame a protocol scores
    method.discover(image, image_id=)           -> box for CorLoc, or None
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol, Sequence

import numpy as np

from ..checks import require

# The refinements a prediction can get: none, trick 1 (the guided filter), TokenCut's bilateral solver.
REFINEMENTS = ("none", "gf", "bf")


@dataclass(frozen=True)
class Prediction:
    """One image's prediction before refinement."""

    mask: np.ndarray                 # (H, W) float32 in [0, 1] at the image's size
    patch_mask: np.ndarray | None    # (h, w) float32 in [0, 1] on the backbone's patch grid
    box: np.ndarray | None           # (4,) xyxy pixels, x1 / y1 exclusive: the method's own box
    # Where the method wants trick 1 applied, if not at the image's size: (image (S, S, 3) uint8,
    # mask (S, S) float32) in the model's own frame (Sempart: the 320 x 320 input,
    # docs/paper_and_code.md#guided-filter).
    refine_frame: tuple[np.ndarray, np.ndarray] | None = None


class EvalView(NamedTuple):
    """An image and its ground truth in the frame a protocol scores."""

    image: np.ndarray         # (H', W', 3) uint8
    mask: np.ndarray | None   # (H', W') float32 in [0, 1], or None when no mask was given


class Method(Protocol):
    """What commands need from a segmentation method."""

    name: str
    patch_size: int
    batch_size: int   # images whose predictions are made together (1: each image alone)

    def predict(self, image: np.ndarray, *, image_id: str | None = None) -> Prediction:
        """image (H, W, 3) uint8 RGB -> Prediction at (H, W); ``image_id`` keys caches and folders."""

    def predict_batch(self, images: Sequence[np.ndarray], *,
                      image_ids: Sequence[str | None] | None = None) -> list[Prediction]:
        """One Prediction per image; batch-dependent rules apply per chunk of ``batch_size``."""

    def view(self, image: np.ndarray, mask: np.ndarray | None = None) -> EvalView:
        """The image and its ground truth in the frame this method's protocol scores."""

    def discover(self, image: np.ndarray, *, image_id: str | None = None) -> np.ndarray | None:
        """image (H, W, 3) uint8 RGB -> the object box (4,) xyxy for CorLoc, or None."""


class ImageByImage:
    """The batch and frame parts of :class:`Method` for a method that sees one image at a time."""

    batch_size = 1

    def predict_batch(self, images: Sequence[np.ndarray], *,
                      image_ids: Sequence[str | None] | None = None) -> list[Prediction]:
        """``predict`` on each image in turn (the images do not influence each other)."""
        ids = list(image_ids) if image_ids is not None else [None] * len(images)
        require(len(ids) == len(images), f"image_ids holds {len(ids)} ids for {len(images)} images")
        return [self.predict(image, image_id=i) for image, i in zip(images, ids)]

    def view(self, image: np.ndarray, mask: np.ndarray | None = None) -> EvalView:
        """The image and ground truth unchanged: scored at the image's own size."""
        return EvalView(image, mask)
