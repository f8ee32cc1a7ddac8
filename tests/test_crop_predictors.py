"""paperlib.viz.crop_predictors: ImageFunction runs f on the crop (SempartPredictor and MaskSource,
and all three predictors' input checks, are tested through the explorer in test_crop_explorer.py)."""

from __future__ import annotations

import numpy as np
from sempart_heads import photo

from paperlib.losses.crop_zoom import CropBox
from paperlib.viz.crop_explorer import CropZoomExplorer
from paperlib.viz.crop_predictors import ImageFunction


def test_image_function_runs_on_the_crop():
    # A pointwise linear map of the colours commutes with the bilinear crop-zoom, so the
    # teacher f(I_c) is CU(f(I)) up to the uint8 rounding of I_c (half a grey level).
    image = photo(64, 64, seed=3)
    gray = ImageFunction(lambda im: im.mean(axis=2) / 255.0, name="grey")
    v = CropZoomExplorer(image, gray, size=64).views(CropBox(10, 12, 16, 16))
    assert np.abs(v.teacher - v.student_crop).max() <= 0.5 / 255 + 1e-5
    np.testing.assert_allclose(v.student, image.mean(axis=2) / 255.0, atol=1e-6)

