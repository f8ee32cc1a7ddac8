"""Official weight files: read a released checkpoint as a timm state dict and load it, checked.

Paper section 3 / Table 4: the backbones are the released DINO and iBOT ViTs. Their checkpoints
come in several wrappers (a plain state dict; DINO's full checkpoint with teacher and student;
iBOT's ``checkpoint_teacher.pth``), with ``module.`` / ``backbone.`` prefixes and pre-training
heads. :func:`read_state_dict` turns any of them into the backbone's timm-named state dict,
loaded with ``torch.load(weights_only=True)``, and :func:`load_weights_file` refuses a file
whose keys or shapes do not match the model, naming them. :func:`file_sha256` gives the
``sha256:<hex>`` identity that caches key on.

Which file to read (``weights=FILE``, ``$PAPERLIB_WEIGHTS_DIR`` or timm's hub) is decided by
:func:`paperlib.backbones.registry.load_backbone`.

Public API:
    read_state_dict(path)                  an official checkpoint -> {timm key: tensor}.
    load_weights_file(model, path, name)   check a file against a (meta-device) model and load it.
    file_sha256(path)                      SHA-256 hex digest of a file.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from pathlib import Path

import torch
from torch import nn

from ..checks import InputError, require


def file_sha256(path: str | Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# Wrappers of released checkpoints, tried in this order: DINO and iBOT evaluate the teacher.
_WRAPPER_KEYS = ("teacher", "model", "state_dict", "student")
# Parameters used only in pre-training: classification/projection heads, iBOT's masked-patch
# embedding and DINOv2's mask token.
_DROPPED_PREFIXES = ("head.", "head_dist.")
_DROPPED_KEYS = ("masked_embed", "mask_token")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read an official checkpoint as a timm-named backbone state dict.

    Accepts a plain state dict or one wrapped in {'teacher'|'model'|'state_dict'|'student': ...}
    (the teacher wins when both are present), with optional 'module.' and 'backbone.' prefixes;
    drops the head and pre-training-only keys. Loaded with ``torch.load(weights_only=True)``.

    Args:
        path: the checkpoint file.

    Returns:
        The state dict, key names as in timm's VisionTransformer.
    """
    path = Path(path).expanduser()
    require(path.is_file(), f"weights file {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        if found or "global" in str(err).lower():
            raise InputError(f"{path}: holds Python objects besides tensors"
                             f"{f' ({found.group(1)})' if found else ''}, so it cannot be loaded safely; "
                             f"a full training checkpoint? use the backbone-only release") from None
        raise InputError(f"{path}: not a readable torch checkpoint") from None
    except Exception as err:  # text, truncated or garbage files fail anywhere in the unpickler
        raise InputError(f"{path}: not a readable torch checkpoint ({err.__class__.__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else 'empty or truncated'})") from None

    for _ in range(3):  # unwrap {'teacher': {'state_dict': ...}} and the like
        if isinstance(ckpt, dict) and not any(isinstance(v, torch.Tensor) for v in ckpt.values()):
            key = next((k for k in _WRAPPER_KEYS if isinstance(ckpt.get(k), dict)), None)
            if key is None:
                break
            ckpt = ckpt[key]
    require(isinstance(ckpt, dict) and any(isinstance(v, torch.Tensor) for v in ckpt.values()),
            f"{path}: no state dict found (top-level keys: "
            f"{sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__})")

    state = {k: v for k, v in ckpt.items() if isinstance(v, torch.Tensor)}
    while state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    if any(k.startswith("backbone.") for k in state):  # a DINO/iBOT wrapper: backbone + head
        state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    return {k: v for k, v in state.items()
            if not k.startswith(_DROPPED_PREFIXES) and k not in _DROPPED_KEYS}


def load_weights_file(model: nn.Module, path: Path, name: str) -> nn.Module:
    """Check ``path`` against ``model`` (built on the meta device) and load it in place.

    Paper section 3 / Table 4 (the released backbone checkpoints).

    Args:
        model: the timm VisionTransformer the file is for, typically built on the meta device.
        path: the checkpoint file (see :func:`read_state_dict`).
        name: the registry name, for the error message.

    Returns:
        ``model``, its parameters the file's tensors, in float32.

    Raises:
        InputError: the file's keys or shapes do not match the model (the first few are named).
    """
    state = read_state_dict(path)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong_shape:
        parts = []
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                            ("keys of the wrong shape", wrong_shape)):
            if keys:
                more = f" and {len(keys) - 4} more" if len(keys) > 4 else ""
                parts.append(f"{label} {', '.join(keys[:4])}{more}")
        raise InputError(f"{path}: not a {name} checkpoint: {'; '.join(parts)}")
    broken = sorted(k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all()))
    if broken:   # a damaged or half-written file: features from it would be NaN, masks meaningless
        more = f" and {len(broken) - 4} more" if len(broken) > 4 else ""
        raise InputError(f"{path}: tensor(s) {', '.join(broken[:4])}{more} hold NaN or Inf values; "
                         f"the file is damaged: download it again")
    model.load_state_dict(state, strict=True, assign=True)  # the file's tensors become the parameters
    return model.float()
