"""Fetching the datasets from their official sources, unpacking them safely, and checking them.

Public API
----------
``download(name, root, *, progress=True, sha256=None, mirror=None, keep_archives=False)``
    ``-> DownloadReport``: fetch, check, unpack and lay out one dataset under ``root``;
    a second run with everything present fetches nothing and only verifies.
``verify(name, root, *, expect_complete=True, decode=False, progress=False) -> VerifyReport``
    counts against the official ones, unpaired stems, unreadable files, size mismatches.
``fetch(urls, dest, *, size=None, progress=True, timeout=60.0) -> str``
    resumable HTTP GET (``Range``) into ``dest`` via ``dest.part``; returns the URL that served.
``check_digest(path, item, *, ledger, key, sha256=None, url=None) -> DigestCheck``
    published SHA-256 / MD5, or trust on first use recorded in ``<root>/.paperlib-downloads.json``.
``extract_archive(archive, dest, *, progress=False) -> int``
    zip or tar; refuses absolute paths, ``..``, links and special files (``InputError``).
``SOURCES`` every downloadable name -> its ``Download`` files; ``DETECTION_SETS`` voc07,
``voc12``, ``coco20k``; ``NAMES``; ``DownloadError`` (an ``InputError``).

Nothing here prints except tqdm progress (and, with progress on, the digest recorded on first use);
results come back as reports whose ``lines()`` the CLI prints. Archives go to ``root/downloads/``
while they are fetched and are deleted once unpacked unless ``keep_archives``. A checksum mismatch
deletes the complete-but-wrong file (a resumed download would stay wrong); an interrupted download
keeps its ``.part`` file so that the next run resumes it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import Iterable, Mapping, NamedTuple, Sequence

from . import __version__
from .data import DATASETS, Download, find_layout, find_synthetic_marker, pair_files
from .images import atomic_path
from .validation import InputError, check_choice

LEDGER_NAME = ".paperlib-downloads.json"
ARCHIVE_DIR = "downloads"
_CHUNK = 1 << 20
_USER_AGENT = f"paperlib/{__version__} (urllib)"
_SHOWN = 5  # items named per problem in a report line


class DownloadError(InputError):
    """A file that could not be fetched, or that did not match its checksum."""


@dataclass(frozen=True)
class DetectionSpec:
    """A single-object-discovery set: its folder under the root and its image count (SPEC.md)."""

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
                 filename=tar, places=((folder, folder),), sha256=sha256, md5=md5, size=size),))


# VOC07 trainval 5,011 images, VOC12 trainval 11,540, COCO20K 19,817 (SPEC.md, CorLoc).
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


def _check_name(name: str) -> str:
    key = str(name).lower()
    check_choice("dataset", key, NAMES)
    return key


# ---------------------------------------------------------------- HTTP, resumable


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """(first byte, total) of a ``Content-Range: bytes a-b/total`` header; None where absent."""
    m = re.match(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", header or "")
    if not m:
        return None, None
    return (int(m[1]) if m[1] else None), (int(m[2]) if m[2] != "*" else None)


def _fetch_one(url: str, part: Path, size: int | None, progress: bool, timeout: float) -> None:
    from tqdm.auto import tqdm

    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:  # longer than the file can be: start again
        part.unlink()
        have = 0
    if size is not None and have == size:
        return
    headers = {"User-Agent": _USER_AGENT, **({"Range": f"bytes={have}-"} if have else {})}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing left to send: complete, or the part is bad
            if _content_range(err.headers.get("Content-Range"))[1] == have:
                return
            part.unlink()
            return _fetch_one(url, part, size, progress, timeout)
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError, HTTPException) as err:
        raise DownloadError(f"{url}: {getattr(err, 'reason', err)}") from None
    with response:
        start, total = _content_range(response.headers.get("Content-Range"))
        if have and response.status == 206 and start != have:  # not the range asked for
            part.unlink()
            return _fetch_one(url, part, size, progress, timeout)
        if response.status != 206:
            have = 0  # the server ignored the Range request: fetch it whole
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else (total or size)
        with open(part, "ab" if have else "wb") as out, \
                tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                     desc=part.name[:-len(".part")], disable=not progress, leave=False) as bar:
            try:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    have += len(chunk)
                    bar.update(len(chunk))
            except (OSError, HTTPException) as err:
                raise DownloadError(f"{url}: connection lost after {have} bytes ({err}); "
                                    f"{part} is kept: run again to resume") from None
    if total is not None and have != total:
        raise DownloadError(f"{url}: got {have} of {total} bytes; {part} is kept: run again to resume")


def fetch(urls: str | Sequence[str], dest: str | Path, *, size: int | None = None, progress: bool = True,
          timeout: float = 60.0) -> str:
    """Download a file over HTTP(S), resuming a previous partial download.

    Bytes go to ``dest.part``; an existing part is continued with an HTTP ``Range`` request
    (a server that answers 200 instead of 206 restarts it), and ``dest.part`` becomes ``dest``
    only when the byte count matches ``Content-Length``. An interrupted transfer leaves the
    part in place and raises ``DownloadError``.

    Args:
        urls: the URL, or URLs tried in order (mirrors of the same bytes).
        dest: the final path.
        size: the expected size in bytes, if known (a longer part is discarded).
        progress: show a tqdm bar.
        timeout: seconds to wait on the network before giving up on a URL.

    Returns:
        The URL that served the file.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    errors = []
    for url in [urls] if isinstance(urls, str) else list(urls):
        try:
            _fetch_one(url, part, size, progress, timeout)
        except DownloadError as err:
            errors.append(str(err))
            continue
        os.replace(part, dest)
        return url
    raise DownloadError("; ".join(errors) if errors else f"{dest.name}: no URL to fetch from")


