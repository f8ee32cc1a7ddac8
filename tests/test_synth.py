"""Tests of the embedded synthetic dataset (paperlib.synth)."""

from __future__ import annotations

import json
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi

from paperlib import synth
from paperlib.images import list_images, read_image, read_mask
from paperlib.synth import SIZE_BINS, SynthSample, make_sample, size_histogram, synthesize
from paperlib.validation import InputError

N = 40


def _no_network(*args, **kwargs):
    raise AssertionError("paperlib.synth tried to open a network connection")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """One n=40 dataset, written with sockets blocked, pooch disabled and a cold source cache."""
    out = tmp_path_factory.mktemp("synth")
    synth.load_source.cache_clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _no_network)
        mp.setattr("skimage.data._fetchers._image_fetcher", None)  # as if pooch were absent
        report = synthesize(out, n=N, seed=0, progress=False)
    return out / "DUTS-TE", report


def _voc_boxes(path: Path) -> tuple[dict, list[tuple[int, int, int, int]], list[int]]:
    root = ET.parse(path).getroot()
    assert root.tag == "annotation"
    size = {k: int(root.findtext(f"size/{k}")) for k in ("width", "height", "depth")}
    boxes, truncated = [], []
    for obj in root.findall("object"):
        assert obj.findtext("name") == "object"
        assert obj.findtext("pose") == "Unspecified"
        assert obj.findtext("difficult") == "0"
        truncated.append(int(obj.findtext("truncated")))
        boxes.append(tuple(int(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")))
    return {"filename": root.findtext("filename"), **size}, boxes, truncated


def _component_boxes(mask: np.ndarray, structure=None) -> list[tuple[int, int, int, int]]:
    """VOC boxes (1-based inclusive) of the connected components, from scipy alone."""
    labels, _ = ndi.label(mask, structure=structure)
    return [(xs.start + 1, ys.start + 1, xs.stop, ys.stop) for ys, xs in ndi.find_objects(labels)]


# ----------------------------------------------------------------------------- on disk

def test_layout_and_counts(dataset):
    root, report = dataset
    images = list_images(root / "DUTS-TE-Image")
    masks = list_images(root / "DUTS-TE-Mask")
    anns = sorted(p.stem for p in (root / "Annotations").glob("*.xml"))
    stems = [f"synth_{i:05d}" for i in range(N)]
    assert list(images) == stems and list(masks) == stems and anns == stems
    assert all(p.suffix == ".jpg" for p in images.values())
    assert all(p.suffix == ".png" for p in masks.values())
    assert not [p for p in root.rglob("*") if ".part" in p.name]  # no temporary file left behind
    marker = json.loads((root / "SYNTHETIC.json").read_text())
    assert marker["synthetic"] is True and marker["complete"] is True
    assert (marker["seed"], marker["n"], marker["split"]) == (0, N, "te")
    assert marker["generator_version"] == synth.SYNTH_VERSION
    assert marker["size_histogram"] == list(report.size_histogram)
    assert report.count == N and report.root == root and report.split == "te"


def test_images_and_masks(dataset):
    root, _ = dataset
    sizes = set()
    for i in range(N):
        img = Image.open(root / "DUTS-TE-Image" / f"synth_{i:05d}.jpg")
        msk = Image.open(root / "DUTS-TE-Mask" / f"synth_{i:05d}.png")
        assert img.format == "JPEG" and img.mode == "RGB"
        assert msk.format == "PNG" and msk.mode == "L"
        assert img.size == msk.size
        assert all(240 <= side <= 400 for side in img.size)
        values = np.unique(np.asarray(msk))
        assert set(values.tolist()) == {0, 255}  # binary, and never empty or full
        sizes.add(img.size)
    assert len(sizes) > N // 2  # sizes and aspects vary


def test_boxes_match_connected_components(dataset):
    root, report = dataset
    counts = []
    for i in range(N):
        mask = read_mask(root / "DUTS-TE-Mask" / f"synth_{i:05d}.png") > 0.5
        info, boxes, truncated = _voc_boxes(root / "Annotations" / f"synth_{i:05d}.xml")
        assert info == {"filename": f"synth_{i:05d}.jpg", "width": mask.shape[1],
                        "height": mask.shape[0], "depth": 3}
        four = _component_boxes(mask)  # 4-connectivity, scipy's default
        eight = _component_boxes(mask, structure=np.ones((3, 3)))
        assert sorted(boxes) == sorted(four) == sorted(eight)
        for (x0, y0, x1, y1), cut in zip(boxes, truncated):
            assert 1 <= x0 <= x1 <= mask.shape[1] and 1 <= y0 <= y1 <= mask.shape[0]
            touches = x0 == 1 or y0 == 1 or x1 == mask.shape[1] or y1 == mask.shape[0]
            assert touches or not cut  # a cut object reaches the border
        counts.append(len(boxes))
    assert counts == list(report.n_objects)
    assert set(counts) == {1, 2}  # mostly one object, some with two
    assert counts.count(1) > counts.count(2)


def test_size_spread_and_histogram(dataset):
    root, report = dataset
    ratios = np.array([read_mask(root / "DUTS-TE-Mask" / f"synth_{i:05d}.png").mean() for i in range(N)])
    np.testing.assert_allclose(report.fg_ratios, ratios, atol=1e-9)
    assert ratios.min() < 0.05 and ratios.max() > 0.4
    # independent reference: numpy's histogram over 20 equal bins of [0, 1]
    expected, _ = np.histogram(ratios, bins=np.linspace(0.0, 1.0, SIZE_BINS + 1))
    assert report.size_histogram == tuple(expected.tolist())
    assert sum(c > 0 for c in report.size_histogram) >= 10  # populated from tiny to ~65 %
    assert "40 synthetic image(s)" in str(report)


def test_objects_are_distinguishable(dataset):
    root, _ = dataset
    for i in range(N):
        image = read_image(root / "DUTS-TE-Image" / f"synth_{i:05d}.jpg").astype(np.float64)
        mask = read_mask(root / "DUTS-TE-Mask" / f"synth_{i:05d}.png") > 0.5
        ring = ndi.binary_dilation(mask, iterations=4) & ~mask
        inside = image[mask].mean(0)
        # the generator asks for 60 between fill and background means; the 50 % edge mix and
        # JPEG pull the measured value down, never below half of it
        assert np.linalg.norm(inside - image[~mask].mean(0)) > 30.0, i
        assert np.linalg.norm(inside - image[ring].mean(0)) > 30.0, i


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    def files(root):
        return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    synthesize(tmp_path / "a", n=4, seed=7, progress=False)
    synthesize(tmp_path / "b", n=4, seed=7, progress=False)
    synthesize(tmp_path / "c", n=4, seed=8, progress=False)
    a, b, c = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    assert len(a) == 3 * 4 + 1 and a == b
    assert set(a) == set(c)
    images = [k for k in a if k.suffix == ".jpg"]
    assert all(a[k] != c[k] for k in images)


def test_train_split_layout(tmp_path):
    report = synthesize(tmp_path, n=2, seed=1, split="tr", progress=False)
    root = tmp_path / "DUTS-TR"
    assert report.root == root and report.split == "tr"
    assert list(list_images(root / "DUTS-TR-Image")) == ["synth_00000", "synth_00001"]
    assert list(list_images(root / "DUTS-TR-Mask")) == ["synth_00000", "synth_00001"]
    assert len(list((root / "Annotations").glob("*.xml"))) == 2
    assert json.loads((root / "SYNTHETIC.json").read_text())["split"] == "tr"
    assert not (tmp_path / "DUTS-TE").exists()


def test_rewrite_removes_stale_files_and_refuses_real_data(tmp_path):
    synthesize(tmp_path, n=3, seed=0, progress=False)
    synthesize(tmp_path, n=2, seed=0, progress=False)  # a synthetic folder may be replaced
    for sub, ext in (("DUTS-TE-Image", "jpg"), ("DUTS-TE-Mask", "png"), ("Annotations", "xml")):
        assert sorted(p.name for p in (tmp_path / "DUTS-TE" / sub).iterdir()) == \
            [f"synth_00000.{ext}", f"synth_00001.{ext}"]

    real = tmp_path / "real"
    (real / "DUTS-TE" / "DUTS-TE-Image").mkdir(parents=True)
    (real / "DUTS-TE" / "DUTS-TE-Image" / "ILSVRC2012_test_00000003.jpg").write_bytes(b"x")
    with pytest.raises(InputError, match="refusing to overwrite"):
        synthesize(real, n=1, seed=0, progress=False)
    assert [p.name for p in (real / "DUTS-TE").iterdir()] == ["DUTS-TE-Image"]  # untouched

    (tmp_path / "empty" / "DUTS-TE").mkdir(parents=True)  # an empty folder is fine
    assert synthesize(tmp_path / "empty", n=1, seed=0, progress=False).count == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 0, "seed": 0}, "n must be an integer >= 1"),
    ({"n": True, "seed": 0}, "n must be an integer >= 1"),
    ({"n": 2.0, "seed": 0}, "n must be an integer >= 1"),
    ({"n": 1, "seed": -1}, "seed must be a non-negative integer"),
    ({"n": 1, "seed": "0"}, "seed must be a non-negative integer"),
    ({"n": 1, "seed": 0, "split": "val"}, "split must be one of 'te', 'tr'"),
    ({"n": 1, "seed": 0, "size_range": (400, 240)}, "size_range must be two integers"),
    ({"n": 1, "seed": 0, "size_range": (16, 64)}, "size_range must be two integers"),
    ({"n": 1, "seed": 0, "two_object_prob": 1.5}, "two_object_prob must lie in"),
])
def test_synthesize_rejects_bad_input(tmp_path, kwargs, message):
    with pytest.raises(InputError, match=message):
        synthesize(tmp_path, progress=False, **kwargs)
    assert not any(tmp_path.iterdir())  # nothing written


