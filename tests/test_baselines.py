"""The offline baselines (paperlib.paper.baselines, `paperlib baselines`) and the warning every
refining command gives when a refinement erases a mask's object (paperlib.refine.masks.erased)."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest
import torch
from doc_commands import documented

from paperlib.cli.main import main
from paperlib.data.saliency import open_dataset
from paperlib.images import read_mask, write_image, write_mask_png
from paperlib.model.head import SempartHead
from paperlib.model.sempart import save_sempart
from paperlib.paper.baselines import BASELINES, baselines_table, refinement_study, run_baselines
from paperlib.refine.masks import ERASED_SHARE, RefineSettings, erased, refine_folder

# ----------------------------------------------------------------------------- erased


def test_erased_compares_foreground_shares_at_any_size():
    before = np.zeros((100, 100), np.float32)
    before[10:20, 10:20] = 0.8                                     # 1 % of the image
    kept = np.zeros((50, 50), np.float32)
    kept[5:10, 5:10] = 0.7                                         # 1 % of a smaller image: kept
    assert not erased(before, kept)
    nearly = np.zeros((100, 100), np.float32)
    nearly.flat[:int(ERASED_SHARE * 100) - 1] = 1.0                # just under 10 % of 100 pixels
    assert erased(before, nearly)
    nearly.flat[:int(ERASED_SHARE * 100)] = 1.0                    # exactly 10 %: kept
    assert not erased(before, nearly)
    assert not erased(np.zeros((8, 8)), np.zeros((8, 8)))          # no object, nothing to erase
    assert erased(before, np.full((100, 100), 0.49))               # everything below 0.5


@pytest.fixture
def faint_blob(tmp_path):
    """A flat grey photo and a small faint object in its mask: both refinements spread it below
    0.5 (nothing in the image holds it), so both erase it."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    write_image(images / "flat.png", np.full((96, 96, 3), 120, np.uint8))
    mask = np.zeros((96, 96), np.float32)
    mask[40:46, 40:46] = 0.6
    write_mask_png(masks / "flat.png", mask)
    return images, masks


def test_refine_folder_reports_and_warns_about_erased_objects(faint_blob, tmp_path):
    images, masks = faint_blob
    with pytest.warns(UserWarning, match=r"bilateral solver \(bf\) left under 10% .* on 1 of 1 image\(s\) "
                                         r"\(flat\); the guided filter \(gf\) keeps small soft objects"):
        report = refine_folder(images, masks, tmp_path / "bf", RefineSettings(method="bf"), progress=False)
    assert report.erased == ["flat"]
    assert read_mask(tmp_path / "bf" / "flat.png").max() < 0.5


