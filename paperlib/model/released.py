"""The authors' released Sempart heads, read into paperlib's :class:`SempartHead`.

The paper's authors released trained heads (plain Sempart, and Sempart with the crop-zoom trick)
from their repository alpErenSari/segmentation-tricks. Each file is what their training script
writes, ``torch.save({'segmenter_state_dict': state_dict}, path)``, where ``state_dict`` is that
of their ``segmenterNetRGB(384, 1, 64, patch_size=8)``: the same network as
``SempartHead(384, 8)`` (docs/paper_and_code.md#head, 748,165 parameters) under other tensor
names. This module recognises such a file by its contents and renames its 56 tensors, one by one
through the table :data:`RELEASED_NAMES`, into a ``paperlib-sempart-1`` checkpoint, so that
:func:`paperlib.model.sempart.read_checkpoint` and :func:`paperlib.model.sempart.load_sempart`
(hence ``paperlib segment`` / ``eval --method sempart --checkpoint FILE``) take it as it is.

What a released head needs, recorded in the config it is given (:data:`RELEASED`):

* the backbone: DINO ViT-S/8 (``dino_vits8``, official file ``dino_deitsmall8_pretrain.pth``);
  the head reads the keys of its last block, 384 channels on a 40 x 40 grid;
* the input: 320 x 320 images (the size the heads were trained and evaluated at). The released
  evaluation resizes the short side to 335 and scores the central 320 x 320 crop with BatchNorm
  in train mode: ``--protocol official``. paperlib's default protocol resizes the whole image to
  320, predicts with BatchNorm in eval mode and scores at the ground truth's own resolution
  (docs/paper_and_code.md#evaluation-protocol).

Public API:

* :data:`RELEASED_ENTRY`, :func:`is_released`: the file's one entry, and the test for it.
* :data:`RELEASED_NAMES`, :func:`rename`: the name table (released pattern -> paperlib name).
* :func:`from_released`, :func:`to_released`: a state dict renamed one way or the other, strictly.
* :class:`ReleasedHeadSpec`, :data:`RELEASED`: the head's shape and the backbone and sizes it needs.
* :func:`released_checkpoint`: a released file's contents as a checkpoint's config and model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checks import InputError
from .head import SempartHead

# The only entry the authors' training script writes into a checkpoint file.
RELEASED_ENTRY = "segmenter_state_dict"

# Released name -> paperlib name, one row per module. Placeholders: {i} an encoder layer, {s} a
# decoder stage (both decimal indices, copied across), {t} the tensor's own name. In the
# released decoder each stage is one nn.Sequential of (conv, BatchNorm, LeakyReLU) triples, so
# its items 0, 1 are the first block's conv and BatchNorm and 3, 4 the second block's (the last
# stage only); paperlib nests the same blocks one level deeper (stages.{s}.blocks.{b}.{0, 1}).
RELEASED_NAMES: tuple[tuple[str, str], ...] = (
    ("conv_input.{t}",                              "proj.{t}"),               # 1x1 conv D -> 64
    ("inp_transformer.layers.{i}.0.norm.{t}",       "encoder.{i}.norm1.{t}"),  # pre-attention LN
    ("inp_transformer.layers.{i}.0.fn.to_qkv.{t}",  "encoder.{i}.attn.qkv.{t}"),
    ("inp_transformer.layers.{i}.0.fn.to_out.0.{t}", "encoder.{i}.attn.proj.{t}"),
    ("inp_transformer.layers.{i}.1.norm.{t}",       "encoder.{i}.norm2.{t}"),  # pre-MLP LN
    ("inp_transformer.layers.{i}.1.fn.net.0.{t}",   "encoder.{i}.mlp.0.{t}"),  # MLP 64 -> 64
    ("inp_transformer.layers.{i}.1.fn.net.3.{t}",   "encoder.{i}.mlp.3.{t}"),  # MLP 64 -> 64
    ("conv_coarse.{t}",                             "coarse_head.{t}"),        # 1x1 conv 64 -> 1
    ("layers.{s}.0.{t}",                            "stages.{s}.blocks.0.0.{t}"),  # 3x3 conv
    ("layers.{s}.1.{t}",                            "stages.{s}.blocks.0.1.{t}"),  # BatchNorm
    ("layers.{s}.3.{t}",                            "stages.{s}.blocks.1.0.{t}"),  # 3x3 conv
    ("layers.{s}.4.{t}",                            "stages.{s}.blocks.1.1.{t}"),  # BatchNorm
    ("conv_final.{t}",                              "fine_head.{t}"),          # 1x1 conv 131 -> 1
)

# What each placeholder may stand for: indices, and the tensor names of Conv, Linear, LayerNorm
# and BatchNorm modules.
_FIELDS = {"i": r"\d+", "s": r"\d+",
           "t": r"weight|bias|running_mean|running_var|num_batches_tracked"}


def _pattern(template: str) -> re.Pattern:
    """A template of :data:`RELEASED_NAMES` as a regular expression with one group per placeholder."""
    parts = re.split(r"\{(\w)\}", template)  # literal, field, literal, field, ..., literal
    body = "".join(re.escape(p) if k % 2 == 0 else f"(?P<{p}>{_FIELDS[p]})"
                   for k, p in enumerate(parts))
    return re.compile(body)


def rename(name: str, *, inverse: bool = False) -> str | None:
    """The paperlib name of a released tensor name, or the reverse, by :data:`RELEASED_NAMES`.

    Args:
        name: a released tensor name (e.g. ``layers.2.4.running_var``), or with ``inverse`` a
            :class:`SempartHead` one (``stages.2.blocks.1.1.running_var``).
        inverse: map paperlib -> released instead.

    Returns:
        The other side's name, or None when no row of the table matches ``name``.
    """
    for released, paperlib in RELEASED_NAMES:
        source, target = (paperlib, released) if inverse else (released, paperlib)
        match = _pattern(source).fullmatch(name)
        if match:
            return target.format(**match.groupdict())
    return None


@dataclass(frozen=True)
class ReleasedHeadSpec:
    """The released heads' network and what it must be fed (docs/paper_and_code.md#head)."""

    dim: int = 384               # segmenterNetRGB(384, ...): ViT-S keys have 384 channels
    patch_size: int = 8          # segmenterNetRGB(..., patch_size=8): three x2 decoder stages
    backbone: str = "dino_vits8"  # DINO ViT-S/8, the only backbone with dim 384 and patch 8 they use
    image_size: int = 320        # trained and evaluated on 320 x 320 inputs (a 40 x 40 grid)
    resize_short: int = 335      # the released code's short-side resize (img_size + 15) before its crop

    def config(self) -> dict:
        """The ``config`` entry of a ``paperlib-sempart-1`` checkpoint holding a released head."""
        return {"backbone": self.backbone, "image_size": self.image_size,
                "resize_short": self.resize_short,
                "head": {"dim": self.dim, "patch_size": self.patch_size},
                "source": "released head of alpErenSari/segmentation-tricks "
                          "(segmenterNetRGB(384, 1, 64, patch_size=8))"}


