"""Tests of one synthetic composite and its offline sources (paperlib.data.synth_sample)."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from paperlib.checks import InputError
from paperlib.data import skimage_sources, synth_sample
from paperlib.data.synth_sample import SynthSample, fg_ratio_quantile, make_sample


def _no_network(*args, **kwargs):
    raise AssertionError("paperlib.data.synth_sample tried to open a network connection")


# ----------------------------------------------------------------------------- in memory

def test_make_sample_contract():
    sample = make_sample(np.random.default_rng(0), height=200, width=300)
    assert isinstance(sample, SynthSample)
    assert sample.image.shape == (200, 300, 3) and sample.image.dtype == np.uint8
    assert sample.mask.shape == (200, 300) and sample.mask.dtype == bool
    assert len(sample.boxes) == len(sample.truncated) == len(sample.shapes) >= 1
    assert all(kind in synth_sample.SHAPE_KINDS for kind in sample.shapes)
    # boxes are 0-based with exclusive maxima: exactly the slices of the components
    labels, count = ndi.label(sample.mask)
    slices = {(xs.start, ys.start, xs.stop, ys.stop) for ys, xs in ndi.find_objects(labels)}
    assert count == len(sample.boxes) and set(sample.boxes) == slices
    assert sample.fg_ratio == pytest.approx(sample.mask.mean())


def test_make_sample_is_deterministic():
    a = make_sample(np.random.default_rng(5), height=64, width=96)
    b = make_sample(np.random.default_rng(5), height=64, width=96)
    c = make_sample(np.random.default_rng(6), height=64, width=96)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert a.boxes == b.boxes
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize("ratio", [0.01, 0.05, 0.2, 0.5])
def test_make_sample_hits_the_target_ratio(ratio):
    for seed in range(3):
        sample = make_sample(np.random.default_rng(seed), height=240, width=320, fg_ratio=ratio,
                             n_objects=1)
        assert len(sample.boxes) == 1
        assert sample.fg_ratio == pytest.approx(ratio, rel=0.15)


def test_make_sample_two_objects_never_touch():
    for seed in range(6):
        sample = make_sample(np.random.default_rng(seed), height=256, width=256, fg_ratio=0.1,
                             n_objects=2)
        assert len(sample.boxes) == 2
        labels, count = ndi.label(sample.mask, structure=np.ones((3, 3)))  # 8-connectivity
        assert count == 2
        one = ndi.binary_dilation(labels == 1, structure=np.ones((3, 3)))
        assert not (one & (labels == 2)).any()


def test_make_sample_enforces_min_contrast():
    # Without enforcement these samples can be close in colour: the same loop with
    # min_contrast=0.0 gives min(outside, ring) distances whose six smallest are
    # 22.1, 27.6, 32.5, 34.5, 42.6, 54.8 (printed with np.round(sorted(distances)[:6], 1)).
    for seed in range(30):
        sample = make_sample(np.random.default_rng(seed), height=160, width=160, min_contrast=100.0)
        img, mask = sample.image.astype(np.float64), sample.mask
        ring = ndi.binary_dilation(mask, iterations=4) & ~mask
        inside = img[mask].mean(0)
        assert np.linalg.norm(inside - img[~mask].mean(0)) > 75.0, seed
        assert np.linalg.norm(inside - img[ring].mean(0)) > 75.0, seed


def test_make_sample_edge_is_soft_inside_the_support():
    # On a flat object over a flat background the edge pixels (inside the support) are a mix,
    # the interior is the fill and everything outside the support is the untouched background.
    rng = np.random.default_rng(3)
    sample = make_sample(rng, height=128, width=128, fg_ratio=0.2, n_objects=1, min_contrast=0.0)
    mask = sample.mask
    edge = mask & ~ndi.binary_erosion(mask)
    interior = ndi.binary_erosion(mask, iterations=3)
    outside = ndi.binary_dilation(mask, iterations=3) & ~ndi.binary_dilation(mask)
    img = sample.image.astype(np.float64)
    # edge pixels sit between interior and outside colours on average
    d_in = np.linalg.norm(img[edge].mean(0) - img[interior].mean(0))
    d_out = np.linalg.norm(img[edge].mean(0) - img[outside].mean(0))
    d_io = np.linalg.norm(img[interior].mean(0) - img[outside].mean(0))
    assert d_in < d_io and d_out < d_io


@pytest.mark.parametrize("kwargs, message", [
    ({"rng": 0}, "rng must be a numpy.random.Generator"),
    ({"height": 16}, "height must be an integer >= 32"),
    ({"width": 40.0}, "width must be an integer >= 32"),
    ({"fg_ratio": 0.95}, "fg_ratio must lie in"),
    ({"n_objects": 3}, "n_objects must be 1, 2 or None"),
    ({"min_contrast": -1.0}, "min_contrast must lie in"),
])
def test_make_sample_rejects_bad_input(kwargs, message):
    args = {"rng": np.random.default_rng(0), "height": 64, "width": 64, **kwargs}
    rng = args.pop("rng")
    with pytest.raises(InputError, match=message):
        make_sample(rng, **args)


def test_fg_ratio_quantile_is_the_stated_mixture():
    # breakpoints from the docstring: 0.01 at u = 0, 0.1 at u = 0.35, 0.7 at u = 1
    np.testing.assert_allclose(fg_ratio_quantile(np.array([0.0, 0.35, 1.0])), [0.01, 0.1, 0.7])
    u = np.linspace(0.0, 1.0, 1001)
    q = fg_ratio_quantile(u)
    assert q.shape == u.shape and np.all(np.diff(q) > 0)  # a quantile function is increasing
    # inverse check on each piece: log10(q / 0.01) * 0.35 and 0.35 + 0.65 (q - 0.1) / 0.6 give u back
    low = u < 0.35
    np.testing.assert_allclose(np.log10(q[low] / 0.01) * 0.35, u[low], atol=1e-12)
    np.testing.assert_allclose(0.35 + 0.65 * (q[~low] - 0.1) / 0.6, u[~low], atol=1e-12)


# ----------------------------------------------------------------------------- offline sources

def test_every_source_is_bundled_and_loads_offline(monkeypatch):
    import os

    import skimage

    monkeypatch.setattr(socket.socket, "connect", _no_network)
    monkeypatch.setattr("skimage.data._fetchers._image_fetcher", None)  # no pooch: no download
    synth_sample.load_source.cache_clear()
    package = Path(skimage.__file__).resolve().parent
    for name in skimage_sources.SKIMAGE_SOURCES:
        img = synth_sample.load_source(name)
        assert img.ndim in (2, 3) and min(img.shape[:2]) >= 200, name
        assert img.ndim == 2 or img.shape[2] == 3, name
    horse = synth_sample.load_source("horse")
    assert horse.dtype == bool and 0.2 < horse.mean() < 0.5  # the horse, not the white paper
    # and each file lies inside the installed scikit-image package
    from skimage.data._fetchers import _fetch
    from skimage.data._registry import registry

    bundled = {Path(k).stem: k for k in registry if k.startswith("data/")}
    for name in skimage_sources.SKIMAGE_SOURCES:
        key = {"immunohistochemistry": "ihc", "colorwheel": "color",
               "stereo_motorcycle": "motorcycle_left"}.get(name, name)
        path = Path(_fetch(bundled[key])).resolve()
        assert package in path.parents and os.path.isfile(path), name


def test_load_source_rejects_unknown_names():
    with pytest.raises(InputError, match="source must be one of"):
        synth_sample.load_source("eagle")  # in skimage's registry, but a download: not a source


def test_shape_template_refuses_an_unknown_kind():
    from paperlib.data.silhouettes import shape_template

    with pytest.raises(InputError, match="kind"):
        shape_template("hexagon", np.random.default_rng(0))
    for kind in synth_sample.SHAPE_KINDS:  # each known kind: one filled 4-connected component
        m = shape_template(kind, np.random.default_rng(1))
        assert m.dtype == bool and m.any() and ndi.label(m)[1] == 1
        assert not (ndi.binary_fill_holes(m) & ~m).any()
