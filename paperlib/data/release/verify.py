"""Checking a dataset on disk against its official release: counts, pairs, readability, sizes.

Public API:
    verify(name, root, *, expect_complete=True, decode=False, progress=False) -> VerifyReport
        counts against the official ones, unpaired stems, unreadable files, size mismatches.
    VerifyReport
        the measurements; ``ok`` for an exit code, ``lines()`` for printing.
    dataset_kind(name, root) -> DatasetKind
        'synthetic', 'sample' or 'full', with the image count: what provenance records say of a set.

Nothing here prints except a tqdm progress bar; :func:`paperlib.data.release.download.download` runs
:func:`verify` after every download.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

from ...checks import InputError
from ..saliency import (
    DATASETS,
    SAMPLE_MARKER,
    SYNTHETIC_MARKER,
    find_layout,
    find_sample_marker,
    find_synthetic_marker,
    pair_files,
)
from .sources import DETECTION_SETS, check_name

_SHOWN = 5  # items named per problem in a report line


@dataclass(frozen=True)
class VerifyReport:
    """The state of a dataset on disk, measured against its official release.

    ``found`` counts the usable items (image/mask pairs; images with annotations), ``expected``
    the official count. ``clean`` means no problem in what is there; ``complete`` that all of
    it is there. ``ok`` needs both, unless ``expect_complete`` is False (a subset, such as the
    502-pair DUTS-TE sample, is then accepted when clean). The CLI decides the exit code.
    """

    name: str
    folder: Path
    expected: int
    found: int
    missing: tuple[str, ...] = ()  # folders or files that should exist and do not
    images_only: tuple[str, ...] = ()  # stems with an image and no mask
    masks_only: tuple[str, ...] = ()  # stems with a mask and no image
    unreadable: tuple[tuple[str, str], ...] = ()  # (path, reason)
    size_mismatches: tuple[tuple[str, tuple[int, int], tuple[int, int]], ...] = ()  # (stem, image HxW, target HxW)
    synthetic: bool = False
    sample: bool = False  # a SAMPLE.json marks the folder as a sample (paperlib.data.sample)
    expect_complete: bool = True
    decoded: bool = False  # every file decoded in full (else only its header was read)

    @property
    def complete(self) -> bool:
        return self.found >= self.expected

    @property
    def clean(self) -> bool:
        return not (self.missing or self.images_only or self.masks_only or self.unreadable
                    or self.size_mismatches)

    @property
    def ok(self) -> bool:
        # A folder marked as a sample (SAMPLE.json) is a subset on purpose: judged as one.
        return self.clean and (self.complete or not self.expect_complete or self.sample)

    def lines(self) -> list[str]:
        """Human-readable lines: the count, each kind of problem, and a verdict."""
        state = "complete" if self.complete else f"INCOMPLETE ({self.expected - self.found} missing: a subset?)"
        out = [f"{self.name} at {self.folder}: {self.found} of {self.expected} expected items, {state}"]
        if self.synthetic:
            out.append(f"  SYNTHETIC data ({self.folder} carries a {SYNTHETIC_MARKER}): not the real {self.name}")
        if self.sample:
            out.append(f"  a SAMPLE of {self.name} ({self.folder} carries a {SAMPLE_MARKER}): not the full set")

        def some(items: Sequence) -> str:
            shown = ", ".join(str(i) for i in items[:_SHOWN])
            return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")

        for label, items in (("missing", self.missing), ("images without a mask", self.images_only),
                             ("masks without an image", self.masks_only)):
            if items:
                out.append(f"  {len(items)} {label}: {some(items)}")
        if self.unreadable:
            out.append(f"  {len(self.unreadable)} unreadable: {some([f'{p} ({why})' for p, why in self.unreadable])}")
        if self.size_mismatches:
            out.append(f"  {len(self.size_mismatches)} size mismatches (image vs target, HxW): "
                       + some([f"{s} {a[0]}x{a[1]} vs {b[0]}x{b[1]}" for s, a, b in self.size_mismatches]))
        if self.clean:
            how = ("decoded in full" if self.decoded else
                   "headers read, not decoded: a truncated file passes; --decode opens every pixel")
            out.append(f"  every item found is readable and consistent ({how})")
        verdict = "OK" if self.ok and self.complete else "OK as a subset" if self.ok else "NOT OK"
        return out + [f"  verdict: {verdict}"]


def _image_size(path: Path, decode: bool) -> tuple[int, int]:
    """(H, W) as ``read_image`` would return it (EXIF orientation applied); raises on a bad file."""
    from PIL import Image

    with Image.open(path) as img:  # PIL's verify() must come first on a fresh open, so open twice
        if decode:
            img.load()
        else:
            img.verify()
    with Image.open(path) as img:
        w, h = img.size
        orientation = img.getexif().get(0x0112, 1)
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def _try_size(path: Path, decode: bool, unreadable: list) -> tuple[int, int] | None:
    try:
        return _image_size(path, decode)
    except Exception as err:  # PIL raises many types for a bad file; each becomes a report line
        unreadable.append((str(path), f"{type(err).__name__}: {err}"))
        return None


def _bar(items: Iterable, progress: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, disable=not progress, leave=False)


def _verify_saliency(name: str, root: Path, decode: bool, progress: bool) -> dict:
    spec = DATASETS[name]
    folders = find_layout(name, root)
    missing = [str(d) for d in (folders.images_dir, folders.masks_dir) if not d.is_dir()]
    fields = dict(folder=folders.images_dir.parent, expected=spec.n_images, missing=tuple(missing),
                  synthetic=find_synthetic_marker(folders, root) is not None,
                  sample=find_sample_marker(folders) is not None)
    if missing:
        return dict(fields, found=0)
    pairing = pair_files(folders, image_suffix=spec.image_suffix, mask_suffix=spec.mask_suffix)
    unreadable, mismatches, found = [], [], 0
    for stem, image_path, mask_path in _bar(pairing.pairs, progress, f"verify {name}"):
        image_hw, mask_hw = _try_size(image_path, decode, unreadable), _try_size(mask_path, decode, unreadable)
        if image_hw is None or mask_hw is None:
            continue
        if image_hw != mask_hw:
            mismatches.append((stem, image_hw, mask_hw))
        found += 1
    return dict(fields, found=found, images_only=pairing.images_only, masks_only=pairing.masks_only,
                unreadable=tuple(unreadable), size_mismatches=tuple(mismatches))


def _voc_items(folder: Path) -> tuple[list[tuple[str, Path, Path | None]], list[str]]:
    ids_file = folder / "ImageSets" / "Main" / "trainval.txt"
    if not ids_file.is_file():
        return [], [str(ids_file)]
    ids = [line.strip() for line in ids_file.read_text().splitlines() if line.strip()]
    return [(i, folder / "JPEGImages" / f"{i}.jpg", folder / "Annotations" / f"{i}.xml") for i in ids], []


def _coco_items(folder: Path) -> tuple[list[tuple[str, Path, Path | None]], list[str]]:
    names_file, annotations = folder / "coco_20k_filenames.txt", folder / "annotations" / "instances_train2014.json"
    missing = [str(p) for p in (names_file, annotations) if not p.is_file()]
    if not names_file.is_file():
        return [], missing
    names = [line.strip() for line in names_file.read_text().splitlines() if line.strip()]
    return [(n, folder / n, None) for n in names], missing


def _voc_size(xml_path: Path) -> tuple[int, int]:
    size = ET.parse(xml_path).getroot().find("size")
    return int(size.findtext("height")), int(size.findtext("width"))


def _verify_detection(name: str, root: Path, decode: bool, progress: bool) -> dict:
    spec = DETECTION_SETS[name]
    folder = root / spec.folder
    if not folder.is_dir():
        raise InputError(f"{name} not found under {root}: expected {folder}; "
                         f"download it with `paperlib data download {name} --root {root}`")
    items, missing = (_coco_items if name == "coco20k" else _voc_items)(folder)
    unreadable, mismatches, found = [], [], 0
    for key, image_path, xml_path in _bar(items, progress, f"verify {name}"):
        absent = [str(p) for p in (image_path, xml_path) if p is not None and not p.is_file()]
        if absent:
            missing += absent
            continue
        image_hw = _try_size(image_path, decode, unreadable)
        if image_hw is None:
            continue
        if xml_path is not None:
            try:
                xml_hw = _voc_size(xml_path)
            except (ET.ParseError, AttributeError, TypeError, ValueError) as err:
                unreadable.append((str(xml_path), f"{type(err).__name__}: {err or 'no size element'}"))
                continue
            if xml_hw != image_hw:
                mismatches.append((key, image_hw, xml_hw))
        found += 1
    return dict(folder=folder, expected=spec.n_images, found=found, missing=tuple(missing),
                unreadable=tuple(unreadable), size_mismatches=tuple(mismatches),
                synthetic=(folder / SYNTHETIC_MARKER).is_file() or (root / SYNTHETIC_MARKER).is_file(),
                sample=(folder / SAMPLE_MARKER).is_file())


def verify(name: str, root: str | Path, *, expect_complete: bool = True, decode: bool = False,
           progress: bool = False) -> VerifyReport:
    """Check a dataset on disk: counts, pairing, readability and sizes.

    Saliency sets: every image and mask is opened with PIL (header check; ``decode=True`` reads
    the pixels too, slower but catches truncated JPEGs) and their sizes (EXIF orientation applied)
    compared. VOC: the ``trainval`` ids each need a JPEG and an XML whose ``<size>`` matches the
    image. COCO20K: every listed file must exist and open, beside ``instances_train2014.json``.

    Args:
        name: one of :data:`paperlib.data.release.sources.NAMES`.
        root: the data root (as given to :func:`paperlib.data.release.download.download`).
        expect_complete: if False, a clean subset counts as ``ok``.
        decode: decode every image fully instead of checking headers.
        progress: show a tqdm bar.

    Returns:
        ``VerifyReport``; its ``lines()`` are for printing, ``ok`` for the exit code.

    Raises:
        InputError: the dataset is not under ``root`` at all (the message says where it was
            looked for); a dataset found with a folder missing is reported instead.
    """
    name = check_name(name)
    root = Path(root)
    check = _verify_saliency if name in DATASETS else _verify_detection
    return VerifyReport(name=name, expect_complete=expect_complete, decoded=decode,
                        **check(name, root, decode, progress))


class DatasetKind(NamedTuple):
    """What a dataset folder holds (:func:`dataset_kind`)."""

    kind: str             # 'synthetic', 'sample' or 'full'
    images: int           # items found: image/mask pairs, or listed images that exist
    official: int         # the official release's count
    marker: Path | None   # the SYNTHETIC.json or SAMPLE.json that decided, if any


def dataset_kind(name: str, root: str | Path) -> DatasetKind:
    """Tell generated data, a sample and a full official set apart, from markers and counts.

    In order: a ``SYNTHETIC.json`` (:mod:`paperlib.data.synth`) makes it 'synthetic'; a ``SAMPLE.json``
    (:mod:`paperlib.data.sample`) or fewer items than the official count (README, "Datasets": DUTS-TR
    10,553, DUTS-TE 5,019, DUT-OMRON 5,168, ECSSD 1,000, VOC07 5,011, VOC12 11,540, COCO20K
    19,817) makes it a 'sample'; otherwise it is 'full'. Files are listed, not opened (use
    :func:`verify` for that), so this is quick on a full set.

    Args:
        name: one of :data:`paperlib.data.release.sources.NAMES`.
        root: the data root.

    Returns:
        :class:`DatasetKind`.

    Raises:
        InputError: the dataset is not under ``root`` (as :func:`verify`).
    """
    name = check_name(name)
    root = Path(root)
    if name in DATASETS:
        folders = find_layout(name, root)
        official = DATASETS[name].n_images
        synthetic, sample = find_synthetic_marker(folders, root), find_sample_marker(folders)
        images = len(pair_files(folders, image_suffix=DATASETS[name].image_suffix,
                                mask_suffix=DATASETS[name].mask_suffix).pairs)
    else:
        spec = DETECTION_SETS[name]
        folder, official = root / spec.folder, spec.n_images
        if not folder.is_dir():
            raise InputError(f"{name} not found under {root}: expected {folder}")
        synthetic = next((m for m in (folder / SYNTHETIC_MARKER, root / SYNTHETIC_MARKER) if m.is_file()), None)
        sample = folder / SAMPLE_MARKER if (folder / SAMPLE_MARKER).is_file() else None
        items, _ = (_coco_items if name == "coco20k" else _voc_items)(folder)
        images = sum(1 for _, image_path, _ in items if image_path.is_file())
    if synthetic is not None:
        return DatasetKind("synthetic", images, official, synthetic)
    kind = "sample" if sample is not None or images < official else "full"
    return DatasetKind(kind, images, official, sample)
