"""Small dataset archives in the official formats, built from real DUTS image/mask pairs.

For tests that take a user's whole path (``paperlib data download NAME --archive FILE`` or
``--mirror URL``, then verify, then the loaders) without the internet: each archive has the
official file name and member layout of its release, as a user downloads it, but holds ``n``
real DUTS pairs instead of thousands. The layouts are written out here, independently of
paperlib's registry (:mod:`paperlib.sources`, :data:`paperlib.data.DATASETS`), so that a registry
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
===========  =======================================  =============================================

File names follow each release's own scheme (DUTS keeps its stems; ECSSD numbers from 0001;
DUT-OMRON ``im`` + number; VOC six digits). Image and mask bytes are the DUTS files, unchanged.
VOC boxes are the connected components (8-connected) of the mask above 0.5, 1-based inclusive
as VOC writes them, each named ``object`` (VOC's class names do not matter to CorLoc). Archives
are byte-reproducible (fixed dates and owners), so their SHA-256 is stable across runs.

Public: :data:`DATASETS`, :class:`OfficialArchives`, :func:`build_official_archives`.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
from scipy import ndimage

from paperlib.data import FolderPairs, open_dataset
from paperlib.images import read_image, read_mask

DATASETS = ("duts-tr", "duts-te", "dut-omron", "ecssd", "voc07")

# dataset -> [(archive file name, {member folder: 'image' or 'mask'})]
_SALIENCY = {
    "duts-tr": [("DUTS-TR.zip", {"DUTS-TR/DUTS-TR-Image": "image", "DUTS-TR/DUTS-TR-Mask": "mask"})],
    "duts-te": [("DUTS-TE.zip", {"DUTS-TE/DUTS-TE-Image": "image", "DUTS-TE/DUTS-TE-Mask": "mask"})],
    "dut-omron": [("DUT-OMRON-image.zip", {"DUT-OMRON-image": "image"}),
                  ("DUT-OMRON-gt-pixelwise.zip.zip", {"pixelwiseGT-new-PNG": "mask"})],
    "ecssd": [("images.zip", {"images": "image"}), ("ground_truth_mask.zip", {"ground_truth_mask": "mask"})],
}
_VOC_TAR = "VOCtrainval_06-Nov-2007.tar"
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


def _voc_xml(image_id: str, hw: tuple[int, int], boxes) -> bytes:
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
    ET.indent(ann, space="\t")
    return ET.tostring(ann, encoding="utf-8") + b"\n"


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


def _voc_archive(chosen, n: int) -> tuple[dict[str, bytes], list[str]]:
    """VOC07's tar from the first ``n`` pairs whose mask holds an object."""
    base = "VOCdevkit/VOC2007"
    files: dict[str, bytes] = {}
    ids = []
    for _, image_path, mask_path in chosen:
        boxes = _boxes(read_mask(mask_path))
        if not boxes:
            continue
        image_id = f"{len(ids) + 1:06d}"
        files[f"{base}/JPEGImages/{image_id}.jpg"] = image_path.read_bytes()
        files[f"{base}/Annotations/{image_id}.xml"] = _voc_xml(image_id, read_image(image_path).shape[:2], boxes)
        ids.append(image_id)
        if len(ids) == n:
            break
    half = len(ids) // 2
    for split, listed in (("trainval", ids), ("train", ids[:half]), ("val", ids[half:])):
        files[f"{base}/ImageSets/Main/{split}.txt"] = "".join(f"{i}\n" for i in listed).encode()
    return {_VOC_TAR: _tar(_with_folders(files))}, ids


def build_official_archives(source: str | Path, out: str | Path, *, n: int = 6,
                            datasets: Sequence[str] = DATASETS) -> OfficialArchives:
    """Write ``n``-image archives of each dataset in its official format under ``out``.

    Args:
        source: a folder of real DUTS pairs in the DUTS layout (``../shared/data/DUTS-TE``,
            holding ``*-Image/`` and ``*-Mask/``).
        out: the folder for the archives (created); each has its official file name.
        n: images per dataset. Dataset k starts at pair k * n of the source's sorted pairs
            (different images where the source holds enough); VOC takes pairs with an object.
        datasets: which of :data:`DATASETS`.

    Returns:
        :class:`OfficialArchives`.
    """
    source, out = Path(source), Path(out)
    image_dir, mask_dir = (next(source.glob(f"*-{kind}")) for kind in ("Image", "Mask"))
    pairs = open_dataset(FolderPairs(image_dir, mask_dir)).pairs
    out.mkdir(parents=True, exist_ok=True)
    paths, digests, stems = {}, {}, {}
    for k, name in enumerate(datasets):
        start = k * n
        run = [pairs[(start + i) % len(pairs)] for i in range(len(pairs))]  # the source from `start`, wrapped
        archives, names = _voc_archive(run, n) if name == "voc07" else _saliency_archives(name, run[:n])
        stems[name] = sorted(names)
        paths[name] = []
        for filename, data in archives.items():
            (out / filename).write_bytes(data)
            paths[name].append(out / filename)
            digests[filename] = hashlib.sha256(data).hexdigest()
    return OfficialArchives(paths, digests, stems)
