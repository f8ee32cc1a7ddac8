"""Saliency datasets: where their files live, and reading them as (image, mask) pairs.

Public API
----------
``Download(urls, filename, places, sha256=None, md5=None, size=None, unpack=True, holds=())``
    one file of an official release and where its contents go under the data root.
``DatasetSpec(name, image_dir, mask_dir, image_suffix, mask_suffix, n_images, downloads, parents)``
    the official layout of one saliency dataset; ``DATASETS`` maps ``duts-tr``, ``duts-te``,
    ``dut-omron`` and ``ecssd`` to theirs (docs/paper_and_code.md#datasets).
``FolderPairs(images_dir, masks_dir)``
    any two folders whose files are matched by stem.
``find_layout(name, root) -> FolderPairs``
    the image and mask folders of a registered dataset under ``root`` (or under ``root/DUTS/``).
``find_synthetic_marker(folders, root=None) -> Path | None``
    the ``SYNTHETIC.json`` that marks generated data, if any.
``find_sample_marker(folders) -> Path | None``
    the ``SAMPLE.json`` that marks a sample of a full set (written by :mod:`paperlib.data.sample`).
``pair_files(folders, *, image_suffix=None, mask_suffix=None) -> Pairing``
    match images and masks by stem; report the stems found on one side only.
``open_dataset(source, root=None, *, binary=False, allow_unpaired=False, transform=None)``
    ``-> SaliencyDataset``, a map-style dataset (``len``, ``ds[i] -> Sample``) that torch's
    DataLoader accepts as it is; torch is not imported here.
``Sample(stem, image, mask, image_path, mask_path)``
    image uint8 (H, W, 3) RGB, mask float32 (H, W) in [0, 1].

A dataset folder holding ``SYNTHETIC.json`` (written by ``paperlib.data.synth``) loads like any other;
``SaliencyDataset.is_synthetic`` says so, and ``paperlib.data.release.verify.verify`` reports it. Likewise a
``SAMPLE.json`` (written by ``paperlib.data.sample``); :func:`paperlib.data.release.verify.dataset_kind` tells a
synthetic set, a sample and a full official set apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np

from ..checks import InputError, check_choice, check_dir
from ..images import binarize, list_images, read_image, read_mask

SYNTHETIC_MARKER = "SYNTHETIC.json"
SAMPLE_MARKER = "SAMPLE.json"
_NAMES_SHOWN = 5  # how many stems an error message names before "and N more"


@dataclass(frozen=True)
class Download:
    """One file of an official release.

    ``urls`` are tried in order (the official one first, then mirrors). ``places`` maps a
    folder inside the unpacked archive to its place under the data root (for a file that is
    not an archive: its own name to its place). Digests are published values where any exist;
    ``None`` means the SHA-256 is recorded on first use (``paperlib.data.release.checksums``).
    ``holds`` names what each unpacked place must contain (relative to it): an archive whose
    folder lacks one (a name ending in ``/`` is a folder, any other a file) is not the official file, and is refused before anything is put in place.
    """

    urls: tuple[str, ...]
    filename: str
    places: tuple[tuple[str, str], ...]
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    unpack: bool = True
    holds: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetSpec:
    """The official layout of a saliency dataset; folders are relative to the data root."""

    name: str
    image_dir: str
    mask_dir: str
    image_suffix: str
    mask_suffix: str
    n_images: int
    downloads: tuple[Download, ...]
    parents: tuple[str, ...] = ()  # optional folders between the root and image_dir ("DUTS")


def _duts(split: str, n_images: int) -> DatasetSpec:
    folder = f"DUTS-{split}"
    return DatasetSpec(
        name=folder.lower(), image_dir=f"{folder}/{folder}-Image", mask_dir=f"{folder}/{folder}-Mask",
        image_suffix=".jpg", mask_suffix=".png", n_images=n_images, parents=("DUTS",),
        downloads=(Download(urls=(f"http://saliencydetection.net/duts/download/{folder}.zip",),
                            filename=f"{folder}.zip", places=((folder, folder),),
                            holds=(f"{folder}-Image/", f"{folder}-Mask/")),))


# Image counts: DUTS (Wang et al., CVPR 2017) 10,553 train / 5,019 test; DUT-OMRON 5,168;
# ECSSD 1,000. No digests are published for these archives: they are recorded on first use.
DATASETS: dict[str, DatasetSpec] = {
    "duts-tr": _duts("TR", 10553),
    "duts-te": _duts("TE", 5019),
    "dut-omron": DatasetSpec(
        name="dut-omron", image_dir="DUT-OMRON/DUT-OMRON-image",
        mask_dir="DUT-OMRON/pixelwiseGT-new-PNG", image_suffix=".jpg", mask_suffix=".png",
        n_images=5168,
        downloads=(
            Download(urls=("http://saliencydetection.net/dut-omron/download/DUT-OMRON-image.zip",),
                     filename="DUT-OMRON-image.zip",
                     places=(("DUT-OMRON-image", "DUT-OMRON/DUT-OMRON-image"),)),
            # A plain zip despite the doubled suffix; it unpacks as pixelwiseGT-new-PNG/.
            Download(urls=("http://saliencydetection.net/dut-omron/download/"
                           "DUT-OMRON-gt-pixelwise.zip.zip",),
                     filename="DUT-OMRON-gt-pixelwise.zip.zip",
                     places=(("pixelwiseGT-new-PNG", "DUT-OMRON/pixelwiseGT-new-PNG"),)),
        )),
    "ecssd": DatasetSpec(
        name="ecssd", image_dir="ECSSD/images", mask_dir="ECSSD/ground_truth_mask",
        image_suffix=".jpg", mask_suffix=".png", n_images=1000,
        downloads=(
            Download(urls=("http://www.cse.cuhk.edu.hk/leojia/projects/hsaliency/data/ECSSD/images.zip",),
                     filename="images.zip", places=(("images", "ECSSD/images"),)),
            Download(urls=("http://www.cse.cuhk.edu.hk/leojia/projects/hsaliency/data/ECSSD/"
                           "ground_truth_mask.zip",),
                     filename="ground_truth_mask.zip",
                     places=(("ground_truth_mask", "ECSSD/ground_truth_mask"),)),
        )),
}


@dataclass(frozen=True)
class FolderPairs:
    """Images in one folder, masks in another, matched by file stem."""

    images_dir: Path
    masks_dir: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "images_dir", Path(self.images_dir))
        object.__setattr__(self, "masks_dir", Path(self.masks_dir))


class Sample(NamedTuple):
    """One pair. Paths are ``str`` so that torch's default collate batches them (as sequences)."""

    stem: str
    image: np.ndarray  # (H, W, 3) uint8 RGB, EXIF orientation applied
    mask: np.ndarray  # (H, W) float32 in [0, 1]; {0, 1} when the dataset is binary
    image_path: str
    mask_path: str


