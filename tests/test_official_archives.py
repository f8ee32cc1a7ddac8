"""A user's whole data path on archives in the official formats (tests/official_archives.py):
``download(name, root, archives=...)`` or ``--mirror``, then verify, then the loaders.

Built from six real DUTS-TE pairs per dataset, so this runs in seconds; the dress rehearsal of
the paper's pipeline builds its data the same way.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from local_server import server  # noqa: F401 (a fixture)
from official_archives import DATASETS, build_all, build_official_archives, file_digests

from paperlib.data.boxes import open_corloc_dataset
from paperlib.data.release.download import download
from paperlib.data.release.sources import DETECTION_SETS
from paperlib.data.release.verify import dataset_kind, verify
from paperlib.data.saliency import DATASETS as SALIENCY_SPECS
from paperlib.data.saliency import open_dataset
from paperlib.images import read_image, read_mask

N = 6
VOC = ("voc07", "voc12")
pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def built(real_data_root, tmp_path_factory):
    return build_official_archives(real_data_root / "DUTS-TE", tmp_path_factory.mktemp("archives"), n=N)


def test_the_archives_are_reproducible_and_carry_the_official_names(built, real_data_root, tmp_path):
    again = build_official_archives(real_data_root / "DUTS-TE", tmp_path, n=N)
    assert again.sha256 == built.sha256                      # stable digests: trust on first use holds
    assert {name: [p.name for p in paths] for name, paths in built.paths.items()} == {
        name: [d.filename for d in (SALIENCY_SPECS[name].downloads if name in SALIENCY_SPECS
                                    else DETECTION_SETS[name].downloads)] for name in DATASETS}


@pytest.mark.parametrize("name", ["duts-tr", "duts-te", "dut-omron", "ecssd"])
def test_saliency_archives_download_verify_and_open(built, tmp_path, name):
    report = download(name, tmp_path, archives=built.paths[name], progress=False)
    assert [(f, c.sha256) for f, c in report.fetched] == list(built.digests(name).items())
    assert report.verify.clean and (report.verify.found, report.verify.expected) == (N, SALIENCY_SPECS[name].n_images)
    assert verify(name, tmp_path, expect_complete=False, decode=True).ok   # every pixel decodes
    ds = open_dataset(name, tmp_path)
    assert list(ds.stems) == built.stems[name]
    sample = ds[0]
    assert sample.image.shape[:2] == sample.mask.shape and 0 < sample.mask.mean() < 1
    assert dataset_kind(name, tmp_path).kind == "sample"


@pytest.mark.parametrize("name", VOC)
def test_voc_archive_downloads_verifies_and_gives_boxes(built, tmp_path, name):
    # The published digest and size are VOC's own: a small archive passes only with --sha256.
    report = download(name, tmp_path, archives=built.paths[name], sha256=built.digests(name), progress=False)
    assert report.verify.clean and (report.verify.found, report.verify.expected) == (N, DETECTION_SETS[name].n_images)
    assert verify(name, tmp_path, expect_complete=False, decode=True).ok   # XML sizes match the JPEGs
    ds = open_corloc_dataset(name, tmp_path)
    assert list(ds.ids) == built.stems[name]
    assert all(len(item.boxes) >= 1 for item in ds)
    assert dataset_kind(name, tmp_path).kind == "sample"


def _coco_json(built) -> tuple[dict, list[str]]:
    """instances_train2014.json and the 20k list as the archives hold them, read without paperlib."""
    _, archive, listing = built.paths["coco20k"]
    with zipfile.ZipFile(archive) as zf:
        coco = json.loads(zf.read("annotations/instances_train2014.json"))
    return coco, listing.read_text().splitlines()


def test_coco_archives_download_verify_and_drop_crowd_and_unlisted(built, tmp_path):
    report = download("coco20k", tmp_path, archives=built.paths["coco20k"], sha256=built.digests("coco20k"),
                      progress=False)
    assert [f for f, _ in report.fetched] == ["train2014.zip", "annotations_trainval2014.zip", "coco_20k_filenames.txt"]
    assert report.verify.clean and (report.verify.found, report.verify.expected) == (N, 19817)
    assert verify("coco20k", tmp_path, expect_complete=False, decode=True).ok
    ds = open_corloc_dataset("coco20k", tmp_path)
    coco, listing = _coco_json(built)
    assert list(ds.ids) == [Path(line).stem for line in listing]           # the list's order, not sorted
    assert sorted(ds.ids) == built.stems["coco20k"] and len(ds) == N
    # What paperlib must leave out is there to leave out: an unlisted image, a crowd region.
    id_of = {img["file_name"]: img["id"] for img in coco["images"]}
    listed = {id_of[Path(line).name] for line in listing}
    assert len(coco["images"]) == N + 1 and len(list((tmp_path / "COCO" / "train2014").iterdir())) == N + 1
    anns = [a for a in coco["annotations"] if a["image_id"] in listed]
    assert any(a["iscrowd"] for a in anns) and any(a["image_id"] not in listed for a in coco["annotations"])
    assert sum(len(item.boxes) for item in ds) == sum(not a["iscrowd"] for a in anns)
    for item in ds:   # xywh -> xyxy, per image
        image_id = id_of[item.image_path.name]
        expected = sorted((x, y, x + w, y + h) for a in anns if a["image_id"] == image_id and not a["iscrowd"]
                          for x, y, w, h in [a["bbox"]])
        assert sorted(map(tuple, item.boxes.tolist())) == expected
        size = next((img["height"], img["width"]) for img in coco["images"] if img["id"] == image_id)
        assert read_image(item.image_path).shape[:2] == size
    assert dataset_kind("coco20k", tmp_path).kind == "sample"


@pytest.mark.parametrize("name", [*VOC, "coco20k"])
def test_boxes_are_the_objects_of_their_masks(built, real_data_root, tmp_path, name):
    # Every box lies in the image and on the foreground, and together they hold (nearly) all of it.
    download(name, tmp_path, archives=built.paths[name], sha256=built.digests(name), progress=False)
    ds = open_corloc_dataset(name, tmp_path)
    source = open_dataset("duts-te", real_data_root)
    by_bytes = {image_path.read_bytes(): mask_path for _, image_path, mask_path in source.pairs}
    for item in ds:
        fg = read_mask(by_bytes[item.image_path.read_bytes()]) > 0.5   # the DUTS mask of this image
        covered = np.zeros_like(fg)
        for x0, y0, x1, y1 in item.boxes.astype(int):
            assert 0 <= x0 < x1 <= fg.shape[1] and 0 <= y0 < y1 <= fg.shape[0]
            assert fg[y0:y1, x0:x1].any()
            covered[y0:y1, x0:x1] = True
        assert (fg & covered).sum() >= 0.99 * fg.sum()


def test_every_archive_set_through_a_mirror_into_one_root(built, server, tmp_path):
    for paths in built.paths.values():
        server.files.update({p.name: p.read_bytes() for p in paths})
    for name in DATASETS:
        report = download(name, tmp_path, mirror=server.url, progress=False,
                          sha256=built.digests(name) if name in DETECTION_SETS else None)
        assert report.verify.clean and report.verify.found == N, report.lines()
    assert {len(open_dataset(name, tmp_path)) for name in SALIENCY_SPECS} == {N}
    assert {len(open_corloc_dataset(name, tmp_path)) for name in DETECTION_SETS} == {N}


def test_build_all_is_a_downloads_folder_for_all_seven_into_one_root(built, real_data_root, tmp_path):
    folder = tmp_path / "downloads-by-hand"
    paths = build_all(real_data_root / "DUTS-TE", folder, n=N)
    assert set(paths) == set(DATASETS) == set(SALIENCY_SPECS) | set(DETECTION_SETS) and len(DATASETS) == 7
    assert file_digests(paths) == {name: built.digests(name) for name in DATASETS}  # same bytes as `built`
    on_disk = {p.name: p for p in folder.iterdir()}
    digests = file_digests(paths)
    root = tmp_path / "data"
    for name in DATASETS:   # match each dataset's files in the folder by their official names only
        specs = SALIENCY_SPECS[name] if name in SALIENCY_SPECS else DETECTION_SETS[name]
        archives = [on_disk.pop(d.filename) for d in specs.downloads]
        report = download(name, root, archives=archives, progress=False,
                          sha256=digests[name] if name in DETECTION_SETS else None)
        assert report.verify.clean and report.verify.found == N, report.lines()
        assert all(p.is_file() for p in archives)   # a user's files are read in place, never moved
    assert on_disk == {}                            # no file the registry does not name
    assert {len(open_dataset(name, root)) for name in SALIENCY_SPECS} == {N}
    assert {len(open_corloc_dataset(name, root)) for name in DETECTION_SETS} == {N}
