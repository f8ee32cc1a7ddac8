"""Fetching the datasets from their official sources, checking them, laying them out.

Public API
----------
``download(name, root, *, progress=True, sha256=None, mirror=None, keep_archives=False)``
    ``-> DownloadReport``: fetch, check, unpack and lay out one dataset under ``root``;
    a second run with everything present fetches nothing and only verifies
    (:func:`paperlib.verify.verify`).
``DownloadReport``
    what ``download`` did: files fetched and their digests, files already in place, the check.
``LEDGER_NAME``, ``ARCHIVE_DIR``
    the digest ledger's file name and the archives' folder, both under ``root``.
``fetch``, ``DownloadError`` (from :mod:`paperlib.fetch`: resumable HTTP), ``check_digest``,
``DigestCheck`` (from :mod:`paperlib.checksums`: published SHA-256 / MD5, or trust on first use
recorded in ``<root>/.paperlib-downloads.json``) can be imported from here too. The names and their
files are in :mod:`paperlib.sources`; archives are unpacked by
:func:`paperlib.archive.extract_archive`, which refuses unsafe members.

Nothing here prints except tqdm progress (and, with progress on, the digest recorded on first use);
results come back as reports whose ``lines()`` the CLI prints. Archives go to ``root/downloads/``
while they are fetched and are deleted once unpacked unless ``keep_archives``. A checksum mismatch
deletes the complete-but-wrong file (a resumed download would stay wrong); an interrupted download
keeps its ``.part`` file so that the next run resumes it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Mapping, Sequence

from .archive import extract_archive
from .checksums import DigestCheck, check_digest
from .data import DATASETS, Download
from .fetch import DownloadError, fetch
from .sources import SOURCES, check_name
from .validation import InputError
from .verify import VerifyReport, verify

LEDGER_NAME = ".paperlib-downloads.json"
ARCHIVE_DIR = "downloads"
_SHOWN = 5  # names an error message lists


def _bases(name: str, root: Path) -> list[Path]:
    return [root] + [root / p for p in (DATASETS[name].parents if name in DATASETS else ())]


def _present(name: str, item: Download, root: Path) -> bool:
    return any(all((base / dst).exists() for _, dst in item.places) for base in _bases(name, root))


def _locate(staging: Path, src: str, archive: str) -> Path:
    """``staging/src``, or the one folder ending in ``src`` deeper down (a wrapper folder)."""
    if (staging / src).exists():
        return staging / src
    tail = PurePosixPath(src).parts
    hits = [p for p in staging.rglob(tail[-1]) if p.relative_to(staging).parts[-len(tail):] == tail]
    if len(hits) == 1:
        return hits[0]
    top = sorted(p.name for p in staging.iterdir())
    raise DownloadError(f"{archive}: expected {src!r} inside, found {len(hits)} matches; top level holds "
                        f"{', '.join(top[:_SHOWN]) or 'nothing'}")


def _install(archive: Path, item: Download, root: Path, *, keep: bool, progress: bool) -> None:
    """Unpack into a temporary folder under ``root``, then rename each place into position."""
    for _, dst in item.places:
        if (root / dst).exists():
            raise DownloadError(f"{root / dst} exists but other parts of {item.filename} are missing; "
                                f"move it aside and run again")
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".paperlib-unpack-"))
    try:
        if item.unpack:
            extract_archive(archive, staging, progress=progress)
        else:
            (shutil.copy2 if keep else os.replace)(archive, staging / item.filename)
        for src, dst in item.places:
            found = _locate(staging, src, item.filename)
            (root / dst).parent.mkdir(parents=True, exist_ok=True)
            os.replace(found, root / dst)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not keep and archive.exists():
        archive.unlink()


@dataclass(frozen=True)
class DownloadReport:
    """What ``download`` did: files fetched and their digests, parts already present, the check."""

    name: str
    root: Path
    fetched: tuple[tuple[str, DigestCheck], ...]  # (filename, digest check)
    present: tuple[str, ...]  # filenames skipped because their contents are in place
    verify: VerifyReport

    @property
    def ok(self) -> bool:
        return self.verify.ok

    def lines(self) -> list[str]:
        out = [f"{filename}: sha256 {check.sha256} ({check.against})" for filename, check in self.fetched]
        out += [f"{filename}: already unpacked, not fetched" for filename in self.present]
        return out + self.verify.lines()


def _overrides(sha256: str | Mapping[str, str] | None, items: Sequence[Download], name: str) -> dict[str, str]:
    if sha256 is None:
        return {}
    filenames = [item.filename for item in items]
    if isinstance(sha256, str) and "=" in sha256:  # the CLI's FILENAME=DIGEST form
        filename, _, digest = sha256.partition("=")
        sha256 = {filename: digest}
    if isinstance(sha256, str):
        if len(items) != 1:
            raise InputError(f"{name} has {len(items)} files ({', '.join(filenames)}): give --sha256 as "
                             f"FILENAME=DIGEST")
        return {filenames[0]: sha256}
    unknown = sorted(set(sha256) - set(filenames))
    if unknown:
        raise InputError(f"--sha256 names {', '.join(unknown)}, not a file of {name} ({', '.join(filenames)})")
    return dict(sha256)


def download(name: str, root: str | Path, *, progress: bool = True, sha256: str | Mapping[str, str] | None = None,
             mirror: str | None = None, keep_archives: bool = False) -> DownloadReport:
    """Fetch a dataset from its official source, check it, unpack it into the official layout.

    Layouts (SPEC.md): ``root/DUTS-TE/{DUTS-TE-Image,DUTS-TE-Mask}``, ``root/DUT-OMRON/...``,
    ``root/ECSSD/{images,ground_truth_mask}``, ``root/VOCdevkit/VOC2007``,
    ``root/COCO/{train2014,annotations,coco_20k_filenames.txt}``. A file whose contents are
    already in place is not fetched again; the dataset is verified at the end either way.

    Args:
        name: one of :data:`paperlib.sources.NAMES` (duts-tr, duts-te, dut-omron, ecssd, voc07, voc12, coco20k).
        root: the data root (created if needed).
        progress: show tqdm bars.
        sha256: a digest overriding the published or recorded one: ``"DIGEST"`` for a one-file
            dataset, ``"FILENAME=DIGEST"`` or ``{filename: digest}`` for any.
        mirror: a base URL serving the same file names, used instead of the official URLs.
        keep_archives: keep the fetched archives in ``root/downloads/`` after unpacking.

    Returns:
        ``DownloadReport`` with the digests and the ``VerifyReport``.

    Raises:
        DownloadError: a file could not be fetched (its ``.part`` is kept: run again to resume)
            or failed its checksum (it is deleted). An archive that ``extract_archive`` refuses
            stays in ``root/downloads/`` for inspection.
    """
    name = check_name(name)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    items = SOURCES[name]
    overrides = _overrides(sha256, items, name)
    fetched, present = [], []
    for item in items:
        if _present(name, item, root):
            present.append(item.filename)
            continue
        archive = root / ARCHIVE_DIR / item.filename
        url = None
        if not archive.exists():
            url = fetch((f"{mirror.rstrip('/')}/{item.filename}",) if mirror else item.urls, archive,
                        size=item.size, progress=progress)
        check = check_digest(archive, item, ledger=root / LEDGER_NAME, key=f"{name}/{item.filename}",
                             sha256=overrides.get(item.filename), url=url)
        if progress and check.against.startswith("recorded now"):
            from tqdm.auto import tqdm
            tqdm.write(f"{item.filename}: no published checksum; recorded sha256 {check.sha256} "
                       f"in {root / LEDGER_NAME}")
        _install(archive, item, root, keep=keep_archives, progress=progress)
        fetched.append((item.filename, check))
    archive_dir = root / ARCHIVE_DIR
    if archive_dir.is_dir() and not any(archive_dir.iterdir()):
        archive_dir.rmdir()
    return DownloadReport(name=name, root=root, fetched=tuple(fetched), present=tuple(present),
                          verify=verify(name, root, progress=progress))