class Pairing(NamedTuple):
    """Stems found in both folders, and those found in one folder only (all sorted)."""

    pairs: tuple[tuple[str, Path, Path], ...]  # (stem, image path, mask path)
    images_only: tuple[str, ...]  # images without a mask
    masks_only: tuple[str, ...]  # masks without an image


def _name_some(stems: tuple[str, ...]) -> str:
    shown = ", ".join(stems[:_NAMES_SHOWN])
    return shown + (f" and {len(stems) - _NAMES_SHOWN} more" if len(stems) > _NAMES_SHOWN else "")


def _spec(name: str) -> DatasetSpec:
    key = str(name).lower()
    check_choice("dataset", key, DATASETS)
    return DATASETS[key]


def find_layout(name: str, root: str | Path) -> FolderPairs:
    """Locate a registered dataset's image and mask folders under ``root``.

    ``root`` is the folder that holds the dataset folder (``root/DUTS-TE/DUTS-TE-Image``) or,
    for DUTS, the folder above a ``DUTS/`` parent (``root/DUTS/DUTS-TE/DUTS-TE-Image``).
    Finding the dataset in both places is an error, since either could be the one meant.

    Args:
        name: a key of ``DATASETS`` (case-insensitive).
        root: the data root.

    Returns:
        The dataset's ``FolderPairs``; the mask folder may still be missing.
    """
    spec = _spec(name)
    root = check_dir("root", root)
    bases = [root] + [root / parent for parent in spec.parents]
    found = [b for b in bases if (b / spec.image_dir).is_dir() or (b / spec.mask_dir).is_dir()]
    if len(found) > 1:
        raise InputError(f"{spec.name} is present twice: under {found[0]} and under {found[1]}; "
                         f"pass the one you mean as the root")
    if found:
        return FolderPairs(found[0] / spec.image_dir, found[0] / spec.mask_dir)
    if (root / Path(spec.image_dir).name).is_dir():
        raise InputError(f"{root} looks like the {spec.name} folder itself; pass the folder "
                         f"that contains it as the root: {root.parent}")
    where = " or ".join(str(b / spec.image_dir) for b in bases)
    raise InputError(f"{spec.name} not found under {root}: expected {where}; "
                     f"download it with `paperlib data download {spec.name} --root {root}`")


