"""Resumable HTTP(S) downloads of single files.

Public API
----------
``fetch(urls, dest, *, size=None, progress=True, timeout=60.0) -> str``
    resumable HTTP GET (``Range``) into ``dest`` via ``dest.part``; returns the URL that served.
``DownloadError`` (an ``InputError``)
    a file that could not be fetched, or (raised by :mod:`paperlib.data.release.checksums`) that did not
    match its checksum.

Nothing here prints except a tqdm progress bar. An interrupted transfer keeps its ``.part`` file
so that the next call resumes it; :func:`paperlib.data.release.download.download` fetches datasets with it.
"""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from http.client import HTTPException
from pathlib import Path
from typing import Sequence

from ... import __version__
from ...checks import InputError

_CHUNK = 1 << 20  # bytes read from the connection at a time
_USER_AGENT = f"paperlib/{__version__} (urllib)"


class DownloadError(InputError):
    """A file that could not be fetched, or that did not match its checksum."""


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
