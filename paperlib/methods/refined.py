"""A method's prediction after a refinement: trick 1 (the guided filter), the bilateral solver, or none.

    refine_prediction(image, prediction, refine=...)   -> the refined mask
    predict_refined(method, image, refine=...)         -> the prediction and its refined mask
    refined_box(image, prediction, refine=...)         -> the CorLoc box after the refinement
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from ..checks import check_choice, check_image
from ..images import resize_mask
from ..refine.masks import RefineSettings, refine_mask
from .base import REFINEMENTS, Method, Prediction
from .boxes import mask_to_box


def refine_prediction(image: np.ndarray, pred: Prediction, *, refine: str = "none",
                      settings: RefineSettings | None = None) -> np.ndarray:
    """A prediction's mask refined with its image: trick 1 (``gf``), ``bf``, or ``none``.

    The filter runs where the prediction asks (``pred.refine_frame``: Sempart's 320 x 320 input,
    where the paper sets r = 9) and the result is resized bilinearly to the image's size;
    otherwise it runs on the mask at the image's size (TokenCut, any folder of masks).

    Args:
        image: (H, W, 3) uint8 RGB.
        pred: the method's Prediction (mask after the polarity flip, for Sempart).
        refine: 'none', 'gf' or 'bf'.
        settings: filter parameters (default: the paper's); its ``method`` is replaced by ``refine``.

    Returns:
        (H, W) float32 in [0, 1]; the mask itself for 'none'.
    """
    check_choice("refine", refine, REFINEMENTS)
    if refine == "none":
        return pred.mask
    settings = replace(settings or RefineSettings(), method=refine)
    if pred.refine_frame is None:
        return refine_mask(image, pred.mask, settings)
    frame_image, frame_mask = pred.refine_frame
    refined = refine_mask(frame_image, frame_mask, settings)                  # (S, S)
    return np.clip(resize_mask(refined, image.shape[:2]), 0.0, 1.0).astype(np.float32)


def predict_refined(method: Method, image: np.ndarray, *, refine: str = "none",
                    settings: RefineSettings | None = None, image_id: str | None = None
                    ) -> tuple[Prediction, np.ndarray]:
    """Predict one image and refine the mask (trick 1: ``gf``; ``bf``; or ``none``).

    Returns:
        (the raw Prediction, the refined mask (H, W) float32 in [0, 1]).
    """
    check_choice("refine", refine, REFINEMENTS)
    check_image("image", image)
    pred = method.predict(image, image_id=image_id)
    return pred, refine_prediction(image, pred, refine=refine, settings=settings)


def refined_box(image: np.ndarray, pred: Prediction, *, refine: str = "none",
                settings: RefineSettings | None = None) -> np.ndarray | None:
    """The CorLoc box of a prediction after trick 1 (paper Table 4's GF rows).

    With ``refine='none'`` it is the method's own box (TokenCut: the seed's component; Sempart:
    the largest component of its patch-resolution mask). Otherwise the refined mask is averaged
    over the prediction's patch grid and boxed like Sempart's raw box: threshold 0.5, largest
    4-connected component, scaled to the image (:func:`paperlib.methods.boxes.mask_to_box`). Where the
    prediction has a model frame (Sempart: the 320 x 320 input), the filter runs there and its
    output is pooled over that frame's exact patches, as the raw box pools the raw mask;
    otherwise the refined mask at the image's size is averaged onto ``patch_mask``'s grid (the
    pixel grid when there is none).

    Args:
        image: (H, W, 3) uint8 RGB.
        pred: the method's Prediction for ``image``.
        refine: 'none', 'gf' or 'bf'.
        settings: filter parameters (default: the paper's).

    Returns:
        (4,) float64 xyxy box in the image's pixels, or None when nothing is foreground.
    """
    check_choice("refine", refine, REFINEMENTS)
    H, W = image.shape[:2]
    if refine == "none" and pred.box is not None:
        return pred.box
    h, w = pred.patch_mask.shape if pred.patch_mask is not None else (H, W)
    if pred.refine_frame is not None:
        frame_image, frame_mask = pred.refine_frame
        mask = (frame_mask if refine == "none"                                  # (S, S)
                else refine_mask(frame_image, frame_mask, replace(settings or RefineSettings(), method=refine)))
    else:
        mask = refine_prediction(image, pred, refine=refine, settings=settings)  # (H, W)
    cells = F.adaptive_avg_pool2d(torch.from_numpy(mask)[None, None], (h, w))[0, 0].numpy()  # (h, w)
    return mask_to_box(cells, patch_size=(H / h, W / w), image_size=(H, W), threshold=0.5)
