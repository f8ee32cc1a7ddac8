"""Small dataset archives in the official formats, built from real DUTS image/mask pairs.

For tests that take a user's whole path (``paperlib data download NAME --archive FILE`` or
``--mirror URL``, then verify, then the loaders) without the internet: each archive has the
official file name and member layout of its release, as a user downloads it, but holds ``n``
real DUTS pairs instead of thousands. The layouts are written out here, independently of
paperlib's registry (:mod:`paperlib.data.release.sources`, :data:`paperlib.data.saliency.DATASETS`), so that a registry
that drifted from the releases fails these tests:

===========  =======================================  =============================================
dataset      archive(s)                               members
===========  =======================================  =============================================
duts-tr      DUTS-TR.zip                              DUTS-TR/DUTS-TR-Image/*.jpg, DUTS-TR/DUTS-TR-Mask/*.png
duts-te      DUTS-TE.zip                              DUTS-TE/DUTS-TE-Image/*.jpg, DUTS-TE/DUTS-TE-Mask/*.png
dut-omron    DUT-OMRON-image.zip,                     DUT-OMRON-image/im*.jpg;
             DUT-OMRON-gt-pixelwise.zip.zip           pixelwiseGT-new-PNG/im*.png (a plain zip)
ecssd        images.zip, ground_truth_mask.zip        images/0001.jpg ...; ground_truth_mask/0001.png ...
voc07        VOCtrainval_06-Nov-2007.tar              VOCdevkit/VOC2007/{JPEGImages/000001.jpg,
                                                      Annotations/000001.xml, ImageSets/Main/{trainval,train,val}.txt}
voc12        VOCtrainval_11-May-2012.tar              VOCdevkit/VOC2012/{JPEGImages/2008_000001.jpg,
                                                      Annotations/2008_000001.xml, ImageSets/Main/ as VOC2007}
coco20k      train2014.zip,                           train2014/COCO_train2014_000000000009.jpg ...;
             annotations_trainval2014.zip,            annotations/instances_{train,val}2014.json;
             coco_20k_filenames.txt                   a plain list, ``train2014/COCO_train2014_<12 digits>.jpg`` a line
===========  =======================================  =============================================

File names follow each release's own scheme (DUTS keeps its stems; ECSSD numbers from 0001;
DUT-OMRON ``im`` + number; VOC2007 six digits, VOC2012 ``<year>_<six digits>``; COCO
``COCO_train2014_`` + the image id in 12 digits). Image and mask bytes are the DUTS files, unchanged.
Boxes are the connected components (8-connected) of the mask above 0.5. VOC writes them 1-based
inclusive, each named ``object`` (VOC's class names do not matter to CorLoc); VOC2012's XML has
its own look (children in alphabetical order, ``<occluded>``, one object without ``<difficult>``
or ``<truncated>``, as some VOC2012 files have). COCO's ``instances_train2014.json`` has COCO's
keys (info, images, licenses, annotations, categories), ``bbox`` as float ``[x, y, w, h]`` with
0-based continuous corners, a rectangle polygon as ``segmentation``, and besides the component
boxes one ``iscrowd=1`` annotation (the union of image 9's foreground, a listed image; an
uncompressed RLE as COCO's crowd regions have) that paperlib must drop. ``train2014.zip`` and the
json hold one image more than ``coco_20k_filenames.txt`` lists, with its own boxes, which
paperlib must leave out; the list is not sorted (LOST's is not). Archives are
byte-reproducible (fixed dates and owners), so their SHA-256 is stable across runs.

Public: :data:`DATASETS`, :class:`OfficialArchives`, :func:`build_official_archives`,
:func:`build_all`, :func:`file_digests`.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Mapping, NamedTuple, Sequence

import numpy as np
from scipy import ndimage

from paperlib.data.saliency import FolderPairs, open_dataset
from paperlib.images import read_image, read_mask

DATASETS = ("duts-tr", "duts-te", "dut-omron", "ecssd", "voc07", "voc12", "coco20k")

# dataset -> [(archive file name, {member folder: 'image' or 'mask'})]
_SALIENCY = {
    "duts-tr": [("DUTS-TR.zip", {"DUTS-TR/DUTS-TR-Image": "image", "DUTS-TR/DUTS-TR-Mask": "mask"})],
    "duts-te": [("DUTS-TE.zip", {"DUTS-TE/DUTS-TE-Image": "image", "DUTS-TE/DUTS-TE-Mask": "mask"})],
    "dut-omron": [("DUT-OMRON-image.zip", {"DUT-OMRON-image": "image"}),
                  ("DUT-OMRON-gt-pixelwise.zip.zip", {"pixelwiseGT-new-PNG": "mask"})],
    "ecssd": [("images.zip", {"images": "image"}), ("ground_truth_mask.zip", {"ground_truth_mask": "mask"})],
}
# dataset -> (tar file name, folder under VOCdevkit)
_VOC = {"voc07": ("VOCtrainval_06-Nov-2007.tar", "VOC2007"), "voc12": ("VOCtrainval_11-May-2012.tar", "VOC2012")}
_COCO_IMAGES, _COCO_ANNOTATIONS, _COCO_LIST = "train2014.zip", "annotations_trainval2014.zip", "coco_20k_filenames.txt"
_COCO_ID0, _COCO_ID_STEP = 9, 1009  # image ids 9, 1018, ...: COCO's first train2014 id, then spread out
_DATE = (2017, 1, 1, 0, 0, 0)  # every member's date: the same archive bytes on every run
_MIN_OBJECT = 1e-3             # components under 0.1 % of the image are anti-aliasing specks, not objects


class OfficialArchives(NamedTuple):
    """What :func:`build_official_archives` wrote."""

    paths: dict[str, list[Path]]  # dataset -> its archives (all in one folder: a --mirror can serve it)
    sha256: dict[str, str]        # archive file name -> SHA-256
    stems: dict[str, list[str]]   # dataset -> the image names (stems) it holds, sorted

    def digests(self, name: str) -> dict[str, str]:
        """``{file name: SHA-256}`` of one dataset, as ``download(..., sha256=...)`` takes it."""
        return {p.name: self.sha256[p.name] for p in self.paths[name]}


def _zip(members: dict[str, bytes | None]) -> bytes:
    """A zip with a folder entry above each file, as the releases' zips have; None marks a folder."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=_DATE), b"" if data is None else data)
    return buf.getvalue()


