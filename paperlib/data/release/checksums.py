"""Checking a downloaded file against its published digests, with a ledger of what was seen.

Public API
----------
``check_digest(path, item, *, ledger, key, sha256=None, url=None) -> DigestCheck``
    published SHA-256 / MD5, or trust on first use recorded in a JSON ledger
    (``<root>/.paperlib-downloads.json`` for :func:`paperlib.data.release.download.download`).
``DigestCheck``
    the file's SHA-256 and what it was checked against.
``set_aside(path) -> Path``
    move a rejected file into ``rejected/`` beside it (numbered, never over an earlier one).

A mismatch moves the complete-but-wrong file aside (a resumed download would stay wrong; nothing
is deleted, the user may want to inspect it or keep it) and raises
:class:`paperlib.data.release.fetch.DownloadError` saying where it went.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
from pathlib import Path
from typing import NamedTuple

from ...checks import InputError
from ...images import atomic_path
from ..saliency import Download
from .fetch import DownloadError

_CHUNK = 1 << 20  # bytes hashed at a time
REJECTED_DIR = "rejected"  # where set_aside puts a file that failed its check


class DigestCheck(NamedTuple):
    """The SHA-256 of a checked file and what it was checked against."""

    sha256: str
    against: str  # "published", "--sha256", "recorded" or "recorded now (trust on first use)"


def _read_ledger(path: Path) -> dict:
    if not path.exists():
        return {"files": {}}
    try:
        ledger = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err}); fix or delete it") from None
    entries = ledger.get("files") if isinstance(ledger, dict) else None
    if not (isinstance(entries, dict) and all(isinstance(v, dict) for v in entries.values())):
        raise InputError(f"{path}: not a paperlib checksum ledger (expected {{\"files\": {{name: {{sha256, ...}}}}}}); "
                         f"fix or delete it")
    return ledger


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


def set_aside(path: str | Path) -> Path:
    """Move a rejected file to ``<its folder>/rejected/<name>`` and return where it went.

    An earlier file of that name there is kept: the new one gets ``<name>.1``, ``<name>.2``...
    """
    path = Path(path)
    folder = path.parent / REJECTED_DIR
    folder.mkdir(exist_ok=True)
    target, n = folder / path.name, 0
    while target.exists():
        n += 1
        target = folder / f"{path.name}.{n}"
    os.replace(path, target)
    return target


def check_digest(path: str | Path, item: Download, *, ledger: str | Path, key: str, sha256: str | None = None,
                 url: str | None = None, record: bool = True, move_aside: bool = True) -> DigestCheck:
    """Check a downloaded file's size and digests; record its SHA-256 in the ledger.

    The SHA-256 is compared with, in order of precedence, ``sha256`` (a user override), the
    published ``item.sha256``, or the value recorded in ``ledger`` by an earlier run. With none
    of them the digest is recorded now (trust on first use). A published ``item.md5`` is checked
    too unless overridden. On a mismatch the file is moved aside (:func:`set_aside`) and
    ``DownloadError`` raised naming where it went.

    Args:
        path: the downloaded file.
        item: its ``Download`` entry (size and published digests).
        ledger: the JSON file of recorded digests (``<root>/.paperlib-downloads.json``).
        key: the file's key in the ledger (``<dataset>/<filename>``).
        sha256: a SHA-256 that overrides every other.
        url: where the file came from, stored in the ledger.
        record: write a new or changed SHA-256 into the ledger now. ``False`` leaves that to the
            caller (:func:`record_digest`) once the file has proved good, so that a broken first
            download (a truncated zip, a captive portal's HTML page) is never trusted.
        move_aside: on a mismatch, move the file into ``rejected/``; ``False`` leaves it where it
            is and the message says nothing of it (for a caller that owns a disposable copy).

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
        if not move_aside:
            raise DownloadError(f"{item.filename}: {what}")
        moved = set_aside(path)
        raise DownloadError(f"{item.filename}: {what}; moved to {moved}. Run again to fetch it anew, "
                            f"or pass --sha256 if the publisher has changed it")

    actual_size = path.stat().st_size
    if item.size is not None and sha256 is None and actual_size != item.size:
        reject(f"{actual_size} bytes, expected {item.size}")
    actual, actual_md5 = _digests(path)
    if expected is not None and actual != expected:
        reject(f"SHA-256 {actual} does not match the {against} {expected}")
    if item.md5 is not None and sha256 is None and actual_md5 != item.md5:
        reject(f"MD5 {actual_md5} does not match the published {item.md5}")
    if actual != recorded and record:
        record_digest(ledger, key, sha256=actual, size=actual_size, url=url, against=against)
    return DigestCheck(actual, against or "recorded now (trust on first use)")


def record_digest(ledger: str | Path, key: str, *, sha256: str, size: int, url: str | None,
                  against: str | None) -> None:
    """Write a file's SHA-256 into the ledger (for :func:`check_digest` with ``record=False``, once
    the file is known to be good: unpacked and in place)."""
    ledger = Path(ledger)
    records = _read_ledger(ledger)
    records["files"][key] = {"sha256": sha256, "size": size, "url": url,
                             "checked_against": against or "nothing (first use)",
                             "date": datetime.date.today().isoformat()}
    _write_ledger(ledger, records)