RELEASED = ReleasedHeadSpec()


def is_released(ckpt: object) -> bool:
    """Whether a loaded file's contents are an authors' released head: a dict holding
    :data:`RELEASED_ENTRY` and no paperlib ``format`` entry (any other entries are ignored)."""
    return isinstance(ckpt, dict) and RELEASED_ENTRY in ckpt and "format" not in ckpt


def _head_shapes() -> dict[str, torch.Size]:
    """Tensor name -> shape of ``SempartHead(384, 8)``, built on the meta device (no memory)."""
    with torch.device("meta"):
        head = SempartHead(RELEASED.dim, RELEASED.patch_size)
    return {name: t.shape for name, t in head.state_dict().items()}


def _shape(shape: torch.Size) -> str:
    return str(tuple(shape))


def from_released(state: object, *, path: str | Path) -> dict[str, torch.Tensor]:
    """A released ``segmenter_state_dict`` renamed into ``SempartHead(384, 8)``'s state dict.

    Strict: every released tensor must match a row of :data:`RELEASED_NAMES` and land on a
    distinct tensor of the head, with the head's shape, and every tensor of the head must be
    filled. The first tensor that does not fit raises.

    Args:
        state: the value of the file's ``segmenter_state_dict`` entry, {name: tensor}.
        path: the file, named in the error.

    Returns:
        {paperlib name: tensor}, loadable with ``SempartHead(384, 8).load_state_dict(strict=True)``.

    Raises:
        InputError: one line naming the file and the tensor: not a dict, a value that is not a
            tensor, an unknown name, a wrong shape, or a missing tensor.
    """
    where = f"checkpoint {path}: released head"
    if not isinstance(state, dict):
        raise InputError(f"{where}: {RELEASED_ENTRY!r} must be a state dict (name -> tensor), "
                         f"got {type(state).__name__}")
    shapes = _head_shapes()
    target = f"SempartHead({RELEASED.dim}, {RELEASED.patch_size}) (DINO ViT-S/8)"
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if not isinstance(tensor, torch.Tensor):
            raise InputError(f"{where}: entry {name!r} is a {type(tensor).__name__}, not a tensor")
        ours = rename(str(name))
        if ours is None:
            raise InputError(f"{where}: tensor {name!r} is not a name of segmenterNetRGB(384, 1, 64, "
                             f"patch_size=8) (no row of paperlib.model.released.RELEASED_NAMES matches it)")
        if ours not in shapes:
            raise InputError(f"{where}: tensor {name!r} (paperlib {ours!r}) has no place in {target}")
        if ours in out:
            raise InputError(f"{where}: tensor {name!r} fills paperlib {ours!r} a second time")
        if tensor.shape != shapes[ours]:
            raise InputError(f"{where}: tensor {name!r} has shape {_shape(tensor.shape)}, {target} "
                             f"needs {_shape(shapes[ours])} for {ours!r}")
        out[ours] = tensor
    missing = [name for name in shapes if name not in out]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise InputError(f"{where}: tensor {rename(missing[0], inverse=True)!r} (paperlib "
                         f"{missing[0]!r}) is missing{more}")
    return out


def to_released(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`from_released`: a ``SempartHead(384, 8)`` state dict under the
    released names, as the authors' code would save it in ``segmenter_state_dict``.

    Args:
        state: ``head.state_dict()`` of a ``SempartHead(384, 8)``.

    Returns:
        {released name: tensor}, the same tensors.
    """
    out = {}
    for name, tensor in state.items():
        theirs = rename(name, inverse=True)
        if theirs is None:
            raise InputError(f"tensor {name!r} of the head has no released name "
                             f"(paperlib.model.released.RELEASED_NAMES)")
        out[theirs] = tensor
    return out


def released_checkpoint(ckpt: dict, path: str | Path) -> dict:
    """The ``config`` and ``model`` entries of a ``paperlib-sempart-1`` checkpoint for a released file.

    Args:
        ckpt: the file's contents (:func:`is_released` is true of them).
        path: the file, named in errors.

    Returns:
        {'config': ``RELEASED.config()``, 'model': the renamed state dict (:func:`from_released`)}.
    """
    return {"config": RELEASED.config(), "model": from_released(ckpt[RELEASED_ENTRY], path=path)}
