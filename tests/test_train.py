"""Tests of paperlib.train.loop on synthetic DUTS-TR data with the offline filter-bank backbone.

Runs use 32 x 32 inputs (4 x 4 tokens) so that a step takes a fraction of a second on a CPU.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from paperlib.checks import InputError
from paperlib.train.config import LOG_TERMS, TrainConfig, config_from
from paperlib.train.loop import train
from paperlib.train.state import load_checkpoint

TINY = dict(image_size=32, resize_short=36, batch_size=4, val_fraction=0.1)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    from paperlib.data.synth import synthesize

    root = tmp_path_factory.mktemp("data")
    synthesize(root, n=12, seed=0, split="tr", progress=False)
    return root


def tiny(data_root, **overrides) -> TrainConfig:
    return config_from("smoke", data_root=data_root, **{**TINY, **overrides})


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --------------------------------------------------------------------------------------------
# Training runs

@pytest.fixture(scope="module")
def runs(data_root, tmp_path_factory):
    """Two straight 6-step runs and one 3 + 3 run with a resume, same config.

    11 training images, batch 4: 2 steps an epoch, so the stop at step 3 is inside epoch 1.
    """
    out = tmp_path_factory.mktemp("runs")
    cfg = tiny(data_root, max_steps=6)
    straight = train(cfg, out / "a", progress=False)
    again = train(cfg, out / "b", progress=False)
    first = train(replace_max(cfg, 3), out / "c", progress=False)
    resumed = train(cfg, out / "c", resume=True, progress=False)
    return dict(cfg=cfg, out=out, straight=straight, again=again, first=first, resumed=resumed)


def replace_max(cfg: TrainConfig, n: int) -> TrainConfig:
    return config_from("smoke", **{**cfg.to_dict(), "max_steps": n})


def test_same_seed_gives_identical_weights(runs):
    assert runs["straight"].step == 6 and runs["straight"].epoch == 3
    assert same_weights(runs["straight"].head, runs["again"].head)
    assert runs["straight"].losses == runs["again"].losses


def test_resume_equals_uninterrupted_run(runs):
    assert runs["first"].step == 3 and runs["resumed"].step == 6
    assert same_weights(runs["straight"].head, runs["resumed"].head)
    assert runs["first"].losses + runs["resumed"].losses == runs["straight"].losses
    # The checkpoints on disk agree too, optimiser state included.
    a, c = load_checkpoint(runs["out"] / "a" / "last.pt"), load_checkpoint(runs["out"] / "c" / "last.pt")
    assert all(torch.equal(a["model"][k], c["model"][k]) for k in a["model"])
    assert all(torch.equal(a["optimizer"]["state"][i]["exp_avg_sq"], c["optimizer"]["state"][i]["exp_avg_sq"])
               for i in a["optimizer"]["state"])


def test_a_different_seed_gives_different_weights(data_root, runs, tmp_path):
    other = train(tiny(data_root, max_steps=2, seed=1), tmp_path / "s1", progress=False)
    straight = runs["straight"].head.state_dict()
    assert not all(torch.equal(v, straight[k]) for k, v in other.head.state_dict().items())


def test_checkpoint_loads_with_weights_only(runs):
    path = runs["out"] / "a" / "last.pt"
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert ckpt["format"] == "paperlib-sempart-1" and ckpt["step"] == 6 and ckpt["epoch"] == 3 and ckpt["position"] == 0
    assert TrainConfig(**ckpt["config"]) == runs["cfg"]
    assert set(ckpt["rng"]) >= {"torch", "numpy", "python"}
    head = runs["straight"].head
    assert ckpt["model"].keys() == head.state_dict().keys()
    assert (runs["out"] / "a" / "best.pt").is_file()
    best = torch.load(runs["out"] / "a" / "best.pt", weights_only=True)
    assert math.isclose(best["best_iou"], max(runs["straight"].val_iou))


def test_checkpoint_loads_as_a_sempart_model(runs):
    from paperlib.model.head import SempartHead
    from paperlib.model.sempart import load_sempart

    model = load_sempart(runs["out"] / "a" / "last.pt")
    assert same_weights(model.head, runs["straight"].head)
    # init.pt is the untrained head: the seeded initialisation, step 0, and not the trained one.
    init = load_sempart(runs["out"] / "a" / "init.pt")
    torch.manual_seed(runs["cfg"].seed)
    fresh = SempartHead(init.head.dim, 8)
    assert same_weights(init.head, fresh)
    assert not same_weights(init.head, runs["straight"].head)


def test_log_csv_has_one_row_per_step_with_every_term(runs):
    for name, steps in (("a", 6), ("c", 6)):
        with open(runs["out"] / name / "log.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert [int(r["step"]) for r in rows] == list(range(1, steps + 1))
        assert set(LOG_TERMS) <= set(rows[0])
        logged = [tuple(float(r[t]) for t in LOG_TERMS) for r in rows]
        expected = [tuple(getattr(s, t) for t in LOG_TERMS) for s in runs["straight"].losses]
        np.testing.assert_allclose(logged, expected, rtol=1e-6)
    with open(runs["out"] / "a" / "val.csv", newline="") as fh:
        val = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in val] == [1, 2, 3]
    assert all(0.0 <= float(r["iou"]) <= 1.0 for r in val)


def test_total_is_the_weighted_sum_of_the_terms(runs):
    w = runs["cfg"].loss_weights
    for s in runs["straight"].losses:
        weighted = sum(getattr(w, t) * getattr(s, t) for t in LOG_TERMS[:-1])
        assert math.isclose(s.total, weighted, rel_tol=1e-5)
        assert s.eq > 0 and s.ncut_crop > 0  # the crop trick is on in the smoke preset


def test_resume_refuses_a_changed_config_and_an_existing_run(data_root, runs):
    cfg = runs["cfg"]
    with pytest.raises(InputError, match="lr"):
        train(config_from("smoke", **{**cfg.to_dict(), "lr": 0.5}), runs["out"] / "a", resume=True)
    with pytest.raises(InputError, match="resume"):
        train(cfg, runs["out"] / "a")


def test_loss_falls_over_thirty_steps(data_root, tmp_path):
    result = train(tiny(data_root, max_steps=30, select_on="none"), tmp_path / "fall", progress=False)
    total = [s.total for s in result.losses]
    assert all(math.isfinite(t) for t in total)
    first, last = np.mean(total[:5]), np.mean(total[-5:])
    # Measured (seed 0, this config): 1.049 -> 0.770 (np.mean of the first and last five totals).
    assert first - last > 0.05, (first, last)


@pytest.mark.parametrize("crop, bn", [("paper", "train"), ("none", "eval")])
def test_crop_options_train_stably(data_root, tmp_path, crop, bn):
    result = train(tiny(data_root, max_steps=3, crop=crop, teacher_bn_mode=bn, select_on="none"),
                   tmp_path / crop, progress=False)
    assert all(math.isfinite(v) for s in result.losses for v in s)
    assert all((s.eq > 0) == (crop != "none") for s in result.losses)
    assert all(torch.isfinite(p).all() for p in result.head.parameters())


def test_resume_after_a_crash_drops_the_unsaved_log_tail(data_root, runs, tmp_path, monkeypatch):
    import paperlib.train.loop as train_module

    real_step, calls = train_module.train_step, []

    def crashing_step(*args, **kwargs):
        calls.append(kwargs["step"])
        if kwargs["step"] == 5:  # the 6th step: steps 1-5 are logged, last.pt holds step 4
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    cfg = config_from("smoke", **{**runs["cfg"].to_dict(), "checkpoint_every": 3})
    monkeypatch.setattr(train_module, "train_step", crashing_step)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "crash", progress=False)
    assert load_checkpoint(tmp_path / "crash" / "last.pt")["step"] == 4
    monkeypatch.setattr(train_module, "train_step", real_step)
    resumed = train(cfg, tmp_path / "crash", resume=True, progress=False)
    assert same_weights(resumed.head, runs["straight"].head)
    with open(tmp_path / "crash" / "log.csv", newline="") as fh:
        assert [int(r["step"]) for r in csv.DictReader(fh)] == [1, 2, 3, 4, 5, 6]


def test_checkpoint_every_writes_inside_an_epoch(data_root, tmp_path, monkeypatch):
    import paperlib.train.loop as train_module

    real_step = train_module.train_step

    def crashing_step(*args, **kwargs):
        if kwargs["step"] == 3:  # the 4th step, after the checkpoint_every=3 write
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_step", crashing_step)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(data_root, max_steps=6, checkpoint_every=3), tmp_path / "every", progress=False)
    ckpt = load_checkpoint(tmp_path / "every" / "last.pt")
    # 11 training images, batch 4: 2 steps an epoch, so step 3 is the first batch of epoch 1.
    assert (ckpt["step"], ckpt["epoch"], ckpt["position"]) == (3, 1, 1)


def test_select_on_test_validates_on_the_test_split(data_root, tmp_path):
    from paperlib.data.synth import synthesize

    root = tmp_path / "data"
    synthesize(root, n=12, seed=0, split="tr", progress=False)
    synthesize(root, n=3, seed=1, split="te", progress=False)
    result = train(tiny(root, max_steps=3, select_on="test"), tmp_path / "sel", progress=False)
    # No held-out images: all 12 train, 3 steps an epoch, one validation on DUTS-TE.
    assert result.epoch == 1 and len(result.val_iou) == 1
    with open(tmp_path / "sel" / "val.csv", newline="") as fh:
        assert [r["split"] for r in csv.DictReader(fh)] == ["test"]


def test_worker_processes_load_the_same_batches(data_root, runs, tmp_path):
    result = train(replace_max(config_from("smoke", **{**runs["cfg"].to_dict(), "num_workers": 1}), 2),
                   tmp_path / "workers", progress=False)
    assert result.losses == runs["straight"].losses[:2]


def test_main_train_command(data_root, tmp_path, capsys):
    from paperlib.cli.train import main_train

    argv = ["-q", "--preset", "smoke", "--out", str(tmp_path / "cli"), "--data-root", str(data_root),
            "--image-size", "32", "--resize-short", "36", "--max-steps", "2", "--set", "select_on=none"]
    assert main_train(argv) == 0
    assert "trained 2 steps" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "cli" / "last.pt")["step"] == 2
    assert main_train(argv) == 2  # the run exists and --resume was not given
    assert "--resume" in capsys.readouterr().err
    assert main_train(argv[:-2] + ["--set", "select_on=nope"]) == 2


# --------------------------------------------------------------------------------------------
# What one step does with the crop trick

def _one_step(data_root, monkeypatch, **overrides):
    """One train_step on a fixed batch; returns (head, the boxes and targets L_eq received)."""
    import paperlib.train.step as step_module
    from paperlib.backbones.registry import load_backbone
    from paperlib.model.head import SempartHead
    from paperlib.train.step import train_step

    seen = []
    real_loss = step_module.crop_consistency_loss   # the loss the training step calls

    def spy(student, box, target):
        seen.append((box, target))
        return real_loss(student, box, target)

    monkeypatch.setattr(step_module, "crop_consistency_loss", spy)
    config = tiny(data_root, **overrides)
    backbone = load_backbone(config.backbone)
    torch.manual_seed(0)
    head = SempartHead(backbone.dim, backbone.patch_size).train()
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr)
    images = torch.rand(4, 3, config.image_size, config.image_size, generator=torch.Generator().manual_seed(1))
    train_step(head, backbone, optimizer, images, config=config, step=7)
    return head, seen


def _running_means(head):
    return torch.cat([b.flatten() for n, b in head.named_buffers() if n.endswith("running_mean")])


def test_teacher_batchnorm_mode_decides_whether_the_teacher_updates_running_stats(data_root, monkeypatch):
    eval_head, _ = _one_step(data_root, monkeypatch, teacher_bn_mode="eval")
    train_head, _ = _one_step(data_root, monkeypatch, teacher_bn_mode="train")
    none_head, _ = _one_step(data_root, monkeypatch, crop="none")
    # Teacher in eval mode: only the student pass moves the running statistics, exactly as a
    # step without the crop trick does; in train mode the teacher pass moves them again.
    assert torch.equal(_running_means(eval_head), _running_means(none_head))
    assert not torch.equal(_running_means(train_head), _running_means(none_head))


@pytest.mark.parametrize("crop, size, box_size", [("paper", 32, 8), ("official", 240, 160)])
def test_l_eq_gets_the_sampled_box_and_a_clamped_target(data_root, monkeypatch, crop, size, box_size):
    from paperlib.losses.crop_zoom import CROP_SAMPLERS
    from paperlib.train.data import SEED_CROP, seeded_generator

    _, seen = _one_step(data_root, monkeypatch, crop=crop, image_size=size, resize_short=size + 8)
    assert len(seen) == 1
    box, target = seen[0]
    g = seeded_generator(0, SEED_CROP, 7)               # the step's own crop generator
    expected = (CROP_SAMPLERS["paper"](g, image_size=size, crop=size // 4) if crop == "paper"
                else CROP_SAMPLERS["official"](g, image_size=size))
    assert box == expected and box.height == box.width == box_size
    assert target.shape == (4, 1, size, size) and not target.requires_grad
    assert float(target.min()) >= 1e-6 and float(target.max()) <= 1 - 1e-6


# --------------------------------------------------------------------------------------------
# One trainer per folder

def test_a_second_trainer_on_the_same_folder_is_refused_by_name(data_root, tmp_path):
    """Two trainers on one --out both reported success and one run's files were gone (issue 10)."""
    import os

    from paperlib.train.state import LOCK_NAME, run_lock

    out = tmp_path / "run"
    with run_lock(out):                                   # a live run holds the folder
        with pytest.raises(InputError, match=rf"another training run \(pid {os.getpid()}\) is writing"):
            train(tiny(data_root, max_steps=2), out, progress=False)
        assert not (out / "last.pt").exists() and not (out / "log.csv").exists()
    # a lock file left by a killed run is no lock: the next run takes the folder
    (out / LOCK_NAME).write_text("999999\n")
    result = train(tiny(data_root, max_steps=2), out, progress=False)
    assert result.step == 2 and (out / "last.pt").exists()
    with run_lock(out):                                   # and it released the lock when it ended
        pass


