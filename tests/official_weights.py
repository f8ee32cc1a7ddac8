"""Backbone weight files in the official formats, with random values: what a reader downloads."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from paperlib.backbones.catalog import BACKBONES
from paperlib.backbones.registry import load_backbone


def write_official_weights(folder: str | Path, names: Sequence[str], *, seed: int = 0) -> dict[str, Path]:
    """Save a randomly initialised ViT per backbone name under its official file name in ``folder``.

    DINO releases a plain backbone state dict; iBOT's ``checkpoint_teacher.pth`` wraps it as
    ``{'state_dict': {'backbone.*': ..., 'head.*': ...}}`` with a masked-patch embedding.

    Returns:
        name -> the file written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in names:
        torch.manual_seed(seed)
        state = load_backbone(name, _random_init=True).model.state_dict()
        if name.startswith("ibot"):
            dim = state["cls_token"].shape[-1]
            wrapped = {f"backbone.{k}": v for k, v in state.items()}
            wrapped["backbone.masked_embed"] = torch.zeros(1, dim)
            wrapped["head.last_layer.weight"] = torch.zeros(8, 256)
            state = {"state_dict": wrapped}
        out[name] = folder / BACKBONES[name].weights_file
        torch.save(state, out[name])
    return out
