"""Safe unpacking of dataset archives: zip or tar, every member checked before anything is written.

Public API
----------
``extract_archive(archive, dest, *, progress=False) -> int``
    unpack a zip or tar (any compression, type read from the content) into ``dest``; refuses
    absolute paths, ``..`` components, symbolic and hard links, devices and FIFOs with an
    ``InputError`` naming the member; skips ``__MACOSX/`` resource forks; returns the number
    of files written.

:func:`paperlib.data.release.download.download` unpacks every fetched archive with it.
"""

from __future__ import annotations

import re
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from ...checks import InputError

_CHUNK = 1 << 20  # bytes copied at a time from a member to its file


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
