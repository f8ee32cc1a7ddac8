"""Single-object discovery: ground-truth boxes, a box from a predicted mask, and CorLoc.

Paper section 5.2 ("Evaluation"): the predicted mask is split into connected parts, one part's
bounding box is the prediction, and an image counts as correctly localised (a hit) when that
box has IoU >= 0.5 with a ground-truth box; CorLoc = hits / images. SPEC.md, "Single-object
discovery (CorLoc)", fixes the details, which follow LOST/TokenCut's evaluation code:

- Boxes are ``(x0, y0, x1, y1)`` in continuous pixel coordinates: pixel column ``c`` spans
  ``[c, c + 1)``, so a box covering columns 0..W-1 is ``(0, ., W, .)`` and its width is
  ``x1 - x0`` (no "+1"). VOC stores 1-based inclusive corners, so ``xmin - 1, ymin - 1`` and
  ``xmax, ymax`` unchanged give this convention (LOST's ``extract_gt_VOC`` does the same).
- IoU = intersection / union with areas ``(x1 - x0) * (y1 - y0)``, as LOST's ``bbox_iou``
  (whose 1e-7 guard vanishes in its float32 arithmetic for boxes over 2 px); here in float64,
  and 0 when the union is empty.
- A hit is IoU >= 0.5 with *any* ground-truth box; no predicted box, or an image without
  ground-truth boxes, is a miss and still counts as an image (TokenCut counts every image).
- VOC: difficult and truncated boxes are kept. COCO20K: ``iscrowd`` boxes dropped, ``xywh`` ->
  ``xyxy``, corners rounded to integers as LOST does (``round_boxes=False`` keeps them exact).

Datasets give :class:`CorLocItem` rows (image id, image path, boxes (K, 4)). ``CORLOC_DATASETS``
registers ``voc07``, ``voc12``, ``coco20k`` and the offline ``synth`` set; see
:func:`open_corloc_dataset` for the folder layouts.
"""

from __future__ import annotations

import functools
import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Sequence

import numpy as np

from .images import list_images, read_image
from .validation import InputError, check_choice, require

IOU_THRESHOLD = 0.5  # CorLoc's hit threshold (LOST, TokenCut, paper section 5.2)
_NAMES_SHOWN = 5  # how many ids an error message names before "and N more"


