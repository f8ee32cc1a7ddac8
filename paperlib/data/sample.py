"""Samples of a saliency dataset: every K-th image/mask pair of a full download, in the official layout.

The README's real-sample numbers use two samples (at ``../shared/data`` in development): 502
DUTS-TE pairs, every 10th of the sorted test set, and 422 DUTS-TR pairs, every 25th of the
sorted training set. :func:`sample_dataset` builds the same from a full download
(``paperlib data sample duts-te --root FULL --out SAMPLE``).

**Which pairs.** The pairs are sorted by stem in code-point order (Python's ``sorted``, as
:func:`paperlib.data.saliency.pair_files` returns them: ``ILSVRC...`` before ``n0...`` before ``sun_...``)
and those at indices ``offset, offset + every, offset + 2 every, ...`` are taken.

**The shared samples' offsets** (:data:`SAMPLE_DEFAULTS`). Counts alone do not fix them: of the
5,019 DUTS-TE pairs, offsets 0 to 8 all give 502; of the 10,553 DUTS-TR pairs, offsets 0 to 2
give 423 and 3 to 24 give 422. The stems do. A public listing of the official folders (their
first ten names, as ``ls`` prints them) starts DUTS-TE-Mask with ILSVRC2012_test_00000003,
...023, ...025, ...026 and DUTS-TR-Image with ILSVRC2012_test_00000004, ...018, ...019, ...022,
...030, ...072, ...082, ...108; the shared samples start with ...026 (index 3) and ...108
(index 7). So DUTS-TE is ``every=10, offset=3`` (ceil(5016 / 10) = 502 pairs) and DUTS-TR
``every=25, offset=7`` (ceil(10546 / 25) = 422). tests/test_sample.py checks the head of each
listing against the shared stems and counts; the stems past the tenth cannot be checked without
the full sets.

Public API:
    SAMPLE_DEFAULTS                  dataset -> (every, offset) of the shared samples.
    SampleReport                     what was written; ``lines()`` for printing.
    sample_dataset(name, root, out, *, every=None, offset=None, link=False, progress=False)
                                     write a sample and its ``SAMPLE.json`` marker.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..checks import check_choice, check_int, require
from .saliency import DATASETS, SAMPLE_MARKER, find_layout, find_synthetic_marker, pair_files

SAMPLE_DEFAULTS: dict[str, tuple[int, int]] = {
    "duts-te": (10, 3),   # the shared 502-pair DUTS-TE sample (module docstring)
    "duts-tr": (25, 7),   # the shared 422-pair DUTS-TR sample
}
_OTHER_DEFAULT = (10, 0)  # any other saliency set: a tenth, from the first pair


@dataclass(frozen=True)
class SampleReport:
    """What :func:`sample_dataset` wrote."""

    name: str
    folder: Path        # the sample's dataset folder (``OUT/DUTS-TE``)
    source: Path        # the full set's dataset folder
    every: int
    offset: int
    full_count: int     # pairs in the full set
    taken: int          # pairs in the sample
    linked: int         # files hard-linked rather than copied

    def lines(self) -> list[str]:
        how = f", {self.linked} of {2 * self.taken} files hard-linked" if self.linked else ""
        return [f"{self.name}: took {self.taken} of {self.full_count} pairs (1 in {self.every}, from index "
                f"{self.offset}) from {self.source}{how}",
                f"  sample -> {self.folder} (marked by {SAMPLE_MARKER})"]


def _place(src: Path, dst: Path, link: bool) -> bool:
    """Copy ``src`` to ``dst`` (or hard-link it); True when linked. The source is only read."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(src, dst)
            return True
        except OSError:  # another filesystem, or a file the user may not link: copy instead
            pass
    shutil.copyfile(src, dst)
    return False


def _check_target(key: str, root: Path, target: Path, source: Path) -> Path:
    """Refuse a sample folder that would touch the source or be mistaken for it; returns ``target``."""
    out = target.parent
    # Under the source root the sample would be found beside the full set (root/DUTS-TE and
    # root/DUTS/DUTS-TE), and find_layout refuses a dataset present twice.
    require(out not in [root] + [root / parent for parent in DATASETS[key].parents],
            f"--out {out} is where the source root keeps {key}; write the sample elsewhere")
    require(out != source and source not in out.parents,
            f"--out {out} is inside the source dataset folder {source}; write the sample elsewhere")
    require(target not in source.parents, f"--out: replacing {target} would delete the source {source}")
    require(not target.exists() or (target / SAMPLE_MARKER).is_file(),
            f"--out: {target} exists and holds no {SAMPLE_MARKER}, so it may be a full dataset; "
            f"refusing to replace it (choose another --out)")
    return target


