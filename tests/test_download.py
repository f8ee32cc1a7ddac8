"""paperlib.data.release.download: layout, idempotence, checksums and resumption as download() uses them
(the fetch itself is in test_fetch.py, digests in test_checksums.py, verification in
test_verify.py, the registry in test_sources.py, safe extraction in test_archive.py).

Nothing here touches the internet: files come from the local server of local_server.py and
downloads go through ``mirror=``.
"""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from archive_builders import make_tar, make_zip
from local_server import server, sha  # noqa: F401 (server is a fixture)
from PIL import Image

from paperlib.checks import InputError
from paperlib.data.release.download import LEDGER_NAME, download
from paperlib.data.release.fetch import DownloadError
from paperlib.data.saliency import DATASETS, open_dataset

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
    with pytest.raises(InputError, match=r"expected the folder 'DUTS-TE' holding DUTS-TE-Image/, "
                                         r"DUTS-TE-Mask/ inside, found 0 matches; top level holds other; moved to .*rejected/DUTS-TE.zip"):
        download("duts-te", tmp_path, mirror=server.url, progress=False)
    assert not (tmp_path / "DUTS-TE").exists() and not list(tmp_path.glob(".paperlib-unpack-*"))
    assert (tmp_path / "downloads" / "rejected" / "DUTS-TE.zip").read_bytes() == server.files["DUTS-TE.zip"]


def test_download_checksum_mismatch_sets_the_file_aside(server, tmp_path):
    serve_saliency(server, "duts-te", ["a"])
    with pytest.raises(DownloadError, match="does not match the --sha256 0000.*moved to .*downloads/rejected/"
                                            "DUTS-TE.zip. Run again to fetch it anew"):
        download("duts-te", tmp_path, sha256="0" * 64, mirror=server.url, progress=False)
    assert not (tmp_path / "downloads" / "DUTS-TE.zip").exists() and not (tmp_path / "DUTS-TE").exists()
    assert (tmp_path / "downloads" / "rejected" / "DUTS-TE.zip").read_bytes() == server.files["DUTS-TE.zip"]
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


# ---------------------------------------------------------------- archives fetched by hand (--archive)


