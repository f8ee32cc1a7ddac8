"""Tests of the embedded synthetic dataset on disk (paperlib.data.synth); the composites themselves
are tested in test_synth_sample.py."""

from __future__ import annotations

import json
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi

from paperlib.checks import InputError
from paperlib.data import synth, synth_sample
from paperlib.data.synth import SIZE_BINS, size_histogram, synthesize
from paperlib.images import list_images, read_image, read_mask

N = 40


def _no_network(*args, **kwargs):
    raise AssertionError("paperlib.data.synth tried to open a network connection")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """One n=40 dataset, written with sockets blocked, pooch disabled and a cold source cache."""
    out = tmp_path_factory.mktemp("synth")
    synth_sample.load_source.cache_clear()
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
    ({"n": 0, "seed": 0}, r"n must be an integer in \[1, 100000\]"),
    ({"n": True, "seed": 0}, r"n must be an integer in \[1, 100000\]"),
    ({"n": 2.0, "seed": 0}, r"n must be an integer in \[1, 100000\]"),
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


def test_size_histogram_bins():
    # 0 and 0.049 in bin 0, 0.05 in bin 1, 0.999 and 1.0 in the last bin
    assert size_histogram([0.0, 0.049, 0.05, 0.999, 1.0]) == (2, 1) + (0,) * 17 + (2,)
    assert size_histogram([], bins=4) == (0, 0, 0, 0)


def test_synthesize_missing_writes_only_what_is_absent(tmp_path):
    from paperlib.data.synth import NOTEBOOK_SETS, synthesize_missing

    assert synthesize_missing(tmp_path, splits=("te",)) == ["te"]
    te = sorted((tmp_path / "DUTS-TE" / "DUTS-TE-Image").iterdir())
    assert len(te) == NOTEBOOK_SETS["te"]["n"]
    stamp = te[0].stat().st_mtime_ns
    assert synthesize_missing(tmp_path) == ["tr"]             # DUTS-TE exists: left alone
    assert te[0].stat().st_mtime_ns == stamp
    assert len(list((tmp_path / "DUTS-TR" / "DUTS-TR-Image").iterdir())) == NOTEBOOK_SETS["tr"]["n"]
    with pytest.raises(InputError, match="split"):
        synthesize_missing(tmp_path, splits=("val",))
    # Real data in the official layout (root/DUTS/DUTS-TE) is left alone: nothing is written beside it.
    official = tmp_path / "official"
    (official / "DUTS" / "DUTS-TE" / "DUTS-TE-Image").mkdir(parents=True)
    assert synthesize_missing(official, splits=("te",)) == []
    assert sorted(p.name for p in official.iterdir()) == ["DUTS"]