# ----------------------------------------------------------------------------- in memory

def test_make_sample_contract():
    sample = make_sample(np.random.default_rng(0), height=200, width=300)
    assert isinstance(sample, SynthSample)
    assert sample.image.shape == (200, 300, 3) and sample.image.dtype == np.uint8
    assert sample.mask.shape == (200, 300) and sample.mask.dtype == bool
    assert len(sample.boxes) == len(sample.truncated) == len(sample.shapes) >= 1
    assert all(kind in synth.SHAPE_KINDS for kind in sample.shapes)
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


def test_size_histogram_bins():
    # 0 and 0.049 in bin 0, 0.05 in bin 1, 0.999 and 1.0 in the last bin
    assert size_histogram([0.0, 0.049, 0.05, 0.999, 1.0]) == (2, 1) + (0,) * 17 + (2,)
    assert size_histogram([], bins=4) == (0, 0, 0, 0)


# ----------------------------------------------------------------------------- offline sources

def test_every_source_is_bundled_and_loads_offline(monkeypatch):
    import os

    import skimage

    monkeypatch.setattr(socket.socket, "connect", _no_network)
    monkeypatch.setattr("skimage.data._fetchers._image_fetcher", None)  # no pooch: no download
    synth.load_source.cache_clear()
    package = Path(skimage.__file__).resolve().parent
    for name in synth.SKIMAGE_SOURCES:
        img = synth.load_source(name)
        assert img.ndim in (2, 3) and min(img.shape[:2]) >= 200, name
        assert img.ndim == 2 or img.shape[2] == 3, name
    horse = synth.load_source("horse")
    assert horse.dtype == bool and 0.2 < horse.mean() < 0.5  # the horse, not the white paper
    # and each file lies inside the installed scikit-image package
    from skimage.data._fetchers import _fetch
    from skimage.data._registry import registry

    bundled = {Path(k).stem: k for k in registry if k.startswith("data/")}
    for name in synth.SKIMAGE_SOURCES:
        key = {"immunohistochemistry": "ihc", "colorwheel": "color",
               "stereo_motorcycle": "motorcycle_left"}.get(name, name)
        path = Path(_fetch(bundled[key])).resolve()
        assert package in path.parents and os.path.isfile(path), name


def test_load_source_rejects_unknown_names():
    with pytest.raises(InputError, match="source must be one of"):
        synth.load_source("eagle")  # in skimage's registry, but a download: not a source
