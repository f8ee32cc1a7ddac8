"""The training run's configuration and its command-line mapping (paper Sec. 5; SPEC "Training").

Public API:

* :class:`TrainConfig` -- the frozen dataclass that fixes a run; defaults are the paper's;
* :data:`PRESETS` -- named instances ``paper``, ``official`` (the released code) and ``smoke``;
* :func:`config_from` -- a preset with some fields replaced, validated;
* :data:`LOG_TERMS` -- the loss terms logged each step (the lambdas are ``w_<term>``);
* :data:`AMP_MODES` / :func:`autocast_dtype` -- the mixed-precision modes and their dtype on a device;
* :func:`loader_workers` -- the DataLoader worker count a config asks for on a device;
* :func:`parse_field` -- one field's value from text;
* :func:`add_train_arguments` / :func:`config_from_args` -- the ``train`` options (one flag per
  field, ``--preset``, ``--set FIELD=VALUE``) and the TrainConfig they describe.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import typing
from dataclasses import dataclass, fields, replace
from typing import Any

import torch

from .validation import InputError, check_choice, require

LOG_TERMS = ("ncut", "gtv_fine", "gtv_coarse", "sr", "ncut_crop", "eq", "total")
AMP_MODES = ("auto", "bf16", "off")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that fixes a training run; defaults are the paper's (SPEC "Training")."""

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
    betas: tuple[float, float] = (0.9, 0.99)  # released code's AdamW betas (SPEC)
    weight_decay: float = 0.0          # released code: weight decay 0 (SPEC)
    w_ncut: float = 1.0                # lambda of L_Ncut (eq. 8 has none)
    w_gtv_fine: float = 1.0            # lambda_GTV-fine = 1, paper Sec. 5
    w_gtv_coarse: float = 1.0          # lambda_GTV-coarse = 1, paper Sec. 5
    w_sr: float = 1.0                  # lambda_SR = 1, paper Sec. 5
    w_ncut_crop: float = 0.01          # lambda_Ncut-Crop = 0.01, paper Sec. 5
    w_eq: float = 0.01                 # lambda_eq = 0.01, paper Sec. 5
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
        from .backbones import BACKBONES
        from .data import DATASETS

        check_choice("backbone", self.backbone, BACKBONES)
        check_choice("dataset", self.dataset.lower(), DATASETS)
        check_choice("test_dataset", self.test_dataset.lower(), DATASETS)
        check_choice("crop", self.crop, ("paper", "official", "none"))
        check_choice("teacher_bn_mode", self.teacher_bn_mode, ("eval", "train"))
        check_choice("select_on", self.select_on, ("val", "test", "none"))
        check_choice("amp", self.amp, AMP_MODES)
        for name in ("image_size", "resize_short", "batch_size", "epochs", "checkpoint_every", "log_every"):
            _check_int(name, getattr(self, name), low=1)
        _check_int("seed", self.seed, low=0)
        if self.num_workers is not None:
            _check_int("num_workers", self.num_workers, low=0)
        if self.max_steps is not None:
            _check_int("max_steps", self.max_steps, low=1)
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
        for name in ("lr", "weight_decay", "val_fraction") + tuple(f"w_{t}" for t in LOG_TERMS[:-1]):
            value = getattr(self, name)
            require(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                    and value >= 0, f"{name} must be a finite number >= 0, got {value!r}")
        require(self.lr > 0, f"lr must be > 0, got {self.lr!r}")
        require(self.val_fraction < 1, f"val_fraction must be < 1, got {self.val_fraction!r}")
        if self.device is not None:
            try:
                torch.device(self.device)
            except (RuntimeError, TypeError):
                raise InputError(f"device (--device) must be a torch device string such as 'cpu', 'cuda' or "
                                 f"'cuda:0', got {self.device!r}") from None
        require(isinstance(self.betas, tuple) and len(self.betas) == 2
                and all(isinstance(b, (int, float)) and 0 <= b < 1 for b in self.betas),
                f"betas must be two numbers in [0, 1), got {self.betas!r}")

    @property
    def loss_weights(self):
        """The lambdas as a :class:`paperlib.losses.LossWeights`."""
        from .losses import LossWeights

        return LossWeights(**{name: getattr(self, f"w_{name}") for name in LOG_TERMS[:-1]})

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values only (loadable with ``torch.load(weights_only=True)``)."""
        return dataclasses.asdict(self)


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of an ``amp`` mode on ``device``: bfloat16, or None for float32.

    'auto' is bf16 on CUDA GPUs with native bf16 (Ampere and later; float32 on older ones,
    where bf16 is emulated) and float32 on a CPU, where float32 keeps runs bit-reproducible and
    bf16 pays only on CPUs with bf16 units (``benchmarks/bench_train.py`` measures it). 'bf16'
    forces it on any device, which is also how the CPU tests run the GPU code path.

    Args:
        amp: a mode of :data:`AMP_MODES`.
        device: where the step runs.

    Returns:
        ``torch.bfloat16``, or None for no autocast.
    """
    check_choice("amp", amp, AMP_MODES)
    if amp == "bf16":
        return torch.bfloat16
    if amp == "auto" and torch.device(device).type == "cuda":
        native = not torch.cuda.is_available() or torch.cuda.is_bf16_supported(including_emulation=False)
        return torch.bfloat16 if native else None
    return None


