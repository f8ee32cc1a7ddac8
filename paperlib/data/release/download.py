"""Fetching the datasets from their official sources, checking them, laying them out.

Public API
----------
``download(name, root, *, progress=True, sha256=None, mirror=None, archives=None, keep_archives=False)``
    ``-> DownloadReport``: fetch, check, unpack and lay out one dataset under ``root``;
    a second run with everything present fetches nothing and only verifies
    (:func:`paperlib.data.release.verify.verify`). ``archives`` are files the user fetched by hand: they take
    the same checks and unpacking as a download, and are never moved or deleted.
``DownloadReport``
    what ``download`` did: files fetched and their digests, files already in place, the check.
``LEDGER_NAME``, ``ARCHIVE_DIR``
    the digest ledger's file name and the archives' folder, both under ``root``.
``fetch``, ``DownloadError`` (from :mod:`paperlib.data.release.fetch`: resumable HTTP), ``check_digest``,
``DigestCheck`` (from :mod:`paperlib.data.release.checksums`: published SHA-256 / MD5, or trust on first use
recorded in ``<root>/.paperlib-downloads.json``) can be imported from here too. The names and their
files are in :mod:`paperlib.data.release.sources`; archives are unpacked by
:func:`paperlib.data.release.archive.extract_archive`, which refuses unsafe members.

Nothing here prints except tqdm progress (and, with progress on, the digest recorded on first use);
results come back as reports whose ``lines()`` the CLI prints. Archives go to ``root/downloads/``
while they are fetched and are deleted once unpacked unless ``keep_archives``. A fetched file that
fails its checksum or does not unpack into the expected layout is moved to
``root/downloads/rejected/`` (never deleted, never trusted: its digest is recorded only after it
unpacked into place), so that the next run fetches it anew; an interrupted download keeps its
``.part`` file so that the next run resumes it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Mapping, Sequence

from ...checks import InputError
from ..saliency import DATASETS, Download
from .archive import ArchiveError, extract_archive
from .checksums import DigestCheck, check_digest, record_digest, set_aside
from .fetch import DownloadError, fetch
from .sources import SOURCES, check_name
from .verify import VerifyReport, verify

LEDGER_NAME = ".paperlib-downloads.json"
ARCHIVE_DIR = "downloads"
_SHOWN = 5  # names an error message lists


def _bases(name: str, root: Path) -> list[Path]:
    return [root] + [root / p for p in (DATASETS[name].parents if name in DATASETS else ())]


def _archives_by_filename(archives: str | Path | Sequence[str | Path] | None, items: Sequence[Download],
                          name: str) -> dict[str, Path]:
    """The user's archive files keyed by the dataset file each one is, matched by file name."""
    if archives is None:
        return {}
    if isinstance(archives, (str, Path)):
        archives = [archives]
    expected = [item.filename for item in items]
    given: dict[str, Path] = {}
    for path in (Path(a).expanduser() for a in archives):
        if path.name not in expected:
            raise InputError(f"--archive {path}: {path.name!r} is not a file of {name}; its files are "
                             f"{', '.join(expected)} (keep the official file name)")
        if path.name in given:
            raise InputError(f"--archive {path}: {path.name} is given twice (also {given[path.name]})")
        if not path.is_file():
            raise InputError(f"--archive {path}: no such file")
        given[path.name] = path
    return given


def _stage(user_file: Path, item: Download, folder: Path) -> Path:
    """The user's file in ``folder`` under its official name, the user's own left untouched.

    A hard link costs no copy of a multi-gigabyte archive, and whatever happens to the link
    (deleted after unpacking, or on a checksum mismatch) leaves the user's file as it is. A file
    that is installed as it is (not unpacked) is copied, so that the dataset never shares it.
    """
    staged = folder / item.filename
    if item.unpack:
        try:
            os.link(user_file, staged)
            return staged
        except OSError:  # another filesystem, or a file this user may not link
            pass
    shutil.copyfile(user_file, staged)
    return staged


def _in_place(path: Path, item: Download) -> bool:
    """An unpacked archive's places are folders holding ``item.holds``; a file installed as it is
    is a file."""
    if not item.unpack:
        return path.is_file()
    return path.is_dir() and all((path / part).is_dir() if part.endswith("/") else (path / part).is_file()
                                 for part in item.holds)


def _present(name: str, item: Download, root: Path) -> bool:
    return any(all(_in_place(base / dst, item) for _, dst in item.places) for base in _bases(name, root))


