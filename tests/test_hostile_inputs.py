"""Hostile and odd input through the command line (issue 10): one line naming the culprit, exit 2.

Each case is a class of fault a careful user met: a threshold that links nothing, a device that
does not exist, a picture too large to decode, damaged or foreign weight and checkpoint files,
an internal failure. None may end in a traceback, a silent wrong number, or a lost file.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch

from paperlib.cli.main import EXIT_BAD_INPUT, EXIT_FAILED, main
from paperlib.images import write_image, write_mask_png


def _png_header_only(path, width: int, height: int) -> None:
    """A PNG that claims width x height pixels: enough for a decoder to decide, no pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)     # 8-bit grey
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))


@pytest.fixture
def photos(tmp_path, rng):
    img, masks = tmp_path / "img", tmp_path / "masks"
    for i in range(2):
        write_image(img / f"p{i}.png", rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
        write_mask_png(masks / f"p{i}.png", rng.random((48, 64)))
    return tmp_path


def _one_line(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("paperlib: error: ") and "Traceback" not in err[0]
    for needle in needles:
        assert needle in err[0], err[0]
    return err[0]


@pytest.mark.parametrize("tau", ["nan", "5", "inf", "-2"])
def test_a_tau_that_links_nothing_is_refused_before_any_image(photos, tau, capsys):
    argv = ["-q", "segment", str(photos / "img"), "--out", str(photos / "out"), "--backbone", "filterbank",
            "--tau", tau]
    assert main(argv) == EXIT_BAD_INPUT
    _one_line(capsys, "tau must be a cosine similarity")
    assert not (photos / "out").exists()


def test_a_device_that_does_not_exist_is_one_line(photos, capsys):
    argv = ["-q", "segment", str(photos / "img"), "--out", str(photos / "out"), "--backbone", "filterbank",
            "--device", "bogus"]
    assert main(argv) == EXIT_BAD_INPUT
    _one_line(capsys, "--device 'bogus'")


def test_a_picture_too_large_to_decode_is_refused_by_name(photos, capsys):
    _png_header_only(photos / "img" / "p0.png", 15000, 15000)        # 225 Mpx: PIL's bomb limit
    argv = ["-q", "refine", "--images", str(photos / "img"), "--masks", str(photos / "masks"),
            "--out", str(photos / "out")]
    assert main(argv) == EXIT_BAD_INPUT
    _one_line(capsys, "p0.png", "too large to decode safely")


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04\x14\x00torn"])
def test_resuming_from_a_damaged_checkpoint_is_one_line(tmp_path, content, capsys):
    from paperlib.data.synth import synthesize

    synthesize(tmp_path / "data", n=4, seed=0, split="tr", progress=False)
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(content)
    argv = ["-q", "train", "--preset", "smoke", "--data-root", str(tmp_path / "data"), "--out", str(run), "--resume"]
    assert main(argv) == EXIT_BAD_INPUT
    _one_line(capsys, "last.pt: cannot be read as a training checkpoint")
    assert (run / "last.pt").read_bytes() == content                  # left as it was, for the user


@pytest.fixture(scope="module")
def nan_weights(tmp_path_factory):
    """An official-format ViT-S/16 file of random weights with one NaN tensor, and a text file."""
    from paperlib.backbones.registry import load_backbone

    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    state = load_backbone("dino_vits16", _random_init=True).model.state_dict()
    state["blocks.3.attn.qkv.weight"][0, 0] = float("nan")
    torch.save(state, folder / "nan.pth")
    (folder / "notes.txt").write_text("these are my notes, not weights\n")
    return folder


@pytest.mark.parametrize("name, needle", [("nan.pth", "blocks.3.attn.qkv.weight"), ("notes.txt", "notes.txt")])
def test_damaged_or_foreign_weights_are_one_line(photos, nan_weights, name, needle, capsys):
    argv = ["-q", "segment", str(photos / "img"), "--out", str(photos / "out"), "--backbone", "dino_vits16",
            "--weights", str(nan_weights / name)]
    assert main(argv) == EXIT_BAD_INPUT
    _one_line(capsys, needle)
    assert not (photos / "out").exists()                              # no mask written from NaN features


def test_an_internal_failure_is_one_line_and_debug_shows_the_traceback(photos, monkeypatch, capsys):
    import paperlib.refine.masks as masks

    def broken(*args, **kwargs):
        raise RuntimeError("something inside broke\nsecond line")

    monkeypatch.setattr(masks, "refine_folder", broken)
    argv = ["refine", "--images", str(photos / "img"), "--masks", str(photos / "masks"), "--out", str(photos / "o")]
    assert main(["-q", *argv]) == EXIT_FAILED
    _one_line(capsys, "RuntimeError: something inside broke", "--debug")
    with pytest.raises(RuntimeError, match="something inside broke"):
        main(["-q", "--debug", *argv])


@pytest.mark.parametrize("radii, needle", [("0", "radii must be >= 1"), ("2,2", "must not repeat a value"),
                                           ("-1", "radius must be >= 0")])
def test_a_sweep_grid_that_cannot_be_tabled_is_one_line(tmp_path, radii, needle, capsys):
    """--radii 0 used to end in pandas' InvalidIndexError: radius 0 is the row every sweep starts from."""
    from paperlib.data.synth import synthesize

    synthesize(tmp_path / "d", n=2, seed=0, split="te", progress=False)
    argv = ["-q", "gf-sweep", "--dataset", "duts-te", "--root", str(tmp_path / "d"), "--radii", radii,
            "--csv", str(tmp_path / "x.csv")]
    assert main(argv) == EXIT_BAD_INPUT
    _one_line(capsys, needle)
    assert not (tmp_path / "x.csv").exists()


def _hostile_archives() -> dict[str, tuple[bytes, str]]:
    """Archives a mirror, a captive portal or a bad disk could hand a user, with what the refusal says."""
    import io
    import zipfile

    from archive_builders import make_tar, make_zip

    dup = io.BytesIO()
    with zipfile.ZipFile(dup, "w") as zf, pytest.warns(UserWarning):
        zf.writestr("DUTS-TE/DUTS-TE-Image/a.jpg", b"first")
        zf.writestr("DUTS-TE/DUTS-TE-Image/a.jpg", b"second")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("DUTS-TE/DUTS-TE-Image/zeros.jpg", bytes(4 << 20))
    good = make_zip({"DUTS-TE/DUTS-TE-Image/a.jpg": b"x" * 5000, "DUTS-TE/DUTS-TE-Mask/a.png": b"y" * 5000})
    return {
        "captive portal page": (b"<html><body>Please log in</body></html>", "neither a zip nor a tar"),
        "cut short": (good[:len(good) // 2], "DUTS-TE.zip: "),
        "escaping member": (make_zip({"../../evil.sh": b"rm -rf ~"}), "would be written outside"),
        "tar link": (make_tar({}, links={"DUTS-TE": (b"2", "/etc")}), "symbolic link"),
        "name twice": (dup.getvalue(), "appears twice"),
        "zip bomb": (bomb.getvalue(), "zip bomb"),
        "file for a folder": (make_zip({"DUTS-TE/DUTS-TE-Image": b"f", "DUTS-TE/DUTS-TE-Mask/a.png": b"m"}),
                              "expected the folder 'DUTS-TE' holding DUTS-TE-Image"),
    }


@pytest.mark.parametrize("case", list(_hostile_archives()))
def test_a_hostile_archive_given_to_download_is_one_line_and_loses_nothing(tmp_path, case, capsys):
    """``data download --archive``: one line naming the user's file (never a working folder), exit
    2, the user's file untouched, nothing unpacked, no digest trusted, no working folder left."""
    import json

    data, needle = _hostile_archives()[case]
    given = tmp_path / "by_hand" / "DUTS-TE.zip"
    given.parent.mkdir()
    given.write_bytes(data)
    root = tmp_path / "root"
    assert main(["-q", "data", "download", "duts-te", "--root", str(root), "--archive", str(given)]) == EXIT_BAD_INPUT
    line = _one_line(capsys, f"--archive {given}", needle, "left as it is")
    assert ".paperlib-" not in line
    assert given.read_bytes() == data                                          # the user's file as it was
    assert not (root / "DUTS-TE").exists() and not list(root.glob(".paperlib-*"))
    ledger = root / ".paperlib-downloads.json"
    assert not ledger.exists() or not json.loads(ledger.read_text())["files"]   # nothing trusted
    assert not (tmp_path / "evil.sh").exists() and not (tmp_path.parent / "evil.sh").exists()


# ------------------------------------------------------------- found by a second hostile-input probe

def test_an_infinite_eps_is_refused_by_name(photos, capsys):
    """eps = inf turned the guided filter into a box blur and exited 0."""
    argv = ["-q", "refine", "--images", str(photos / "img"), "--masks", str(photos / "masks"),
            "--out", str(photos / "out"), "--eps", "inf"]
    assert main(argv) == EXIT_BAD_INPUT
    _one_line(capsys, "eps must be > 0 and finite, got inf")
    assert not (photos / "out").exists()


def test_a_nan_mask_is_named_by_its_file(photos, capsys):
    from PIL import Image

    nan = photos / "nan"
    nan.mkdir()
    for i in range(2):
        Image.fromarray(np.full((48, 64), np.nan, np.float32), mode="F").save(nan / f"p{i}.tiff")
    assert main(["-q", "refine", "--images", str(photos / "img"), "--masks", str(nan),
                 "--out", str(photos / "out")]) == EXIT_BAD_INPUT
    _one_line(capsys, str(nan / "p0.tiff"), "non-finite")
    assert main(["-q", "eval-masks", "--pred", str(nan), "--gt", str(photos / "masks")]) == EXIT_BAD_INPUT
    _one_line(capsys, str(nan / "p0.tiff"), "NaN")


def test_an_image_too_small_for_the_backbone_is_named(tmp_path, capsys):
    write_image(tmp_path / "img" / "dot.png", np.zeros((1, 1, 3), np.uint8))
    argv = ["-q", "segment", str(tmp_path / "img"), "--out", str(tmp_path / "out"), "--backbone", "filterbank"]
    assert main(argv) == EXIT_BAD_INPUT
    _one_line(capsys, str(tmp_path / "img" / "dot.png"))


def test_warnings_are_one_line_each(photos, capsys):
    """A 16-bit mask, and a colour photo given as a mask: one 'paperlib: warning:' line per file,
    no source path or code line."""
    from PIL import Image

    sixteen, colour = photos / "sixteen", photos / "colour"
    sixteen.mkdir()
    for i in range(2):
        Image.fromarray((np.arange(48 * 64).reshape(48, 64) % 256).astype(np.uint16)).save(sixteen / f"p{i}.png")
    assert main(["-q", "eval-masks", "--pred", str(sixteen), "--gt", str(photos / "masks")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("paperlib: warning: ") and "16-bit" in line for line in err), err
    assert main(["-q", "eval-masks", "--pred", str(photos / "masks"), "--gt", str(photos / "img")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("a colour picture, not a mask" in line for line in err), err
    assert main(["-q", "eval-masks", "--pred", str(photos / "masks"), "--gt", str(photos / "masks")]) == 0
    assert capsys.readouterr().err == ""                      # grey masks: no warning


def test_a_synthetic_set_too_large_to_plan_is_refused_by_name(tmp_path, capsys):
    """--n 10**12 ended in a MemoryError (exit 3) after trying to allocate 7 TiB."""
    assert main(["-q", "data", "synth", "--out", str(tmp_path / "s"), "--n", str(10**12)]) == EXIT_BAD_INPUT
    _one_line(capsys, "n must be an integer in [1, 100000]")
    assert not (tmp_path / "s").exists()
