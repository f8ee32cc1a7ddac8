"""A predicted mask's object box: how a method answers CorLoc (paper section 5.2).

The mask is thresholded at patch resolution, split into 4-connected components, and one
component's bounding box, scaled to pixels, is the prediction. Boxes are ``(x0, y0, x1, y1)``
in continuous pixel coordinates (column ``c`` spans ``[c, c + 1)``), as LOST's and TokenCut's
evaluation code has them; scoring them is :mod:`paperlib.eval.corloc`.

    mask_to_box(mask_patch, patch_size=, image_size=)   the box of a predicted mask
"""

from __future__ import annotations

import numpy as np

from ..checks import check_choice, require


def as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, on any device
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def mask_to_box(mask_patch, *, patch_size: float | tuple[float, float], image_size: tuple[int, int],
                threshold: float = 0.5, select: str = "largest_area") -> np.ndarray | None:
    """The box of one connected part of a predicted mask, in image pixels.

    Paper section 5.2 and docs/paper_and_code.md#single-object-discovery: threshold the mask
    (> ``threshold``) at patch resolution, split it into 4-connected components, take one
    component's bounding box, scale it by the patch size (``x0 = col_min * patch``,
    ``x1 = (col_max + 1) * patch``) and clip it to the image (which may be smaller than the
    padded patch grid).

    ``select`` picks the component: ``"largest_area"`` (default, the released protocol's rule:
    most mask cells; docs/paper_and_code.md#single-object-discovery) or ``"largest_box"`` (the
    paper's words: the largest bounding box). Ties go to the component met first in row-major
    order.

    Args:
        mask_patch: (h, w) bool or float mask (numpy or torch), one cell per patch.
        patch_size: pixels per mask cell, one number or (along y, along x), e.g. 16, or
            ``(H / h, W / w)`` when the mask was computed on a resized image.
        image_size: (H, W) of the image the box refers to.
        threshold: foreground is ``mask > threshold``.
        select: ``"largest_area"`` or ``"largest_box"``.

    Returns:
        (4,) float64 ``(x0, y0, x1, y1)``, or None when no cell is foreground.
    """
    from scipy import ndimage

    mask = as_numpy(mask_patch)
    require(mask.ndim == 2 and mask.size > 0, f"mask_patch must be a non-empty 2-D (h, w) mask, got shape {mask.shape}")
    scale = np.asarray(patch_size, dtype=np.float64).reshape(-1)
    require(scale.size in (1, 2) and bool(np.all(scale > 0)),
            f"patch_size must be a positive number or (along y, along x), got {patch_size!r}")
    sy, sx = (scale[0], scale[-1])
    size = np.asarray(image_size).reshape(-1)
    require(size.size == 2 and np.issubdtype(size.dtype, np.number) and bool(np.all(size >= 1)),
            f"image_size must be (H, W) with positive sides, got {image_size!r}")
    check_choice("select", select, ("largest_area", "largest_box"))
    H, W = (int(v) for v in size)

    fg = mask.astype(np.float64) > threshold  # (h, w)
    labels, n = ndimage.label(fg, structure=ndimage.generate_binary_structure(2, 1))  # 4-connectivity
    if n == 0:
        return None
    slices = ndimage.find_objects(labels)  # n (row slice, col slice) pairs, label order
    if select == "largest_area":
        score = np.bincount(labels.ravel(), minlength=n + 1)[1:]  # cells per component
    else:
        score = np.array([(r.stop - r.start) * (c.stop - c.start) for r, c in slices])
    rows, cols = slices[int(np.argmax(score))]  # argmax keeps the first of equal scores
    box = np.array([cols.start * sx, rows.start * sy, cols.stop * sx, rows.stop * sy], dtype=np.float64)
    return np.clip(box, 0.0, [W, H, W, H])