# ----------------------------------------------------------------------------- ground truth

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

    SPEC "Single-object discovery": VOC corners are 1-based and inclusive; the returned boxes
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

    Used for the synthetic set (``paperlib.synth`` writes ``DUTS-TE/Annotations/<stem>.xml``
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
    # Counts: VOC07 / VOC12 trainval and LOST's COCO20K list (SPEC "Single-object discovery").
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
    root = Path(root)
    if not root.is_dir():
        raise _missing(key, root, "pass the folder holding the dataset as --root")
    return CORLOC_DATASETS[key].open(root)


# ----------------------------------------------------------------------------- boxes

def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, on any device
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def mask_to_box(mask_patch, *, patch_size: float | tuple[float, float], image_size: tuple[int, int],
                threshold: float = 0.5, select: str = "largest_area") -> np.ndarray | None:
    """The box of one connected part of a predicted mask, in image pixels.

    Paper section 5.2 and SPEC "Single-object discovery": threshold the mask (> ``threshold``)
    at patch resolution, split it into 4-connected components, take one component's bounding
    box, scale it by the patch size (``x0 = col_min * patch``, ``x1 = (col_max + 1) * patch``)
    and clip it to the image (which may be smaller than the padded patch grid).

    ``select`` picks the component: ``"largest_area"`` (default, SPEC: most mask cells) or
    ``"largest_box"`` (the paper's words: the largest bounding box). Ties go to the component
    met first in row-major order.

    Args:
        mask_patch: (h, w) bool or float mask (numpy or torch), one cell per patch.
        patch_size: pixels per mask cell, one number or (along y, along x), e.g. 16, or
            ``(H / h, W / w)`` when the mask was computed on a resized image.
        image_size: (H, W) of the image the box refers to.
        threshold: foreground is ``mask > threshold``.
        select: ``"largest_area"`` or ``"largest_box"``.

    Returns:
        (4,) float64 ``(x0, y0, x1, y1)``, or None when no cell is foreground.
    """
    from scipy import ndimage

    mask = _as_numpy(mask_patch)
    require(mask.ndim == 2 and mask.size > 0, f"mask_patch must be a non-empty 2-D (h, w) mask, got shape {mask.shape}")
    scale = np.asarray(patch_size, dtype=np.float64).reshape(-1)
    require(scale.size in (1, 2) and bool(np.all(scale > 0)),
            f"patch_size must be a positive number or (along y, along x), got {patch_size!r}")
    sy, sx = (scale[0], scale[-1])
    size = np.asarray(image_size).reshape(-1)
    require(size.size == 2 and np.issubdtype(size.dtype, np.number) and bool(np.all(size >= 1)),
            f"image_size must be (H, W) with positive sides, got {image_size!r}")
    check_choice("select", select, ("largest_area", "largest_box"))
    H, W = (int(v) for v in size)

    fg = mask.astype(np.float64) > threshold  # (h, w)
    labels, n = ndimage.label(fg, structure=ndimage.generate_binary_structure(2, 1))  # 4-connectivity
    if n == 0:
        return None
    slices = ndimage.find_objects(labels)  # n (row slice, col slice) pairs, label order
    if select == "largest_area":
        score = np.bincount(labels.ravel(), minlength=n + 1)[1:]  # cells per component
    else:
        score = np.array([(r.stop - r.start) * (c.stop - c.start) for r, c in slices])
    rows, cols = slices[int(np.argmax(score))]  # argmax keeps the first of equal scores
    box = np.array([cols.start * sx, rows.start * sy, cols.stop * sx, rows.stop * sy], dtype=np.float64)
    return np.clip(box, 0.0, [W, H, W, H])


def _check_boxes(name: str, boxes) -> np.ndarray:
    boxes = _as_numpy(boxes).astype(np.float64)
    require(boxes.ndim in (1, 2) and boxes.shape[-1] == 4,
            f"{name} must be (4,) or (K, 4) xyxy boxes, got shape {boxes.shape}")
    require(bool(np.isfinite(boxes).all()), f"{name} holds a non-finite coordinate")
    ok = (boxes[..., 2] >= boxes[..., 0]) & (boxes[..., 3] >= boxes[..., 1])
    require(bool(np.all(ok)), f"{name} must be (x0, y0, x1, y1) with x1 >= x0 and y1 >= y0 "
                              f"(xywh boxes must be converted first)")
    return boxes


def box_iou(boxes_a, boxes_b) -> np.ndarray | float:
    """Intersection over union of xyxy boxes, every box of ``a`` with every box of ``b``.

    SPEC "Single-object discovery"; continuous coordinates, areas ``(x1 - x0) * (y1 - y0)``
    without "+1", as LOST/TokenCut's ``bbox_iou``. An empty union gives 0.

    Args:
        boxes_a: (M, 4) or (4,) boxes.
        boxes_b: (K, 4) or (4,) boxes.

    Returns:
        (M, K) float64 array; a 1-D input drops its axis ((K,), (M,), or a float for two boxes).
    """
    a, b = _check_boxes("boxes_a", boxes_a), _check_boxes("boxes_b", boxes_b)
    A, B = a.reshape(-1, 1, 4), b.reshape(1, -1, 4)  # (M, 1, 4), (1, K, 4)
    iw = np.clip(np.minimum(A[..., 2], B[..., 2]) - np.maximum(A[..., 0], B[..., 0]), 0.0, None)  # (M, K)
    ih = np.clip(np.minimum(A[..., 3], B[..., 3]) - np.maximum(A[..., 1], B[..., 1]), 0.0, None)
    inter = iw * ih
    area_a = (A[..., 2] - A[..., 0]) * (A[..., 3] - A[..., 1])  # (M, 1)
    area_b = (B[..., 2] - B[..., 0]) * (B[..., 3] - B[..., 1])  # (1, K)
    union = area_a + area_b - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)  # (M, K)
    if a.ndim == 1:
        iou = iou[0]
    if b.ndim == 1:
        iou = iou[..., 0]
    return float(iou) if iou.ndim == 0 else iou


def best_iou(pred_box, gt_boxes) -> float:
    """The largest IoU of a predicted box with any ground-truth box; 0 without a box on either side.

    Args:
        pred_box: (4,) xyxy box or None.
        gt_boxes: (K, 4) xyxy boxes, K may be 0.

    Returns:
        A float in [0, 1].
    """
    gt = _as_numpy(gt_boxes)
    if pred_box is None or gt.size == 0:
        return 0.0
    return float(np.max(box_iou(pred_box, gt.reshape(-1, 4))))


# ----------------------------------------------------------------------------- CorLoc