def _check_places_free(item: Download, root: Path) -> None:
    """Refuse to unpack over anything at the places: a part of the dataset, or something else."""
    for _, dst in item.places:
        place = root / dst
        if place.exists() or place.is_symlink():
            if _in_place(place, item):
                what = "exists but other parts of it are missing"
            elif place.is_dir() == item.unpack:
                what = f"exists but does not hold {', '.join(item.holds)}"
            else:
                what = (f"is a {'folder' if place.is_dir() else 'file'} where {item.filename} puts a "
                        f"{'folder' if item.unpack else 'file'}")
            raise DownloadError(f"{place} {what}; move it aside and run again")


def _locate(staging: Path, src: str, archive: str, item: Download) -> Path:
    """``staging/src``, or the one folder ending in ``src`` deeper down (a wrapper folder)."""
    if _in_place(staging / src, item):
        return staging / src
    tail = PurePosixPath(src).parts
    hits = [p for p in staging.rglob(tail[-1])
            if p.relative_to(staging).parts[-len(tail):] == tail and _in_place(p, item)]
    if len(hits) == 1:
        return hits[0]
    top = sorted(p.name for p in staging.iterdir())
    kind = "folder" if item.unpack else "file"
    holding = f" holding {', '.join(item.holds)}" if item.holds else ""
    raise ArchiveError(f"{archive}: expected the {kind} {src!r}{holding} inside, found {len(hits)} matches; "
                       f"top level holds {', '.join(top[:_SHOWN]) or 'nothing'}")


# Working folders under the data root carry the pid of the process that made them, so that a
# later run can tell the leftovers of a killed one (pid gone) from a download running now.
_STAGING = (".paperlib-unpack-", ".paperlib-archive-")


