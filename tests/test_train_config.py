"""Tests of paperlib.train.config: the presets, config validation and the ``train`` options."""

from __future__ import annotations

import argparse
import dataclasses

import pytest
import torch

from paperlib.checks import InputError
from paperlib.cli.train import add_train_arguments, config_from_args
from paperlib.losses.settings import LossWeights
from paperlib.train.config import PRESETS, TEACHER_GF_FIELDS, WEIGHT_FIELDS, TrainConfig, config_from


def test_presets_differ_where_the_spec_says():
    paper, official, smoke = PRESETS["paper"], PRESETS["official"], PRESETS["smoke"]
    assert (paper.image_size, paper.resize_short, paper.batch_size, paper.epochs) == (320, 355, 8, 30)
    assert (paper.lr, paper.betas, paper.weight_decay) == (1e-4, (0.9, 0.99), 0.0)
    assert paper.loss_weights == LossWeights()
    assert (paper.crop, paper.teacher_bn_mode, paper.select_on) == ("paper", "eval", "val")
    assert (official.resize_short, official.crop, official.teacher_bn_mode, official.select_on) == \
        (335, "official", "train", "test")
    assert smoke.backbone == "filterbank" and smoke.max_steps is not None
    assert TrainConfig() == paper


def test_config_from_overrides_and_serialises():
    cfg = config_from("paper", lr=3e-4, betas=[0.8, 0.9], data_root="/x", w_eq=0.0)
    assert (cfg.lr, cfg.betas, cfg.data_root, cfg.loss_weights.eq) == (3e-4, (0.8, 0.9), "/x", 0.0)
    d = cfg.to_dict()
    plain = (int, float, str, bool, tuple, type(None))
    assert all(isinstance(v, plain) or (isinstance(v, dict) and all(isinstance(x, plain) for x in v.values()))
               for v in d.values())
    assert d["loss_weights"] == {**dataclasses.asdict(LossWeights()), "eq": 0.0}   # nested, one home
    assert TrainConfig(**d) == cfg
    assert "w_eq" not in d and not hasattr(cfg, "w_eq")


def test_teacher_filter_is_configurable_and_defaults_to_trick_1s():
    from paperlib.refine.settings import PAPER_GF, GuidedFilterSettings

    assert PRESETS["paper"].teacher_gf == PAPER_GF
    cfg = config_from("paper", teacher_gf_radius=4)
    assert cfg.teacher_gf == GuidedFilterSettings(radius=4, eps=PAPER_GF.eps, border=PAPER_GF.border)
    assert TrainConfig(**cfg.to_dict()) == cfg
    with pytest.raises(InputError, match="radius"):
        config_from("paper", teacher_gf_radius=-1)


def test_one_lambda_by_name_keeps_the_others():
    cfg = config_from("paper", w_ncut_crop=0.5, loss_weights={"eq": 0.2})
    assert cfg.loss_weights == LossWeights(ncut_crop=0.5, eq=0.2)
    with pytest.raises(InputError, match="LossWeights.eq"):
        config_from("paper", w_eq=-1.0)


@pytest.mark.parametrize("overrides, word", [
    (dict(no_such_field=1), "no_such_field"),
    (dict(crop="big"), "crop"),
    (dict(image_size=330), "image_size"),          # not a multiple of the patch size 8
    (dict(resize_short=300), "resize_short"),      # smaller than the 320 crop
    (dict(batch_size=0), "batch_size"),
    (dict(lr=-1.0), "lr"),
    (dict(teacher_bn_mode="frozen"), "teacher_bn_mode"),
    (dict(select_on="train"), "select_on"),
    (dict(betas=(0.9, 1.5)), "betas"),
    (dict(backbone="resnet"), "backbone"),
    (dict(device="gpu7"), "device"),
])
def test_bad_config_raises_input_error(overrides, word):
    with pytest.raises(InputError, match=word):
        config_from("paper", **overrides)


def test_unknown_preset_and_official_crop_on_small_images():
    with pytest.raises(InputError, match="preset"):
        config_from("nope")
    with pytest.raises(InputError, match="240"):
        config_from("smoke", crop="official")


def test_command_line_options_cover_every_field():
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args(["--preset", "smoke", "--out", "run", "--data-root", "d", "--max-steps", "7",
                              "--betas", "0.5,0.6", "--amp", "off", "--set", "lr=0.5", "--set", "weights=none",
                              "--crop", "none"])
    cfg = config_from_args(args)
    assert (cfg.max_steps, cfg.betas, cfg.amp, cfg.lr, cfg.weights, cfg.crop, cfg.data_root) == \
        (7, (0.5, 0.6), "off", 0.5, None, "none", "d")
    assert cfg.backbone == "filterbank"  # from the preset
    options = {a.dest for a in parser._actions}
    # every field has a flag; the nested loss_weights one per lambda (--w-eq ...)
    nested = set(WEIGHT_FIELDS) | set(TEACHER_GF_FIELDS)
    assert ({f for f in TrainConfig.__dataclass_fields__} - {"loss_weights", "teacher_gf"}) | nested <= options
    weighted = config_from_args(parser.parse_args(["--out", "r", "--w-eq", "0.25", "--set", "w_sr=2"]))
    assert weighted.loss_weights == LossWeights(eq=0.25, sr=2.0)
    with pytest.raises(InputError, match="epochs"):
        config_from_args(parser.parse_args(["--out", "r", "--set", "epochs=many"]))
    with pytest.raises(InputError, match="bogus"):
        config_from_args(parser.parse_args(["--out", "r", "--set", "bogus=1"]))


def test_loader_workers_default_by_device(monkeypatch):
    from paperlib.train.runtime import loader_workers

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)), raising=False)
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert loader_workers(None, cpu) == 0             # the CPU's cores train
    assert loader_workers(None, cuda) == 8            # capped at 8
    assert loader_workers(None, cuda, processes=4) == 4   # four ranks share 16 CPUs
    assert loader_workers(None, cuda, processes=32) == 1
    assert loader_workers(3, cuda) == 3 and loader_workers(0, cuda) == 0  # an explicit count wins
    with pytest.raises(InputError, match="num_workers"):
        config_from("smoke", num_workers=-1)
