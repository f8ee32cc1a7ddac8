"""The training run's configuration (paper Sec. 5).

Each setting and where it comes from: docs/paper_and_code.md#training.

Public API:

* :class:`TrainConfig` -- the frozen dataclass that fixes a run; defaults are the paper's;
* :data:`PRESETS` -- named instances ``paper``, ``official`` (the released code) and ``smoke``;
* :func:`config_from` -- a preset with some fields replaced, validated;
* :data:`LOG_TERMS` -- the loss terms logged each step (their lambdas: ``loss_weights``, a
  :class:`paperlib.losses.settings.LossWeights`; ``w_<term>=`` overrides one of them);
* :data:`AMP_MODES` -- the mixed-precision modes (their dtype on a device:
  :func:`paperlib.train.runtime.autocast_dtype`);
* :func:`parse_field` -- one field's value from text;
* :func:`settable_fields` -- every name a run can be configured by (flags, notebook parameters);

The ``train`` command's options (one flag per settable name) are :mod:`paperlib.cli.train`.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from ..backbones.catalog import BACKBONES
from ..checks import InputError, check_choice, check_int, is_number, require
from ..data.saliency import DATASETS
from ..losses.settings import LossWeights
from ..refine.settings import PAPER_GF, GuidedFilterSettings

LOG_TERMS = ("ncut", "gtv_fine", "gtv_coarse", "sr", "ncut_crop", "eq", "total")
# ``w_<term>``: the name that sets one lambda (config_from, ``--w-<term>``, the train notebook).
WEIGHT_FIELDS = tuple(f"w_{term}" for term in LOG_TERMS[:-1])
# ``teacher_gf_<field>``: the name that sets one of the teacher target's guided-filter settings.
TEACHER_GF_FIELDS = {"teacher_gf_radius": int, "teacher_gf_eps": float, "teacher_gf_border": str}
AMP_MODES = ("auto", "bf16", "off")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that fixes a training run; defaults are the paper's (docs/paper_and_code.md#training)."""

    data_root: str | None = None       # folder holding DUTS-TR/ (required to train)
    dataset: str = "duts-tr"           # paper Sec. 5: trained on DUTS-TR (10,553 images)
    backbone: str = "dino_vits8"       # paper Sec. 5: DINO ViT-S/8, frozen
    weights: str | None = None         # backbone checkpoint file; None: $PAPERLIB_WEIGHTS_DIR or hub
    image_size: int = 320              # paper Sec. 5: 320 x 320 input (40 x 40 tokens)
    resize_short: int = 355            # paper: short side to 355 before the crop (released code: 335)
    batch_size: int = 8                # paper Sec. 5 and code: batch 8 (global, over all ranks)
    epochs: int = 30                   # paper Sec. 5: 30 epochs (about 39.6k iterations)
    max_steps: int | None = None       # optional cap on optimiser steps (smoke runs, budgets)
    lr: float = 1e-4                   # paper Sec. 5: AdamW, lr 1e-4, no schedule
    betas: tuple[float, float] = (0.9, 0.99)  # released code's AdamW betas (docs/paper_and_code.md#training)
    weight_decay: float = 0.0          # released code: weight decay 0 (docs/paper_and_code.md#training)
    loss_weights: LossWeights = LossWeights()  # the lambdas of eq. 8 and trick 2 (their home, with sources)
    teacher_gf: GuidedFilterSettings = PAPER_GF  # trick 1 inside trick 2: the teacher target's filter
    crop: str = "paper"                # trick 2 box: 'paper' (80 px, x4), 'official' (160 px, x2), 'none'
    teacher_bn_mode: str = "eval"      # teacher pass BatchNorm: 'eval' (paper silent; inference mode),
                                       # 'train' (released code: batch statistics, running stats updated)
    seed: int = 0                      # seeds the head's init, the split, the data order, augmentations, crops
    num_workers: int | None = None     # DataLoader worker processes; None: min(8, CPUs) on CUDA (one
                                       # augments ~120 images/s; the GPU wants more), 0 on CPU
    val_fraction: float = 0.05         # our choice: held-out part of the training set for validation
    select_on: str = "val"             # 'val' (held-out train images), 'test' (released code's DUTS-TE
                                       # selection, a labelled option), 'none' (no validation)
    test_dataset: str = "duts-te"      # the test set that select_on='test' reads from data_root
    checkpoint_every: int = 1000       # write last.pt every this many steps (and at every epoch end)
    log_every: int = 1                 # refresh the progress bar and TensorBoard every this many steps
    device: str | None = None          # None: CUDA if available, else CPU; None and a bare 'cuda' mean
                                       # cuda:LOCAL_RANK under torchrun, else the current CUDA device
    amp: str = "auto"                  # bf16 autocast of backbone and head: 'auto' (on CUDA only;
                                       # CPU runs stay exact), 'bf16' (any device), 'off' (float32)
    channels_last: bool = False        # channels-last memory format for the head (speed on GPUs)
    compile: bool = False              # torch.compile the head (speed; off for exact replay)

    def __post_init__(self) -> None:
        if isinstance(self.loss_weights, Mapping):   # read back from a checkpoint's plain dict
            object.__setattr__(self, "loss_weights", LossWeights(**self.loss_weights))
        require(isinstance(self.loss_weights, LossWeights),
                f"loss_weights must be a LossWeights, got {type(self.loss_weights).__name__}")
        if isinstance(self.teacher_gf, Mapping):
            object.__setattr__(self, "teacher_gf", GuidedFilterSettings(**self.teacher_gf))
        require(isinstance(self.teacher_gf, GuidedFilterSettings),
                f"teacher_gf must be a GuidedFilterSettings, got {type(self.teacher_gf).__name__}")
        check_choice("backbone", self.backbone, BACKBONES)
        check_choice("dataset", self.dataset.lower(), DATASETS)
        check_choice("test_dataset", self.test_dataset.lower(), DATASETS)
        check_choice("crop", self.crop, ("paper", "official", "none"))
        check_choice("teacher_bn_mode", self.teacher_bn_mode, ("eval", "train"))
        check_choice("select_on", self.select_on, ("val", "test", "none"))
        check_choice("amp", self.amp, AMP_MODES)
        for name in ("image_size", "resize_short", "batch_size", "epochs", "checkpoint_every", "log_every"):
            check_int(name, getattr(self, name), low=1)
        check_int("seed", self.seed, low=0)
        if self.num_workers is not None:
            check_int("num_workers", self.num_workers, low=0)
        if self.max_steps is not None:
            check_int("max_steps", self.max_steps, low=1)
        patch = BACKBONES[self.backbone].patch_size
        require(self.image_size % patch == 0,
                f"image_size must be a multiple of the {self.backbone} patch size {patch}, got {self.image_size}")
        require(self.resize_short >= self.image_size,
                f"resize_short ({self.resize_short}) must be >= image_size ({self.image_size}) to crop from it")
        if self.crop == "official":
            require(self.image_size >= 240, f"crop='official' places a 160 px box at row 80: image_size "
                                            f"must be >= 240, got {self.image_size}")
        if self.crop == "paper":
            require(self.image_size >= 4 * patch, f"crop='paper' zooms an image_size/4 box: image_size must "
                                                  f"be >= {4 * patch}, got {self.image_size}")
        for name in ("lr", "weight_decay", "val_fraction"):
            value = getattr(self, name)
            require(is_number(value) and math.isfinite(value)
                    and value >= 0, f"{name} must be a finite number >= 0, got {value!r}")
        require(self.lr > 0, f"lr must be > 0, got {self.lr!r}")
        require(self.val_fraction < 1, f"val_fraction must be < 1, got {self.val_fraction!r}")
        if self.device is not None:
            import torch  # here only: the command line builds its options from this module

            try:
                torch.device(self.device)
            except (RuntimeError, TypeError):
                raise InputError(f"device (--device) must be a torch device string such as 'cpu', 'cuda' or "
                                 f"'cuda:0', got {self.device!r}") from None
        require(isinstance(self.betas, tuple) and len(self.betas) == 2
                and all(isinstance(b, (int, float)) and 0 <= b < 1 for b in self.betas),
                f"betas must be two numbers in [0, 1), got {self.betas!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values only (loadable with ``torch.load(weights_only=True)``)."""
        return dataclasses.asdict(self)


_PAPER = TrainConfig()
PRESETS: dict[str, TrainConfig] = {
    "paper": _PAPER,
    # The released code (docs/paper_and_code.md#paper-versus-released-code): 335 resize, its
    # effective crop box, teacher BatchNorm in train mode, and the best checkpoint chosen on
    # DUTS-TE.
    "official": replace(_PAPER, resize_short=335, crop="official", teacher_bn_mode="train", select_on="test"),
    # Seconds on a CPU: the offline filter bank, 64 px inputs, 20 steps; lr 1e-3 so that a
    # short run shows a clear drop of the loss.
    "smoke": replace(_PAPER, backbone="filterbank", image_size=64, resize_short=72, batch_size=4,
                     max_steps=20, epochs=1000, lr=1e-3, checkpoint_every=10, val_fraction=0.1),
}


def config_from(preset: str = "paper", **overrides) -> TrainConfig:
    """A preset with some fields replaced, validated.

    Args:
        preset: a key of :data:`PRESETS`.
        **overrides: TrainConfig fields, ``w_<term>`` for one field of ``loss_weights`` or
            ``teacher_gf_<field>`` for one of ``teacher_gf``; an unknown name is an :class:`InputError`.

    Returns:
        The validated TrainConfig.
    """
    check_choice("preset", preset, PRESETS)
    weights = {name[2:]: overrides.pop(name) for name in list(overrides) if name in WEIGHT_FIELDS}
    if weights:   # w_<term>=value: one lambda changed, the others kept from the preset (or loss_weights)
        base = overrides.get("loss_weights", PRESETS[preset].loss_weights)
        base = LossWeights(**base) if isinstance(base, Mapping) else base
        overrides["loss_weights"] = replace(base, **weights)
    gf = {name[len("teacher_gf_"):]: overrides.pop(name) for name in list(overrides) if name in TEACHER_GF_FIELDS}
    if gf:        # teacher_gf_<field>=value: one filter setting changed, the others kept
        base = overrides.get("teacher_gf", PRESETS[preset].teacher_gf)
        base = GuidedFilterSettings(**base) if isinstance(base, Mapping) else base
        overrides["teacher_gf"] = replace(base, **gf)
    names = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(overrides) - names)
    require(not unknown, f"unknown TrainConfig field(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    if "betas" in overrides and isinstance(overrides["betas"], list):
        overrides["betas"] = tuple(overrides["betas"])
    if overrides.get("data_root") is not None:
        overrides["data_root"] = str(overrides["data_root"])
    return replace(PRESETS[preset], **overrides)


# --------------------------------------------------------------------------------------------
# Command line

def settable_fields() -> dict[str, Any]:
    """Each settable name and its type: TrainConfig's fields, the nested ones by their flat names."""
    hints = {k: v for k, v in typing.get_type_hints(TrainConfig).items() if k not in ("loss_weights", "teacher_gf")}
    return {**hints, **{name: float for name in WEIGHT_FIELDS}, **TEACHER_GF_FIELDS}


def parse_field(name: str, text: str) -> Any:
    """Parse one TrainConfig field's value from text ('none' for an optional field's None)."""
    types = settable_fields()
    require(name in types, f"unknown TrainConfig field {name!r}; known: {', '.join(sorted(types))}")
    hint = types[name]
    args = typing.get_args(hint)
    optional = type(None) in args
    if optional and text.strip().lower() in ("none", "null", ""):
        return None
    base = next((a for a in args if a is not type(None)), hint) if optional else hint
    try:
        if typing.get_origin(base) is tuple:
            return tuple(float(v) for v in text.split(","))
        if base is bool:
            low = text.strip().lower()
            require(low in ("1", "0", "true", "false", "yes", "no", "on", "off"),
                    f"{name} must be true or false, got {text!r}")
            return low in ("1", "true", "yes", "on")
        return base(text)
    except ValueError:
        raise InputError(f"{name}: cannot read {text!r} as {getattr(base, '__name__', base)}") from None
