"""CorLoc: ground-truth readers, mask -> box, IoU, the accumulator and the evaluation loop."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from paperlib.corloc import (CORLOC_DATASETS, Coco20k, CorLoc, CorLocItem, FolderBoxes, VocDetection,
                             best_iou, box_iou, corloc_evaluate, mask_to_box, open_corloc_dataset,
                             read_voc_boxes)
from paperlib.images import read_image, write_image
from paperlib.validation import InputError

# ----------------------------------------------------------------------------- helpers


def _voc_xml(filename: str, width: int, height: int, objects: list[dict]) -> str:
    """A VOC annotation as the official files write it (1-based inclusive corners)."""
    parts = [f"<annotation><folder>VOC2007</folder><filename>{filename}</filename>"
             f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>"
             f"<segmented>0</segmented>"]
    for o in objects:
        flags = "".join(f"<{k}>{o[k]}</{k}>" for k in ("truncated", "difficult") if k in o)
        extra = o.get("extra", "")
        xmin, ymin, xmax, ymax = o["box"]
        parts.append(f"<object><name>{o['name']}</name><pose>Unspecified</pose>{flags}"
                     f"<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax>"
                     f"<ymax>{ymax}</ymax></bndbox>{extra}</object>")
    parts.append("</annotation>")
    return "\n".join(parts)


def _raster(box, shape) -> np.ndarray:
    """The pixels [y0, y1) x [x0, x1) of an integer box: an independent IoU reference."""
    m = np.zeros(shape, dtype=bool)
    x0, y0, x1, y1 = (int(v) for v in box)
    m[y0:y1, x0:x1] = True
    return m


def _image(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------- box_iou


def test_box_iou_identical_disjoint_touching():
    a = np.array([10.0, 20.0, 50.0, 60.0])
    assert box_iou(a, a) == 1.0
    assert box_iou(a, [60.0, 20.0, 90.0, 60.0]) == 0.0  # disjoint
    assert box_iou(a, [50.0, 20.0, 90.0, 60.0]) == 0.0  # shares an edge only: no area
    assert box_iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0  # empty union


def test_box_iou_matches_pixel_count_and_is_symmetric(rng):
    corners = rng.integers(0, 40, size=(30, 2, 2))
    boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1) + 1], axis=1)  # (30, 4) x0 y0 x1 y1
    boxes = boxes[:, [0, 1, 2, 3]].astype(np.float64)
    iou = box_iou(boxes[:12], boxes[12:])
    assert iou.shape == (12, 18)
    np.testing.assert_allclose(iou, box_iou(boxes[12:], boxes[:12]).T, rtol=0, atol=0)
    for i in range(12):
        for k in range(18):
            a, b = _raster(boxes[i], (41, 41)), _raster(boxes[12 + k], (41, 41))
            ref = (a & b).sum() / (a | b).sum()
            assert iou[i, k] == pytest.approx(ref, abs=1e-12)
    assert np.all((iou >= 0) & (iou <= 1))


def test_box_iou_shapes_and_torch_input():
    a = np.array([0.0, 0.0, 10.0, 10.0])
    many = np.array([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    assert isinstance(box_iou(a, a), float)
    # (5 * 10) / (100 + 100 - 50) = 1/3 for the half-shifted box
    np.testing.assert_allclose(box_iou(a, many), [1.0, 1 / 3, 0.0])
    assert box_iou(many, a).shape == (3,)
    assert box_iou(many, many).shape == (3, 3)
    np.testing.assert_allclose(box_iou(torch.tensor(a), torch.tensor(many)), [1.0, 1 / 3, 0.0])


@pytest.mark.parametrize("bad, match", [
    (np.zeros(3), "xyxy boxes"),
    (np.zeros((2, 5)), "xyxy boxes"),
    (np.array([10.0, 0.0, 5.0, 5.0]), "x1 >= x0"),  # xywh-style or swapped corners
    (np.array([0.0, 0.0, np.nan, 5.0]), "non-finite"),
])
def test_box_iou_rejects_bad_boxes(bad, match):
    with pytest.raises(InputError, match=match):
        box_iou(bad, np.array([0.0, 0.0, 1.0, 1.0]))


# ----------------------------------------------------------------------------- CorLoc


def test_ground_truth_boxes_as_predictions_give_corloc_one(rng):
    acc = CorLoc()
    for _ in range(20):
        k = int(rng.integers(1, 5))
        xy = rng.uniform(0, 200, size=(k, 2))
        gt = np.concatenate([xy, xy + rng.uniform(1, 100, size=(k, 2))], axis=1)
        assert acc.update(gt[int(rng.integers(k))], gt)
    assert acc.value == 1.0 and acc.n_images == 20 and acc.n_hits == 20


def test_shifted_box_hit_and_miss_around_iou_half():
    gt = np.array([[0.0, 0.0, 100.0, 100.0]])
    # Shift by dx along x: inter = (100 - dx) * 100, union = 2 * 100^2 - inter,
    # IoU = (100 - dx) / (100 + dx); IoU = 0.5 at dx = 100/3.
    # dx = 33: 67 / 133 = 0.50376 (hit); dx = 34: 66 / 134 = 0.49254 (miss).
    inside, outside = np.array([33.0, 0, 133.0, 100.0]), np.array([34.0, 0, 134.0, 100.0])
    assert best_iou(inside, gt) == pytest.approx(67 / 133)
    assert best_iou(outside, gt) == pytest.approx(66 / 134)
    acc = CorLoc()
    assert acc.update(inside, gt) is True
    assert acc.update(outside, gt) is False
    assert acc.value == 0.5
    # Exactly 0.5 is a hit (IoU >= 0.5): (1, 0, 4, 1) vs (0, 0, 3, 1): inter 2, union 4.
    assert CorLoc().update(np.array([1.0, 0.0, 4.0, 1.0]), np.array([[0.0, 0.0, 3.0, 1.0]]))


def test_any_of_many_ground_truth_boxes():
    gt = np.array([[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 90.0, 90.0], [0.0, 60.0, 20.0, 100.0]])
    acc = CorLoc()
    assert acc.update(np.array([52.0, 50.0, 92.0, 90.0]), gt)  # only the second box matches
    assert not acc.update(np.array([20.0, 20.0, 45.0, 45.0]), gt)  # overlaps none enough
    assert not acc.update(None, gt)  # no prediction: a miss
    assert not acc.update(np.array([0.0, 0.0, 10.0, 10.0]), np.zeros((0, 4)))  # no ground truth
    assert acc.n_images == 4 and acc.n_hits == 1 and acc.value == 0.25


def test_corloc_merge_and_empty_value():
    a, b = CorLoc(), CorLoc()
    assert math.isnan(a.value)
    box = np.array([0.0, 0.0, 1.0, 1.0])
    a.update(box, box[None])
    b.update(None, box[None])
    b.update(box, box[None])
    assert a.merge(b) is a and (a.n_images, a.n_hits) == (3, 2)
    assert a.value == pytest.approx(2 / 3)
    with pytest.raises(InputError, match="same iou_threshold"):
        a.merge(CorLoc(iou_threshold=0.7))


def test_corloc_custom_threshold():
    gt = np.array([[0.0, 0.0, 100.0, 100.0]])
    box = np.array([10.0, 0.0, 110.0, 100.0])  # IoU = 90 / 110 = 0.818
    assert CorLoc(iou_threshold=0.8).update(box, gt)
    assert not CorLoc(iou_threshold=0.85).update(box, gt)
    with pytest.raises(InputError, match="iou_threshold"):
        CorLoc(iou_threshold=0.0)


# ----------------------------------------------------------------------------- mask_to_box


def test_mask_to_box_picks_largest_component_scales_and_clips():
    m = np.zeros((6, 8), dtype=bool)
    m[0:2, 0:2] = True  # 4 cells
    m[2, 2] = True  # touches the block above only at a corner: its own 4-component
    m[3:6, 5:8] = True  # 9 cells, the largest; reaches the grid's last row and column
    # patch 16: cols 5..7 -> x 80..128, rows 3..5 -> y 48..96; image 90 x 120 clips both maxima
    box = mask_to_box(m, patch_size=16, image_size=(90, 120))
    np.testing.assert_array_equal(box, [80.0, 48.0, 120.0, 90.0])
    box = mask_to_box(m, patch_size=16, image_size=(200, 200))  # no clipping
    np.testing.assert_array_equal(box, [80.0, 48.0, 128.0, 96.0])
    # separate y / x scales (a mask computed on a resized image)
    box = mask_to_box(m, patch_size=(10.0, 5.0), image_size=(1000, 1000))
    np.testing.assert_array_equal(box, [25.0, 30.0, 40.0, 60.0])


def test_mask_to_box_four_connectivity():
    # a diagonal of 5 cells is 5 components of 1 cell under 4-connectivity: the first one wins
    m = np.eye(5, dtype=bool)
    np.testing.assert_array_equal(mask_to_box(m, patch_size=8, image_size=(40, 40)), [0, 0, 8, 8])


def test_mask_to_box_largest_area_vs_largest_box():
    m = np.zeros((10, 10), dtype=bool)
    m[0, :] = True
    m[:, 0] = True  # an L: 19 cells, box 10 x 10 = 100
    m[3:9, 3:9] = True  # a block: 36 cells, box 6 x 6 = 36
    np.testing.assert_array_equal(mask_to_box(m, patch_size=1, image_size=(10, 10)), [3, 3, 9, 9])
    np.testing.assert_array_equal(mask_to_box(m, patch_size=1, image_size=(10, 10), select="largest_box"),
                                  [0, 0, 10, 10])


def test_mask_to_box_matches_skimage_regionprops(rng):
    from skimage.measure import label, regionprops

    for _ in range(25):
        m = rng.uniform(size=(12, 15)) > 0.6
        regions = regionprops(label(m, connectivity=1))
        big = max(regions, key=lambda r: (r.area, -r.label))  # ties: the first label (row-major)
        r0, c0, r1, c1 = big.bbox  # exclusive maxima
        box = mask_to_box(m, patch_size=8, image_size=(96, 120))
        np.testing.assert_array_equal(box, [c0 * 8, r0 * 8, c1 * 8, r1 * 8])


def test_mask_to_box_float_threshold_torch_and_empty():
    m = np.zeros((4, 4), dtype=np.float32)
    m[1:3, 1:3] = 0.9
    m[0, 3] = 0.5  # not > 0.5: background
    assert mask_to_box(m, patch_size=8, image_size=(32, 32)).tolist() == [8, 8, 24, 24]
    assert mask_to_box(torch.from_numpy(m), patch_size=8, image_size=(32, 32)).tolist() == [8, 8, 24, 24]
    assert mask_to_box(m, patch_size=8, image_size=(32, 32), threshold=0.95) is None
    empty = mask_to_box(np.zeros((4, 4), dtype=bool), patch_size=8, image_size=(32, 32))
    assert empty is None
    acc = CorLoc()
    assert not acc.update(empty, np.array([[0.0, 0.0, 32.0, 32.0]]))  # no box: a miss
    assert acc.value == 0.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(mask_patch=np.zeros(4), patch_size=8, image_size=(8, 8)), "2-D"),
    (dict(mask_patch=np.zeros((2, 2)), patch_size=0, image_size=(8, 8)), "patch_size"),
    (dict(mask_patch=np.zeros((2, 2)), patch_size=(8, 8, 8), image_size=(8, 8)), "patch_size"),
    (dict(mask_patch=np.zeros((2, 2)), patch_size=8, image_size=(8,)), "image_size"),
    (dict(mask_patch=np.zeros((2, 2)), patch_size=8, image_size=(8, 8), select="biggest"), "select"),
])
def test_mask_to_box_errors(kwargs, match):
    with pytest.raises(InputError, match=match):
        mask_to_box(**kwargs)


# ----------------------------------------------------------------------------- VOC XML


def test_read_voc_boxes_zero_based_flags_and_parts(tmp_path):
    person_parts = ("<part><name>head</name><bndbox><xmin>5</xmin><ymin>6</ymin><xmax>7</xmax>"
                    "<ymax>8</ymax></bndbox></part>")
    xml = _voc_xml("000005.jpg", 500, 375, [
        dict(name="chair", box=(263, 211, 324, 339), truncated=0, difficult=0),
        dict(name="person", box=(1, 1, 500, 375), truncated=1, difficult=0, extra=person_parts),
        dict(name="bottle", box=(100, 50, 120, 90), truncated=0, difficult=1),
        dict(name="dog", box=(10, 20, 30, 40)),  # no flags at all (some VOC2012 objects)
    ])
    path = tmp_path / "000005.xml"
    path.write_text(xml)
    ann = read_voc_boxes(path)
    assert (ann.filename, ann.width, ann.height) == ("000005.jpg", 500, 375)
    assert ann.names == ("chair", "person", "bottle", "dog")  # difficult/truncated kept, parts not objects
    # xmin, ymin minus 1; xmax, ymax unchanged: the whole-image box (1, 1, 500, 375) is (0, 0, W, H)
    np.testing.assert_array_equal(ann.boxes, [[262, 210, 324, 339], [0, 0, 500, 375],
                                              [99, 49, 120, 90], [9, 19, 30, 40]])
    assert ann.boxes.dtype == np.float64
    assert ann.truncated.tolist() == [False, True, False, False]
    assert ann.difficult.tolist() == [False, False, True, False]


def test_read_voc_boxes_no_objects_and_errors(tmp_path):
    empty = tmp_path / "empty.xml"
    empty.write_text(_voc_xml("a.jpg", 10, 10, []))
    assert read_voc_boxes(empty).boxes.shape == (0, 4)
    broken = tmp_path / "broken.xml"
    broken.write_text("<annotation><size>")
    with pytest.raises(InputError, match="broken.xml: not a readable XML"):
        read_voc_boxes(broken)
    nobox = tmp_path / "nobox.xml"
    nobox.write_text("<annotation><size><width>5</width><height>5</height></size>"
                     "<object><name>cat</name></object></annotation>")
    with pytest.raises(InputError, match="no <bndbox>"):
        read_voc_boxes(nobox)
    with pytest.raises(InputError, match="not found"):
        read_voc_boxes(tmp_path / "absent.xml")


def _fake_voc(root: Path, year: str = "2007") -> dict[str, list]:
    base = root / "VOCdevkit" / f"VOC{year}"
    (base / "ImageSets" / "Main").mkdir(parents=True)
    (base / "JPEGImages").mkdir()
    (base / "Annotations").mkdir()
    objects = {"000005": [(10, 20, 40, 60)], "000007": [(1, 1, 32, 24), (5, 5, 9, 9)],
               "000009": [(3, 4, 20, 16)]}
    for i, (stem, boxes) in enumerate(objects.items()):
        write_image(base / "JPEGImages" / f"{stem}.jpg", _image(24 + i, 32, i))
        objs = [dict(name="cat", box=b, truncated=int(k == 1), difficult=int(k == 1)) for k, b in enumerate(boxes)]
        (base / "Annotations" / f"{stem}.xml").write_text(_voc_xml(f"{stem}.jpg", 32, 24 + i, objs))
    (base / "ImageSets" / "Main" / "trainval.txt").write_text("000005\n000007\n000009\n\n")
    return objects


def test_voc_detection_reads_a_fake_devkit(tmp_path):
    objects = _fake_voc(tmp_path)
    ds = VocDetection(tmp_path, year="2007")
    assert len(ds) == 3 and ds.ids == ("000005", "000007", "000009")
    items = list(ds)
    assert [it.image_id for it in items] == list(objects)
    for it, boxes in zip(items, objects.values()):
        assert it.image_path == tmp_path / "VOCdevkit" / "VOC2007" / "JPEGImages" / f"{it.image_id}.jpg"
        expected = np.array(boxes, dtype=np.float64) - [1, 1, 0, 0]
        np.testing.assert_array_equal(it.boxes, expected)
    assert ds.annotation(1).difficult.tolist() == [False, True]
    # the devkit folder and the year folder work as roots too
    assert VocDetection(tmp_path / "VOCdevkit").ids == ds.ids
    assert VocDetection(tmp_path / "VOCdevkit" / "VOC2007").ids == ds.ids
    # through the registry
    reg = open_corloc_dataset("VOC07", tmp_path)
    assert reg.ids == ds.ids and CORLOC_DATASETS["voc07"].n_images == 5011
    assert CORLOC_DATASETS["voc12"].n_images == 11540 and CORLOC_DATASETS["coco20k"].n_images == 19817


def test_voc_detection_missing_folders_name_the_path_and_the_download(tmp_path):
    with pytest.raises(InputError, match=r"VOC2012.*trainval\.txt not found.*paperlib data download voc12"):
        VocDetection(tmp_path, year="2012")
    _fake_voc(tmp_path)
    (tmp_path / "VOCdevkit" / "VOC2007" / "Annotations").rename(tmp_path / "elsewhere")
    with pytest.raises(InputError, match=r"Annotations not found.*paperlib data download voc07"):
        VocDetection(tmp_path)
    with pytest.raises(InputError, match="year"):
        VocDetection(tmp_path, year="2010")
    with pytest.raises(InputError, match="dataset"):
        open_corloc_dataset("voc10", tmp_path)
    with pytest.raises(InputError, match="absent"):
        open_corloc_dataset("voc07", tmp_path / "absent")


# ----------------------------------------------------------------------------- COCO20K


def _fake_coco(root: Path) -> None:
    (root / "COCO" / "train2014").mkdir(parents=True)
    (root / "COCO" / "annotations").mkdir()
    names = ["COCO_train2014_000000000009.jpg", "COCO_train2014_000000000025.jpg",
             "COCO_train2014_000000000030.jpg", "COCO_train2014_000000000034.jpg"]
    images = [{"id": int(n[-10:-4]), "file_name": n, "width": 64, "height": 48} for n in names]
    seg = [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]
    annotations = [
        {"id": 1, "image_id": 9, "bbox": [10.0, 5.0, 20.0, 30.0], "iscrowd": 0, "segmentation": seg},
        {"id": 2, "image_id": 9, "bbox": [0.0, 0.0, 64.0, 48.0], "iscrowd": 1,
         "segmentation": {"counts": [1, 2], "size": [48, 64]}},
        {"id": 3, "image_id": 25, "bbox": [2.5, 3.5, 10.25, 4.5], "iscrowd": 0, "segmentation": seg},
        {"id": 4, "image_id": 30, "bbox": [1.0, 1.0, 2.0, 2.0], "iscrowd": 1, "segmentation": seg},
        {"id": 5, "image_id": 34, "bbox": [7.0, 7.0, 7.0, 7.0], "iscrowd": 0, "segmentation": seg},
        {"id": 6, "image_id": 25, "bbox": [30.0, 20.0, 10.0, 10.0], "iscrowd": 0, "segmentation": seg},
    ]
    (root / "COCO" / "annotations" / "instances_train2014.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "x"}]}))
    for i, n in enumerate(names[:3]):
        write_image(root / "COCO" / "train2014" / n, _image(48, 64, i))
    # the list, LOST/TokenCut style (some lines prefixed with the folder); image 34 is not listed
    (root / "COCO" / "coco_20k_filenames.txt").write_text(
        f"train2014/{names[1]}\n{names[0]}\ntrain2014/{names[2]}\n")


def test_coco20k_drops_crowd_converts_xywh_and_rounds(tmp_path):
    _fake_coco(tmp_path)
    ds = Coco20k(tmp_path)
    assert ds.ids == ("COCO_train2014_000000000025", "COCO_train2014_000000000009",
                      "COCO_train2014_000000000030")  # the list's order
    by_id = {it.image_id: it for it in ds}
    # image 9: crowd box dropped; (10, 5, 20, 30) xywh -> (10, 5, 30, 35)
    np.testing.assert_array_equal(by_id["COCO_train2014_000000000009"].boxes, [[10, 5, 30, 35]])
    # image 25: (2.5, 3.5, 12.75, 8.0) rounded half to even -> (2, 4, 13, 8); second box exact
    np.testing.assert_array_equal(by_id["COCO_train2014_000000000025"].boxes, [[2, 4, 13, 8], [30, 20, 40, 30]])
    # image 30: only a crowd box -> no boxes, a miss whatever is predicted
    assert by_id["COCO_train2014_000000000030"].boxes.shape == (0, 4)
    assert by_id["COCO_train2014_000000000009"].image_path == \
        tmp_path / "COCO" / "train2014" / "COCO_train2014_000000000009.jpg"
    exact = Coco20k(tmp_path / "COCO", round_boxes=False)
    np.testing.assert_array_equal(exact[0].boxes, [[2.5, 3.5, 12.75, 8.0], [30, 20, 40, 30]])
    assert open_corloc_dataset("coco20k", tmp_path).ids == ds.ids


def test_coco20k_errors(tmp_path):
    with pytest.raises(InputError, match=r"train2014 not found.*paperlib data download coco20k"):
        Coco20k(tmp_path)
    _fake_coco(tmp_path)
    extra = tmp_path / "names.txt"
    extra.write_text("COCO_train2014_000000000009.jpg\nCOCO_train2014_000000999999.jpg\n")
    with pytest.raises(InputError, match="1 listed file.*000000999999"):
        Coco20k(tmp_path, names_file=extra)
    extra.write_text("COCO_train2014_000000000009.jpg\ntrain2014/COCO_train2014_000000000009.jpg\n")
    with pytest.raises(InputError, match="twice"):
        Coco20k(tmp_path, names_file=extra)
    (tmp_path / "COCO" / "annotations" / "instances_train2014.json").write_text("{not json")
    with pytest.raises(InputError, match="not a readable COCO json"):
        Coco20k(tmp_path)


# ----------------------------------------------------------------------------- folders and evaluation


def _fake_folder(root: Path) -> dict[str, np.ndarray]:
    """Three images with VOC XML boxes in the synthetic set's layout; returns 0-based boxes."""
    images, anns = root / "DUTS-TE" / "DUTS-TE-Image", root / "DUTS-TE" / "Annotations"
    anns.mkdir(parents=True)
    boxes = {"synth_00000": [(5, 5, 20, 30)], "synth_00001": [(1, 1, 40, 10), (20, 15, 40, 30)],
             "synth_00002": [(10, 2, 25, 12)]}
    for i, (stem, bxs) in enumerate(boxes.items()):
        write_image(images / f"{stem}.jpg", _image(30, 40, i))
        (anns / f"{stem}.xml").write_text(_voc_xml(f"{stem}.jpg", 40, 30, [dict(name="object", box=b) for b in bxs]))
    return {s: np.array(b, dtype=np.float64) - [1, 1, 0, 0] for s, b in boxes.items()}


