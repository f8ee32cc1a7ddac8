"""Tests of paperlib.methods.refined.refined_box and `paperlib corloc --refine`: CorLoc boxes after trick 1."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi
from sempart_heads import contract_dict, random_head, write

from paperlib.checks import InputError
from paperlib.cli.main import main
from paperlib.methods.base import Prediction
from paperlib.methods.refined import refine_prediction, refined_box


def _largest_component_box(cells: np.ndarray, cell_h: float, cell_w: float) -> list[float]:
    labels, n = ndi.label(cells > 0.5)            # 4-connectivity
    sizes = np.bincount(labels.ravel())[1:]
    rows, cols = np.nonzero(labels == sizes.argmax() + 1)
    return [cols.min() * cell_w, rows.min() * cell_h, (cols.max() + 1) * cell_w, (rows.max() + 1) * cell_h]


@pytest.fixture
def scene():
    rng = np.random.default_rng(0)
    image = np.full((64, 96, 3), 30, np.uint8)
    image[16:48, 40:80] = 220                              # a bright object
    image = np.clip(image + rng.integers(-10, 10, image.shape), 0, 255).astype(np.uint8)
    mask = np.zeros((64, 96), np.float32)
    mask[8:40, 32:72] = 1.0                                # a coarse, shifted prediction
    patch = mask[::8, ::8].copy()                          # its 8 x 12 patch grid
    return image, Prediction(mask=mask, patch_mask=patch, box=np.array([1.0, 2.0, 3.0, 4.0]))


def test_no_refinement_keeps_the_methods_own_box(scene):
    image, pred = scene
    np.testing.assert_array_equal(refined_box(image, pred), pred.box)


def test_gf_box_is_the_largest_component_of_the_refined_patch_mask(scene):
    image, pred = scene
    refined = refine_prediction(image, pred, refine="gf")
    cells = refined.reshape(8, 8, 12, 8).mean(axis=(1, 3))      # (8, 12): the mean of each 8 x 8 cell
    expected = _largest_component_box(cells, 8.0, 8.0)
    got = refined_box(image, pred, refine="gf")
    np.testing.assert_allclose(got, expected)
    assert not np.array_equal(got, pred.box)


def test_without_a_patch_grid_the_box_is_taken_on_pixels(scene):
    image, pred = scene
    pixel_pred = Prediction(mask=pred.mask, patch_mask=None, box=None)
    np.testing.assert_allclose(refined_box(image, pixel_pred), _largest_component_box(pred.mask, 1.0, 1.0))
    with pytest.raises(InputError, match="refine"):
        refined_box(image, pred, refine="crf")


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    from paperlib.data.synth import synthesize

    root = tmp_path_factory.mktemp("synth")
    synthesize(root, n=8, seed=3, progress=False)
    return root


@pytest.mark.parametrize("method", ["tokencut", "sempart"])
def test_corloc_command_scores_refined_boxes(synth_root, tmp_path, method, capsys):
    extra = (["--backbone", "filterbank"] if method == "tokencut"
             else ["--method", "sempart", "--checkpoint", str(write(tmp_path, contract_dict(random_head())))])
    scores = {}
    for refine in ("none", "gf"):
        out = tmp_path / f"{refine}.json"
        assert main(["-q", "corloc", "--dataset", "synth", "--root", str(synth_root), "--refine", refine,
                     "--json", str(out), *extra]) == 0
        scores[refine] = json.loads(out.read_text())
        assert scores[refine]["refine"] == refine and scores[refine]["n_images"] == 8
    assert "+ GF" in capsys.readouterr().out
    assert main(["-q", "corloc", "--dataset", "synth", "--root", str(synth_root), "--refine", "none,gf",
                 *extra]) == 2


def test_a_model_frame_is_filtered_and_pooled_on_its_own_patches(scene):
    # Sempart's predictions carry their 320-px frame: the filter runs there and the refined
    # frame is pooled over its exact 8 x 8 patches, as the raw box pools the raw fine map.
    from paperlib.refine.masks import RefineSettings, refine_mask

    image, pred = scene                                    # image 64 x 96
    frame_image = image[:, 16:80].copy()                   # a 64 x 64 "model input"
    frame_mask = pred.mask[:, 16:80].copy()
    framed = Prediction(mask=pred.mask, patch_mask=np.zeros((8, 8), np.float32), box=None,
                        refine_frame=(frame_image, frame_mask))
    refined = refine_mask(frame_image, frame_mask, RefineSettings("gf"))
    cells = refined.reshape(8, 8, 8, 8).mean(axis=(1, 3))
    np.testing.assert_allclose(refined_box(image, framed, refine="gf"),
                               _largest_component_box(cells, 64 / 8, 96 / 8))
    raw_cells = frame_mask.reshape(8, 8, 8, 8).mean(axis=(1, 3))
    np.testing.assert_allclose(refined_box(image, framed), _largest_component_box(raw_cells, 8.0, 12.0))
    empty = Prediction(mask=pred.mask * 0, patch_mask=np.zeros((8, 8), np.float32), box=None,
                       refine_frame=(frame_image, frame_mask * 0))
    assert refined_box(image, empty) is None and refined_box(image, empty, refine="gf") is None