def _tar(members: dict[str, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name.rstrip("/"))
            info.mtime = 1483228800  # _DATE
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _with_folders(files: dict[str, bytes]) -> dict[str, bytes | None]:
    """``files`` preceded by an entry for every folder above them."""
    folders = {}
    for name in files:
        parts = name.split("/")[:-1]
        for k in range(1, len(parts) + 1):
            folders["/".join(parts[:k]) + "/"] = None
    return {**folders, **files}


def _boxes(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """VOC boxes (xmin, ymin, xmax, ymax), 1-based inclusive, of the mask's connected components."""
    labels, _ = ndimage.label(mask > 0.5, structure=np.ones((3, 3)))
    boxes = []
    for index, found in enumerate(ndimage.find_objects(labels), start=1):
        if (labels[found] == index).sum() >= _MIN_OBJECT * mask.size:
            rows, cols = found
            boxes.append((cols.start + 1, rows.start + 1, cols.stop, rows.stop))
    return boxes


def _xml_bytes(ann: ET.Element) -> bytes:
    ET.indent(ann, space="\t")
    return ET.tostring(ann, encoding="unicode").encode() + b"\n"  # no <?xml ...?> line, as VOC's files


def _voc07_xml(image_id: str, hw: tuple[int, int], boxes) -> bytes:
    ann = ET.Element("annotation")
    ET.SubElement(ann, "folder").text = "VOC2007"
    ET.SubElement(ann, "filename").text = f"{image_id}.jpg"
    source = ET.SubElement(ann, "source")
    for tag, text in (("database", "The VOC2007 Database"), ("annotation", "PASCAL VOC2007"), ("image", "flickr")):
        ET.SubElement(source, tag).text = text
    size = ET.SubElement(ann, "size")
    for tag, value in (("width", hw[1]), ("height", hw[0]), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(ann, "segmented").text = "0"
    for box in boxes:
        obj = ET.SubElement(ann, "object")
        for tag, text in (("name", "object"), ("pose", "Unspecified"), ("truncated", "0"), ("difficult", "0")):
            ET.SubElement(obj, tag).text = text
        bndbox = ET.SubElement(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box):
            ET.SubElement(bndbox, tag).text = str(value)
    return _xml_bytes(ann)


def _voc12_xml(image_id: str, hw: tuple[int, int], boxes, *, flags: bool = True) -> bytes:
    """VOC2012's look: children in alphabetical order, ``<occluded>``; ``flags=False`` leaves the
    first object without ``<difficult>`` and ``<truncated>``, as some VOC2012 objects are."""
    ann = ET.Element("annotation")
    ET.SubElement(ann, "filename").text = f"{image_id}.jpg"
    ET.SubElement(ann, "folder").text = "VOC2012"
    for k, box in enumerate(boxes):
        obj = ET.SubElement(ann, "object")
        ET.SubElement(obj, "name").text = "object"
        bndbox = ET.SubElement(obj, "bndbox")
        for tag, value in zip(("xmax", "xmin", "ymax", "ymin"), (box[2], box[0], box[3], box[1])):
            ET.SubElement(bndbox, tag).text = str(value)
        tags = ("difficult", "occluded", "pose", "truncated") if flags or k else ("occluded", "pose")
        for tag in tags:
            ET.SubElement(obj, tag).text = "Unspecified" if tag == "pose" else "0"
    ET.SubElement(ann, "segmented").text = "0"
    size = ET.SubElement(ann, "size")
    for tag, value in (("depth", 3), ("height", hw[0]), ("width", hw[1])):
        ET.SubElement(size, tag).text = str(value)
    source = ET.SubElement(ann, "source")
    for tag, text in (("annotation", "PASCAL VOC2008"), ("database", "The VOC2008 Database"), ("image", "flickr")):
        ET.SubElement(source, tag).text = text
    return _xml_bytes(ann)


def _names(name: str, stems: list[str]) -> list[str]:
    """File stems in the release's own scheme."""
    if name == "ecssd":
        return [f"{i:04d}" for i in range(1, len(stems) + 1)]
    if name == "dut-omron":
        return [f"im{i:03d}" for i in range(1, len(stems) + 1)]
    return list(stems)


def _saliency_archives(name: str, chosen) -> tuple[dict[str, bytes], list[str]]:
    names = _names(name, [stem for stem, _, _ in chosen])
    archives = {}
    for filename, folders in _SALIENCY[name]:
        files = {}
        for stem, (_, image_path, mask_path) in zip(names, chosen):
            for folder, kind in folders.items():
                path = image_path if kind == "image" else mask_path
                files[f"{folder}/{stem}{path.suffix}"] = path.read_bytes()
        archives[filename] = _zip(_with_folders(files))
    return archives, names


class _Found(NamedTuple):
    image_path: Path
    hw: tuple[int, int]   # the image's (height, width)
    boxes: list[tuple[int, int, int, int]]  # VOC's 1-based inclusive (xmin, ymin, xmax, ymax)
    mask: np.ndarray      # (H, W) float in [0, 1]


def _with_objects(chosen, n: int) -> list[_Found]:
    """The first ``n`` pairs of ``chosen`` whose mask holds an object."""
    found = []
    for _, image_path, mask_path in chosen:
        mask = read_mask(mask_path)
        boxes = _boxes(mask)
        if boxes:
            found.append(_Found(image_path, read_image(image_path).shape[:2], boxes, mask))
            if len(found) == n:
                break
    return found


def _voc_archive(name: str, chosen, n: int) -> tuple[dict[str, bytes], list[str]]:
    """VOC07's or VOC12's tar from the first ``n`` pairs whose mask holds an object."""
    tar_name, folder = _VOC[name]
    base = f"VOCdevkit/{folder}"
    files: dict[str, bytes] = {}
    ids = []
    for i, found in enumerate(_with_objects(chosen, n)):
        if name == "voc07":
            image_id = f"{i + 1:06d}"
            xml = _voc07_xml(image_id, found.hw, found.boxes)
        else:  # VOC2012 numbers within each year: 2008_000001, 2008_000002, 2009_000001, ...
            image_id = f"{2008 + i // 2}_{i % 2 + 1:06d}"
            xml = _voc12_xml(image_id, found.hw, found.boxes, flags=i > 0)
        files[f"{base}/JPEGImages/{image_id}.jpg"] = found.image_path.read_bytes()
        files[f"{base}/Annotations/{image_id}.xml"] = xml
        ids.append(image_id)
    half = len(ids) // 2
    for split, listed in (("trainval", ids), ("train", ids[:half]), ("val", ids[half:])):
        files[f"{base}/ImageSets/Main/{split}.txt"] = "".join(f"{i}\n" for i in listed).encode()
    return {tar_name: _tar(_with_folders(files))}, ids


def _rle(fg: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE: run lengths down the columns (Fortran order), background first."""
    flat = fg.flatten(order="F").astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    return [0] + runs if flat[0] else runs


def _coco_json(images: list[dict], annotations: list[dict]) -> bytes:
    # COCO's top-level keys in COCO's order; json.dump's default separators, as the release's file.
    return json.dumps({
        "info": {"description": "This is stable 1.0 version of the 2014 MS COCO dataset.", "url": "http://mscoco.org",
                 "version": "1.0", "year": 2014, "contributor": "Microsoft COCO group",
                 "date_created": "2015-01-27 09:11:52.357475"},
        "images": images,
        "licenses": [{"url": "http://creativecommons.org/licenses/by/2.0/", "id": 1, "name": "Attribution License"}],
        "annotations": annotations,
        "categories": [{"supercategory": "object", "id": 1, "name": "object"}],
    }).encode()


def _coco_archives(chosen, n: int) -> tuple[dict[str, bytes], list[str]]:
    """COCO's two zips and the 20k list: ``n`` listed images and one more that the list leaves out."""
    found = _with_objects(chosen, n + 1)
    if len(found) != n + 1:
        raise ValueError(f"coco20k needs {n + 1} pairs with an object; the source has {len(found)}")
    ids = [_COCO_ID0 + _COCO_ID_STEP * i for i in range(n + 1)]
    file_names = [f"COCO_train2014_{i:012d}.jpg" for i in ids]
    images, annotations = [], []

    def annotate(image_id: int, bbox: list[float], area: float, segmentation, iscrowd: int) -> None:
        annotations.append({"segmentation": segmentation, "area": area, "iscrowd": iscrowd, "image_id": image_id,
                            "bbox": bbox, "category_id": 1, "id": len(annotations) + 1})

    for image_id, file_name, item in zip(ids, file_names, found):
        images.append({"license": 1, "file_name": file_name,
                       "coco_url": f"http://images.cocodataset.org/train2014/{file_name}",
                       "height": item.hw[0], "width": item.hw[1], "date_captured": "2013-11-14 16:28:13",
                       "flickr_url": f"http://farm1.staticflickr.com/{image_id}.jpg", "id": image_id})
        for xmin, ymin, xmax, ymax in item.boxes:
            x, y, w, h = float(xmin - 1), float(ymin - 1), float(xmax - xmin + 1), float(ymax - ymin + 1)
            annotate(image_id, [x, y, w, h], w * h, [[x, y, x + w, y, x + w, y + h, x, y + h]], 0)
    # The crowd region: all of the first image's foreground, one box that CorLoc must not count.
    fg = found[0].mask > 0.5
    rows, cols = np.flatnonzero(fg.any(axis=1)), np.flatnonzero(fg.any(axis=0))
    annotate(ids[0], [float(cols[0]), float(rows[0]), float(cols[-1] + 1 - cols[0]), float(rows[-1] + 1 - rows[0])],
             float(fg.sum()), {"counts": _rle(fg), "size": list(fg.shape)}, 1)

    listed = file_names[:n][::-1]  # LOST's list is in no id order; the last image is left out
    images_zip = _zip(_with_folders({f"train2014/{f}": item.image_path.read_bytes()
                                     for f, item in zip(file_names, found)}))
    annotations_zip = _zip(_with_folders({"annotations/instances_train2014.json": _coco_json(images, annotations),
                                          "annotations/instances_val2014.json": _coco_json([], [])}))
    names_txt = "".join(f"train2014/{f}\n" for f in listed).encode()
    return ({_COCO_IMAGES: images_zip, _COCO_ANNOTATIONS: annotations_zip, _COCO_LIST: names_txt},
            [Path(f).stem for f in listed])


def build_official_archives(source: str | Path, out: str | Path, *, n: int = 6,
                            datasets: Sequence[str] = DATASETS) -> OfficialArchives:
    """Write ``n``-image archives of each dataset in its official format under ``out``.

    Args:
        source: a folder of real DUTS pairs in the DUTS layout (``../shared/data/DUTS-TE``,
            holding ``*-Image/`` and ``*-Mask/``).
        out: the folder for the archives (created); each has its official file name.
        n: images per dataset. Dataset k of :data:`DATASETS` starts at pair k * n of the source's sorted pairs
            (different images where the source holds enough); VOC and COCO take pairs with an
            object, COCO ``n + 1`` of them (one is not in the 20k list).
        datasets: which of :data:`DATASETS`.

    Returns:
        :class:`OfficialArchives`.
    """
    source, out = Path(source), Path(out)
    image_dir, mask_dir = (next(source.glob(f"*-{kind}")) for kind in ("Image", "Mask"))
    pairs = open_dataset(FolderPairs(image_dir, mask_dir)).pairs
    out.mkdir(parents=True, exist_ok=True)
    paths, digests, stems = {}, {}, {}
    for name in datasets:
        start = DATASETS.index(name) * n  # a dataset's images do not depend on which others are built
        run = [pairs[(start + i) % len(pairs)] for i in range(len(pairs))]  # the source from `start`, wrapped
        if name in _VOC:
            archives, names = _voc_archive(name, run, n)
        elif name == "coco20k":
            archives, names = _coco_archives(run, n)
        else:
            archives, names = _saliency_archives(name, run[:n])
        stems[name] = sorted(names)
        paths[name] = []
        for filename, data in archives.items():
            (out / filename).write_bytes(data)
            paths[name].append(out / filename)
            digests[filename] = hashlib.sha256(data).hexdigest()
    return OfficialArchives(paths, digests, stems)


def build_all(source: str | Path, out: str | Path, *, n: int = 6) -> dict[str, list[Path]]:
    """All seven datasets' archives in one folder, each under its official file name.

    The folder looks like a user's downloads: a file is matched to its dataset by name alone.
    VOC's and COCO's registry entries carry the releases' published digests, which these small
    archives cannot match: download them with ``sha256=`` (``--sha256 FILE=DIGEST``) from
    :func:`file_digests`.

    Args:
        source: a folder of real DUTS pairs in the DUTS layout (see :func:`build_official_archives`).
        out: the folder for the archives (created).
        n: images per dataset.

    Returns:
        ``{dataset: [its archives]}`` for every name of :data:`DATASETS`.
    """
    return build_official_archives(source, out, n=n).paths


def file_digests(paths: Mapping[str, Sequence[Path]]) -> dict[str, dict[str, str]]:
    """``{dataset: {file name: SHA-256}}`` of archives on disk (``build_all``'s output)."""
    return {name: {Path(p).name: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in files}
            for name, files in paths.items()}
