"""Ground-truth box readers: VOC XML, a fake VOC devkit, COCO20K, image folders, the registry,
and CorLoc 1 when the ground truth is the prediction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from paperlib.checks import InputError
from paperlib.data.boxes import (
    CORLOC_DATASETS,
    Coco20k,
    FolderBoxes,
    VocDetection,
    open_corloc_dataset,
    read_voc_boxes,
)
from paperlib.eval.corloc import corloc_evaluate
from paperlib.images import read_image, write_image
from paperlib.methods.boxes import mask_to_box

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


def _image(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


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



def test_folder_boxes_unpaired_files(tmp_path):
    _fake_folder(tmp_path)
    (tmp_path / "DUTS-TE" / "Annotations" / "synth_00001.xml").unlink()
    with pytest.raises(InputError, match="1 images without an XML.*synth_00001"):
        open_corloc_dataset("synth", tmp_path)
    with pytest.raises(InputError, match="paperlib data synth"):
        open_corloc_dataset("synth", tmp_path / "DUTS-TE")


def test_synthetic_set_masks_to_boxes_give_corloc_one(tmp_path):
    """End to end on paperlib.data.synth's files: the box of each ground-truth mask's largest part hits."""
    synth = pytest.importorskip("paperlib.data.synth")
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
