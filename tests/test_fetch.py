"""paperlib.data.release.fetch: resumable download of one file over HTTP, with mirrors tried in order.

Nothing here touches the internet: files come from the local server of local_server.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from local_server import server  # noqa: F401 (a fixture)

from paperlib.data.release.fetch import DownloadError, fetch


def payload(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()



def test_fetch_resumes_after_an_interrupted_transfer(server, tmp_path):
    data = payload(300_000)
    server.files["f.bin"] = data
    server.cut_after = 100_000
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match=r"got 100000 of 300000 bytes.*run again to resume"):
        fetch(f"{server.url}/f.bin", dest, progress=False)
    part = tmp_path / "f.bin.part"
    assert not dest.exists() and part.read_bytes() == data[:100_000]
    assert fetch(f"{server.url}/f.bin", dest, progress=False) == f"{server.url}/f.bin"
    assert dest.read_bytes() == data and not part.exists()
    assert server.requests == [("f.bin", None), ("f.bin", "bytes=100000-")]


def test_fetch_restarts_when_the_server_ignores_range(server, tmp_path):
    data = payload(50_000, seed=1)
    server.files["f.bin"] = data
    server.ignore_range = True
    (tmp_path / "f.bin.part").write_bytes(data[:20_000])
    fetch(f"{server.url}/f.bin", tmp_path / "f.bin", progress=False)
    assert server.requests == [("f.bin", "bytes=20000-")]  # asked to resume, got 200: started over
    assert (tmp_path / "f.bin").read_bytes() == data


def test_fetch_finishes_a_complete_part_and_discards_an_oversized_one(server, tmp_path):
    data = payload(4_000, seed=2)
    server.files["f.bin"] = data
    (tmp_path / "a.part").write_bytes(data)  # complete already: the server answers 416
    fetch(f"{server.url}/f.bin", tmp_path / "a", progress=False)
    assert (tmp_path / "a").read_bytes() == data and server.requests[-1] == ("f.bin", "bytes=4000-")
    (tmp_path / "b.part").write_bytes(payload(5_000, seed=3))  # longer than the known size
    fetch(f"{server.url}/f.bin", tmp_path / "b", size=len(data), progress=False)
    assert (tmp_path / "b").read_bytes() == data and server.requests[-1] == ("f.bin", None)


def test_fetch_tries_mirrors_in_order_and_reports_failures(server, tmp_path):
    server.files["ok.bin"] = b"hello"
    used = fetch([f"{server.url}/gone.bin", f"{server.url}/ok.bin"], tmp_path / "x", progress=False)
    assert used.endswith("/ok.bin") and (tmp_path / "x").read_bytes() == b"hello"
    with pytest.raises(DownloadError, match=r"gone.bin: HTTP 404"):
        fetch(f"{server.url}/gone.bin", tmp_path / "y", progress=False)
    assert not (tmp_path / "y").exists()

