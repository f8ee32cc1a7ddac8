"""A user's whole data path on archives in the official formats (tests/official_archives.py):
``download(name, root, archives=...)`` or ``--mirror``, then verify, then the loaders.

Built from six real DUTS-TE pairs per dataset, so this runs in seconds; the dress rehearsal of
the paper's pipeline builds its data the same way.
"""

from __future__ import annotations

import numpy as np
import pytest

from official_archives import DATASETS, build_official_archives
from local_server import server  # noqa: F401 (a fixture)
from paperlib.box_datasets import open_corloc_dataset
from paperlib.data import DATASETS as SALIENCY_SPECS
from paperlib.data import open_dataset
from paperlib.download import download
from paperlib.images import read_mask
from paperlib.sources import DETECTION_SETS
from paperlib.verify import dataset_kind, verify

N = 6
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


def test_voc_archive_downloads_verifies_and_gives_boxes(built, tmp_path):
    # The published digest and size are VOC's own: a small archive passes only with --sha256.
    report = download("voc07", tmp_path, archives=built.paths["voc07"], sha256=built.digests("voc07"),
                      progress=False)
    assert report.verify.clean and report.verify.found == N
    assert verify("voc07", tmp_path, expect_complete=False, decode=True).ok  # XML sizes match the JPEGs
    ds = open_corloc_dataset("voc07", tmp_path)
    assert list(ds.ids) == built.stems["voc07"]
    assert all(len(item.boxes) >= 1 for item in ds)
    assert dataset_kind("voc07", tmp_path).kind == "sample"


def test_voc_boxes_are_the_objects_of_their_masks(built, real_data_root, tmp_path):
    # Every box lies in the image and on the foreground, and together they hold (nearly) all of it.
    download("voc07", tmp_path, archives=built.paths["voc07"], sha256=built.digests("voc07"), progress=False)
    ds = open_corloc_dataset("voc07", tmp_path)
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
                          sha256=built.digests(name) if name == "voc07" else None)
        assert report.verify.clean and report.verify.found == N, report.lines()
    assert {len(open_dataset(name, tmp_path)) for name in SALIENCY_SPECS} == {N}
    assert len(open_corloc_dataset("voc07", tmp_path)) == N