def test_folder_boxes_and_evaluate_ground_truth_gives_one(tmp_path):
    expected = _fake_folder(tmp_path)
    ds = open_corloc_dataset("synth", tmp_path)
    assert isinstance(ds, FolderBoxes) and ds.ids == tuple(expected) and not ds.is_synthetic
    seen = []

    def oracle(image, image_id):
        assert image.dtype == np.uint8 and image.shape == (30, 40, 3)
        seen.append(image_id)
        return expected[image_id][-1]  # the last gt box: "any" box counts

    result = corloc_evaluate(ds, oracle, progress=False)
    assert seen == list(expected)
    assert (result.corloc, result.n_images, result.n_hits) == (1.0, 3, 3)
    assert [r.best_iou for r in result.rows] == [1.0, 1.0, 1.0]
    assert result.rows[1].n_gt == 2 and result.rows[1].pred_box == (19.0, 14.0, 40.0, 30.0)


def test_evaluate_misses_limit_and_bad_predictions(tmp_path):
    expected = _fake_folder(tmp_path)
    ds = open_corloc_dataset("synth", tmp_path)
    # None for the first image, a far box for the second, the gt for the third: 1/3
    answers = {"synth_00000": None, "synth_00001": np.array([0.0, 25.0, 5.0, 30.0]),
               "synth_00002": torch.tensor(expected["synth_00002"][0])}
    result = corloc_evaluate(ds, lambda im, i: answers[i], progress=False)
    assert result.corloc == pytest.approx(1 / 3) and [r.hit for r in result.rows] == [False, False, True]
    assert result.rows[0].pred_box is None and result.rows[0].best_iou == 0.0
    limited = corloc_evaluate(ds, lambda im, i: answers[i], progress=False, limit=2)
    assert limited.n_images == 2 and limited.corloc == 0.0
    with pytest.raises(InputError, match="predict_box_fn returned .* synth_00000"):
        corloc_evaluate(ds, lambda im, i: (1, 2, 3), progress=False)
    with pytest.raises(InputError, match="x1 >= x0"):
        corloc_evaluate(ds, lambda im, i: (10, 0, 5, 5), progress=False)
    with pytest.raises(InputError, match="limit"):
        corloc_evaluate(ds, lambda im, i: None, progress=False, limit=0)


