"""Fetching the datasets from their official sources, checking them, laying them out.

Public API
----------
``download(name, root, *, progress=True, sha256=None, mirror=None, keep_archives=False)``
    ``-> DownloadReport``: fetch, check, unpack and lay out one dataset under ``root``;
    a second run with everything present fetches nothing and only verifies
    (:func:`paperlib.verify.verify`).
``fetch(urls, dest, *, size=None, progress=True, timeout=60.0) -> str``
    resumable HTTP GET (``Range``) into ``dest`` via ``dest.part``; returns the URL that served.
``check_digest(path, item, *, ledger, key, sha256=None, url=None) -> DigestCheck``
    published SHA-256 / MD5, or trust on first use recorded in ``<root>/.paperlib-downloads.json``.
``DownloadError`` (an ``InputError``). The names and their files are in :mod:`paperlib.sources`;
archives are unpacked by :func:`paperlib.archive.extract_archive`, which refuses unsafe members.

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
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import Mapping, NamedTuple, Sequence

from . import __version__
from .archive import extract_archive
from .data import DATASETS, Download
from .images import atomic_path
from .sources import SOURCES, check_name
from .validation import InputError
from .verify import VerifyReport, verify

LEDGER_NAME = ".paperlib-downloads.json"
ARCHIVE_DIR = "downloads"
_CHUNK = 1 << 20
_USER_AGENT = f"paperlib/{__version__} (urllib)"
_SHOWN = 5  # names an error message lists


class DownloadError(InputError):
    """A file that could not be fetched, or that did not match its checksum."""


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
