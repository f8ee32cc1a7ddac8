"""The ``train`` command: one flag per settable name of the training configuration.

    add_train(sub)               the ``paperlib train`` sub-command
    add_train_arguments(parser)  --preset, --out, --resume, --set FIELD=VALUE and a flag per field
    config_from_args(args)       the TrainConfig those options describe
    main_train(argv)             ``python -m paperlib.train ...`` (the ``torchrun`` entry point)
"""

from __future__ import annotations

import argparse
import sys
import typing
from typing import Any, Sequence

from ..checks import InputError, require
from ..train.config import (
    PRESETS,
    TEACHER_GF_FIELDS,
    WEIGHT_FIELDS,
    TrainConfig,
    config_from,
    parse_field,
    settable_fields,
)


def add_train(sub) -> None:
    """The ``paperlib train`` sub-command."""
    p = sub.add_parser("train", help="train the Sempart head (with trick 2) without labels",
                       description="Every field of the preset can be set by its own flag or with "
                                   "--set field=value. Writes RUN/last.pt, best.pt, log.csv, val.csv.")
    add_train_arguments(p)
    p.set_defaults(run=run_train)


def _flag_help(name: str) -> str:
    if name in WEIGHT_FIELDS:
        return f"TrainConfig.loss_weights.{name[2:]}"
    if name in TEACHER_GF_FIELDS:
        return f"TrainConfig.teacher_gf.{name[len('teacher_gf_'):]}"
    return f"TrainConfig.{name}"


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``train`` options to ``parser``: --preset, --out, --resume, --set and one flag per field."""
    parser.add_argument("--preset", default="paper", choices=sorted(PRESETS), help="named configuration")
    parser.add_argument("--out", required=True, help="run folder (checkpoints, log.csv)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--allow-data-change", action="store_true",
                        help="resume although --data-root holds other training images than the checkpoint's")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override any TrainConfig field (repeatable)")
    for name, hint in settable_fields().items():
        flag = "--" + name.replace("_", "-")
        if hint is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None,
                                help=_flag_help(name))
        else:
            kind = "comma-separated floats" if typing.get_origin(hint) is tuple else "value"
            optional = ", or none" if type(None) in typing.get_args(hint) else ""
            parser.add_argument(flag, dest=name, default=None, metavar="VALUE",
                                help=f"{_flag_help(name)} ({kind}{optional})")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig that parsed ``train`` options describe (preset, then --set, then flags)."""
    overrides: dict[str, Any] = {}
    for item in args.set:
        require("=" in item, f"--set expects FIELD=VALUE, got {item!r}")
        name, text = item.split("=", 1)
        overrides[name.strip()] = parse_field(name.strip(), text)
    for name in settable_fields():
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value if isinstance(value, bool) else parse_field(name, value)
    return config_from(args.preset, **overrides)


def run_train(args: argparse.Namespace) -> int:
    """Run ``paperlib train`` from parsed options; returns the exit status."""
    from ..train.loop import train  # torch: imported when a run starts, not for --help

    config = config_from_args(args)
    result = train(config, args.out, resume=args.resume, progress=not getattr(args, "quiet", False),
                   allow_data_change=args.allow_data_change)
    if result.last_checkpoint is not None:
        best = "" if result.best_iou is None else f", best {config.select_on} IoU {result.best_iou:.4f}"
        print(f"trained {result.step} steps ({result.epoch} epochs){best}; checkpoint {result.last_checkpoint}")
    return 0


def main_train(argv: Sequence[str] | None = None) -> int:
    """``python -m paperlib.train ...``: the train command on its own (torchrun entry point)."""
    parser = argparse.ArgumentParser(prog="paperlib train", description=__doc__.splitlines()[0])
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_train(args)
    except InputError as err:
        print(f"paperlib train: error: {err}", file=sys.stderr)
        return 2