def test_evaluate_accepts_any_sequence_of_items(tmp_path):
    path = tmp_path / "a.png"
    write_image(path, _image(16, 16, 0))
    items = [CorLocItem("a", path, np.array([[0.0, 0.0, 16.0, 16.0]]))]
    full = mask_to_box(np.ones((2, 2), bool), patch_size=8, image_size=(16, 16))
    assert corloc_evaluate(items, lambda im, i: full, progress=False).corloc == 1.0


def test_folder_boxes_unpaired_files(tmp_path):
    _fake_folder(tmp_path)
    (tmp_path / "DUTS-TE" / "Annotations" / "synth_00001.xml").unlink()
    with pytest.raises(InputError, match="1 images without an XML.*synth_00001"):
        open_corloc_dataset("synth", tmp_path)
    with pytest.raises(InputError, match="paperlib data synth"):
        open_corloc_dataset("synth", tmp_path / "DUTS-TE")


def test_synthetic_set_masks_to_boxes_give_corloc_one(tmp_path):
    """End to end on paperlib.synth's files: the box of each ground-truth mask's largest part hits."""
    synth = pytest.importorskip("paperlib.synth")
    synth.synthesize(tmp_path, n=4, seed=3, size_range=(64, 96), two_object_prob=1.0, progress=False)
    ds = open_corloc_dataset("synth", tmp_path)
    assert len(ds) == 4 and ds.is_synthetic
    mask_dir = tmp_path / "DUTS-TE" / "DUTS-TE-Mask"

    def from_gt_mask(image, image_id):
        mask = read_image(mask_dir / f"{image_id}.png")[..., 0] > 127  # (H, W)
        return mask_to_box(mask, patch_size=1, image_size=image.shape[:2])

    result = corloc_evaluate(ds, from_gt_mask, progress=False)
    assert result.corloc == 1.0
    assert all(r.best_iou == 1.0 for r in result.rows)  # pixel-exact boxes
    assert max(r.n_gt for r in result.rows) == 2