def pair_files(folders: FolderPairs, *, image_suffix: str | None = None,
               mask_suffix: str | None = None) -> Pairing:
    """Match the image files of two folders by stem.

    Args:
        folders: the image and mask folders.
        image_suffix: suffix preferred when several images share a stem (e.g. ``.jpg``).
        mask_suffix: suffix preferred when several masks share a stem (e.g. ``.png``).

    Returns:
        ``Pairing`` with the sorted pairs and the stems present on one side only.
    """
    images = list_images(check_dir("images folder", folders.images_dir), prefer=image_suffix)
    masks = list_images(check_dir("masks folder", folders.masks_dir), prefer=mask_suffix)
    both = sorted(images.keys() & masks.keys())
    return Pairing(pairs=tuple((s, images[s], masks[s]) for s in both),
                   images_only=tuple(sorted(images.keys() - masks.keys())),
                   masks_only=tuple(sorted(masks.keys() - images.keys())))


def _find_marker(marker: str, candidates: list[Path]) -> Path | None:
    return next((c / marker for c in candidates if (c / marker).is_file()), None)


def find_synthetic_marker(folders: FolderPairs, root: str | Path | None = None) -> Path | None:
    """The ``SYNTHETIC.json`` in the image folder, the folder(s) above images and masks, or ``root``."""
    candidates = [folders.images_dir, folders.images_dir.parent, folders.masks_dir.parent]
    if root is not None:
        candidates.append(Path(root))
    return _find_marker(SYNTHETIC_MARKER, candidates)


def find_sample_marker(folders: FolderPairs) -> Path | None:
    """The ``SAMPLE.json`` in the image folder or the folder(s) above images and masks.

    Not in the data root: a root may hold the sample of one dataset beside the full set of another.
    """
    return _find_marker(SAMPLE_MARKER, [folders.images_dir, folders.images_dir.parent, folders.masks_dir.parent])


