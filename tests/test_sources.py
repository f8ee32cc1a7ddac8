"""paperlib.data.release.sources: every downloadable name has its official files, URLs and digests."""

from __future__ import annotations

import re

from paperlib.data.release.sources import DETECTION_SETS, NAMES, SOURCES


def test_sources_cover_every_name_with_official_urls():
    assert set(NAMES) == {"duts-tr", "duts-te", "dut-omron", "ecssd", "voc07", "voc12", "coco20k"}
    assert SOURCES["duts-te"][0].urls == ("http://saliencydetection.net/duts/download/DUTS-TE.zip",)
    assert [d.filename for d in SOURCES["dut-omron"]] == ["DUT-OMRON-image.zip", "DUT-OMRON-gt-pixelwise.zip.zip"]
    assert SOURCES["voc07"][0].urls[0] == "http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtrainval_06-Nov-2007.tar"
    assert SOURCES["voc12"][0].md5 == "6cd6e144f989b92b3379bac3b3de84fd"  # torchvision's VOC 2012 trainval md5
    assert [d.filename for d in SOURCES["coco20k"]] == ["train2014.zip", "annotations_trainval2014.zip",
                                                       "coco_20k_filenames.txt"]
    assert "valeoai/LOST" in SOURCES["coco20k"][2].urls[0]
    assert {n: s.n_images for n, s in DETECTION_SETS.items()} == {"voc07": 5011, "voc12": 11540, "coco20k": 19817}
    for item in (d for ds in SOURCES.values() for d in ds):
        assert item.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", item.sha256)
        assert item.md5 is None or re.fullmatch(r"[0-9a-f]{32}", item.md5)
