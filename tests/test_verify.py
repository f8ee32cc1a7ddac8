"""paperlib.data.release.verify: counts, pairing, readability and sizes of a dataset on disk, the subset and
synthetic verdicts, and the VOC checks."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from paperlib.checks import InputError
from paperlib.data.release.verify import verify
from paperlib.data.saliency import DATASETS
from paperlib.images import write_image, write_mask_png


def write_saliency(root: Path, name: str, stems, hw=(8, 10)) -> tuple[Path, Path]:
    """Readable JPEG images and PNG masks of size ``hw`` in ``name``'s official folders."""
    spec = DATASETS[name]
    images, masks = root / spec.image_dir, root / spec.mask_dir
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    for i, s in enumerate(stems):
        write_image(images / f"{s}.jpg", np.full((*hw, 3), (10, 200, 30), dtype=np.uint8))
        write_mask_png(masks / f"{s}.png", np.random.default_rng(i).random(hw))
    return images, masks


def test_verify_reports_each_kind_of_problem(tmp_path):
    images, masks = write_saliency(tmp_path, "ecssd", ["a", "b", "c", "d", "e"])
    (masks / "b.png").unlink()  # image without a mask
    (images / "e.jpg").unlink()  # mask without an image
    (images / "c.jpg").write_bytes(b"not an image at all")  # unreadable
    write_mask_png(masks / "d.png", np.zeros((8, 9)))  # 8x10 image, 8x9 mask
    report = verify("ecssd", tmp_path)
    assert report.images_only == ("b",) and report.masks_only == ("e",)
    assert [p for p, _ in report.unreadable] == [str(images / "c.jpg")]
    assert "UnidentifiedImageError" in report.unreadable[0][1]
    assert report.size_mismatches == (("d", (8, 10), (8, 9)),)
    assert report.found == 2 and report.expected == 1000  # a and d are readable pairs
    assert not report.clean and not report.ok and not verify("ecssd", tmp_path, expect_complete=False).ok
    text = "\n".join(report.lines())
    for needle in ("1 images without a mask: b", "1 masks without an image: e", "1 unreadable:", "c.jpg",
                   "1 size mismatches (image vs target, HxW): d 8x10 vs 8x9", "verdict: NOT OK"):
        assert needle in text


def test_verify_orients_by_exif_and_decodes_on_request(tmp_path):
    images, masks = write_saliency(tmp_path, "ecssd", ["a", "t"])
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 270: a 10x8 (WxH) file is an 8x10 image
    Image.new("RGB", (8, 10)).save(images / "a.jpg", exif=exif.tobytes())
    noise = np.random.default_rng(0).integers(0, 256, (8, 10, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format="JPEG")
    full = buf.getvalue()
    (images / "t.jpg").write_bytes(full[: len(full) * 3 // 4])  # truncated after the header
    write_mask_png(masks / "t.png", np.zeros((64, 80)))
    headers = verify("ecssd", tmp_path)
    assert headers.clean                                       # the truncation passes a header check ...
    assert "headers read, not decoded: a truncated file passes" in "\n".join(headers.lines())   # ... and it says so
    decoded = verify("ecssd", tmp_path, decode=True)
    assert [Path(p).name for p, _ in decoded.unreadable] == ["t.jpg"]


def test_verify_subset_and_synthetic_marker(tmp_path):
    write_saliency(tmp_path, "duts-te", ["a", "b"])
    report = verify("duts-te", tmp_path)
    assert report.clean and not report.complete and not report.ok
    assert verify("duts-te", tmp_path, expect_complete=False).ok
    assert "verdict: OK as a subset" in verify("duts-te", tmp_path, expect_complete=False).lines()[-1]
    assert not report.synthetic
    (tmp_path / "DUTS-TE" / "SYNTHETIC.json").write_text("{}")
    synthetic = verify("duts-te", tmp_path)
    assert synthetic.synthetic and any("SYNTHETIC" in line for line in synthetic.lines())


def test_verify_missing_mask_folder_and_absent_dataset(tmp_path):
    images, masks = write_saliency(tmp_path, "dut-omron", ["a"])
    for p in masks.iterdir():
        p.unlink()
    masks.rmdir()
    report = verify("dut-omron", tmp_path)
    assert report.missing == (str(masks),) and report.found == 0 and not report.ok
    with pytest.raises(InputError, match="ecssd not found under"):
        verify("ecssd", tmp_path)
    with pytest.raises(InputError, match="voc12 not found under .*VOCdevkit/VOC2012"):
        verify("voc12", tmp_path)


def test_verify_voc_reports_missing_files_and_size_mismatches(tmp_path):
    voc = tmp_path / "VOCdevkit" / "VOC2007"
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    (voc / "JPEGImages").mkdir()
    (voc / "Annotations").mkdir()
    (voc / "ImageSets" / "Main" / "trainval.txt").write_text("1\n2\n3\n4\n")
    for i in "1234":
        write_image(voc / "JPEGImages" / f"{i}.jpg", np.zeros((8, 10, 3), dtype=np.uint8))
    xml = "<annotation><size><width>{w}</width><height>{h}</height></size></annotation>"
    (voc / "Annotations" / "1.xml").write_text(xml.format(w=10, h=8))
    (voc / "Annotations" / "2.xml").write_text(xml.format(w=8, h=10))  # swapped
    (voc / "Annotations" / "3.xml").write_text("<annotation>")  # broken
    report = verify("voc07", tmp_path)  # 4.xml is missing
    assert report.found == 2 and report.missing == (str(voc / "Annotations" / "4.xml"),)
    assert report.size_mismatches == (("2", (8, 10), (10, 8)),)
    assert [Path(p).name for p, _ in report.unreadable] == ["3.xml"]


@pytest.mark.realdata
def test_verify_real_duts_te_sample(real_data_root):
    report = verify("duts-te", real_data_root)
    assert (report.found, report.expected) == (502, 5019)
    assert report.clean and not report.complete and not report.ok  # readable, flagged incomplete
    assert verify("duts-te", real_data_root, expect_complete=False).ok
    assert report.lines()[0].endswith("502 of 5019 expected items, INCOMPLETE (4517 missing: a subset?)")