@dataclass(frozen=True)
class SaliencyDataset:
    """Image/mask pairs read on access: ``len(ds)`` pairs, ``ds[i]`` a ``Sample``.

    Build it with :func:`open_dataset`. It follows torch's map-style Dataset protocol, so a
    ``torch.utils.data.DataLoader`` takes it directly (with ``transform`` to make tensors or
    crops); ``transform``, when given, receives the ``Sample`` and its result is returned.
    """

    folders: FolderPairs
    pairs: tuple[tuple[str, Path, Path], ...]
    images_only: tuple[str, ...] = ()
    masks_only: tuple[str, ...] = ()
    name: str | None = None
    synthetic_marker: Path | None = None
    binary: bool = False
    transform: Callable[[Sample], Any] | None = field(default=None, compare=False)

    @property
    def is_synthetic(self) -> bool:
        """True when a ``SYNTHETIC.json`` marks these files as generated, not the real set."""
        return self.synthetic_marker is not None

    @property
    def stems(self) -> tuple[str, ...]:
        return tuple(stem for stem, _, _ in self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Any:
        stem, image_path, mask_path = self.pairs[index]  # IndexError past the end ends iteration
        image, mask = read_image(image_path), read_mask(mask_path)
        if image.shape[:2] != mask.shape:
            raise InputError(f"{image_path} is {image.shape[0]}x{image.shape[1]} (HxW) but its mask "
                             f"{mask_path} is {mask.shape[0]}x{mask.shape[1]}")
        if self.binary:
            mask = binarize(mask).astype(np.float32)
        sample = Sample(stem, image, mask, str(image_path), str(mask_path))
        return self.transform(sample) if self.transform is not None else sample


def open_dataset(source: str | FolderPairs, root: str | Path | None = None, *, binary: bool = False,
                 allow_unpaired: bool = False,
                 transform: Callable[[Sample], Any] | None = None) -> SaliencyDataset:
    """Open a registered saliency dataset, or any ``FolderPairs``, as a ``SaliencyDataset``.

    Evaluation protocol (docs/paper_and_code.md#saliency-metrics): masks are read as [0, 1]; the
    metrics binarise them at 0.5. ``binary=True`` does it here instead.

    Args:
        source: a ``DATASETS`` name (``duts-te`` ...) or a ``FolderPairs``.
        root: the data root, for a name only (see :func:`find_layout`).
        binary: return masks thresholded at 0.5 (float32 in {0, 1}).
        allow_unpaired: keep going when some stems have only an image or only a mask (they are
            listed in ``images_only`` / ``masks_only``); otherwise that is an ``InputError``.
        transform: applied to each ``Sample`` on access.

    Returns:
        ``SaliencyDataset`` of the pairs sorted by stem; ``ds[i].image`` is (H, W, 3) uint8 and
        ``ds[i].mask`` (H, W) float32.
    """
    if isinstance(source, FolderPairs):
        if root is not None:
            raise InputError("root is only for a dataset name; a FolderPairs names its own folders")
        name, folders, suffixes = None, source, (None, None)
    else:
        spec = _spec(source)
        if root is None:
            raise InputError(f"dataset {spec.name!r} needs a root folder")
        name, folders, suffixes = spec.name, find_layout(spec.name, root), (spec.image_suffix, spec.mask_suffix)
    pairing = pair_files(folders, image_suffix=suffixes[0], mask_suffix=suffixes[1])
    label = name or str(folders.images_dir)
    if not allow_unpaired and (pairing.images_only or pairing.masks_only):
        problems = []
        if pairing.images_only:
            problems.append(f"{len(pairing.images_only)} images without a mask in {folders.masks_dir} "
                            f"({_name_some(pairing.images_only)})")
        if pairing.masks_only:
            problems.append(f"{len(pairing.masks_only)} masks without an image in {folders.images_dir} "
                            f"({_name_some(pairing.masks_only)})")
        raise InputError(f"{label}: {'; '.join(problems)}; fix the folders or pass allow_unpaired")
    if not pairing.pairs:
        raise InputError(f"{label}: no image/mask pairs in {folders.images_dir} and {folders.masks_dir}")
    return SaliencyDataset(folders=folders, pairs=pairing.pairs, images_only=pairing.images_only,
                           masks_only=pairing.masks_only, name=name, binary=binary, transform=transform,
                           synthetic_marker=find_synthetic_marker(folders, root))