def write_by_hand(folder, server, names) -> list:
    """The served files ``names`` written to ``folder`` as a user's browser would save them (read-only)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for filename in names:
        path = folder / filename
        path.write_bytes(server.files[filename])
        path.chmod(0o444)  # nothing may need to write it
        paths.append(path)
    return paths


def untouched(paths, server) -> bool:
    return all(p.read_bytes() == server.files[p.name] and p.stat().st_nlink == 1 for p in paths)


def test_archives_fetched_by_hand_take_the_download_path(server, tmp_path):
    serve_saliency(server, "ecssd", ["s1", "s2"])
    spec = DATASETS["ecssd"]
    given = write_by_hand(tmp_path / "by_hand", server, [d.filename for d in spec.downloads])
    report = download("ecssd", tmp_path / "root", archives=given, progress=False)
    assert not server.requests and untouched(given, server)          # read in place: no link left
    assert len(open_dataset("ecssd", tmp_path / "root")) == 2 and report.verify.clean
    ledger = json.loads((tmp_path / "root" / LEDGER_NAME).read_text())["files"]
    assert {k: (v["sha256"], v["url"]) for k, v in ledger.items()} == {
        f"ecssd/{p.name}": (sha(server.files[p.name]), p.resolve().as_uri()) for p in given}
    assert [line.endswith(f"from --archive {p}") for p, line in zip(given, report.lines())] == [True, True]
    assert sorted(p.name for p in (tmp_path / "root").iterdir()) == [".paperlib-downloads.json", "ECSSD"]
    # the same files over the mirror give the same layout, digests and verdict
    mirrored = download("ecssd", tmp_path / "mirrored", mirror=server.url, progress=False)
    assert [c.sha256 for _, c in mirrored.fetched] == [c.sha256 for _, c in report.fetched]
    assert (mirrored.verify.found, mirrored.verify.clean) == (report.verify.found, report.verify.clean)
    again = download("ecssd", tmp_path / "root", archives=given, progress=False)  # in place: only verified
    assert again.present == tuple(p.name for p in given) and not again.fetched and untouched(given, server)


def test_one_file_by_hand_and_the_other_from_the_mirror(server, tmp_path):
    serve_saliency(server, "ecssd", ["a", "b", "c"])
    given = write_by_hand(tmp_path / "by_hand", server, ["images.zip"])
    report = download("ecssd", tmp_path / "root", archives=given, mirror=server.url, progress=False)
    assert [name for name, _ in server.requests] == ["ground_truth_mask.zip"]
    assert report.archives == (("images.zip", given[0]),) and report.verify.found == 3


def test_an_archive_must_be_named_as_a_file_of_the_dataset(server, tmp_path):
    serve_saliency(server, "duts-te", ["a"])
    renamed = tmp_path / "DUTS-TE (1).zip"
    renamed.write_bytes(server.files["DUTS-TE.zip"])
    with pytest.raises(InputError, match=r"'DUTS-TE \(1\).zip' is not a file of duts-te; its files are DUTS-TE.zip"):
        download("duts-te", tmp_path / "root", archives=[renamed], progress=False)
    with pytest.raises(InputError, match="its files are images.zip, ground_truth_mask.zip"):
        download("ecssd", tmp_path / "root", archives=renamed, progress=False)
    with pytest.raises(InputError, match="DUTS-TE.zip: no such file"):
        download("duts-te", tmp_path / "root", archives=[tmp_path / "DUTS-TE.zip"], progress=False)
    copy = write_by_hand(tmp_path / "a", server, ["DUTS-TE.zip"]) + write_by_hand(tmp_path / "b", server, ["DUTS-TE.zip"])
    with pytest.raises(InputError, match="DUTS-TE.zip is given twice"):
        download("duts-te", tmp_path / "root", archives=copy, progress=False)
    assert not (tmp_path / "root").exists()                           # refused before anything is written


def test_an_archive_that_fails_its_check_is_refused_and_kept(server, tmp_path):
    serve_saliency(server, "duts-te", ["a"])
    download("duts-te", tmp_path, mirror=server.url, progress=False)  # records the digest (first use)
    shutil.rmtree(tmp_path / "DUTS-TE")
    serve_saliency(server, "duts-te", ["a", "b"])                     # the "same" file, other bytes
    given = write_by_hand(tmp_path / "by_hand", server, ["DUTS-TE.zip"])
    with pytest.raises(DownloadError, match=r"--archive .*DUTS-TE.zip: .*does not match the recorded .*"
                                            r"DUTS-TE.zip itself is left as it is"):
        download("duts-te", tmp_path, archives=given, progress=False)
    with pytest.raises(DownloadError, match="does not match the --sha256 0000"):
        download("duts-te", tmp_path, archives=given, sha256="0" * 64, progress=False)
    assert untouched(given, server) and not (tmp_path / "DUTS-TE").exists()
    assert not list(tmp_path.glob(".paperlib-archive-*")) and not (tmp_path / "downloads").exists()
    # a published size and digest (VOC07) are checked as for a download
    server.files["VOCtrainval_06-Nov-2007.tar"] = make_tar({"VOCdevkit/VOC2007/x": b"x"})
    voc = write_by_hand(tmp_path / "by_hand", server, ["VOCtrainval_06-Nov-2007.tar"])
    with pytest.raises(DownloadError, match="bytes, expected 460032000"):
        download("voc07", tmp_path, archives=voc, progress=False)
    assert untouched(voc, server)


def test_download_command_takes_archives(server, tmp_path, capsys):
    from paperlib.cli.main import main

    serve_saliency(server, "duts-te", ["a", "b"])
    given = write_by_hand(tmp_path / "by_hand", server, ["DUTS-TE.zip"])
    root = tmp_path / "root"
    assert main(["-q", "data", "download", "duts-te", "--root", str(root), "--archive", str(given[0])]) == 1
    out = capsys.readouterr().out                                     # 1: a clean set, but not all 5,019
    assert f"from --archive {given[0]}" in out and "2 of 5019 expected items" in out
    assert main(["-q", "data", "download", "ecssd", "--root", str(root), "--archive", str(given[0])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "its files are images.zip, ground_truth_mask.zip" in err[0]


@pytest.mark.parametrize("bad", [b"<html>captive portal</html>", b"PK\x03\x04 truncated"])
def test_a_bad_first_download_is_never_trusted(server, tmp_path, bad):
    """A file that does not unpack is not recorded: the good archive afterwards installs."""
    serve_saliency(server, "duts-te", ["s1", "s2"])
    good = server.files["DUTS-TE.zip"]
    server.files["DUTS-TE.zip"] = bad
    with pytest.raises(Exception):
        download("duts-te", tmp_path, mirror=server.url, progress=False)
    ledger = tmp_path / LEDGER_NAME
    assert not ledger.exists() or "duts-te/DUTS-TE.zip" not in json.loads(ledger.read_text())["files"]
    assert (tmp_path / "downloads" / "rejected" / "DUTS-TE.zip").read_bytes() == bad   # kept for inspection
    server.files["DUTS-TE.zip"] = good
    report = download("duts-te", tmp_path, mirror=server.url, progress=False)   # nothing to clear by hand
    assert report.verify.found == 2
    assert json.loads(ledger.read_text())["files"]["duts-te/DUTS-TE.zip"]["sha256"] == sha(good)


def test_a_killed_downloads_working_folders_are_removed_and_a_live_ones_kept(server, tmp_path):
    """SIGKILL mid-unpack left .paperlib-unpack-* folders that nothing removed (issue 10)."""
    import os
    import subprocess
    import sys

    from paperlib.data.release.download import remove_stale_staging

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)                            # a process that has exited
    leftover = tmp_path / f".paperlib-unpack-{dead_pid}-abc"
    (leftover / "DUTS-TE").mkdir(parents=True)
    (tmp_path / f".paperlib-archive-{dead_pid}-xyz").mkdir()
    live = tmp_path / f".paperlib-unpack-{os.getpid()}-def"   # a download running now
    live.mkdir()
    mine = tmp_path / ".paperlib-unpack-notes"                  # not a name paperlib makes
    mine.mkdir()
    assert sorted(p.name for p in remove_stale_staging(tmp_path)) == sorted(
        [leftover.name, f".paperlib-archive-{dead_pid}-xyz"])
    assert live.is_dir() and mine.is_dir() and not leftover.exists()
    serve_saliency(server, "duts-te", ["a"])
    (tmp_path / f".paperlib-unpack-{dead_pid}-again").mkdir()
    download("duts-te", tmp_path, mirror=server.url, progress=False)   # a download cleans up first
    assert not (tmp_path / f".paperlib-unpack-{dead_pid}-again").exists() and live.is_dir()


def test_an_archive_with_a_file_where_a_folder_belongs_is_set_aside_not_looped(server, tmp_path):
    """A zip holding a file named DUTS-TE-Image went round between "download it" and "already
    unpacked" (issue 10): now it is refused, set aside, and the next run fetches anew."""
    serve_saliency(server, "duts-te", ["a"])
    good = server.files["DUTS-TE.zip"]
    server.files["DUTS-TE.zip"] = make_zip({"DUTS-TE/DUTS-TE-Image": b"not a folder",
                                            "DUTS-TE/DUTS-TE-Mask/a.png": png_bytes(mode="L")})
    with pytest.raises(InputError, match=r"expected the folder 'DUTS-TE' holding .* inside, found 0 matches.*moved to "
                                         r".*rejected/DUTS-TE.zip") as err:
        download("duts-te", tmp_path, mirror=server.url, progress=False)
    assert ".paperlib-" not in str(err.value)                 # names no working folder
    assert not (tmp_path / "DUTS-TE").exists()
    server.files["DUTS-TE.zip"] = good
    assert download("duts-te", tmp_path, mirror=server.url, progress=False).verify.found == 1
    # a file the user put where the dataset goes is named, not taken for the dataset nor replaced
    shutil.rmtree(tmp_path / "DUTS-TE")
    (tmp_path / "DUTS-TE").write_text("my notes")
    with pytest.raises(DownloadError, match=r"DUTS-TE is a file where DUTS-TE.zip puts a folder; move it aside"):
        download("duts-te", tmp_path, mirror=server.url, progress=False)
    assert (tmp_path / "DUTS-TE").read_text() == "my notes"


