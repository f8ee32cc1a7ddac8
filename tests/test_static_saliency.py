"""Tests of paperlib.methods.static_saliency: OpenCV's two static saliency maps, rewritten.

The reference is ``cv2.saliency`` (opencv-contrib, in the dev extra); those comparisons skip
where it is absent. Measured on the 502 DUTS-TE sample images and the images below: spectral
residual within 1.2e-7 of OpenCV's float32 map (tested at 1e-6), fine grained bit for bit.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from paperlib.checks import InputError
from paperlib.cli.main import main
from paperlib.methods.base import Prediction
from paperlib.methods.registry import METHODS, build_method
from paperlib.methods.static_saliency import (
    FineGrained,
    SpectralResidual,
    fine_grained,
    spectral_residual,
)

SPECTRAL_ATOL = 1e-6   # measured 1.2e-7 (float rounding); the issue asked for 1e-4
MAPS = {"spectral": spectral_residual, "finegrained": fine_grained}


@pytest.fixture(scope="module")
def opencv():
    """The contrib module's two saliency objects, keyed like MAPS."""
    if not hasattr(cv2, "saliency"):
        pytest.skip("cv2.saliency absent: install opencv-contrib-python-headless (the dev extra)")
    return {"spectral": cv2.saliency.StaticSaliencySpectralResidual_create(),
            "finegrained": cv2.saliency.StaticSaliencyFineGrained_create()}


def _opencv_map(saliency, image: np.ndarray) -> np.ndarray:
    """OpenCV's map of an RGB (it reads BGR) or gray image."""
    ok, out = saliency.computeSaliency(image[..., ::-1].copy() if image.ndim == 3 else image)
    assert ok
    return out


def _generated_images() -> dict[str, np.ndarray]:
    """scikit-image's bundled photos and synthesized images: odd, tiny and large sizes."""
    from skimage import data

    rng = np.random.default_rng(0)
    images = {"astronaut": data.astronaut(), "coffee": data.coffee(), "chelsea": data.chelsea(),
              "camera (gray)": data.camera()}
    for shape in [(2, 3, 3), (1, 7, 3), (5, 1, 3), (3, 3, 3), (63, 65, 3), (64, 64, 3), (100, 37, 3),
                  (333, 500, 3), (1000, 17, 3)]:
        images[f"noise {shape[:2]}"] = rng.integers(0, 256, shape, dtype=np.uint8)
    # Smooth and large: the float32 integral's corners pass 2**24 and round, and only OpenCV's
    # order of the four corners gives its window sums (fine grained).
    smooth = cv2.GaussianBlur(rng.integers(0, 256, (720, 960, 3), dtype=np.uint8), (15, 15), 4)
    images["smooth 720 x 960"] = smooth
    return images


GENERATED = _generated_images()


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_spectral_residual_equals_opencv(opencv, name):
    image = GENERATED[name]
    np.testing.assert_allclose(spectral_residual(image), _opencv_map(opencv["spectral"], image),
                               atol=SPECTRAL_ATOL, rtol=0)


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_fine_grained_equals_opencv_bit_for_bit(opencv, name):
    image = GENERATED[name]
    np.testing.assert_array_equal(fine_grained(image), _opencv_map(opencv["finegrained"], image))


@pytest.mark.realdata
@pytest.mark.slow
def test_both_equal_opencv_on_the_duts_sample(opencv, real_data_root):
    """Every DUTS-TE sample photo: spectral residual within 1e-6, fine grained bit for bit."""
    from paperlib.images import list_images, read_image

    images = list_images(real_data_root / "DUTS-TE" / "DUTS-TE-Image")
    assert len(images) >= 100
    worst = 0.0
    for stem, path in sorted(images.items()):
        image = read_image(path)
        theirs = _opencv_map(opencv["spectral"], image)
        worst = max(worst, float(np.abs(spectral_residual(image) - theirs).max()))
        np.testing.assert_array_equal(fine_grained(image), _opencv_map(opencv["finegrained"], image),
                                      err_msg=stem)
    assert worst <= SPECTRAL_ATOL, worst


@pytest.mark.parametrize("kind", sorted(MAPS))
@pytest.mark.parametrize("shape", [(1, 1, 3), (2, 3, 3), (1, 9, 3), (37, 50, 3), (120, 90, 3), (50, 40)])
def test_a_map_at_the_image_size_in_unit_range(kind, shape, rng):
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    out = MAPS[kind](image)
    assert out.shape == shape[:2] and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("kind", sorted(MAPS))
