"""Ground-truth boxes for single-object discovery: the VOC, COCO20K and folder readers.

Paper section 5.2 ("Evaluation"); docs/paper_and_code.md#single-object-discovery. Boxes are
``(x0, y0, x1, y1)`` float64 in continuous pixel coordinates (pixel column ``c`` spans
``[c, c + 1)``; see :mod:`paperlib.eval.corloc`), following LOST/TokenCut's evaluation code:

- VOC stores 1-based inclusive corners, so ``xmin - 1, ymin - 1`` and ``xmax, ymax``
  unchanged give this convention (LOST's ``extract_gt_VOC`` does the same); difficult and
  truncated boxes are kept.
- COCO20K: ``iscrowd`` boxes dropped, ``xywh`` -> ``xyxy``, corners rounded to integers as
  LOST does (``round_boxes=False`` keeps them exact).

Public API:
    read_voc_boxes(xml_path) -> VocAnnotation     one VOC XML file.
    CorLocItem                                     (image_id, image_path, boxes (K, 4)).
    VocDetection, Coco20k, FolderBoxes             datasets: ``len(ds)``, ``ds[i] -> CorLocItem``.
    CorLocSpec, CORLOC_DATASETS                    the registry: ``voc07``, ``voc12``, ``coco20k``
                                                   and the offline ``synth`` set.
    open_corloc_dataset(name, root)                open a registered dataset (folder layouts there).
"""

from __future__ import annotations

import functools
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Sequence

import numpy as np

from ..checks import InputError, check_choice, require
from ..images import list_images

_NAMES_SHOWN = 5  # how many ids an error message names before "and N more"


class VocAnnotation(NamedTuple):
    """One VOC XML file. ``boxes`` (K, 4) float64 xyxy, 0-based (see the module docstring)."""

    filename: str
    width: int
    height: int
    boxes: np.ndarray  # (K, 4) float64
    names: tuple[str, ...]
    difficult: np.ndarray  # (K,) bool
    truncated: np.ndarray  # (K,) bool


class CorLocItem(NamedTuple):
    """One image of a CorLoc dataset and its ground-truth boxes (K, 4) float64 xyxy."""

    image_id: str
    image_path: Path
    boxes: np.ndarray


def _text(element: ET.Element, tag: str, path: Path) -> str:
    child = element.find(tag)
    require(child is not None and child.text is not None and child.text.strip() != "",
            f"{path}: <{element.tag}> has no <{tag}> value")
    return child.text.strip()


def _number(element: ET.Element, tag: str, path: Path) -> float:
    text = _text(element, tag, path)
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{path}: <{tag}> is {text!r}, not a number") from None


def _flag(obj: ET.Element, tag: str) -> bool:
    child = obj.find(tag)  # some VOC2012 objects omit <truncated> or <difficult>: read as 0
    return child is not None and child.text is not None and child.text.strip() not in ("", "0")