def test_a_bit_flipped_in_a_checkpoint_is_refused_not_resumed(data_root, tmp_path):
    from paperlib.train.state import content_digest

    out = tmp_path / "run"
    train(tiny(data_root, max_steps=2), out, progress=False)
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["content_sha256"] == content_digest({k: v for k, v in ckpt.items() if k != "content_sha256"})
    name = next(k for k, v in ckpt["model"].items() if v.is_floating_point() and v.numel() > 1)
    flipped = ckpt["model"][name].clone()
    flipped.view(torch.int32)[0] ^= 1 << 3                    # one bit of one weight
    ckpt["model"][name] = flipped
    torch.save(ckpt, out / "last.pt")                         # a valid file whose content changed
    with pytest.raises(InputError, match="last.pt: its content does not match the digest"):
        train(tiny(data_root, max_steps=4), out, resume=True, progress=False)


def test_resume_on_other_images_is_refused_unless_allowed(data_root, tmp_path):
    import shutil

    from paperlib.data.synth import synthesize

    out = tmp_path / "run"
    train(tiny(data_root, max_steps=2), out, progress=False)
    moved = tmp_path / "moved"                                 # the same images under another root
    shutil.copytree(data_root, moved)
    assert train(tiny(moved, max_steps=3), out, resume=True, progress=False).step == 3
    other = tmp_path / "other"
    synthesize(other, n=16, seed=3, split="tr", progress=False)     # another set, another count
    with pytest.raises(InputError, match=r"holds 16 training images, the checkpoint .* was trained on 12"):
        train(tiny(other, max_steps=4), out, resume=True, progress=False)
    assert train(tiny(other, max_steps=4), out, resume=True, progress=False, allow_data_change=True).step == 4


def test_a_killed_runs_half_written_files_are_removed_by_the_next(data_root, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".last.pt.abc123.part.pt").write_bytes(b"half a checkpoint")
    (out / "mine.txt").write_text("a user's file")
    train(tiny(data_root, max_steps=2), out, progress=False)
    assert not list(out.glob(".*.part*")) and (out / "mine.txt").read_text() == "a user's file"
