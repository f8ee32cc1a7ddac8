"""paperlib.download: resumable fetch, checksums, layout (verification is in test_verify.py, the
registry in test_sources.py, safe extraction in test_archive.py).

Nothing here touches the internet: files are served by a local http.server on 127.0.0.1 in a
thread that shuts itself down after a bounded time, and downloads go through ``mirror=``.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from paperlib.data import DATASETS, Download, open_dataset
from paperlib.download import LEDGER_NAME, DownloadError, check_digest, download, fetch
from paperlib.validation import InputError
from archive_builders import make_tar, make_zip


# ---------------------------------------------------------------- a local HTTP server


class _State:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.cut_after: int | None = None  # send this many body bytes once, then drop the connection
        self.ignore_range = False


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        state: _State = self.server.state
        name, wanted = self.path.lstrip("/"), self.headers.get("Range")
        state.requests.append((name, wanted))
        data = state.files.get(name)
        if data is None:
            self.send_error(404)
            return
        start = 0
        if wanted and not state.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", wanted)[1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if state.cut_after is not None:
            body, state.cut_after = body[:state.cut_after], None
            self.close_connection = True
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A file server on 127.0.0.1 (a daemon thread; a timer stops it after 60 s in any case)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = _State()
    httpd.state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    watchdog = threading.Timer(60.0, httpd.shutdown)
    thread.start()
    watchdog.start()
    yield httpd.state
    watchdog.cancel()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def payload(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


# ---------------------------------------------------------------- images and layouts built in the tests


def png_bytes(hw=(8, 10), value=None, mode="RGB", seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    shape = (*hw, 3) if mode == "RGB" else hw
    arr = rng.integers(0, 256, shape, dtype=np.uint8) if value is None else np.full(shape, value, np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(hw=(8, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (hw[1], hw[0]), (10, 200, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def saliency_members(image_dir: str, mask_dir: str, stems, hw=(8, 10)) -> dict[str, dict[str, bytes]]:
    images = {f"{image_dir}/{s}.jpg": jpeg_bytes(hw) for s in stems}
    masks = {f"{mask_dir}/{s}.png": png_bytes(hw, mode="L", seed=i) for i, s in enumerate(stems)}
    return images, masks


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- fetch


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


# ---------------------------------------------------------------- checksums


def _item(data: bytes, **kw) -> Download:
    return Download(urls=("http://example.invalid/f",), filename="f.bin", places=(("f.bin", "f.bin"),), **kw)


def test_check_digest_against_published_sha256_and_md5(tmp_path):
    data = b"dataset bytes"
    path, ledger = tmp_path / "f.bin", tmp_path / LEDGER_NAME
    path.write_bytes(data)
    check = check_digest(path, _item(data, sha256=sha(data), md5=hashlib.md5(data).hexdigest(), size=len(data)),
                         ledger=ledger, key="x/f.bin")
    assert check == (sha(data), "published")
    assert json.loads(ledger.read_text())["files"]["x/f.bin"]["sha256"] == sha(data)
    for bad, message in ((dict(sha256="0" * 64), "does not match the published 000"),
                         (dict(md5="0" * 32), "MD5 .* does not match the published 000"),
                         (dict(size=len(data) + 1), f"{len(data)} bytes, expected {len(data) + 1}")):
        path.write_bytes(data)
        with pytest.raises(DownloadError, match=message + ".*the file was deleted"):
            check_digest(path, _item(data, **bad), ledger=ledger, key="x/f.bin")
        assert not path.exists()


def test_check_digest_trusts_on_first_use_then_holds_to_it(tmp_path):
    path, ledger = tmp_path / "f.bin", tmp_path / LEDGER_NAME
    path.write_bytes(b"first")
    assert check_digest(path, _item(b""), ledger=ledger, key="k", url="http://u").against.startswith("recorded now")
    entry = json.loads(ledger.read_text())["files"]["k"]
    assert entry["sha256"] == sha(b"first") and entry["url"] == "http://u" and entry["size"] == 5
    assert check_digest(path, _item(b""), ledger=ledger, key="k") == (sha(b"first"), "recorded")
    path.write_bytes(b"changed")
    with pytest.raises(DownloadError, match="does not match the recorded"):
        check_digest(path, _item(b""), ledger=ledger, key="k")
    path.write_bytes(b"changed")  # an override wins over the record (and replaces it)
    assert check_digest(path, _item(b""), ledger=ledger, key="k", sha256=sha(b"changed").upper()).against == "--sha256"
    assert json.loads(ledger.read_text())["files"]["k"]["sha256"] == sha(b"changed")
    with pytest.raises(InputError, match="64 hex digits"):
        check_digest(path, _item(b""), ledger=ledger, key="k", sha256="abc")


# ---------------------------------------------------------------- download: layout and idempotence


def serve_saliency(server, name: str, stems, hw=(8, 10)) -> None:
    """Build fake official archives for ``name`` (same member layout as the real ones) and serve them."""
    spec = DATASETS[name]
    if name.startswith("duts"):
        folder = spec.downloads[0].places[0][0]  # DUTS-TE.zip holds DUTS-TE/{DUTS-TE-Image,DUTS-TE-Mask}/
        images, masks = saliency_members(f"{folder}/{folder}-Image", f"{folder}/{folder}-Mask", stems, hw)
        server.files[spec.downloads[0].filename] = make_zip({**images, **masks})
    else:  # one zip of images, one of masks, each unpacking as its own top folder
        images, masks = saliency_members(spec.downloads[0].places[0][0], spec.downloads[1].places[0][0], stems, hw)
        server.files[spec.downloads[0].filename] = make_zip(images)
        server.files[spec.downloads[1].filename] = make_zip({**masks, "__MACOSX/._junk": b"\0"})


@pytest.mark.parametrize("name", ["duts-te", "dut-omron", "ecssd"])
def test_download_lays_out_the_official_folders(server, tmp_path, name):
    serve_saliency(server, name, ["s1", "s2", "s3"])
    report = download(name, tmp_path, mirror=server.url, progress=False)
    spec = DATASETS[name]
    assert (tmp_path / spec.image_dir).is_dir() and (tmp_path / spec.mask_dir).is_dir()
    assert sorted(p.name for p in (tmp_path / spec.mask_dir).iterdir()) == ["s1.png", "s2.png", "s3.png"]
    assert not (tmp_path / "__MACOSX").exists() and not (tmp_path / "downloads").exists()
    assert not list(tmp_path.glob(".paperlib-unpack-*"))
    assert len(open_dataset(name, tmp_path)) == 3
    ledger = json.loads((tmp_path / LEDGER_NAME).read_text())["files"]
    assert {k: v["sha256"] for k, v in ledger.items()} == {
        f"{name}/{d.filename}": sha(server.files[d.filename]) for d in spec.downloads}
    assert [f for f, _ in report.fetched] == [d.filename for d in spec.downloads] and not report.present
    assert report.verify.found == 3 and report.verify.expected == spec.n_images
    assert report.verify.clean and not report.verify.complete and not report.ok
    assert any("recorded now (trust on first use)" in line for line in report.lines())

    n_requests = len(server.requests)
    again = download(name, tmp_path, mirror=server.url, progress=False)  # idempotent: only verifies
    assert len(server.requests) == n_requests and not again.fetched
    assert again.present == tuple(d.filename for d in spec.downloads) and again.verify == report.verify


def test_download_into_an_existing_duts_parent_is_not_repeated(server, tmp_path):
    serve_saliency(server, "duts-te", ["a"])
    download("duts-te", tmp_path / "DUTS", mirror=server.url, progress=False)
    again = download("duts-te", tmp_path, mirror=server.url, progress=False)  # finds root/DUTS/DUTS-TE
    assert again.present == ("DUTS-TE.zip",) and len(server.requests) == 1
    assert again.verify.folder == tmp_path / "DUTS" / "DUTS-TE"


def test_download_finds_the_expected_folder_below_a_wrapper(server, tmp_path):
    images, masks = saliency_members("release/images", "ground_truth_mask", ["a"])
    server.files["images.zip"], server.files["ground_truth_mask.zip"] = make_zip(images), make_zip(masks)
    download("ecssd", tmp_path, mirror=server.url, progress=False)
    assert (tmp_path / "ECSSD" / "images" / "a.jpg").is_file()
    server.files["DUTS-TE.zip"] = make_zip({"other/x.txt": b"x"})
    with pytest.raises(DownloadError, match=r"expected 'DUTS-TE' inside, found 0 matches; top level holds other"):
        download("duts-te", tmp_path, mirror=server.url, progress=False)
    assert not (tmp_path / "DUTS-TE").exists() and not list(tmp_path.glob(".paperlib-unpack-*"))


def test_download_checksum_mismatch_deletes_the_file(server, tmp_path):
    serve_saliency(server, "duts-te", ["a"])
    with pytest.raises(DownloadError, match="does not match the --sha256 0000.*the file was deleted"):
        download("duts-te", tmp_path, sha256="0" * 64, mirror=server.url, progress=False)
    assert not (tmp_path / "downloads" / "DUTS-TE.zip").exists() and not (tmp_path / "DUTS-TE").exists()
    report = download("duts-te", tmp_path, sha256=sha(server.files["DUTS-TE.zip"]), mirror=server.url,
                      progress=False)
    assert report.fetched[0][1].against == "--sha256"
    with pytest.raises(InputError, match="has 2 files .*give --sha256 as FILENAME=DIGEST"):
        download("ecssd", tmp_path, sha256="0" * 64, mirror=server.url, progress=False)
    with pytest.raises(InputError, match="--sha256 names nope.zip"):
        download("ecssd", tmp_path, sha256={"nope.zip": "0" * 64}, mirror=server.url, progress=False)
    serve_saliency(server, "ecssd", ["a"])
    with pytest.raises(DownloadError, match="images.zip: SHA-256 .* does not match the --sha256 0000"):
        download("ecssd", tmp_path, sha256="images.zip=" + "0" * 64, mirror=server.url, progress=False)


def test_download_holds_to_the_digest_recorded_on_first_use(server, tmp_path):
    serve_saliency(server, "duts-te", ["a"])
    download("duts-te", tmp_path, mirror=server.url, progress=False)
    shutil.rmtree(tmp_path / "DUTS-TE")
    serve_saliency(server, "duts-te", ["a", "b"])  # the "same" file now has other bytes
    with pytest.raises(DownloadError, match="does not match the recorded"):
        download("duts-te", tmp_path, mirror=server.url, progress=False)


def test_download_resumes_a_cut_archive(server, tmp_path):
    serve_saliency(server, "duts-te", ["a", "b"])
    server.cut_after = 100
    with pytest.raises(DownloadError, match="run again to resume"):
        download("duts-te", tmp_path, mirror=server.url, progress=False)
    assert (tmp_path / "downloads" / "DUTS-TE.zip.part").stat().st_size == 100
    report = download("duts-te", tmp_path, mirror=server.url, progress=False)
    assert server.requests[-1] == ("DUTS-TE.zip", "bytes=100-") and report.verify.found == 2


def test_download_refuses_an_unsafe_archive(server, tmp_path):
    server.files["DUTS-TE.zip"] = make_zip({"DUTS-TE/DUTS-TE-Image/a.jpg": jpeg_bytes(), "../../escape.txt": b"x"})
    with pytest.raises(InputError, match="'../../escape.txt' would be written outside"):
        download("duts-te", tmp_path, mirror=server.url, progress=False)
    assert not (tmp_path / "DUTS-TE").exists() and not (tmp_path.parent / "escape.txt").exists()


def test_download_voc_and_coco20k_layouts(server, tmp_path):
    jpg = jpeg_bytes((8, 10))
    xml = b"<annotation><size><width>10</width><height>8</height><depth>3</depth></size></annotation>"
    server.files["VOCtrainval_06-Nov-2007.tar"] = make_tar({
        "VOCdevkit/VOC2007/ImageSets/Main/trainval.txt": b"000005\n000007\n",
        **{f"VOCdevkit/VOC2007/JPEGImages/{i}.jpg": jpg for i in ("000005", "000007")},
        **{f"VOCdevkit/VOC2007/Annotations/{i}.xml": xml for i in ("000005", "000007")}})
    names = [f"train2014/COCO_train2014_{i:012d}.jpg" for i in (9, 25)]
    server.files.update({
        "train2014.zip": make_zip({n: jpg for n in names}),
        "annotations_trainval2014.zip": make_zip({"annotations/instances_train2014.json": b"{}"}),
        "coco_20k_filenames.txt": "".join(n + "\n" for n in names).encode()})
    # The fakes differ from the published files: override the published digests (and sizes).
    voc = download("voc07", tmp_path, mirror=server.url, progress=False,
                   sha256=sha(server.files["VOCtrainval_06-Nov-2007.tar"]))
    assert (voc.verify.found, voc.verify.expected, voc.verify.clean) == (2, 5011, True)
    coco = download("coco20k", tmp_path, mirror=server.url, progress=False,
                    sha256={f: sha(server.files[f]) for f in ("train2014.zip", "annotations_trainval2014.zip")})
    assert (tmp_path / "COCO" / "coco_20k_filenames.txt").read_bytes() == server.files["coco_20k_filenames.txt"]
    assert (tmp_path / "COCO" / "annotations" / "instances_train2014.json").is_file()
    assert (coco.verify.found, coco.verify.expected, coco.verify.clean) == (2, 19817, True)
    assert dict(coco.fetched)["coco_20k_filenames.txt"].against.startswith("recorded now")


def test_published_size_is_checked_before_hashing(server, tmp_path):
    server.files["VOCtrainval_11-May-2012.tar"] = make_tar({"VOCdevkit/VOC2012/x": b"x"})
    with pytest.raises(DownloadError, match=r"bytes, expected 1999639040"):
        download("voc12", tmp_path, mirror=server.url, progress=False)