def sample_dataset(name: str, root: str | Path, out: str | Path, *, every: int | None = None,
                   offset: int | None = None, link: bool = False, progress: bool = False) -> SampleReport:
    """Write every ``every``-th image/mask pair of a saliency dataset under ``out``, official layout.

    Not from the paper: how the README's real-sample numbers were drawn (module docstring). The
    pairs sorted by stem at indices ``offset::every`` are copied (or hard-linked) with their own
    file names to ``out/<image_dir>`` and ``out/<mask_dir>`` of the dataset's layout (e.g.
    ``out/DUTS-TE/DUTS-TE-Image``), beside a ``SAMPLE.json`` (source, every, offset, both counts)
    and, for a synthetic source, its ``SYNTHETIC.json``.
    Everything is written in a temporary folder under ``out`` and renamed into place at the end,
    so an interrupted run leaves no partial sample. An earlier sample there is replaced; any other
    folder there is refused. The source is never written to.

    Args:
        name: a saliency dataset of :data:`paperlib.data.saliency.DATASETS` (duts-tr, duts-te, dut-omron, ecssd).
        root: the full set's data root (as for :func:`paperlib.data.saliency.open_dataset`).
        out: the sample's data root (created); not the source root, not inside the source folder.
        every: take one pair in ``every``; None: :data:`SAMPLE_DEFAULTS` (10 for other sets).
        offset: index of the first pair taken, ``0 <= offset < every``; None: the default's
            offset when ``every`` is the default one, else 0.
        link: hard-link files instead of copying them where the filesystem allows (the sample then
            shares its files with the source: edit neither in place).
        progress: show a tqdm bar.

    Returns:
        :class:`SampleReport`.
    """
    from tqdm.auto import tqdm

    key = str(name).lower()
    check_choice("dataset", key, DATASETS)
    spec = DATASETS[key]
    default_every, default_offset = SAMPLE_DEFAULTS.get(key, _OTHER_DEFAULT)
    every = check_int("every", default_every if every is None else every, low=1)
    offset = check_int("offset", (default_offset if every == default_every else 0) if offset is None else offset,
                       low=0)
    require(offset < every, f"offset must be smaller than every ({every}), got {offset}")

    folders = find_layout(key, root)
    pairing = pair_files(folders, image_suffix=spec.image_suffix, mask_suffix=spec.mask_suffix)
    unpaired = len(pairing.images_only) + len(pairing.masks_only)
    require(unpaired == 0, f"{key} at {folders.images_dir.parent}: {unpaired} stem(s) have only an image or only "
                           f"a mask; `paperlib data verify {key}` lists them")
    picks = pairing.pairs[offset::every]
    require(len(picks) > 0, f"{key}: offset {offset} is past the {len(pairing.pairs)} pairs at {folders.images_dir}")

    source = folders.images_dir.parent.resolve()
    root, out = Path(root).expanduser().resolve(), Path(out).expanduser().resolve()
    top = Path(spec.image_dir).parts[0]                                    # DUTS-TE, ECSSD, ...
    target = _check_target(key, root, out / top, source)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".paperlib-sample-"))
    try:
        linked = 0
        for stem, image_path, mask_path in tqdm(picks, desc=f"sample {key}", unit="pair", disable=not progress):
            linked += _place(image_path, staging / spec.image_dir / image_path.name, link)
            linked += _place(mask_path, staging / spec.mask_dir / mask_path.name, link)
        marker = {"sample_of": key, "source": str(source), "source_root": str(root),
                  "rule": "pairs sorted by stem, indices offset, offset + every, ...", "every": every,
                  "offset": offset, "full_count": len(pairing.pairs), "taken": len(picks),
                  "official_count": spec.n_images, "first": picks[0][0], "last": picks[-1][0],
                  "linked": linked, "paperlib_version": __version__}
        (staging / top / SAMPLE_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        synthetic = find_synthetic_marker(folders, root)
        if synthetic is not None:  # a sample of generated data is generated data
            shutil.copyfile(synthetic, staging / top / synthetic.name)
        if target.exists():  # an earlier sample (checked above): set it aside, deleted below
            os.replace(target, staging / ".replaced")
        os.replace(staging / top, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return SampleReport(name=key, folder=target, source=source, every=every, offset=offset,
                        full_count=len(pairing.pairs), taken=len(picks), linked=linked)

