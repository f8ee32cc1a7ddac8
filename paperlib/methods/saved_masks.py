"""Another method's saved masks as a method: both tricks' refinements and every score for them.

The paper applies trick 1 to masks it did not predict (Table 5: MOVE + GF, MOVE + BF). Given
a folder of any method's predictions, one PNG per image named by the image's stem,
:class:`MaskFolder` answers ``predict`` by reading the file, so ``paperlib eval --method masks
--masks DIR --refine none,gf,bf`` scores the method and both refinements in one pass, and
``paperlib corloc --method masks`` boxes its largest component.

Public API: :class:`MaskFolder`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..checks import InputError, require
from ..images import list_images, read_mask, resize_mask
from .base import ImageByImage, Prediction
from .boxes import mask_to_box


class MaskFolder(ImageByImage):
    """Predictions read from ``folder/<stem>.<png|jpg|...>``, resized to the image if needed.

    Args:
        folder: the predicted masks (8/16-bit or 1-bit grayscale, soft or hard; read with
            :func:`paperlib.images.read_mask` as [0, 1]). A stem with both a PNG and a JPEG
            copy uses the PNG.
    """

    name = "masks"
    patch_size = 1   # boxes for CorLoc are taken at pixel resolution

    def __init__(self, folder: str | Path):
        self.folder = Path(folder).expanduser()
        require(self.folder.is_dir(), f"masks folder {self.folder} does not exist")
        self.files = list_images(self.folder, prefer=".png")
        require(len(self.files) > 0, f"masks folder {self.folder} holds no image files")

    def _mask(self, image: np.ndarray, image_id: str | None) -> np.ndarray:
        require(image_id is not None, "method 'masks' finds each mask by the image's stem: pass image_id")
        path = self.files.get(str(image_id))
        if path is None:
            raise InputError(f"{self.folder}: no mask for image {image_id!r} (expected {image_id}.png)")
        mask = read_mask(path)
        if mask.shape != image.shape[:2]:  # e.g. masks saved at the model's input size
            mask = resize_mask(mask, image.shape[:2])
        return np.clip(mask, 0.0, 1.0).astype(np.float32)

    def predict(self, image: np.ndarray, *, image_id: str | None = None):
        """The saved mask of ``image_id`` as a :class:`~paperlib.methods.base.Prediction` at the image's size."""
        return Prediction(mask=self._mask(image, image_id), patch_mask=None, box=None)

    def discover(self, image: np.ndarray, *, image_id: str | None = None) -> np.ndarray | None:
        """The box (4,) xyxy of the mask's largest 4-connected component (> 0.5), or None."""
        return mask_to_box(self._mask(image, image_id), patch_size=1, image_size=image.shape[:2])