def read_voc_boxes(xml_path: str | Path) -> VocAnnotation:
    """Read the boxes of a Pascal VOC annotation file, all of them (difficult and truncated kept).

    docs/paper_and_code.md#single-object-discovery: VOC corners are 1-based and inclusive; the returned boxes
    are ``(xmin - 1, ymin - 1, xmax, ymax)``, i.e. 0-based with exclusive maxima, the rule of
    LOST's ``extract_gt_VOC`` (a box from 1 to W covers the whole image: ``(0, W)``). Only each
    ``<object>``'s own ``<bndbox>`` is read; the ``<part>`` boxes of VOC person layouts are not
    objects.

    Args:
        xml_path: the ``.xml`` file.

    Returns:
        :class:`VocAnnotation`; ``boxes`` is (K, 4) float64, ``difficult``/``truncated`` (K,) bool.
    """
    path = Path(xml_path)
    require(path.is_file(), f"{path}: annotation file not found")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise InputError(f"{path}: not a readable XML file ({err})") from None
    require(root.tag == "annotation", f"{path}: root element is <{root.tag}>, expected <annotation>")
    size = root.find("size")
    require(size is not None, f"{path}: no <size> element")
    width, height = int(_number(size, "width", path)), int(_number(size, "height", path))
    boxes, names, difficult, truncated = [], [], [], []
    for obj in root.findall("object"):
        bndbox = obj.find("bndbox")
        require(bndbox is not None, f"{path}: an <object> has no <bndbox>")
        xmin, ymin, xmax, ymax = (_number(bndbox, tag, path) for tag in ("xmin", "ymin", "xmax", "ymax"))
        boxes.append((xmin - 1.0, ymin - 1.0, xmax, ymax))  # 1-based inclusive -> 0-based exclusive
        names.append(_text(obj, "name", path))
        difficult.append(_flag(obj, "difficult"))
        truncated.append(_flag(obj, "truncated"))
    filename = root.findtext("filename", default="").strip()
    return VocAnnotation(filename=filename, width=width, height=height,
                         boxes=np.asarray(boxes, dtype=np.float64).reshape(-1, 4), names=tuple(names),
                         difficult=np.asarray(difficult, dtype=bool), truncated=np.asarray(truncated, dtype=bool))


def _missing(dataset: str, path: Path, hint: str) -> InputError:
    return InputError(f"{dataset}: {path} not found; {hint}")


def _download_hint(name: str) -> str:
    return f"download it with `paperlib data download {name} --root DIR`"


class VocDetection:
    """Pascal VOC images of one split with their boxes: ``len(ds)``, ``ds[i] -> CorLocItem``.

    Layout (the official tar unpacks so): ``root/VOCdevkit/VOC2007/{ImageSets/Main/trainval.txt,
    JPEGImages, Annotations}``; ``root`` may also be ``VOCdevkit`` or ``VOC2007`` itself.
    Annotation files are read on access. Expected trainval counts: 5,011 (2007), 11,540 (2012).
    """

    def __init__(self, root: str | Path, year: str = "2007", split: str = "trainval"):
        year = str(year)
        check_choice("year", year, ("2007", "2012"))
        check_choice("split", split, ("train", "val", "trainval", "test"))
        root = Path(root)
        name = "voc07" if year == "2007" else "voc12"
        bases = (root / "VOCdevkit" / f"VOC{year}", root / f"VOC{year}", root)
        listing = next((b / "ImageSets" / "Main" / f"{split}.txt" for b in bases
                        if (b / "ImageSets" / "Main" / f"{split}.txt").is_file()), None)
        if listing is None:
            raise _missing(name, bases[0] / "ImageSets" / "Main" / f"{split}.txt", _download_hint(name))
        self.base = listing.parents[2]
        self.year, self.split, self.name = year, split, name
        for folder in ("JPEGImages", "Annotations"):
            if not (self.base / folder).is_dir():
                raise _missing(name, self.base / folder, _download_hint(name))
        lines = (line.split() for line in listing.read_text().splitlines())
        self.ids = tuple(words[0] for words in lines if words)
        require(len(self.ids) > 0, f"{name}: {listing} lists no images")

    def __len__(self) -> int:
        return len(self.ids)

    def annotation(self, index: int) -> VocAnnotation:
        """The full annotation (names, flags, size) of image ``index``."""
        return read_voc_boxes(self.base / "Annotations" / f"{self.ids[index]}.xml")

    def __getitem__(self, index: int) -> CorLocItem:
        image_id = self.ids[index]  # IndexError past the end ends iteration
        return CorLocItem(image_id, self.base / "JPEGImages" / f"{image_id}.jpg", self.annotation(index).boxes)

    def __iter__(self) -> Iterator[CorLocItem]:
        return (self[i] for i in range(len(self)))