def test_the_refine_command_prints_the_warning_as_one_line(faint_blob, tmp_path, capsys):
    images, masks = faint_blob
    assert main(["-q", "refine", "--images", str(images), "--masks", str(masks), "--out", str(tmp_path / "bf"),
                 "--filter", "bf"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "left under" in line]
    assert len(lines) == 1 and lines[0].startswith("paperlib: warning: the bilateral solver (bf)")


def test_an_object_that_survives_gives_no_warning(tmp_path, recwarn):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    photo = np.full((96, 96, 3), 40, np.uint8)
    photo[20:70, 30:80] = 220                                      # a bright object on a dark ground
    write_image(images / "a.png", photo)
    mask = np.zeros((96, 96), np.float32)
    mask[22:68, 32:78] = 0.9
    write_mask_png(masks / "a.png", mask)
    report = refine_folder(images, masks, tmp_path / "bf", RefineSettings(method="bf"), progress=False)
    assert report.erased == [] and not [w for w in recwarn if "left under" in str(w.message)]


# ----------------------------------------------------------------------------- the table


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    assert main(["-q", "data", "synth", "--out", str(root), "--n", "4"]) == 0
    return root


def test_run_baselines_scores_every_row_and_its_speed(synth_root):
    dataset = open_dataset("duts-te", synth_root)
    rows = run_baselines(dataset, limit=3, progress=False)
    expected = [(b.label, r) for b in BASELINES for r in b.refines]
    assert [(r.label, r.refine) for r in rows] == expected
    for row in rows:
        assert row.images == 3 and row.images_per_s > 0
        assert 0 <= row.iou <= 1 and 0 <= row.max_f <= 1 and 0 <= row.acc <= 1
    table = baselines_table(rows)
    assert table.count("\n") == len(rows) + 2 and table.count("**") == 2


def test_refinement_study_scores_both_refinements_of_the_same_coarse_mask(synth_root):
    dataset = open_dataset("duts-te", synth_root)
    study = refinement_study(dataset, limit=3, progress=False)
    assert study.n == 3 and study.degradation == "down8"
    for row in study.rows:
        assert set(row) == {"stem", "object_share", "iou_raw", "iou_gf", "iou_bf", "gf_erased", "bf_erased"}
        assert 0 < row["object_share"] < 1
    assert study.bf_below_gf == sum(r["iou_bf"] < r["iou_gf"] for r in study.rows)
    assert f"{study.n} images" in study.summary()


def test_the_baselines_command_writes_table_figures_and_takes_heads(synth_root, tmp_path, capsys):
    torch.manual_seed(0)
    head = tmp_path / "head.pt"
    save_sempart(head, SempartHead(10, 8).eval(), backbone="offline", image_size=64, resize_short=72)
    out = tmp_path / "out"
    assert main(["-q", "baselines", "--root", str(synth_root), "--out", str(out), "--limit", "2",
                 "--head", f"untrained head={head}"]) == 0
    printed = capsys.readouterr().out
    assert "untrained head + GF" in printed and "soft coarse masks (down8, 2 images)" in printed
    for name in ("baselines.md", "baselines.csv", "baselines.json", "baselines.png", "examples.png",
                 "refinement.csv", "refinement.png"):
        assert (out / name).stat().st_size > 0, name
    rows = json.loads((out / "baselines.json").read_text())["rows"]
    assert [r["method"] for r in rows][-2:] == ["untrained head", "untrained head + GF"]


def test_a_bad_head_is_one_line(synth_root, tmp_path, capsys):
    assert main(["baselines", "--root", str(synth_root), "--out", str(tmp_path / "o"), "--head", "nolabel"]) != 0
    assert capsys.readouterr().err.strip().count("\n") == 0
    assert main(["baselines", "--root", str(synth_root), "--out", str(tmp_path / "o"),
                 "--head", f"x={tmp_path / 'missing.pt'}"]) != 0
    assert "missing.pt is not a file" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the README's commands


@pytest.mark.realdata
@pytest.mark.slow
def test_the_readme_baselines_commands_run_shrunk(real_data_root, tmp_path):
    """The README's train and baselines commands as printed, shrunk: 2 steps, 3 images."""
    printed = [c for _, c in documented(("paperlib train", "paperlib baselines", "paperlib notebook run protocols"))
               if "offline-" in c or "--backbone offline" in c]
    assert len(printed) == 4, printed
    swaps = {"~/duts-sample": str(real_data_root), "runs/offline-on": str(tmp_path / "on"),
             "runs/offline-off": str(tmp_path / "off"), "figures/baselines": str(tmp_path / "out")}
    for command in printed:
        argv = [swaps.get(a, a) for a in shlex.split(command)[1:]]
        for key, value in swaps.items():                      # inside LABEL=PATH arguments too
            argv = [value + a[len(key):] if a.startswith(key + "/") else a.replace(f"={key}", f"={value}")
                    for a in argv]
        argv = [a.replace("/best.pt", "/last.pt") for a in argv]   # best.pt: at an epoch's end; 2 steps leave last.pt
        if argv[0] == "train":
            argv = [a if a != "200" else "2" for a in argv]
        elif argv[0] == "baselines":
            argv += ["--limit", "3"]
        else:                                                         # the protocols notebook on the trained head
            argv = [{"120": "4", "3": "2"}.get(a, a) for a in argv] + ["--workdir", str(tmp_path / "nb")]
            (tmp_path / "nb").mkdir()
        assert main(["-q"] + argv) == 0, command
    assert (tmp_path / "out" / "baselines.png").is_file()
