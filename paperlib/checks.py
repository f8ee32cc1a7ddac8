"""The one place where user input is checked.

Public functions and commands call these helpers at their boundary; the maths below them
assumes valid input. Every failure is an :class:`InputError` whose message names the
parameter or file and says what was expected, so the CLI can print it as one line and exit 2.
"""

from __future__ import annotations

from numbers import Integral, Real
from pathlib import Path
from typing import Iterable, Sequence


class InputError(ValueError):
    """Bad user input: a parameter, a file or a folder that cannot be used as given."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`InputError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise InputError(message)


def check_tensor(name: str, x, *, ndim: int | Sequence[int] | None = None,
                 channels: int | Sequence[int] | None = None, floating: bool = False) -> None:
    """Check a torch tensor's type, rank, channel count (dim 1) and dtype kind.

    Args:
        name: the parameter name used in the message.
        x: the value to check.
        ndim: allowed number of dimensions.
        channels: allowed sizes of dim 1.
        floating: require a floating-point dtype.
    """
    import torch

    require(isinstance(x, torch.Tensor), f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        require(x.ndim in allowed, f"{name} must have {' or '.join(map(str, allowed))} dimensions, "
                                   f"got shape {tuple(x.shape)}")
    if channels is not None:
        allowed = (channels,) if isinstance(channels, int) else tuple(channels)
        require(x.ndim >= 2 and x.shape[1] in allowed,
                f"{name} must have {' or '.join(map(str, allowed))} channels in dim 1, "
                f"got shape {tuple(x.shape)}")
    if floating:
        require(x.is_floating_point(), f"{name} must be a floating-point tensor, got {x.dtype}")


def is_int(value) -> bool:
    """An integer (Python's or numpy's) that is not a bool: ``True`` is an int to Python, never a size here."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A real number (int, float or numpy's) that is not a bool."""
    return isinstance(value, Real) and not isinstance(value, bool)


def check_int(name: str, value, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int if it is an integer (not a bool) in [``low``, ``high``], else an InputError."""
    bounds = " and ".join(b for b in (f">= {low}" if low is not None else "",
                                      f"<= {high}" if high is not None else "") if b)
    ok = is_int(value) and (low is None or value >= low) and (high is None or value <= high)
    require(ok, f"{name} must be an integer{' ' + bounds if bounds else ''}, got {value!r}")
    return int(value)


def check_image(name: str, image) -> None:
    """Check an RGB image as the package passes it around: a (H, W, 3) uint8 numpy array, H, W >= 1."""
    import numpy as np

    require(isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3 and min(image.shape[:2]) >= 1,
            f"{name} must be a (H, W, 3) uint8 RGB array, got "
            f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}")


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    """Check that a number is finite and > 0 (or >= 0 with ``allow_zero``); NaN and inf are refused."""
    ok = (value >= 0 if allow_zero else value > 0) and value != float("inf")
    require(ok, f"{name} must be {'>= 0' if allow_zero else '> 0'} and finite, got {value!r}")


def check_choice(name: str, value: str, choices: Iterable[str]) -> None:
    """Check that ``value`` is one of ``choices``."""
    choices = tuple(choices)
    require(value in choices, f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def check_dir(name: str, path: str | Path) -> Path:
    """Return ``path`` as a Path if it is an existing folder, else raise naming it."""
    path = Path(path).expanduser()
    require(path.exists(), f"{name}: folder {path} does not exist")
    require(path.is_dir(), f"{name}: {path} is not a folder")
    return path


def check_output_dir(name: str, out: str | Path, *, inputs: dict[str, str | Path | None]) -> Path:
    """A folder a command may write into without touching what it reads; returns it as a Path.

    One rule for every command that writes a folder of files: the output may not be an existing
    file, nor be an input folder, lie inside one, or hold an input (file or folder). The check
    is on resolved paths, so symbolic links and ``..`` do not get around it. Nothing is created
    or deleted here.

    Args:
        name: the option naming the output (``--out``), used in the message.
        out: the output folder (it may not exist yet).
        inputs: option name -> the file or folder it reads (None entries are skipped).

    Raises:
        InputError: naming ``name``, the input it collides with, and what to do instead.
    """
    out = Path(out).expanduser()
    require(not out.is_file(), f"{name} {out}: is a file; a folder is needed")
    _refuse_collision(name, out, inputs, holds=True, advice="outputs never go where inputs are read: "
                                                           "choose a separate folder")
    return out


def check_output_file(name: str, path: str | Path | None, *, inputs: dict[str, str | Path | None]) -> None:
    """A report file (``--json``, ``--csv``...) may not be a folder, an input file, or lie inside an
    input folder (it would join the data it describes); None passes. Nothing is written here.

    Args:
        name: the option naming the file, used in the message.
        path: the file to be written, or None.
        inputs: option name -> the file or folder it reads (None entries are skipped).
    """
    if path is None:
        return
    path = Path(path).expanduser()
    require(not path.is_dir(), f"{name} {path}: is a folder; a file name is needed")
    _refuse_collision(name, path, inputs, holds=False, advice="reports never go where inputs are read: "
                                                             "choose another place")


def dataset_folder(images_dir: str | Path, masks_dir: str | Path) -> Path | None:
    """The folder a dataset's images and masks sit in side by side (``DUTS-TE/`` of
    ``DUTS-TE/DUTS-TE-Image`` and ``DUTS-TE/DUTS-TE-Mask``), or None when they have different parents."""
    images, masks = Path(images_dir).expanduser().resolve(), Path(masks_dir).expanduser().resolve()
    return images.parent if images.parent == masks.parent else None


def _refuse_collision(name: str, out: Path, inputs: dict[str, str | Path | None], *, holds: bool,
                      advice: str) -> None:
    """Raise if ``out`` is an input, lies inside an input folder or (with ``holds``) holds an
    input, on resolved paths (symbolic links and ``..`` do not get around it)."""
    target = out.resolve()
    for option, given in inputs.items():
        if given is None:
            continue
        source = Path(given).expanduser().resolve()
        if target == source:
            relation = "is"
        elif source.is_dir() and target.is_relative_to(source):
            relation = "lies inside"
        elif holds and source.is_relative_to(target):
            relation = "holds"
        else:
            continue
        noun = "folder" if source.is_dir() else "file"
        raise InputError(f"{name} {out}: {relation} the input {noun} of {option} ({given}); {advice}")


_PAPERMILL_HINT = " (papermill's -p passes lists and mappings as strings: use -y)"


def check_names(name: str, value) -> list[str]:
    """``value`` as a list of strings (a list or tuple of them), or an InputError naming ``name``.

    A single string is refused rather than read letter by letter: that is what a JSON list
    given to papermill with ``-p`` becomes.
    """
    require(isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value),
            f"{name} must be a list of names, got {value!r}" + (_PAPERMILL_HINT if isinstance(value, str) else ""))
    return list(value)


def check_mapping(name: str, value) -> dict:
    """``value`` as a dict (None gives {}), or an InputError naming ``name`` (see :func:`check_names`)."""
    from collections.abc import Mapping

    if value is None:
        return {}
    require(isinstance(value, Mapping),
            f"{name} must be a mapping, got {value!r}" + (_PAPERMILL_HINT if isinstance(value, str) else ""))
    return dict(value)