def _staging_dir(root: Path, prefix: str) -> Path:
    return Path(tempfile.mkdtemp(dir=root, prefix=f"{prefix}{os.getpid()}-"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # someone else's live process
        return True
    return True


def remove_stale_staging(root: Path) -> list[Path]:
    """Remove the working folders a killed download left under ``root``; returns what was removed.

    Only folders named by :func:`_staging_dir` whose process no longer exists are touched: a
    download running now in another process keeps its own.
    """
    removed = []
    for prefix in _STAGING:
        for folder in root.glob(f"{prefix}*"):
            pid = folder.name[len(prefix):].split("-", 1)[0]
            if folder.is_dir() and pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    return removed


def _install(archive: Path, item: Download, root: Path, *, keep: bool, progress: bool, shown: Path) -> None:
    """Unpack into a temporary folder under ``root``, then rename each place into position.

    Messages name ``shown`` (the file as the user knows it) and ``root``, never the working folders.
    """
    _check_places_free(item, root)
    staging = _staging_dir(root, ".paperlib-unpack-")
    try:
        if item.unpack:
            extract_archive(archive, staging, progress=progress)
        else:
            (shutil.copy2 if keep else os.replace)(archive, staging / item.filename)
        for src, dst in item.places:
            found = _locate(staging, src, str(shown), item)
            (root / dst).parent.mkdir(parents=True, exist_ok=True)
            os.replace(found, root / dst)
    except InputError as err:
        text = str(err).replace(str(archive), str(shown)).replace(str(staging), str(root))
        raise type(err)(text) from None
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
    archives: tuple[tuple[str, Path], ...] = ()  # (filename, the user's file) of those given by hand

    @property
    def ok(self) -> bool:
        return self.verify.ok

    def lines(self) -> list[str]:
        given = dict(self.archives)
        out = [f"{filename}: sha256 {check.sha256} ({check.against})"
               + (f", from --archive {given[filename]}" if filename in given else "")
               for filename, check in self.fetched]
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
             mirror: str | None = None, archives: str | Path | Sequence[str | Path] | None = None,
             keep_archives: bool = False) -> DownloadReport:
    """Fetch a dataset from its official source, check it, unpack it into the official layout.

    Layouts (docs/paper_and_code.md#datasets): ``root/DUTS-TE/{DUTS-TE-Image,DUTS-TE-Mask}``,
    ``root/DUT-OMRON/...``, ``root/ECSSD/{images,ground_truth_mask}``, ``root/VOCdevkit/VOC2007``,
    ``root/COCO/{train2014,annotations,coco_20k_filenames.txt}``. A file whose contents are
    already in place is not fetched again; the dataset is verified at the end either way.

    Args:
        name: one of :data:`paperlib.data.release.sources.NAMES` (duts-tr, duts-te, dut-omron, ecssd, voc07, voc12, coco20k).
        root: the data root (created if needed).
        progress: show tqdm bars.
        sha256: a digest overriding the published or recorded one: ``"DIGEST"`` for a one-file
            dataset, ``"FILENAME=DIGEST"`` or ``{filename: digest}`` for any.
        mirror: a base URL serving the same file names, used instead of the official URLs.
        archives: files fetched by hand, each named as the official file it is (``DUTS-TE.zip``);
            checked (published digest, ``sha256``, or the ledger's trust on first use), unpacked
            and verified as a download is, read in place through a hard link (or a copy), never
            moved or deleted. The dataset's other files are fetched.
        keep_archives: keep the fetched archives in ``root/downloads/`` after unpacking.

    Returns:
        ``DownloadReport`` with the digests and the ``VerifyReport``.

    Raises:
        DownloadError: a file could not be fetched (its ``.part`` is kept: run again to resume)
            or failed its checksum (it is moved to ``root/downloads/rejected/``; a file given in
            ``archives`` stays where it is, untouched).
        ArchiveError: an archive that ``extract_archive`` refuses or that lacks the expected
            folders (a fetched one is moved to ``root/downloads/rejected/``, a given one left as
            it is).
        InputError: a file of ``archives`` is missing or named as none of the dataset's files
            (the message lists them).
    """
    name = check_name(name)
    root = Path(root)
    items = SOURCES[name]
    overrides = _overrides(sha256, items, name)
    given = _archives_by_filename(archives, items, name)
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(root)
    fetched, present = [], []
    for item in items:
        if _present(name, item, root):
            present.append(item.filename)
            continue
        if item.filename in given:
            check = _install_given(given[item.filename], item, name, root, overrides, progress)
        else:
            check = _fetch_and_install(item, name, root, overrides, mirror, keep_archives, progress)
        fetched.append((item.filename, check))
    archive_dir = root / ARCHIVE_DIR
    if archive_dir.is_dir() and not any(archive_dir.iterdir()):
        archive_dir.rmdir()
    return DownloadReport(name=name, root=root, fetched=tuple(fetched), present=tuple(present),
                          verify=verify(name, root, progress=progress),
                          archives=tuple((f, p) for f, p in given.items() if f not in present))


def _checked(archive: Path, item: Download, name: str, root: Path, overrides: dict[str, str], url: str | None,
             progress: bool, move_aside: bool = True) -> tuple[DigestCheck, Callable[[], None]]:
    """Check the file against its digests; returns the check and what records it in the ledger,
    to be called only after the archive has unpacked into place."""
    key, size = f"{name}/{item.filename}", archive.stat().st_size
    check = check_digest(archive, item, ledger=root / LEDGER_NAME, key=key, sha256=overrides.get(item.filename),
                         url=url, record=False, move_aside=move_aside)

    def record() -> None:
        record_digest(root / LEDGER_NAME, key, sha256=check.sha256, size=size, url=url,
                      against=None if check.against.startswith("recorded now") else check.against)
        if progress and check.against.startswith("recorded now"):
            from tqdm.auto import tqdm
            tqdm.write(f"{item.filename}: no published checksum; recorded sha256 {check.sha256} "
                       f"in {root / LEDGER_NAME}")
    return check, record


def _fetch_and_install(item: Download, name: str, root: Path, overrides: dict[str, str], mirror: str | None,
                       keep: bool, progress: bool) -> DigestCheck:
    archive = root / ARCHIVE_DIR / item.filename
    url = None
    if not archive.exists():
        url = fetch((f"{mirror.rstrip('/')}/{item.filename}",) if mirror else item.urls, archive,
                    size=item.size, progress=progress)
    check, record = _checked(archive, item, name, root, overrides, url, progress)
    try:
        _install(archive, item, root, keep=keep, progress=progress, shown=archive)
    except ArchiveError as err:
        if check.against in ("published", "--sha256"):   # the official bytes: fetching again cannot help
            raise ArchiveError(f"{err}; its SHA-256 matches the {check.against} digest, so this is the file "
                               f"itself: kept at {archive}. The expected layout may have changed upstream: "
                               f"please report it") from None
        moved = set_aside(archive)
        raise ArchiveError(f"{err}; moved to {moved}. Run again to fetch it anew; if the same happens, "
                           f"the source serves a broken file: fetch it elsewhere and pass --archive") from None
    record()
    return check


def _install_given(user_file: Path, item: Download, name: str, root: Path, overrides: dict[str, str],
                   progress: bool) -> DigestCheck:
    """Check and install a file the user fetched by hand, through a link or copy under ``root``."""
    folder = _staging_dir(root, ".paperlib-archive-")
    try:
        staged = _stage(user_file, item, folder)
        try:
            check, record = _checked(staged, item, name, root, overrides, user_file.resolve().as_uri(), progress,
                                     move_aside=False)
            _install(staged, item, root, keep=False, progress=progress, shown=Path(f"--archive {user_file}"))
        except InputError as err:
            text = str(err) if str(err).startswith("--archive") else f"--archive {user_file}: {err}"
            raise type(err)(f"{text}; {user_file} itself is left as it is") from None
        record()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return check