def test_gray_input_is_the_rgb_image_with_equal_channels(kind, rng):
    gray = rng.integers(0, 256, (48, 70), dtype=np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    np.testing.assert_array_equal(MAPS[kind](gray), MAPS[kind](rgb))
    np.testing.assert_array_equal(MAPS[kind](gray[..., None]), MAPS[kind](gray))


@pytest.mark.parametrize("kind", sorted(MAPS))
@pytest.mark.parametrize("shape", [(1, 1, 3), (2, 3, 3), (50, 60, 3), (64, 64, 3)])
@pytest.mark.parametrize("value", [0, 7, 255])
def test_a_constant_image_gives_a_flat_zero_map(kind, shape, value):
    out = MAPS[kind](np.full(shape, value, np.uint8))
    assert out.shape == shape[:2] and not np.isnan(out).any() and (out == 0).all()


def test_opencv_puts_a_corner_peak_on_a_constant_image_and_we_do_not(opencv):
    """The one place where spectral residual departs from OpenCV on purpose: with every amplitude
    but the mean's zero, log(A + 1) is a flat spectrum of zero phase, whose inverse is a spike at
    the origin; OpenCV returns that spike, blurred (module docstring)."""
    image = np.full((50, 60, 3), 7, np.uint8)
    theirs = _opencv_map(opencv["spectral"], image)
    assert theirs[0, 0] == theirs.max() and theirs.max() - theirs.min() > 0.03
    assert (spectral_residual(image) == 0).all()
    assert (_opencv_map(opencv["finegrained"], image) == fine_grained(image)).all()   # both zero


def test_spectral_residual_at_the_working_size_peaks_at_one(rng):
    """At 64 x 64 no resize follows the max-normalisation, so the peak is exactly 1."""
    assert spectral_residual(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).max() == 1.0


def test_fine_grained_is_a_multiple_of_1_255_peaking_at_one(rng):
    out = fine_grained(rng.integers(0, 256, (80, 90, 3), dtype=np.uint8))
    levels = out.astype(np.float64) * 255
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-4)
    assert out.max() == 1.0


def test_fine_grained_marks_a_bright_dot_and_its_dark_ring():
    """Centre-surround: a small bright square on black is the on-centre peak; the black around it,
    darker than a surround that holds the square, is off-centre saliency; far away is nothing."""
    image = np.zeros((401, 401), np.uint8)
    image[195:206, 195:206] = 255
    out = fine_grained(image)
    assert out[200, 200] == out.max() == 1.0
    assert out[200, 212] > 0.1 and out[200, 240] < out[200, 212]
    assert out[0, 0] == 0   # no surround (half-side 112 at most) reaches the square


@pytest.mark.parametrize("kind", sorted(MAPS))
@pytest.mark.parametrize("image, match", [
    (np.zeros((8, 8, 4), np.uint8), "4 channels .* RGBA"),
    (np.zeros((8, 8, 3), np.float32), "uint8"),
    (np.zeros((8, 8, 2), np.uint8), r"\(H, W\) gray or \(H, W, 3\) RGB"),
    (np.zeros((8, 8, 3, 1), np.uint8), r"\(H, W\) gray or \(H, W, 3\) RGB"),
    (np.zeros((0, 8, 3), np.uint8), "empty"),
    ([[1, 2], [3, 4]], "uint8 numpy array"),
])
def test_bad_images_are_refused_with_the_problem_named(kind, image, match):
    with pytest.raises(InputError, match=match):
        MAPS[kind](image)


@pytest.mark.parametrize("name, cls, fn", [("spectral", SpectralResidual, spectral_residual),
                                           ("finegrained", FineGrained, fine_grained)])
def test_the_methods_by_name(name, cls, fn, rng):
    assert name in METHODS
    method = build_method(name, backbone="no-such-backbone")   # no backbone is loaded
    assert isinstance(method, cls) and method.name == name and method.batch_size == 1
    image = np.zeros((60, 80, 3), np.uint8)
    image[20:40, 30:60] = rng.integers(150, 256, (20, 30, 3), dtype=np.uint8)
    pred = method.predict(image, image_id="x")
    assert isinstance(pred, Prediction) and pred.patch_mask is None and pred.box is None
    np.testing.assert_array_equal(pred.mask, fn(image))
    box = method.discover(image)
    assert box is not None and box.shape == (4,)
    x0, y0, x1, y1 = box
    assert 0 <= x0 < x1 <= 80 and 0 <= y0 < y1 <= 60
    assert method.discover(np.full((30, 40, 3), 9, np.uint8)) is None   # a flat map has no object
    [again] = method.predict_batch([image], image_ids=["x"])
    np.testing.assert_array_equal(again.mask, pred.mask)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    from paperlib.data.synth import synthesize

    root = tmp_path_factory.mktemp("data")
    synthesize(root, n=3, seed=0, split="te", progress=False)
    return root


@pytest.mark.parametrize("name", ["spectral", "finegrained"])
def test_eval_and_segment_take_the_methods(root, tmp_path, capsys, name):
    from paperlib.images import list_images, read_mask

    out = tmp_path / "scores.json"
    assert main(["-q", "eval", "--method", name, "--dataset", "duts-te", "--root", str(root),
                 "--refine", "none,gf", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert {"spectral": "spectral residual", "finegrained": "fine grained"}[name] in printed
    report = json.loads(out.read_text())
    assert report["method"] == build_method(name).label
    for scores in report["scores"].values():
        assert all(0.0 <= scores[k] <= 1.0 for k in ("acc", "iou", "max_fbeta", "mae"))
    images = root / "DUTS-TE" / "DUTS-TE-Image"
    assert main(["-q", "segment", str(images), "--out", str(tmp_path / "masks"), "--method", name,
                 "--refine", "none", "--no-overlays"]) == 0
    for stem in list_images(images):
        mask = read_mask(tmp_path / "masks" / f"{stem}.png")
        assert mask.shape == read_mask(root / "DUTS-TE" / "DUTS-TE-Mask" / f"{stem}.png").shape
