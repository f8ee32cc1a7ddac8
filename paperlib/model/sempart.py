"""A trained Sempart head: the model and the checkpoint contract.

Public API:

* :class:`SempartModel`: the head on its frozen backbone, with the input size it was trained at.
* :func:`read_checkpoint`, :func:`load_sempart`, :func:`save_sempart`, :data:`SEMPART_FORMAT`:
  a checkpoint written by training (format ``paperlib-sempart-1``; :func:`save_sempart` is the
  writer side of the contract) read back, validated, and rebuilt as a :class:`SempartModel`.
  Both readers also take the authors' released heads (``{'segmenter_state_dict': ...}``), renamed
  by :mod:`paperlib.model.released` and run on DINO ViT-S/8.

Running the model as a segmentation method (the evaluation protocol, forward pass, polarity
flip, the released code's centre-crop frame, :class:`paperlib.methods.base.Method` wrapper) is
:mod:`paperlib.methods.sempart`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..backbones.catalog import BACKBONES
from ..backbones.features import Backbone, normalise
from ..backbones.registry import load_backbone
from ..checks import InputError, check_choice, is_int, require
from ..devices import backbone_device
from ..images import atomic_path
from .head import HeadOutput, SempartHead
from .released import RELEASED_ENTRY, is_released, released_checkpoint

SEMPART_FORMAT = "paperlib-sempart-1"



# ----------------------------------------------------------------------------- model + checkpoint

class SempartModel(nn.Module):
    """A Sempart head on its frozen backbone, with the input size it was trained at.

    Args:
        head: the trained :class:`SempartHead`.
        backbone: the frozen :class:`Backbone` whose keys the head reads.
        image_size: the square input side the head was trained at (320).
        resize_short: the short side training resized to before its random crop (kept for
            provenance; the released evaluation frame uses image_size + 15 instead).
        config: the checkpoint's config (a plain dict), kept for provenance.
        step, epoch: the training step and epoch of the checkpoint, or None.
    """

    def __init__(self, head: SempartHead, backbone: Backbone, *, image_size: int = 320,
                 resize_short: int = 335, config: dict | None = None, step: int | None = None,
                 epoch: int | None = None) -> None:
        super().__init__()
        require(head.dim == backbone.dim and head.patch_size == backbone.patch_size,
                f"the head (dim {head.dim}, patch {head.patch_size}) does not fit backbone "
                f"{backbone.name} (dim {backbone.dim}, patch {backbone.patch_size})")
        require(image_size >= head.patch_size and image_size % head.patch_size == 0,
                f"image_size must be a positive multiple of the patch size {head.patch_size}, "
                f"got {image_size}")
        require(resize_short >= image_size,
                f"resize_short ({resize_short}) must be >= image_size ({image_size})")
        self.head = head
        self.backbone = backbone
        self.image_size = int(image_size)
        self.resize_short = int(resize_short)
        self.config = dict(config or {})
        self.step, self.epoch = step, epoch
        self.eval()

    @property
    def patch_size(self) -> int:
        return self.head.patch_size

    def forward(self, images: torch.Tensor) -> HeadOutput:
        """Head logits for images in [0, 1]; the head's current train/eval mode applies.

        Args:
            images: (B, 3, S, S) float RGB in [0, 1], S a multiple of the patch size.

        Returns:
            HeadOutput(fine (B, 1, S, S), coarse (B, 1, S / patch, S / patch)), logits.
        """
        keys = self.backbone.keys(images)                               # (B, D, h, w)
        # The head sees the ImageNet-normalised image whatever the backbone's own normalisation.
        return self.head(keys, normalise(images))


def _checkpoint_error(path: Path, what: str) -> InputError:
    return InputError(f"checkpoint {path}: {what}")


def read_checkpoint(checkpoint: str | Path) -> dict:
    """Read and validate a Sempart checkpoint file (format ``paperlib-sempart-1``).

    The contract: a dict with ``format`` = 'paperlib-sempart-1'; ``config``, a plain dict with
    ``backbone`` (a :data:`paperlib.backbones.catalog.BACKBONES` name), ``image_size`` (int),
    ``resize_short`` (int) and optionally ``head`` = {'dim': int, 'patch_size': int} (else the
    backbone's); ``model``, the :class:`SempartHead` state dict; optional ``step`` and ``epoch``.
    Read with ``torch.load(weights_only=True)``: no pickled code runs.

    A file of the authors' released heads (a dict holding ``segmenter_state_dict``) is accepted
    too: its tensors are renamed strictly into ``SempartHead(384, 8)`` and its config names DINO
    ViT-S/8 at 320 x 320, short side 335 (:mod:`paperlib.model.released`).

    Args:
        checkpoint: path of the file.

    Returns:
        The checkpoint dict, with ``config["head"]`` filled in.
    """
    path = Path(checkpoint).expanduser()
    require(path.exists(), f"checkpoint {path} does not exist")
    require(path.is_file(), f"checkpoint {path} is not a file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and torch errors come in many classes
        first = str(err).splitlines()[0] if str(err) else ""
        raise _checkpoint_error(path, f"cannot be read as a PyTorch file ({type(err).__name__}: "
                                      f"{first[:200]}); is it a paperlib Sempart checkpoint?") from err
    if is_released(ckpt):
        return {"format": SEMPART_FORMAT, **released_checkpoint(ckpt, path)}
    if not isinstance(ckpt, dict) or "format" not in ckpt:
        raise _checkpoint_error(path, f"is not a paperlib Sempart checkpoint (no 'format' entry) nor "
                                      f"an authors' released head (no {RELEASED_ENTRY!r} entry); "
                                      f"write one with paperlib's trainer")
    if ckpt["format"] != SEMPART_FORMAT:
        raise _checkpoint_error(path, f"has format {ckpt['format']!r}, this paperlib reads "
                                      f"{SEMPART_FORMAT!r}")
    for key in ("config", "model"):
        if key not in ckpt:
            raise _checkpoint_error(path, f"lacks the {key!r} entry")
    config, state = ckpt["config"], ckpt["model"]
    if not isinstance(config, dict):
        raise _checkpoint_error(path, f"'config' must be a dict, got {type(config).__name__}")
    if not isinstance(state, dict):
        raise _checkpoint_error(path, f"'model' must be a state dict, got {type(state).__name__}")
    for key in ("backbone", "image_size", "resize_short"):
        if key not in config:
            raise _checkpoint_error(path, f"config lacks {key!r}")
    if config["backbone"] not in BACKBONES:
        raise _checkpoint_error(path, f"config names backbone {config['backbone']!r}, not one of "
                                      f"{', '.join(BACKBONES)}")
    for key in ("image_size", "resize_short"):
        if not (is_int(config[key]) and config[key] >= 1):
            raise _checkpoint_error(path, f"config {key!r} must be a positive int, got {config[key]!r}")
    info = BACKBONES[config["backbone"]]
    head_cfg = config.get("head", {"dim": info.dim, "patch_size": info.patch_size})
    if not (isinstance(head_cfg, dict) and all(is_int(head_cfg.get(k)) and head_cfg[k] >= 1
                                               for k in ("dim", "patch_size"))):
        raise _checkpoint_error(path, f"config 'head' must be {{'dim': int, 'patch_size': int}}, "
                                      f"got {head_cfg!r}")
    return {**ckpt, "config": {**config, "head": dict(head_cfg)}}


def load_sempart(checkpoint: str | Path, *, backbone_weights: str | Path | None = None,
                 device: torch.device | str | None = None,
                 backbone: Backbone | None = None) -> SempartModel:
    """Rebuild a trained Sempart head and its frozen backbone from a checkpoint.

    Paper section 3 (head on frozen DINO keys); checkpoint contract: :func:`read_checkpoint`.

    Args:
        checkpoint: a ``paperlib-sempart-1`` file, or an authors' released head (needs
            ``dino_vits8``: pass its ``dino_deitsmall8_pretrain.pth`` as ``backbone_weights``).
        backbone_weights: the backbone's official weights file (see
            :func:`paperlib.backbones.registry.load_backbone`); None: $PAPERLIB_WEIGHTS_DIR or the hub.
        device: where to put the model (default: the given backbone's device, else the CPU).
        backbone: an already loaded backbone to use instead of loading ``config["backbone"]``;
            its dim and patch size must match the head's.

    Returns:
        A :class:`SempartModel` in eval mode.
    """
    ckpt = read_checkpoint(checkpoint)
    path, config = Path(checkpoint), ckpt["config"]
    if backbone is None:
        backbone = load_backbone(config["backbone"], weights=backbone_weights, device=device)
    else:
        require(isinstance(backbone, Backbone),
                f"backbone must be a paperlib Backbone, got {type(backbone).__name__}")
        require(backbone_weights is None, "pass either backbone or backbone_weights, not both")
    if device is None:
        device = backbone_device(backbone)
    dim, patch = config["head"]["dim"], config["head"]["patch_size"]
    if (dim, patch) != (backbone.dim, backbone.patch_size):
        raise _checkpoint_error(path, f"the head was trained on dim {dim}, patch {patch} features, "
                                      f"but backbone {backbone.name} gives dim {backbone.dim}, "
                                      f"patch {backbone.patch_size}")
    head = SempartHead(dim, patch)
    try:
        head.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as err:
        raise _checkpoint_error(path, f"its 'model' does not fit SempartHead({dim}, {patch}): "
                                      f"{str(err).splitlines()[-1].strip()[:300]}") from err
    return SempartModel(head, backbone, image_size=config["image_size"],
                        resize_short=config["resize_short"], config=config, step=ckpt.get("step"),
                        epoch=ckpt.get("epoch")).to(device)


def save_sempart(path: str | Path, head: SempartHead, *, backbone: str, image_size: int = 320,
                 resize_short: int = 335, step: int | None = None, epoch: int | None = None,
                 config: dict | None = None) -> None:
    """Write a checkpoint that :func:`load_sempart` reads (format ``paperlib-sempart-1``), atomically.

    Args:
        path: the file to write.
        head: the trained head (its state dict is moved to the CPU).
        backbone: the backbone's registry name.
        image_size: the square training input side (320, docs/paper_and_code.md#training).
        resize_short: the training resize's short side (provenance; 355 by default, 335 in the
            released code).
        step, epoch: training progress, or None.
        config: further plain config entries to record (e.g. loss weights, learning rate).
    """
    check_choice("backbone", backbone, BACKBONES)
    require(isinstance(head, SempartHead), f"head must be a SempartHead, got {type(head).__name__}")
    full_config = {**(config or {}), "backbone": backbone, "image_size": int(image_size),
                   "resize_short": int(resize_short),
                   "head": {"dim": head.dim, "patch_size": head.patch_size}}
    ckpt = {"format": SEMPART_FORMAT, "config": full_config,
            "model": {k: v.detach().cpu() for k, v in head.state_dict().items()}}
    if step is not None:
        ckpt["step"] = int(step)
    if epoch is not None:
        ckpt["epoch"] = int(epoch)
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
