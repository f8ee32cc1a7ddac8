"""The ``offline`` backbone (patch colour + a border-contrast prior) and TokenCut's border polarity
rule: properties, an independent Otsu, and (realdata) better than a centre prior on real photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paperlib.backbones.offline import Offline, border_prior, otsu_threshold
from paperlib.backbones.registry import load_backbone
from paperlib.checks import InputError
from paperlib.methods.registry import build_method
from paperlib.methods.tokencut import bipartition


def _object_on_background(rng, size=(96, 128), box=(32, 64, 40, 88)) -> np.ndarray:
    """Textured grey background, a red rectangle (rows y0:y1, cols x0:x1) away from the border."""
    image = np.clip(rng.normal(120, 8, (*size, 3)), 0, 255).astype(np.uint8)
    y0, y1, x0, x1 = box
    image[y0:y1, x0:x1] = np.clip(rng.normal((200, 40, 40), 8, (y1 - y0, x1 - x0, 3)), 0, 255)
    return image


def test_otsu_equals_scikit_image(rng):
    from skimage.filters import threshold_otsu

    for values in (rng.random(500), np.concatenate([rng.normal(0, 1, 300), rng.normal(5, 0.5, 100)])):
        assert otsu_threshold(values) == pytest.approx(threshold_otsu(values, nbins=64), abs=1e-12)
    assert otsu_threshold(np.full(7, 0.3)) == 0.3


def test_the_prior_is_high_on_an_object_away_from_the_border(rng):
    image = torch.from_numpy(_object_on_background(rng)).permute(2, 0, 1)[None].float() / 255
    from paperlib.backbones.filterbank import rgb_to_lab

    colours = torch.nn.functional.avg_pool2d(rgb_to_lab(image) / 100, 8)[0].double().numpy()  # (3, 12, 16)
    prior = border_prior(colours)
    assert prior.shape == (12, 16) and prior.min() == 0.0 and prior.max() == 1.0
    inside = prior[4:8, 5:11]                             # the rectangle's patches
    outside = np.ones(prior.shape, bool)
    outside[3:9, 4:12] = False                            # background, a patch clear of the edge
    assert inside.min() > 0.3 > 0.1 > prior[outside].max(), (inside.min(), prior[outside].max())
    with pytest.raises(InputError, match="at least 3 x 3 patches"):
        border_prior(colours[:, :2, :2])


def test_keys_shape_determinism_and_registry(rng):
    backbone = load_backbone("offline")
    assert isinstance(backbone, Offline) and (backbone.dim, backbone.patch_size) == (10, 8)
    images = torch.from_numpy(np.stack([_object_on_background(rng) for _ in range(2)])).permute(0, 3, 1, 2) / 255
    keys = backbone.keys(images.float())
    assert keys.shape == (2, 10, 12, 16) and keys.dtype == torch.float32 and torch.isfinite(keys).all()
    torch.testing.assert_close(backbone.keys(images.float()), keys, rtol=0, atol=0)
    # each group carries its share of the variance: colour 0.25, context 0.20, spread 0.05, prior 0.5
    colour_var = keys[0, :3].var(dim=(1, 2), unbiased=False).sum()
    assert float(colour_var) == pytest.approx(0.25, rel=1e-4)
    with pytest.raises(InputError, match="weights"):
        load_backbone("offline", weights="some.pth")


def test_border_rule_takes_the_side_off_the_border_whatever_the_sign(rng):
    h, w = 10, 12
    v = np.zeros((h, w))
    v[3:7, 4:9] = 1.0                                   # an object in the middle
    v += 0.01 * rng.standard_normal((h, w))
    for sign in (1, -1):
        out = bipartition(sign * v, (h, w), polarity="border")
        assert out.mask[3:7, 4:9].all() and out.mask.sum() == 20
        assert out.component_box == (4, 3, 9, 7)
    # the seed rule picks argmax |v|: a background far from the mean wins it
    v2 = -v.copy()
    v2[3:7, 4:9] = 0.5
    v2[0, 0] = -3.0
    assert bipartition(v2, (h, w), polarity="seed").mask[0, 0]
    assert not bipartition(v2, (h, w), polarity="border").mask[0, 0]
    with pytest.raises(InputError, match="polarity"):
        bipartition(v, (h, w), polarity="largest")


def test_tokencut_on_offline_keys_finds_the_object_and_leaves_a_blank_image_empty(rng):
    method = build_method("tokencut", backbone="offline", device="cpu")
    assert method.polarity == "border"
    assert build_method("tokencut", backbone="filterbank", device="cpu").polarity == "seed"
    mask = method.predict(_object_on_background(rng)).mask
    truth = np.zeros(mask.shape, bool)
    truth[32:64, 40:88] = True
    iou = (mask.astype(bool) & truth).sum() / (mask.astype(bool) | truth).sum()
    assert iou > 0.8
    assert method.predict(np.full((64, 80, 3), 128, np.uint8)).mask.max() == 0.0


@pytest.mark.realdata
@pytest.mark.slow
def test_offline_tokencut_beats_the_centre_prior_on_real_photos(real_data_root):
    """Issue 12's floor: on the DUTS-TE sample, offline TokenCut above a centre prior (a Gaussian
    at the frame's centre, sigma a quarter of each side, the best of 0.15-0.40 in IoU) in both
    IoU and max F-beta."""
    from paperlib.eval.metrics import SaliencyMetrics
    from paperlib.images import list_images, read_image, read_mask

    images = list_images(real_data_root / "DUTS-TE" / "DUTS-TE-Image")
    masks = list_images(real_data_root / "DUTS-TE" / "DUTS-TE-Mask")
    stems = sorted(set(images) & set(masks))[::2]                      # every other pair: 251
    method = build_method("tokencut", backbone="offline", device="cpu")
    ours, centre = SaliencyMetrics(), SaliencyMetrics()
    for stem in stems:
        image, gt = read_image(images[stem]), read_mask(masks[stem])
        H, W = gt.shape
        y, x = np.mgrid[0:H, 0:W]
        prior = np.exp(-(((x - (W - 1) / 2) / (0.25 * W)) ** 2 + ((y - (H - 1) / 2) / (0.25 * H)) ** 2) / 2)
        centre.update(prior.astype(np.float32), gt)
        ours.update(method.predict(image, image_id=stem).mask, gt)
    a, b = ours.compute(), centre.compute()
    assert a.iou > b.iou + 0.05 and a.max_fbeta > b.max_fbeta + 0.05, (a.iou, b.iou, a.max_fbeta, b.max_fbeta)


def test_the_readme_offline_segment_command_runs(tmp_path, rng):
    """The one line the README gives people without weights, run on two photos."""
    import shlex

    from doc_commands import documented

    from paperlib.cli.main import main
    from paperlib.images import read_mask, write_image

    (command,) = [c for _, c in documented(("paperlib segment",)) if "--backbone offline" in c]
    photos = tmp_path / "my_photos"
    for i in range(2):
        write_image(photos / f"p{i}.jpg", _object_on_background(rng))
    argv = [a.replace("my_photos", str(photos)).replace("my_masks", str(tmp_path / "my_masks"))
            for a in shlex.split(command)[1:]]
    assert main(["-q", *argv]) == 0
    mask = read_mask(tmp_path / "my_masks" / "p0.png")
    assert mask.shape == (96, 128) and mask[40:56, 50:80].mean() > 0.9 and mask[:8].mean() < 0.1
    assert (tmp_path / "my_masks" / "overlays" / "p0.jpg").is_file()


def test_the_centre_prior_method():
    """A Gaussian at the frame's centre, exp(-1/2) at sigma of each side; max F-beta barely depends
    on sigma (every sigma ranks the pixels alike; only the 255 fixed thresholds fall differently),
    IoU at 0.5 does."""
    from paperlib.eval.metrics import SaliencyMetrics
    from paperlib.methods.centre import CentrePrior

    image = np.zeros((41, 81, 3), np.uint8)
    mask = build_method("centre").predict(image).mask
    assert mask.shape == (41, 81) and mask[20, 40] == 1.0
    np.testing.assert_allclose(mask, mask[::-1, ::-1], atol=1e-7)
    assert mask[20, 40 + round(0.25 * 81)] == pytest.approx(np.exp(-0.5 * (20.25 / 20.25) ** 2), abs=0.01)
    gt = np.zeros((41, 81), bool)
    gt[12:30, 25:60] = True
    scores = []
    for sigma in (0.15, 0.25, 0.4):
        metrics = SaliencyMetrics()
        metrics.update(CentrePrior(sigma).predict(image).mask, gt)
        scores.append(metrics.compute())
    fbetas = [s.max_fbeta for s in scores]
    assert max(fbetas) - min(fbetas) < 0.01 and len({round(s.iou, 6) for s in scores}) == 3
    assert CentrePrior().discover(image) is not None
    with pytest.raises(InputError, match="sigma"):
        CentrePrior(float("inf"))


def test_the_border_rule_is_sign_free_even_on_a_perfect_tie():
    v = np.tile([1.0, 1.0, -1.0, -1.0], 4) + np.linspace(0, 1e-3, 16)   # ring and sides tie
    a = bipartition(v, (4, 4), polarity="border").mask
    b = bipartition(-v, (4, 4), polarity="border").mask
    np.testing.assert_array_equal(a, b)
