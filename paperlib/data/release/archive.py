"""Safe unpacking of dataset archives: zip or tar, every member checked before anything is written.

Public API
----------
``extract_archive(archive, dest, *, progress=False, limits=LIMITS) -> int``
    unpack a zip or tar (any compression, type read from the content) into ``dest``; refuses
    absolute paths, ``..`` components, symbolic and hard links, devices and FIFOs, a name given
    twice, more members or more bytes than ``limits`` allows, and zip members that expand far
    beyond their stored size (a zip bomb), with an ``ArchiveError`` naming the member; a damaged
    archive is one line too; skips ``__MACOSX/`` resource forks; returns the number of files
    written.
``ArchiveError``
    the ``InputError`` raised when the archive itself is at fault.

:func:`paperlib.data.release.download.download` unpacks every fetched archive with it.
"""

from __future__ import annotations

import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ...checks import InputError

_CHUNK = 1 << 20  # bytes copied at a time from a member to its file


@dataclass(frozen=True)
class UnpackLimits:
    """What an archive may hold before it is refused unread: sizes far past any official archive's."""

    max_members: int = 1_000_000      # COCO's train2014 zip, the largest here, holds 82,783 files
    max_bytes: int = 64 << 30         # 64 GiB unpacked; COCO train2014 is 13 GiB
    max_ratio: float = 200.0          # unpacked / stored size of one zip member; JPEGs and PNGs barely
    ratio_floor: int = 1 << 20        # compress, so only members over 1 MiB are held to the ratio


LIMITS = UnpackLimits()


class ArchiveError(InputError):
    """The archive itself is at fault (unsafe, damaged, over a limit, not an archive), as opposed
    to the place it is unpacked into (a full disk, no permission): a download sets such a file
    aside and fetches it anew."""
# Reading a damaged archive raises any of these, from the container or the decompressor.
_DAMAGED = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error)


def _member_target(dest: Path, name: str, archive: Path) -> Path:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or re.match(r"[A-Za-z]:", name) or ".." in pure.parts:
        raise ArchiveError(f"{archive}: member {name!r} would be written outside the target folder; "
                           f"refusing to extract this archive")
    return dest.joinpath(*pure.parts)


def _refuse_link(archive: Path, name: str, kind: str, target: str = "") -> None:
    arrow = f" -> {target!r}" if target else ""
    raise ArchiveError(f"{archive}: member {name!r} is a {kind}{arrow}; dataset archives hold plain "
                       f"files only, refusing to extract this archive")


def _check_plan(archive: Path, plan: list, sizes: list[tuple[str, int, int | None]], limits: UnpackLimits) -> None:
    """Refuse duplicate names, too many members, too many bytes, and zip members that balloon.

    ``sizes`` holds (name, unpacked bytes, stored bytes or None for tar) per file member.
    """
    seen: dict[Path, str] = {}
    files: dict[Path, str] = {}
    for target, member, is_dir in plan:
        name = getattr(member, "filename", None) or member.name
        key = Path(str(target).rstrip("/"))
        if key in seen:
            raise ArchiveError(f"{archive}: member {name!r} appears twice; refusing an archive whose "
                               f"files would overwrite each other")
        seen[key] = name
        if not is_dir:
            files[key] = name
    for key, name in seen.items():
        clash = next((files[p] for p in key.parents if p in files), None)
        if clash is not None:
            raise ArchiveError(f"{archive}: member {name!r} lies inside {clash!r}, which is a file; "
                               f"refusing an archive whose members contradict each other")
    if len(plan) > limits.max_members:
        raise ArchiveError(f"{archive}: {len(plan)} members, more than the {limits.max_members} allowed; "
                           f"this is not a dataset archive")
    total = sum(size for _, size, _ in sizes)
    if total > limits.max_bytes:
        raise ArchiveError(f"{archive}: would unpack to {total / 2**30:.1f} GiB, more than the "
                           f"{limits.max_bytes / 2**30:.0f} GiB allowed; refusing it")
    for name, size, stored in sizes:
        if stored is not None and size > limits.ratio_floor and size > limits.max_ratio * max(stored, 1):
            raise ArchiveError(f"{archive}: member {name!r} expands {size / max(stored, 1):.0f}-fold "
                               f"({stored} -> {size} bytes), a zip bomb's ratio; refusing it")


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


def extract_archive(archive: str | Path, dest: str | Path, *, progress: bool = False,
                    limits: UnpackLimits = LIMITS) -> int:
    """Unpack a zip or tar (any compression) into ``dest``, refusing unsafe members.

    Every member is checked before anything is written: an absolute path, a ``..`` component,
    a symbolic or hard link, or a device/FIFO member raises ``InputError`` naming it. The
    archive type is read from its content, not its name. ``__MACOSX/`` members are skipped.
    Faults of the archive raise :class:`ArchiveError` (an ``InputError``); a failure to write
    into ``dest`` raises a plain ``InputError`` naming the place.

    Args:
        archive: the zip or tar file.
        dest: the folder to unpack into (created if needed).
        progress: show a tqdm bar over the members.
        limits: the most members, bytes and zip expansion accepted (:data:`LIMITS`).

    Returns:
        The number of files written.
    """
    archive, dest = Path(archive), Path(dest)
    try:
        return _extract(archive, dest, progress, limits)
    except InputError:
        raise
    except _DAMAGED as err:
        raise ArchiveError(f"{archive}: damaged archive ({type(err).__name__}: {err}); fetch it again") from None
    except OSError as err:   # a file where a folder belongs, a full disk, no permission
        where = err.filename or dest
        raise InputError(f"{archive}: unpacking into {dest} failed at {where} ({err.strerror or err})") from None


def _extract(archive: Path, dest: Path, progress: bool, limits: UnpackLimits) -> int:
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
            _check_plan(archive, plan, [(m.filename, m.file_size, m.compress_size)
                                        for _, m, is_dir in plan if not is_dir], limits)
            return _write_members(plan, zf.open, archive.name, progress)
    if not tarfile.is_tarfile(archive):
        raise ArchiveError(f"{archive}: neither a zip nor a tar archive")
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
        _check_plan(archive, plan, [(m.name, m.size, None) for _, m, is_dir in plan if not is_dir], limits)
        return _write_members(plan, tf.extractfile, archive.name, progress)
