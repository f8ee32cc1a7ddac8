"""A trained Sempart head as a segmentation method: checkpoint -> model -> predictions.

Stages (SPEC "Evaluation protocol", "Single-object discovery"):

1. :func:`load_sempart` reads a checkpoint written by training (format ``paperlib-sempart-1``,
   see :func:`save_sempart` for the writer side of the contract) and rebuilds the head on its
   frozen backbone as a :class:`SempartModel`.
2. :func:`sempart_forward` runs the model on a batch of images resized to the training size
   (``image_size`` x ``image_size``, 320), with BatchNorm in eval mode (default) or train mode
   (the released code's evaluation).
3. :func:`apply_polarity` flips masks whose fine sigmoid averages above 0.5, over each batch of
   8 (paper and released code) or per image. The flip comes before any refinement (the guided
   filter runs on the flipped mask, in :func:`paperlib.methods.predict_refined`).
4. :class:`SempartMethod` puts these behind :class:`paperlib.methods.Method`: ``predict``,
   ``predict_batch`` (the batch polarity rule) and ``discover`` (the CorLoc box).

The two evaluation frames (``EvalProtocol.resolution``):

* ``full`` (default, TokenCut's protocol): the whole image is resized (aspect not kept) to
  ``image_size`` x ``image_size`` -- the head needs H = W = a multiple of the patch, and this is
  the size it was trained at -- and the predicted fine mask is resized bilinearly back to the
  image's own (H, W), where it is scored against the untouched ground truth.
* ``center320`` (released code): the released evaluation scores a centre crop. Its data loader
  resizes the short side of image **and** ground truth to ``resize_short`` (335) and crops the
  central ``image_size`` (320) square of both; the crop is what gets scored, nothing is pasted
  back. :meth:`SempartMethod.view` produces that crop for an image and its ground truth; the
  caller then predicts on the cropped image (already ``image_size`` square, so the model sees
  it unresized) and scores against the cropped ground truth. ``predict`` itself always returns
  a mask at the size of the image it is given, so the Method contract holds in both frames.

Object discovery always works on the image it is given (``discover`` does not crop: CorLoc
boxes refer to the whole image).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .backbones import BACKBONES, IMAGENET_MEAN, IMAGENET_STD, Backbone, load_backbone
from .corloc import mask_to_box
from .head import HeadOutput, SempartHead
from .methods import Prediction
from .tokencut import backbone_device
from .validation import InputError, check_choice, check_tensor, require

SEMPART_FORMAT = "paperlib-sempart-1"

BN_MODES = ("eval", "train")
POLARITIES = ("batch", "image")
RESOLUTIONS = ("full", "center320")


# ----------------------------------------------------------------------------- protocol

@dataclass(frozen=True)
class EvalProtocol:
    """How a trained head is evaluated (SPEC "Evaluation protocol").

    Attributes:
        bn_mode: 'eval': BatchNorm uses its running statistics (default; a prediction does not
            depend on the other images of its batch). 'train': batch statistics, as the
            released evaluation code runs it; the model's running statistics are left as they
            were (the released code would update them, which changes no prediction it makes).
        polarity: 'batch': flip every mask of a batch of ``batch_size`` when the mean of their
            fine sigmoids exceeds 0.5 (paper and released code); 'image': decide per image.
        resolution: 'full': predict at image_size and resize back to the image's size
            (default, TokenCut's protocol); 'center320': the released code's frame, a
            resize_short resize plus an image_size centre crop of image and ground truth
            (:meth:`SempartMethod.view`).
        batch_size: images per batch for the batch polarity rule and train-mode BatchNorm
            (8: the released evaluation's batch size).
    """

    bn_mode: str = "eval"
    polarity: str = "batch"
    resolution: str = "full"
    batch_size: int = 8

    def __post_init__(self) -> None:
        check_choice("bn_mode", self.bn_mode, BN_MODES)
        check_choice("polarity", self.polarity, POLARITIES)
        check_choice("resolution", self.resolution, RESOLUTIONS)
        require(isinstance(self.batch_size, int) and not isinstance(self.batch_size, bool)
                and self.batch_size >= 1, f"batch_size must be an int >= 1, got {self.batch_size!r}")


PROTOCOLS: dict[str, EvalProtocol] = {
    # The paper's description with TokenCut's full-resolution scoring; BatchNorm in eval mode.
    "default": EvalProtocol(),
    # The released evaluation code: BatchNorm in train mode, batch-of-8 polarity, 335 + 320 crop.
    "official": EvalProtocol(bn_mode="train", polarity="batch", resolution="center320"),
}


# ----------------------------------------------------------------------------- model + checkpoint

class SempartModel(nn.Module):
    """A Sempart head on its frozen backbone, with the input size it was trained at.

    Args:
        head: the trained :class:`SempartHead`.
        backbone: the frozen :class:`Backbone` whose keys the head reads.
        image_size: the square input side the head was trained at (320).
        resize_short: the short-side resize before the centre crop of the released protocol (335).
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
        keys = self.backbone.features(images).keys                      # (B, D, h, w)
        mean = images.new_tensor(IMAGENET_MEAN)[None, :, None, None]
        std = images.new_tensor(IMAGENET_STD)[None, :, None, None]
        # The head sees the ImageNet-normalised image whatever the backbone's own normalisation.
        return self.head(keys, (images - mean) / std)


def _checkpoint_error(path: Path, what: str) -> InputError:
    return InputError(f"checkpoint {path}: {what}")


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def read_checkpoint(checkpoint: str | Path) -> dict:
    """Read and validate a Sempart checkpoint file (format ``paperlib-sempart-1``).

    The contract: a dict with ``format`` = 'paperlib-sempart-1'; ``config``, a plain dict with
    ``backbone`` (a :data:`paperlib.backbones.BACKBONES` name), ``image_size`` (int),
    ``resize_short`` (int) and optionally ``head`` = {'dim': int, 'patch_size': int} (else the
    backbone's); ``model``, the :class:`SempartHead` state dict; optional ``step`` and ``epoch``.
    Read with ``torch.load(weights_only=True)``: no pickled code runs.

    Args:
        checkpoint: path of the file.

    Returns:
        The checkpoint dict, with ``config["head"]`` filled in.
    """
    path = Path(checkpoint)
    require(path.exists(), f"checkpoint {path} does not exist")
    require(path.is_file(), f"checkpoint {path} is not a file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and torch errors come in many classes
        first = str(err).splitlines()[0] if str(err) else ""
        raise _checkpoint_error(path, f"cannot be read as a PyTorch file ({type(err).__name__}: "
                                      f"{first[:200]}); is it a paperlib Sempart checkpoint?") from err
    if not isinstance(ckpt, dict) or "format" not in ckpt:
        raise _checkpoint_error(path, "is not a paperlib Sempart checkpoint (no 'format' entry); "
                                      "write one with paperlib's trainer")
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
        if not _positive_int(config[key]):
            raise _checkpoint_error(path, f"config {key!r} must be a positive int, got {config[key]!r}")
    info = BACKBONES[config["backbone"]]
    head_cfg = config.get("head", {"dim": info.dim, "patch_size": info.patch_size})
    if not (isinstance(head_cfg, dict) and _positive_int(head_cfg.get("dim"))
            and _positive_int(head_cfg.get("patch_size"))):
        raise _checkpoint_error(path, f"config 'head' must be {{'dim': int, 'patch_size': int}}, "
                                      f"got {head_cfg!r}")
    return {**ckpt, "config": {**config, "head": dict(head_cfg)}}


def load_sempart(checkpoint: str | Path, *, backbone_weights: str | Path | None = None,
                 device: torch.device | str | None = None,
                 backbone: Backbone | None = None) -> SempartModel:
    """Rebuild a trained Sempart head and its frozen backbone from a checkpoint.

    Paper section 3 (head on frozen DINO keys); checkpoint contract: :func:`read_checkpoint`.

    Args:
        checkpoint: a ``paperlib-sempart-1`` file.
        backbone_weights: the backbone's official weights file (see
            :func:`paperlib.backbones.load_backbone`); None: $PAPERLIB_WEIGHTS_DIR or the hub.
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
        image_size: the square training input side (320, SPEC "Training").
        resize_short: the released protocol's short-side resize before the crop (335).
        step, epoch: training progress, or None.
        config: further plain config entries to record (e.g. loss weights, learning rate).
    """
    from .images import atomic_path

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


# ----------------------------------------------------------------------------- forward + polarity

@contextlib.contextmanager
def _batch_norm_mode(head: nn.Module, bn_mode: str) -> Iterator[None]:
    """Run the head in eval mode, BatchNorm on batch statistics for 'train'; restore everything.

    In train mode BatchNorm would also update its running statistics: they are saved before and
    written back after, so evaluating never changes the model.
    """
    modes = {m: m.training for m in head.modules()}
    norms = [m for m in head.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [[b.clone() for b in m.buffers(recurse=False)] for m in norms]
    head.eval()
    if bn_mode == "train":
        for m in norms:
            m.train()
    try:
        yield
    finally:
        with torch.no_grad():
            for m, buffers in zip(norms, saved):
                for b, old in zip(m.buffers(recurse=False), buffers):
                    b.copy_(old)
        for m, training in modes.items():
            m.training = training


def sempart_forward(model: SempartModel, images: torch.Tensor, *, bn_mode: str = "eval") -> HeadOutput:
    """Head logits for a batch at the training size, without gradients (SPEC "Evaluation protocol").

    Args:
        model: a :class:`SempartModel`.
        images: (B, 3, S, S) float RGB in [0, 1], S = ``model.image_size`` (any multiple of the
            patch size is accepted).
        bn_mode: 'eval' (running statistics) or 'train' (statistics of this batch).

    Returns:
        HeadOutput(fine (B, 1, S, S), coarse (B, 1, h, w)), logits.
    """
    check_choice("bn_mode", bn_mode, BN_MODES)
    check_tensor("images", images, ndim=4, channels=3, floating=True)
    with torch.no_grad(), _batch_norm_mode(model.head, bn_mode):
        return model(images)


def apply_polarity(fine: torch.Tensor, coarse: torch.Tensor, *, rule: str = "batch"
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flip masks whose foreground covers more than half the image (SPEC "Evaluation protocol").

    The Ncut loss is symmetric in s and 1 - s, so a trained head may mark the background; the
    paper and the released code invert when the mean fine sigmoid exceeds 0.5.

    Args:
        fine: (B, 1, H, W) fine sigmoid in [0, 1].
        coarse: (B, 1, h, w) coarse sigmoid in [0, 1], flipped together with ``fine``.
        rule: 'batch': one decision from the mean over the whole batch; 'image': one per image.

    Returns:
        (fine, coarse, inverted): the masks with 1 - s where inverted, and inverted (B,) bool.
    """
    check_choice("polarity", rule, POLARITIES)
    check_tensor("fine", fine, ndim=4, channels=1, floating=True)
    check_tensor("coarse", coarse, ndim=4, channels=1, floating=True)
    require(fine.shape[0] == coarse.shape[0],
            f"fine and coarse must have the same batch size, got {fine.shape[0]} and {coarse.shape[0]}")
    per_image = fine.mean(dim=(1, 2, 3))                                   # (B,)
    mean = per_image if rule == "image" else fine.mean().expand_as(per_image)
    inverted = mean > 0.5                                                  # (B,)
    flip = inverted[:, None, None, None]
    return torch.where(flip, 1 - fine, fine), torch.where(flip, 1 - coarse, coarse), inverted


# ----------------------------------------------------------------------------- images

def _to_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].to(device).float() / 255.0


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize with antialiasing (PIL's bilinear, as torchvision's Resize on images)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def _check_image(image) -> None:
    require(isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3 and min(image.shape[:2]) >= 1,
            f"image must be a (H, W, 3) uint8 RGB array, got "
            f"{getattr(image, 'shape', type(image).__name__)} {getattr(image, 'dtype', '')}")


class EvalView(NamedTuple):
    """An image and its ground truth in the frame a protocol scores."""

    image: np.ndarray         # (H', W', 3) uint8
    mask: np.ndarray | None   # (H', W') float32 in [0, 1], or None when no mask was given


def center_crop_view(image: np.ndarray, mask: np.ndarray | None = None, *, resize_short: int = 335,
                     crop: int = 320) -> EvalView:
    """The released evaluation's frame: short side resized to ``resize_short``, central ``crop`` square.

    SPEC "Evaluation protocol" (released code: 335 resize + 320 centre crop). Sizes follow
    torchvision's ``Resize(int)`` (long side ``int(resize_short * long / short)``) and
    ``CenterCrop`` (offset ``round((side - crop) / 2)``). The image is resized bilinearly with
    antialiasing and rounded back to uint8 (as PIL does); the mask is resized the same way in
    float and left soft (the metrics binarise it at 0.5).

    Args:
        image: (H, W, 3) uint8 RGB.
        mask: (H, W) ground truth in [0, 1] (float or bool), or None.
        resize_short: the short side after the resize.
        crop: the side of the central square.

    Returns:
        EvalView(image (crop, crop, 3) uint8, mask (crop, crop) float32 or None).
    """
    _check_image(image)
    require(_positive_int(crop) and _positive_int(resize_short) and resize_short >= crop,
            f"need ints resize_short >= crop >= 1, got resize_short={resize_short!r}, crop={crop!r}")
    H, W = image.shape[:2]
    if mask is not None:
        mask = np.asarray(mask)
        require(mask.shape == (H, W), f"mask must be (H, W) = {(H, W)} like the image, got {mask.shape}")
    short, long = min(H, W), max(H, W)
    new_long = int(resize_short * long / short)
    size = (resize_short, new_long) if H <= W else (new_long, resize_short)   # (H', W')
    top, left = int(round((size[0] - crop) / 2.0)), int(round((size[1] - crop) / 2.0))

    def frame(x: torch.Tensor) -> torch.Tensor:        # (1, C, H, W) -> (1, C, crop, crop)
        return _resize(x, size)[..., top:top + crop, left:left + crop]

    x = frame(_to_tensor(image, torch.device("cpu")))
    view_image = (x[0].permute(1, 2, 0) * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()
    view_mask = None
    if mask is not None:
        m = torch.from_numpy(mask.astype(np.float32))[None, None]
        view_mask = frame(m)[0, 0].clamp(0.0, 1.0).numpy()
    return EvalView(view_image, view_mask)


# ----------------------------------------------------------------------------- the method

class SempartMethod:
    """Sempart's trained head as a :class:`paperlib.methods.Method` (name 'sempart').

    ``predict(image)`` is ``predict_batch([image])[0]``: a batch of one, so the polarity rule is
    per image there. The batch rule of the paper and the released code (and train-mode
    BatchNorm's batch statistics) need the images together: call :meth:`predict_batch` with the
    images in the dataset's sorted order; it splits them into batches of
    ``protocol.batch_size``. Under ``resolution='center320'`` pass the images (and score against
    the ground truth) from :meth:`view`.

    Each Prediction holds: ``mask`` the fine sigmoid after the polarity flip, resized bilinearly
    to the image's (H, W); ``patch_mask`` the coarse sigmoid (h, w) flipped the same way; ``box``
    the CorLoc box: the fine sigmoid averaged over each patch (its patch-resolution mask),
    thresholded at 0.5, largest 4-connected component (:func:`paperlib.corloc.mask_to_box`),
    scaled to the image's pixels.

    Args:
        model: a :class:`SempartModel` (:func:`load_sempart`).
        protocol: an :class:`EvalProtocol` (``PROTOCOLS['default']`` or ``PROTOCOLS['official']``).
    """

    name = "sempart"

    def __init__(self, model: SempartModel, *, protocol: EvalProtocol = EvalProtocol()) -> None:
        require(isinstance(model, SempartModel), f"model must be a SempartModel, got {type(model).__name__}")
        require(isinstance(protocol, EvalProtocol),
                f"protocol must be an EvalProtocol, got {type(protocol).__name__}")
        self.model = model
        self.protocol = protocol
        self.patch_size = model.patch_size

    @property
    def device(self) -> torch.device:
        return next(self.model.head.parameters()).device

    def view(self, image: np.ndarray, mask: np.ndarray | None = None) -> EvalView:
        """The image and ground truth in the protocol's frame (unchanged for 'full').

        Args:
            image: (H, W, 3) uint8 RGB.
            mask: (H, W) ground truth in [0, 1], or None.

        Returns:
            EvalView: for 'center320' both cropped by :func:`center_crop_view`
            (image_size square), for 'full' the inputs themselves (mask as float32).
        """
        if self.protocol.resolution == "center320":
            return center_crop_view(image, mask, resize_short=self.model.resize_short,
                                    crop=self.model.image_size)
        _check_image(image)
        if mask is not None:
            mask = np.asarray(mask, dtype=np.float32)
            require(mask.shape == image.shape[:2],
                    f"mask must be (H, W) = {image.shape[:2]} like the image, got {mask.shape}")
        return EvalView(image, mask)

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[Prediction]:
        """Predictions for a list of images, polarity and BatchNorm decided per batch of ``batch_size``.

        Paper section 5 / SPEC "Evaluation protocol".

        Args:
            images: (H_i, W_i, 3) uint8 RGB arrays, sizes may differ.

        Returns:
            One Prediction per image: mask (H_i, W_i), patch_mask (h, w), box (4,) or None.
        """
        require(len(images) > 0, "images is empty")
        for image in images:
            _check_image(image)
        out: list[Prediction] = []
        S, n = self.model.image_size, self.protocol.batch_size
        for start in range(0, len(images), n):
            chunk = images[start:start + n]
            x = torch.cat([_resize(_to_tensor(im, self.device), (S, S)) for im in chunk])
            logits = sempart_forward(self.model, x.clamp_(0.0, 1.0), bn_mode=self.protocol.bn_mode)
            fine, coarse, _ = apply_polarity(logits.fine.sigmoid(), logits.coarse.sigmoid(),
                                             rule=self.protocol.polarity)   # (b, 1, S, S), (b, 1, h, w)
            patch_fine = F.avg_pool2d(fine, self.patch_size)                # (b, 1, h, w)
            for i, image in enumerate(chunk):
                out.append(self._prediction(image.shape[:2], fine[i:i + 1], coarse[i, 0],
                                            patch_fine[i, 0]))
        return out

    def _prediction(self, size: tuple[int, int], fine: torch.Tensor, coarse: torch.Tensor,
                    patch_fine: torch.Tensor) -> Prediction:
        H, W = size
        h, w = patch_fine.shape
        mask = _resize(fine, (H, W))[0, 0].clamp(0.0, 1.0)                   # (H, W)
        # One patch cell covers H / h x W / w pixels of the original image.
        box = mask_to_box(patch_fine, patch_size=(H / h, W / w), image_size=(H, W), threshold=0.5)
        return Prediction(mask=mask.float().cpu().numpy(), patch_mask=coarse.float().cpu().numpy(),
                          box=box)

    def predict(self, image: np.ndarray, *, image_id: str | None = None) -> Prediction:
        """One image's prediction (a batch of one: polarity per image). ``image_id`` is unused.

        Args:
            image: (H, W, 3) uint8 RGB.

        Returns:
            Prediction(mask (H, W) float32, patch_mask (h, w) float32, box (4,) or None).
        """
        return self.predict_batch([image])[0]

    def discover(self, image: np.ndarray, *, image_id: str | None = None) -> np.ndarray | None:
        """The CorLoc box of one image (SPEC "Single-object discovery"), in its pixels.

        Args:
            image: (H, W, 3) uint8 RGB (the whole image: no crop, whatever the protocol).

        Returns:
            (4,) float64 xyxy box, or None when no patch is foreground.
        """
        return self.predict(image, image_id=image_id).box