def _drop_segmentation(pairs: list[tuple[str, object]]) -> dict:
    # Polygons are most of instances_train2014.json's ~300 MB: dropping them while parsing keeps
    # the peak memory near the size of the boxes instead of the whole document.
    return {key: value for key, value in pairs if key != "segmentation"}


class Coco20k:
    """The COCO20K subset of COCO train2014 (19,817 images) with its non-crowd boxes.

    Layout: ``root/COCO/`` or ``root/`` holding ``train2014/*.jpg``,
    ``annotations/instances_train2014.json`` and ``coco_20k_filenames.txt`` (LOST's and
    TokenCut's list, one file name a line, optionally prefixed ``train2014/``). The json is
    parsed once, without its segmentation polygons; only the listed images' boxes are kept.

    Args:
        root: the data root (see above).
        names_file: another list of file names (default: the layout's ``coco_20k_filenames.txt``).
        round_boxes: round the ``xyxy`` corners to integers as LOST/TokenCut do (default True).
    """

    def __init__(self, root: str | Path, *, names_file: str | Path | None = None, round_boxes: bool = True):
        root = Path(root)
        base = root / "COCO" if (root / "COCO" / "train2014").is_dir() else root
        self.images_dir = base / "train2014"
        ann_file = base / "annotations" / "instances_train2014.json"
        names_path = Path(names_file) if names_file is not None else base / "coco_20k_filenames.txt"
        for path in (self.images_dir, ann_file, names_path):
            if not path.exists():
                raise _missing("coco20k", path, _download_hint("coco20k"))
        self.name = "coco20k"
        file_names = [Path(line.strip()).name for line in names_path.read_text().splitlines() if line.strip()]
        require(len(file_names) > 0, f"coco20k: {names_path} lists no images")
        require(len(set(file_names)) == len(file_names), f"coco20k: {names_path} lists a file twice")

        try:
            with open(ann_file, "rb") as f:
                coco = json.load(f, object_pairs_hook=_drop_segmentation)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise InputError(f"coco20k: {ann_file} is not a readable COCO json ({err})") from None
        require(isinstance(coco, dict) and "images" in coco and "annotations" in coco,
                f"coco20k: {ann_file} has no 'images' and 'annotations' lists")
        id_of = {img["file_name"]: img["id"] for img in coco["images"]}
        unknown = [n for n in file_names if n not in id_of]
        require(not unknown, f"coco20k: {len(unknown)} listed file(s) are not in {ann_file} "
                             f"({', '.join(unknown[:_NAMES_SHOWN])})")
        wanted = {id_of[n] for n in file_names}
        boxes_of: dict[int, list[list[float]]] = {i: [] for i in wanted}
        for ann in coco["annotations"]:
            if ann["image_id"] in wanted and not ann.get("iscrowd", 0):
                x, y, w, h = ann["bbox"]
                boxes_of[ann["image_id"]].append([x, y, x + w, y + h])  # xywh -> xyxy
        del coco
        self.ids = tuple(Path(n).stem for n in file_names)
        self._paths = tuple(self.images_dir / n for n in file_names)
        self._boxes = []
        for n in file_names:
            boxes = np.asarray(boxes_of[id_of[n]], dtype=np.float64).reshape(-1, 4)
            # np.rint rounds half to even, like Python's round() in LOST's extract_gt_COCO
            self._boxes.append(np.rint(boxes) if round_boxes else boxes)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> CorLocItem:
        return CorLocItem(self.ids[index], self._paths[index], self._boxes[index])

    def __iter__(self) -> Iterator[CorLocItem]:
        return (self[i] for i in range(len(self)))


