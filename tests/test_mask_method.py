"""Tests of paperlib.methods.saved_masks: another method's saved masks, scored and refined like a method."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from paperlib.checks import InputError
from paperlib.cli.main import main
from paperlib.data.degrade import degrade_mask
from paperlib.data.saliency import open_dataset
from paperlib.images import write_mask_png
from paperlib.methods.registry import build_method
from paperlib.methods.saved_masks import MaskFolder


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    from paperlib.data.synth import synthesize

    root = tmp_path_factory.mktemp("data")
    synthesize(root, n=6, seed=0, split="te", progress=False)
    return root


@pytest.fixture(scope="module")
def blocky(root, tmp_path_factory):
    """A TokenCut-like prediction of every image: its true mask at 1/16 resolution."""
    folder = tmp_path_factory.mktemp("blocky")
    for s in open_dataset("duts-te", root):
        write_mask_png(folder / f"{s.stem}.png", degrade_mask(s.mask, "blocky16"))
    return folder


def test_eval_of_saved_masks_equals_eval_masks(root, blocky, tmp_path):
    # Two paths to the same number: `eval --method masks` (refinements in one pass) and
    # `eval-masks` (folder against folder).
    out, ref = tmp_path / "m.json", tmp_path / "r.json"
    assert main(["-q", "eval", "--method", "masks", "--masks", str(blocky), "--dataset", "duts-te",
                 "--root", str(root), "--refine", "none,gf", "--json", str(out)]) == 0
    assert main(["-q", "eval-masks", "--pred", str(blocky), "--gt", str(root / "DUTS-TE" / "DUTS-TE-Mask"),
                 "--json", str(ref)]) == 0
    ours, theirs = json.loads(out.read_text())["scores"], json.loads(ref.read_text())
    for key in ("acc", "iou", "max_fbeta", "mae"):
        assert ours["none"][key] == pytest.approx(theirs[key], abs=1e-9), key
    assert ours["gf"]["iou"] > ours["none"]["iou"]  # trick 1 on blocky masks (the GF sweep's finding)


def test_masks_at_another_size_are_resized_to_the_image(root, tmp_path):
    sample = open_dataset("duts-te", root)[0]
    H, W = sample.mask.shape
    small = sample.mask[::2, ::2]
    write_mask_png(tmp_path / f"{sample.stem}.png", small)
    pred = MaskFolder(tmp_path).predict(sample.image, image_id=sample.stem)
    assert pred.mask.shape == (H, W) and pred.mask.dtype == np.float32
    assert ((pred.mask > 0.5) == (sample.mask > 0.5)).mean() > 0.98


def test_discover_boxes_the_largest_component(tmp_path):
    mask = np.zeros((40, 60), np.float32)
    mask[5:10, 5:10] = 1           # 25 px
    mask[20:35, 30:50] = 1         # 300 px: the largest
    write_mask_png(tmp_path / "a.png", mask)
    box = MaskFolder(tmp_path).discover(np.zeros((40, 60, 3), np.uint8), image_id="a")
    labels, _ = ndi.label(mask > 0.5)
    rows, cols = np.nonzero(labels == np.bincount(labels.ravel())[1:].argmax() + 1)
    np.testing.assert_array_equal(box, [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])


def test_corloc_of_exact_masks(root, tmp_path):
    # The synthetic set's boxes are its objects' boxes: the exact masks localise a one-object
    # image perfectly (two-object images may box either object).
    from paperlib.data.synth import synthesize

    synth_root = tmp_path / "synth"
    synthesize(synth_root, n=6, seed=0, split="te", two_object_prob=0.0, progress=False)
    masks = synth_root / "DUTS-TE" / "DUTS-TE-Mask"
    out = tmp_path / "c.json"
    assert main(["-q", "corloc", "--method", "masks", "--masks", str(masks), "--dataset", "synth",
                 "--root", str(synth_root), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["corloc"] == 1.0


def test_errors_name_the_folder_and_the_image(root, blocky, tmp_path, capsys):
    with pytest.raises(InputError, match="no mask for image 'nope'"):
        MaskFolder(blocky).predict(np.zeros((8, 8, 3), np.uint8), image_id="nope")
    with pytest.raises(InputError, match="does not exist"):
        MaskFolder(tmp_path / "missing")
    with pytest.raises(InputError, match="--masks"):
        build_method("masks")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["-q", "eval", "--method", "masks", "--masks", str(empty), "--dataset", "duts-te",
                 "--root", str(root)]) == 2
    assert "holds no image files" in capsys.readouterr().err
    assert main(["-q", "eval", "--method", "tokencut", "--masks", str(blocky), "--dataset", "duts-te",
                 "--root", str(root), "--backbone", "filterbank"]) == 2
    assert "--masks is for --method masks" in capsys.readouterr().err