def test_a_refused_archive_given_by_hand_is_named_as_the_user_knows_it(server, tmp_path):
    server.files["DUTS-TE.zip"] = make_zip({"DUTS-TE/DUTS-TE-Image/a.jpg": jpeg_bytes(), "../escape.txt": b"x"})
    given = write_by_hand(tmp_path / "by_hand", server, ["DUTS-TE.zip"])
    with pytest.raises(InputError) as err:
        download("duts-te", tmp_path / "root", archives=given, progress=False)
    message = str(err.value)
    assert message.startswith(f"--archive {given[0]}: member '../escape.txt'"), message   # named once
    assert ".paperlib-" not in message and message.endswith("itself is left as it is")
    assert untouched(given, server) and not list((tmp_path / "root").glob(".paperlib-*"))


def test_an_official_file_that_lacks_its_layout_is_kept_not_fetched_again(server, tmp_path):
    """A file matching its published SHA-256 is the official one: re-fetching cannot mend a layout
    change, so it stays in place and the message says to report it (a reviewer's case)."""
    bad = make_tar({"VOCdevkit/VOC2007/readme.txt": b"no JPEGImages here"})
    server.files["VOCtrainval_06-Nov-2007.tar"] = bad
    with pytest.raises(InputError, match="matches the --sha256 digest, so this is the file itself: kept at"):
        download("voc07", tmp_path, sha256=sha(bad), mirror=server.url, progress=False)
    assert (tmp_path / "downloads" / "VOCtrainval_06-Nov-2007.tar").read_bytes() == bad
    assert not (tmp_path / "downloads" / "rejected").exists()