# ---------------------------------------------------------------- checksums


class DigestCheck(NamedTuple):
    """The SHA-256 of a checked file and what it was checked against."""

    sha256: str
    against: str  # "published", "--sha256", "recorded" or "recorded now (trust on first use)"


def _read_ledger(path: Path) -> dict:
    if not path.exists():
        return {"files": {}}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err}); fix or delete it") from None


def _write_ledger(path: Path, ledger: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(ledger, indent=1, sort_keys=True) + "\n")


def _digests(path: Path) -> tuple[str, str]:
    sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            sha256.update(block)
            md5.update(block)
    return sha256.hexdigest(), md5.hexdigest()


def check_digest(path: str | Path, item: Download, *, ledger: str | Path, key: str, sha256: str | None = None,
                 url: str | None = None) -> DigestCheck:
    """Check a downloaded file's size and digests; record its SHA-256 in the ledger.

    The SHA-256 is compared with, in order of precedence, ``sha256`` (a user override), the
    published ``item.sha256``, or the value recorded in ``ledger`` by an earlier run. With none
    of them the digest is recorded now (trust on first use). A published ``item.md5`` is checked
    too unless overridden. On a mismatch the file is deleted and ``DownloadError`` raised.

    Args:
        path: the downloaded file.
        item: its ``Download`` entry (size and published digests).
        ledger: the JSON file of recorded digests (``<root>/.paperlib-downloads.json``).
        key: the file's key in the ledger (``<dataset>/<filename>``).
        sha256: a SHA-256 that overrides every other.
        url: where the file came from, stored in the ledger.

    Returns:
        ``DigestCheck(sha256, against)``.
    """
    path, ledger = Path(path), Path(ledger)
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise InputError(f"--sha256 for {item.filename} must be 64 hex digits, got {sha256!r}")
    records = _read_ledger(ledger)
    recorded = records["files"].get(key, {}).get("sha256")
    if sha256:
        expected, against = sha256.lower(), "--sha256"
    elif item.sha256:
        expected, against = item.sha256, "published"
    else:
        expected, against = recorded, "recorded" if recorded else None

    def reject(what: str) -> None:
        path.unlink()
        raise DownloadError(f"{item.filename}: {what}; the file was deleted. Run again to fetch it "
                            f"anew, or pass --sha256 if the publisher has changed it")

    actual_size = path.stat().st_size
    if item.size is not None and sha256 is None and actual_size != item.size:
        reject(f"{actual_size} bytes, expected {item.size}")
    actual, actual_md5 = _digests(path)
    if expected is not None and actual != expected:
        reject(f"SHA-256 {actual} does not match the {against} {expected}")
    if item.md5 is not None and sha256 is None and actual_md5 != item.md5:
        reject(f"MD5 {actual_md5} does not match the published {item.md5}")
    if actual != recorded:
        records["files"][key] = {"sha256": actual, "size": actual_size, "url": url,
                                 "checked_against": against or "nothing (first use)",
                                 "date": datetime.date.today().isoformat()}
        _write_ledger(ledger, records)
    return DigestCheck(actual, against or "recorded now (trust on first use)")


# ---------------------------------------------------------------- safe extraction


def _member_target(dest: Path, name: str, archive: Path) -> Path:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or re.match(r"[A-Za-z]:", name) or ".." in pure.parts:
        raise InputError(f"{archive}: member {name!r} would be written outside the target folder; "
                         f"refusing to extract this archive")
    return dest.joinpath(*pure.parts)


def _refuse_link(archive: Path, name: str, kind: str, target: str = "") -> None:
    arrow = f" -> {target!r}" if target else ""
    raise InputError(f"{archive}: member {name!r} is a {kind}{arrow}; dataset archives hold plain "
                     f"files only, refusing to extract this archive")


