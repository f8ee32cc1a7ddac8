"""The command line: exit codes, one-line errors, eval-masks and refine end to end."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np
import pytest

from paperlib.checks import InputError
from paperlib.cli.main import build_parser, main
from paperlib.images import read_mask, write_image, write_mask_png
from paperlib.refine.settings import PAPER_GF, check_radius


@pytest.fixture
def folders(tmp_path, rng):
    """Three images with ground truth and an imperfect prediction each."""
    img, gt, pred = tmp_path / "img", tmp_path / "gt", tmp_path / "pred"
    for i in range(3):
        mask = np.zeros((40, 50))
        mask[8 + i:30, 10:35 + i] = 1.0
        write_image(img / f"im{i}.png", rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
        write_mask_png(gt / f"im{i}.png", mask)
        write_mask_png(pred / f"im{i}.png", np.roll(mask, 3, axis=1) * 0.9)
    return img, gt, pred


def test_eval_masks_perfect_prediction(folders, tmp_path, capsys):
    _, gt, _ = folders
    out = tmp_path / "s.json"
    assert main(["-q", "eval-masks", "--pred", str(gt), "--gt", str(gt), "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert summary["n_images"] == 3
    for key, value in (("acc", 1.0), ("iou", 1.0), ("max_fbeta", 1.0), ("mae", 0.0)):
        assert summary[key] == pytest.approx(value, abs=1e-9)
    assert "IoU" in capsys.readouterr().out


def test_eval_masks_matches_direct_metrics(folders, tmp_path):
    from paperlib.eval.metrics import SaliencyMetrics

    _, gt, pred = folders
    out, csv_path = tmp_path / "s.json", tmp_path / "per.csv"
    assert main(["-q", "eval-masks", "--pred", str(pred), "--gt", str(gt), "--json", str(out),
                 "--per-image", str(csv_path)]) == 0
    metrics = SaliencyMetrics()
    for i in range(3):
        metrics.update(read_mask(pred / f"im{i}.png"), read_mask(gt / f"im{i}.png"))
    expected = metrics.compute().as_dict()
    got = json.loads(out.read_text())
    for key in ("acc", "iou", "max_fbeta"):
        assert got[key] == pytest.approx(expected[key], abs=1e-12)
    # the command scores 8-bit PNGs from their levels (exact m / 255); read_mask gives float32
    assert got["mae"] == pytest.approx(expected["mae"], abs=1e-7)
    assert got["iou"] < 1.0
    assert csv_path.read_text().count("\n") == 4                 # header + one row per image


def test_eval_masks_several_folders_and_resize(folders, tmp_path, capsys):
    from PIL import Image

    _, gt, pred = folders
    small = tmp_path / "small"
    small.mkdir()
    for p in pred.iterdir():
        Image.open(p).resize((25, 20)).save(small / p.name)
    out = tmp_path / "s.json"
    assert main(["-q", "eval-masks", "--pred", str(pred), str(small), "--gt", str(gt),
                 "--json", str(out)]) == 0
    both = json.loads(out.read_text())
    assert set(both) == {str(pred), str(small)}
    assert both[str(small)]["n_resized"] == 3 and both[str(pred)]["n_resized"] == 0
    assert "resized bilinearly" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["extra_pred", "missing_pred", "unreadable", "empty", "non_image"])
def test_eval_masks_bad_input_exits_2_naming_the_file(folders, tmp_path, capsys, case):
    _, gt, pred = folders
    if case == "extra_pred":
        write_mask_png(pred / "stranger.png", np.zeros((4, 4)))
        needle = "stranger"
    elif case == "missing_pred":
        (pred / "im1.png").unlink()
        needle = "im1"
    elif case == "unreadable":
        (pred / "im2.png").write_bytes(b"\x89PNG but broken")
        needle = "im2.png"
    elif case == "empty":
        pred = tmp_path / "emptydir"
        pred.mkdir()
        needle = "emptydir"
    else:
        (pred / "im0.png").unlink()
        (pred / "im0.jpg").write_text("this is text, not a JPEG")
        needle = "im0.jpg"
    assert main(["-q", "eval-masks", "--pred", str(pred), "--gt", str(gt)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and needle in err and "Traceback" not in err


def test_allow_missing_evaluates_the_intersection(folders, capsys):
    _, gt, pred = folders
    (pred / "im1.png").unlink()
    assert main(["-q", "eval-masks", "--pred", str(pred), "--gt", str(gt), "--allow-missing"]) == 0
    assert "1 ground-truth mask(s) without a prediction" in capsys.readouterr().out


def test_refine_command_writes_image_sized_pngs(folders, tmp_path):
    img, _, pred = folders
    out = tmp_path / "refined"
    assert main(["-q", "refine", "--images", str(img), "--masks", str(pred), "--out", str(out),
                 "--radius", "4", "--eps", "0.01"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["im0.png", "im1.png", "im2.png"]
    assert read_mask(out / "im0.png").shape == (40, 50)


def test_console_script_bad_parameter_exit_code(folders):
    img, _, pred = folders
    proc = subprocess.run([sys.executable, "-m", "paperlib.cli", "-q", "refine", "--images", str(img),
                           "--masks", str(pred), "--out", "/tmp/x", "--eps", "-1"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "paperlib: error: eps must be > 0 and finite, got -1.0"


def _subparser(name):
    """The argparse parser of one sub-command."""
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices[name]


@pytest.mark.parametrize("command", ["refine", "segment", "eval", "corloc"])
def test_guided_filter_options_default_to_paper_gf(command):
    parser = _subparser(command)
    options = {a.dest: a for a in parser._actions}
    assert options["radius"].default == PAPER_GF.radius
    assert options["eps"].default == PAPER_GF.eps
    assert f"default {PAPER_GF.radius}" in options["radius"].help
    assert f"default {PAPER_GF.eps:g}" in options["eps"].help
    if command == "refine":
        assert options["border"].default == PAPER_GF.border
        assert f"default {PAPER_GF.border}" in options["border"].help


def test_refine_filter_and_deprecated_method_give_the_same_masks(folders, tmp_path, capsys):
    img, _, pred = folders
    common = ["-q", "refine", "--images", str(img), "--masks", str(pred)]
    assert main(common + ["--out", str(tmp_path / "filter"), "--filter", "bf"]) == 0
    captured = capsys.readouterr()
    assert "deprecated" not in captured.err and "with bf" in captured.out
    assert main(common + ["--out", str(tmp_path / "method"), "--method", "bf"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "paperlib refine: --method is deprecated, use --filter\n"
    assert "with bf" in captured.out
    assert main(common + ["--out", str(tmp_path / "gf")]) == 0         # the default: gf
    for i in range(3):
        name = f"im{i}.png"
        assert (tmp_path / "filter" / name).read_bytes() == (tmp_path / "method" / name).read_bytes()
    assert any((tmp_path / "filter" / f"im{i}.png").read_bytes() != (tmp_path / "gf" / f"im{i}.png").read_bytes()
               for i in range(3))


def test_refine_filter_and_method_share_one_dest():
    parser = build_parser()
    base = ["refine", "--images", "i", "--masks", "m", "--out", "o"]
    assert parser.parse_args(base).filter == "gf"
    assert parser.parse_args(base + ["--filter", "bf"]).filter == "bf"
    assert parser.parse_args(base + ["--method", "bf"]).filter == "bf"
    assert not hasattr(parser.parse_args(base + ["--method", "bf"]), "method")
    help_text = _subparser("refine").format_help()
    assert "--filter" in help_text and "--method" not in help_text


def test_refine_filter_and_method_that_disagree_are_refused(folders, tmp_path, capsys):
    img, _, pred = folders
    out = tmp_path / "o"
    common = ["-q", "refine", "--images", str(img), "--masks", str(pred), "--out", str(out)]
    assert main(common + ["--filter", "gf", "--method", "bf"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("paperlib: error: --filter gf and --method bf disagree")
    assert not out.exists()
    # The same value twice is only the deprecated spelling.
    assert main(common + ["--method", "bf", "--filter", "bf"]) == 0
    assert capsys.readouterr().err == "paperlib refine: --method is deprecated, use --filter\n"


@pytest.mark.parametrize("radius", ["-1", "-3"])
def test_refine_radius_rule_is_the_guided_filters(folders, tmp_path, capsys, radius):
    img, _, pred = folders
    with pytest.raises(InputError) as rule:
        check_radius(int(radius))
    assert main(["-q", "refine", "--images", str(img), "--masks", str(pred), "--out", str(tmp_path / "o"),
                 "--radius", radius]) == 2
    assert capsys.readouterr().err == f"paperlib: error: {rule.value}\n"


def test_degrade_command(folders, tmp_path):
    _, gt, _ = folders
    out = tmp_path / "deg"
    assert main(["-q", "data", "degrade", "--masks", str(gt), "--out", str(out),
                 "--degradation", "blocky16"]) == 0
    m = read_mask(out / "im0.png")
    assert m.shape == (40, 50) and set(np.unique(m)) <= {0.0, 1.0}
    assert main(["-q", "data", "degrade", "--masks", str(gt), "--out", str(out),
                 "--degradation", "nonsense"]) == 2


@pytest.mark.realdata
def test_refine_and_eval_on_real_duts(real_data_root, tmp_path, capsys):
    """refine and eval-masks on ten real DUTS-TE images: GT vs GT is perfect, a coarse GT improves."""
    import shutil

    te = real_data_root / "DUTS-TE"
    img, gt = tmp_path / "img", tmp_path / "gt"
    img.mkdir()
    gt.mkdir()
    for p in sorted((te / "DUTS-TE-Image").glob("*.jpg"))[:10]:
        shutil.copy(p, img / p.name)
        shutil.copy(te / "DUTS-TE-Mask" / f"{p.stem}.png", gt / f"{p.stem}.png")
    coarse, refined = tmp_path / "coarse", tmp_path / "refined"
    assert main(["-q", "data", "degrade", "--masks", str(gt), "--out", str(coarse),
                 "--degradation", "down16"]) == 0
    assert main(["-q", "refine", "--images", str(img), "--masks", str(coarse), "--out", str(refined)]) == 0
    out = tmp_path / "s.json"
    assert main(["-q", "eval-masks", "--pred", str(gt), str(coarse), str(refined), "--gt", str(gt),
                 "--json", str(out)]) == 0
    scores = json.loads(out.read_text())
    assert scores[str(gt)]["iou"] == pytest.approx(1.0)
    for name in (coarse, refined):
        assert 0.3 < scores[str(name)]["iou"] < 1.0 and scores[str(name)]["n_images"] == 10


HEAVY_MODULES = ("torch", "timm", "scipy", "pandas", "matplotlib")


def test_help_imports_no_heavy_package():
    """``paperlib --help`` and every ``paperlib <command> --help`` build their options without torch.

    A fresh interpreter builds the parser and asks each sub-command for its help; the heavy
    packages a command needs are imported when it runs, so that help stays instant.
    """
    code = (
        "import contextlib, io, sys\n"
        "import paperlib.cli.main as m\n"
        "parser = m.build_parser()\n"
        "commands = sorted(next(a for a in parser._actions if a.dest == 'command').choices)\n"
        "for command in commands:\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        m.build_parser().parse_args([command, '--help'])\n"
        f"print(len(commands), sorted(k for k in sys.modules if k.split('.')[0] in {HEAVY_MODULES!r}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    count, loaded = proc.stdout.strip().split(" ", 1)
    assert int(count) >= 10 and loaded == "[]", f"--help imported {loaded}"
    proc = subprocess.run([sys.executable, "-m", "paperlib.cli", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "usage: paperlib" in proc.stdout, proc.stderr