class FolderBoxes:
    """Images paired by stem with VOC XML files: ``ds[i] -> CorLocItem``.

    Used for the synthetic set (``paperlib.data.synth`` writes ``DUTS-TE/Annotations/<stem>.xml``
    beside ``DUTS-TE/DUTS-TE-Image``), or any folder of images with VOC-style boxes. Every
    image needs its XML and every XML its image. ``is_synthetic`` is True when a
    ``SYNTHETIC.json`` lies beside the annotation folder.
    """

    def __init__(self, images_dir: str | Path, annotations_dir: str | Path, *, name: str = "folder"):
        self.images_dir, self.annotations_dir, self.name = Path(images_dir), Path(annotations_dir), name
        hint = "write the synthetic set with `paperlib data synth --out DIR`" if name == "synth" \
            else "check the folder"
        for folder in (self.images_dir, self.annotations_dir):
            if not folder.is_dir():
                raise _missing(name, folder, hint)
        images = list_images(self.images_dir)
        xmls = {p.stem for p in self.annotations_dir.glob("*.xml") if not p.name.startswith(".")}
        for stems, where in ((sorted(images.keys() - xmls), f"images without an XML in {self.annotations_dir}"),
                             (sorted(xmls - images.keys()), f"XML files without an image in {self.images_dir}")):
            require(not stems, f"{name}: {len(stems)} {where} ({', '.join(stems[:_NAMES_SHOWN])})")
        require(len(images) > 0, f"{name}: no images in {self.images_dir}")
        self.ids = tuple(sorted(images))
        self._paths = tuple(images[s] for s in self.ids)
        self.is_synthetic = (self.annotations_dir.parent / "SYNTHETIC.json").is_file()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> CorLocItem:
        stem = self.ids[index]
        return CorLocItem(stem, self._paths[index], read_voc_boxes(self.annotations_dir / f"{stem}.xml").boxes)

    def __iter__(self) -> Iterator[CorLocItem]:
        return (self[i] for i in range(len(self)))


def _synth(root: str | Path) -> FolderBoxes:
    root = Path(root)
    base = next((b for b in (root / "DUTS-TE", root / "DUTS" / "DUTS-TE") if b.is_dir()), root / "DUTS-TE")
    return FolderBoxes(base / "DUTS-TE-Image", base / "Annotations", name="synth")


@dataclass(frozen=True)
class CorLocSpec:
    """A registered CorLoc dataset: its official image count and how to open it under a root."""

    name: str
    n_images: int | None  # None: no official count (the synthetic set has any size)
    layout: str
    open: Callable[[Path], Sequence[CorLocItem]]


CORLOC_DATASETS: dict[str, CorLocSpec] = {
    # Counts: VOC07 / VOC12 trainval and LOST's COCO20K list (docs/paper_and_code.md#datasets).
    "voc07": CorLocSpec("voc07", 5011, "VOCdevkit/VOC2007/{ImageSets/Main,JPEGImages,Annotations}",
                        functools.partial(VocDetection, year="2007", split="trainval")),
    "voc12": CorLocSpec("voc12", 11540, "VOCdevkit/VOC2012/{ImageSets/Main,JPEGImages,Annotations}",
                        functools.partial(VocDetection, year="2012", split="trainval")),
    "coco20k": CorLocSpec("coco20k", 19817, "COCO/{train2014,annotations/instances_train2014.json,"
                                            "coco_20k_filenames.txt}", Coco20k),
    "synth": CorLocSpec("synth", None, "DUTS-TE/{DUTS-TE-Image,Annotations}", _synth),
}


def open_corloc_dataset(name: str, root: str | Path) -> Sequence[CorLocItem]:
    """Open a registered CorLoc dataset under ``root``.

    Args:
        name: ``voc07``, ``voc12``, ``coco20k`` or ``synth`` (case-insensitive); the layouts
            under ``root`` are ``CORLOC_DATASETS[name].layout``.
        root: the data root.

    Returns:
        A dataset with ``len`` and ``ds[i] -> CorLocItem``; compare ``len`` with
        ``CORLOC_DATASETS[name].n_images`` to tell a full set from a sample.
    """
    key = str(name).lower()
    check_choice("dataset", key, CORLOC_DATASETS)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise _missing(key, root, "pass the folder holding the dataset as --root")
    return CORLOC_DATASETS[key].open(root)
