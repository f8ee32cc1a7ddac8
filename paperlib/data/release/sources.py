"""Where every dataset comes from: the official files of each downloadable name.

The saliency sets' files live in :data:`paperlib.data.saliency.DATASETS`; the single-object-discovery
sets (docs/paper_and_code.md#single-object-discovery) are registered here with their folder under
the data root and their official image count.

Public API:
    DetectionSpec                   (name, folder, n_images, downloads) of a detection set.
    DETECTION_SETS                  voc07, voc12, coco20k.
    SOURCES                         every downloadable name -> its ``Download`` files.
    NAMES                           the names of ``SOURCES``.
    check_name(name) -> str         the lower-case key, or an InputError naming the choices.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...checks import check_choice
from ..saliency import DATASETS, Download


@dataclass(frozen=True)
class DetectionSpec:
    """A single-object-discovery set: its folder under the root and its image count.

    Both as in docs/paper_and_code.md#datasets.
    """

    name: str
    folder: str
    n_images: int
    downloads: tuple[Download, ...]


def _voc(year: str, stamp: str, n_images: int, sha256: str, md5: str, size: int) -> DetectionSpec:
    tar = f"VOCtrainval_{stamp}.tar"
    folder = f"VOCdevkit/VOC{year}"
    # sha256 and size: TFDS url_checksums/voc.txt (measured on the pjreddie.com mirror);
    # md5: torchvision.datasets.VOCDetection. The tar unpacks as VOCdevkit/VOC<year>/.
    return DetectionSpec(name=f"voc{year[2:]}", folder=folder, n_images=n_images, downloads=(
        Download(urls=(f"http://host.robots.ox.ac.uk/pascal/VOC/voc{year}/{tar}",
                       f"http://pjreddie.com/media/files/{tar}"),
                 filename=tar, places=((folder, folder),), sha256=sha256, md5=md5, size=size,
                 holds=("JPEGImages/", "Annotations/")),))


# VOC07 trainval 5,011 images, VOC12 trainval 11,540, COCO20K 19,817 (docs/paper_and_code.md#datasets).
DETECTION_SETS: dict[str, DetectionSpec] = {
    "voc07": _voc("2007", "06-Nov-2007", 5011, size=460032000, md5="c52e279531787c972589f7e41ab4ae64",
                  sha256="7d8cd951101b0957ddfd7a530bdc8a94f06121cfc1e511bb5937e973020c7508"),
    "voc12": _voc("2012", "11-May-2012", 11540, size=1999639040, md5="6cd6e144f989b92b3379bac3b3de84fd",
                  sha256="e14f763270cf193d0b5f74b169f44157a4b0c6efa708f4dd0ff78ee691763bcb"),
    "coco20k": DetectionSpec(name="coco20k", folder="COCO", n_images=19817, downloads=(
        # sha256 and sizes of the COCO zips: TFDS url_checksums/coco2014.txt.
        Download(urls=("http://images.cocodataset.org/zips/train2014.zip",), filename="train2014.zip",
                 places=(("train2014", "COCO/train2014"),), size=13510573713,
                 sha256="ede4087e640bddba550e090eae701092534b554b42b05ac33f0300b984b31775"),
        Download(urls=("http://images.cocodataset.org/annotations/annotations_trainval2014.zip",),
                 filename="annotations_trainval2014.zip", places=(("annotations", "COCO/annotations"),),
                 holds=("instances_train2014.json",),
                 size=252872794, sha256="031296bbc80c45a1d1f76bf9a90ead27e94e99ec629208449507a4917a3bf009"),
        # The 19,817 file names (one "train2014/COCO_train2014_<12 digits>.jpg" a line) used by
        # LOST and TokenCut; TokenCut's repository carries a copy. No digest is published.
        Download(urls=("https://raw.githubusercontent.com/valeoai/LOST/master/datasets/coco_20k_filenames.txt",
                       "https://raw.githubusercontent.com/YangtaoWANG95/TokenCut/master/datasets/"
                       "coco_20k_filenames.txt"),
                 filename="coco_20k_filenames.txt",
                 places=(("coco_20k_filenames.txt", "COCO/coco_20k_filenames.txt"),), unpack=False),
    )),
}

SOURCES: dict[str, tuple[Download, ...]] = {
    **{name: spec.downloads for name, spec in DATASETS.items()},
    **{name: spec.downloads for name, spec in DETECTION_SETS.items()},
}
NAMES = tuple(SOURCES)


def check_name(name: str) -> str:
    """The registry key of a dataset name (case-insensitive); an InputError lists the choices."""
    key = str(name).lower()
    check_choice("dataset", key, NAMES)
    return key