def loader_workers(num_workers: int | None, device: torch.device, *, processes: int = 1) -> int:
    """DataLoader worker processes for ``num_workers`` on ``device`` (None: the default above).

    On CUDA, data loading in the main process would stall the GPU: one core reads and augments
    about 120 images/s (``benchmarks/bench_train.py`` on the DUTS-TR sample), so a batch of 8
    costs about 70 ms, more than the 48 ms a step may take for the 30-minute aim. On a CPU the
    cores are the training's own.

    Args:
        num_workers: the config's value; an int is returned as it is.
        device: where training runs.
        processes: training processes on this machine (DDP ranks), which share its CPUs.

    Returns:
        The worker count for ``torch.utils.data.DataLoader``.
    """
    if num_workers is not None:
        return num_workers
    if torch.device(device).type != "cuda":
        return 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(8, cpus // max(1, processes)))


def _check_int(name: str, value, *, low: int) -> None:
    require(isinstance(value, int) and not isinstance(value, bool) and value >= low,
            f"{name} must be an int >= {low}, got {value!r}")


_PAPER = TrainConfig()
PRESETS: dict[str, TrainConfig] = {
    "paper": _PAPER,
    # The released code (SPEC): 335 resize, its effective crop box, teacher BatchNorm in train
    # mode, and the best checkpoint chosen on DUTS-TE.
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
        **overrides: TrainConfig fields; an unknown name is an :class:`InputError`.

    Returns:
        The validated TrainConfig.
    """
    check_choice("preset", preset, PRESETS)
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

def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def parse_field(name: str, text: str) -> Any:
    """Parse one TrainConfig field's value from text ('none' for an optional field's None)."""
    types = _field_types()
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


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``train`` options to ``parser``: --preset, --out, --resume, --set and one flag per field."""
    parser.add_argument("--preset", default="paper", choices=sorted(PRESETS), help="named configuration")
    parser.add_argument("--out", required=True, help="run folder (checkpoints, log.csv)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override any TrainConfig field (repeatable)")
    for name, hint in _field_types().items():
        flag = "--" + name.replace("_", "-")
        if hint is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None,
                                help=f"TrainConfig.{name}")
        else:
            kind = "comma-separated floats" if typing.get_origin(hint) is tuple else "value"
            optional = ", or none" if type(None) in typing.get_args(hint) else ""
            parser.add_argument(flag, dest=name, default=None, metavar="VALUE",
                                help=f"TrainConfig.{name} ({kind}{optional})")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig that parsed ``train`` options describe (preset, then --set, then flags)."""
    overrides: dict[str, Any] = {}
    for item in args.set:
        require("=" in item, f"--set expects FIELD=VALUE, got {item!r}")
        name, text = item.split("=", 1)
        overrides[name.strip()] = parse_field(name.strip(), text)
    for name in _field_types():
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value if isinstance(value, bool) else parse_field(name, value)
    return config_from(args.preset, **overrides)