class CorLoc:
    """Running CorLoc: ``update`` once per image, ``value`` = hits / images.

    Paper section 5.2: a hit is IoU >= ``iou_threshold`` (0.5) with any ground-truth box; an
    image without a predicted box, or without ground-truth boxes, is a miss.
    """

    def __init__(self, *, iou_threshold: float = IOU_THRESHOLD):
        require(0.0 < iou_threshold <= 1.0, f"iou_threshold must lie in (0, 1], got {iou_threshold!r}")
        self.iou_threshold = float(iou_threshold)
        self.n_images = 0
        self.n_hits = 0

    def update(self, pred_box, gt_boxes) -> bool:
        """Score one image. ``pred_box`` (4,) or None, ``gt_boxes`` (K, 4); returns the hit."""
        hit = pred_box is not None and best_iou(pred_box, gt_boxes) >= self.iou_threshold
        self.n_images += 1
        self.n_hits += int(hit)
        return hit

    def merge(self, other: "CorLoc") -> "CorLoc":
        """Add another accumulator's counts (e.g. from another worker) to this one; returns self."""
        require(isinstance(other, CorLoc) and other.iou_threshold == self.iou_threshold,
                "merge needs another CorLoc with the same iou_threshold")
        self.n_images += other.n_images
        self.n_hits += other.n_hits
        return self

    @property
    def value(self) -> float:
        """hits / images in [0, 1]; NaN before the first update."""
        return self.n_hits / self.n_images if self.n_images else math.nan


class CorLocRow(NamedTuple):
    """One image's outcome: the predicted box (a 4-tuple or None), its best IoU, the hit."""

    image_id: str
    pred_box: tuple[float, float, float, float] | None
    best_iou: float
    hit: bool
    n_gt: int


@dataclass(frozen=True)
class CorLocResult:
    """CorLoc of a dataset (in [0, 1]; the paper's tables print 100x) and its per-image rows."""

    corloc: float
    n_images: int
    n_hits: int
    rows: tuple[CorLocRow, ...]


def _check_pred(box, image_id: str, shape: tuple[int, ...]) -> tuple[float, float, float, float] | None:
    if box is None:
        return None
    arr = _as_numpy(box).astype(np.float64)
    require(arr.shape == (4,) and bool(np.isfinite(arr).all()) and arr[2] >= arr[0] and arr[3] >= arr[1],
            f"predict_box_fn returned {box!r} for image {image_id} ({shape[0]}x{shape[1]}); "
            f"expected None or an xyxy box (x0, y0, x1, y1) with x1 >= x0, y1 >= y0")
    return tuple(float(v) for v in arr)


def corloc_evaluate(dataset: Sequence[CorLocItem], predict_box_fn: Callable[[np.ndarray, str], object], *,
                    progress: bool = True, limit: int | None = None,
                    iou_threshold: float = IOU_THRESHOLD) -> CorLocResult:
    """Run a box predictor over a CorLoc dataset and score it.

    Paper section 5.2, Tables 2 and 4. Images are read as RGB uint8 at their own size; the
    predictor may return any xyxy box in that image's pixels (e.g. from :func:`mask_to_box`).

    Args:
        dataset: ``len`` and ``dataset[i] -> CorLocItem`` (:func:`open_corloc_dataset`).
        predict_box_fn: ``(image (H, W, 3) uint8, image_id) -> (4,) box or None``.
        progress: show a tqdm progress bar.
        limit: score only the first ``limit`` images (a quick look; not the paper's protocol).
        iou_threshold: the hit threshold (0.5 in the paper).

    Returns:
        :class:`CorLocResult` with ``corloc`` in [0, 1] and one :class:`CorLocRow` per image.
    """
    from tqdm.auto import tqdm

    require(callable(predict_box_fn), "predict_box_fn must be callable (image, image_id) -> box or None")
    n = len(dataset)
    if limit is not None:
        require(isinstance(limit, int) and limit >= 1, f"limit must be an integer >= 1, got {limit!r}")
        n = min(n, limit)
    require(n > 0, "the dataset holds no images")
    acc = CorLoc(iou_threshold=iou_threshold)
    rows = []
    for i in tqdm(range(n), desc="corloc", disable=not progress, unit="img"):
        item = dataset[i]
        image = read_image(item.image_path)
        box = _check_pred(predict_box_fn(image, item.image_id), item.image_id, image.shape)
        hit = acc.update(box, item.boxes)
        rows.append(CorLocRow(item.image_id, box, best_iou(box, item.boxes), hit, len(item.boxes)))
    return CorLocResult(corloc=acc.value, n_images=acc.n_images, n_hits=acc.n_hits, rows=tuple(rows))