def _skipped(name: str) -> bool:
    """macOS resource forks that some of these zips carry (``__MACOSX/``)."""
    return name.startswith("__MACOSX/") or "/__MACOSX/" in name


def _write_members(plan: list, open_member, desc: str, progress: bool) -> int:
    """Write checked members: ``plan`` holds (target path, member, is a folder)."""
    from tqdm.auto import tqdm

    written = 0
    for target, member, is_dir in tqdm(plan, desc=desc, disable=not progress, leave=False):
        if is_dir:
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with open_member(member) as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out, _CHUNK)
        written += 1
    return written


def extract_archive(archive: str | Path, dest: str | Path, *, progress: bool = False) -> int:
    """Unpack a zip or tar (any compression) into ``dest``, refusing unsafe members.

    Every member is checked before anything is written: an absolute path, a ``..`` component,
    a symbolic or hard link, or a device/FIFO member raises ``InputError`` naming it. The
    archive type is read from its content, not its name. ``__MACOSX/`` members are skipped.

    Args:
        archive: the zip or tar file.
        dest: the folder to unpack into (created if needed).
        progress: show a tqdm bar over the members.

    Returns:
        The number of files written.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            plan = []
            for m in zf.infolist():
                if _skipped(m.filename):
                    continue
                target = _member_target(dest, m.filename, archive)
                if stat.S_ISLNK(m.external_attr >> 16):
                    _refuse_link(archive, m.filename, "symbolic link")
                plan.append((target, m, m.is_dir()))
            return _write_members(plan, zf.open, archive.name, progress)
    if not tarfile.is_tarfile(archive):
        raise InputError(f"{archive}: neither a zip nor a tar archive")
    with tarfile.open(archive) as tf:
        plan = []
        for m in tf.getmembers():
            if _skipped(m.name):
                continue
            target = _member_target(dest, m.name, archive)
            if m.issym() or m.islnk():
                _refuse_link(archive, m.name, "symbolic link" if m.issym() else "hard link", m.linkname)
            if not (m.isfile() or m.isdir()):
                _refuse_link(archive, m.name, "device or FIFO")
            plan.append((target, m, m.isdir()))
        return _write_members(plan, tf.extractfile, archive.name, progress)


# ---------------------------------------------------------------- layout


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
    verify: "VerifyReport"

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
        name: one of ``NAMES`` (duts-tr, duts-te, dut-omron, ecssd, voc07, voc12, coco20k).
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
    name = _check_name(name)
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


# ---------------------------------------------------------------- verification


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
    expect_complete: bool = True

    @property
    def complete(self) -> bool:
        return self.found >= self.expected

    @property
    def clean(self) -> bool:
        return not (self.missing or self.images_only or self.masks_only or self.unreadable
                    or self.size_mismatches)

    @property
    def ok(self) -> bool:
        return self.clean and (self.complete or not self.expect_complete)

    def lines(self) -> list[str]:
        """Human-readable lines: the count, each kind of problem, and a verdict."""
        state = "complete" if self.complete else f"INCOMPLETE ({self.expected - self.found} missing: a subset?)"
        out = [f"{self.name} at {self.folder}: {self.found} of {self.expected} expected items, {state}"]
        if self.synthetic:
            out.append(f"  SYNTHETIC data ({self.folder} carries a SYNTHETIC.json): not the real {self.name}")

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
            out.append("  every item found is readable and consistent")
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
                  synthetic=find_synthetic_marker(folders, root) is not None)
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
                synthetic=(folder / "SYNTHETIC.json").is_file() or (root / "SYNTHETIC.json").is_file())


def verify(name: str, root: str | Path, *, expect_complete: bool = True, decode: bool = False,
           progress: bool = False) -> VerifyReport:
    """Check a dataset on disk: counts, pairing, readability and sizes.

    Saliency sets: every image and mask is opened with PIL (header check; ``decode=True`` reads
    the pixels too, slower but catches truncated JPEGs) and their sizes (EXIF orientation applied)
    compared. VOC: the ``trainval`` ids each need a JPEG and an XML whose ``<size>`` matches the
    image. COCO20K: every listed file must exist and open, beside ``instances_train2014.json``.

    Args:
        name: one of ``NAMES``.
        root: the data root (as given to :func:`download`).
        expect_complete: if False, a clean subset counts as ``ok``.
        decode: decode every image fully instead of checking headers.
        progress: show a tqdm bar.

    Returns:
        ``VerifyReport``; its ``lines()`` are for printing, ``ok`` for the exit code.

    Raises:
        InputError: the dataset is not under ``root`` at all (the message says where it was
            looked for); a dataset found with a folder missing is reported instead.
    """
    name = _check_name(name)
    root = Path(root)
    check = _verify_saliency if name in DATASETS else _verify_detection
    return VerifyReport(name=name, expect_complete=expect_complete, **check(name, root, decode, progress))
