"""A trained Sempart head as a segmentation method: model -> predictions.

Method notes: docs/paper_and_code.md#evaluation-protocol and #single-object-discovery.
Public API, in the order a prediction runs through it (the model and its checkpoint are :mod:`paperlib.model.sempart`):

1. :class:`EvalProtocol`, :data:`PROTOCOLS` ('default', 'official'): how a trained head is
   evaluated (BatchNorm mode, polarity rule, scored frame, batch size).
2. :func:`sempart_forward` runs a :class:`paperlib.model.sempart.SempartModel` on a batch of images
   resized to the training size (``image_size`` x ``image_size``, 320), with BatchNorm in eval
   mode (default) or train mode (the released code's evaluation).
3. :func:`apply_polarity` flips masks whose fine sigmoid averages above 0.5, over each batch of
   8 (paper and released code) or per image. The flip comes before any refinement (the guided
   filter runs on the flipped mask, in :func:`paperlib.methods.refined.refine_prediction`).
4. :func:`center_crop_view`: the released code's scored frame (an :class:`paperlib.methods.base.EvalView`).
5. :class:`SempartMethod` puts these behind :class:`paperlib.methods.base.Method`: ``predict``,
   ``predict_batch`` (the batch polarity rule), ``discover`` (the CorLoc box) and ``view``.

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
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..backbones.features import image_tensor, resize_bilinear, tensor_image
from ..checks import check_choice, check_image, check_int, check_tensor, is_int, require
from ..model.head import HeadOutput
from ..model.sempart import SempartModel
from .base import EvalView, Prediction
from .boxes import mask_to_box

BN_MODES = ("eval", "train")
POLARITIES = ("batch", "image")
RESOLUTIONS = ("full", "center320")
REFINE_AT = ("model", "full")


# ----------------------------------------------------------------------------- protocol

@dataclass(frozen=True)
class EvalProtocol:
    """How a trained head is evaluated (docs/paper_and_code.md#evaluation-protocol).

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
            (:meth:`paperlib.methods.sempart.SempartMethod.view`).
        batch_size: images per batch for the batch polarity rule and train-mode BatchNorm
            (8: the released evaluation's batch size).
        resize_short: short side before the 'center320' crop; None: ``image_size + 15``, the
            released evaluation's ``Resize(img_size + 15)`` (335 for the paper's 320 input,
            whatever short side training resized to). A fixed 335 for a head trained at another
            size would crop a smaller central part of the image than the released code does.
        refine_at: where trick 1 filters a prediction: 'model' (default: on the image_size
            input, where the paper sets r = 9 at 320 x 320, then resized) or 'full' (on the
            prediction resized to the scored frame).
    """

    bn_mode: str = "eval"
    polarity: str = "batch"
    resolution: str = "full"
    batch_size: int = 8
    resize_short: int | None = None
    refine_at: str = "model"

    def __post_init__(self) -> None:
        check_choice("bn_mode", self.bn_mode, BN_MODES)
        check_choice("polarity", self.polarity, POLARITIES)
        check_choice("resolution", self.resolution, RESOLUTIONS)
        check_int("batch_size", self.batch_size, low=1)
        check_choice("refine_at", self.refine_at, REFINE_AT)
        if self.resize_short is not None:
            check_int("resize_short", self.resize_short, low=1)


RELEASED_EVAL_MARGIN = 15   # the released evaluation resizes the short side to image_size + 15


PROTOCOLS: dict[str, EvalProtocol] = {
    # The paper's description with TokenCut's full-resolution scoring; BatchNorm in eval mode.
    "default": EvalProtocol(),
    # The released evaluation code: BatchNorm in train mode, batch-of-8 polarity, 335 + 320 crop.
    "official": EvalProtocol(bn_mode="train", polarity="batch", resolution="center320"),
}


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
    """Head logits for a batch at the training size, without gradients.

    The BatchNorm modes are those of docs/paper_and_code.md#evaluation-protocol.

    Args:
        model: a :class:`paperlib.model.sempart.SempartModel`.
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
    """Flip masks whose foreground covers more than half the image.

    The Ncut loss is symmetric in s and 1 - s, so a trained head may mark the background; the
    paper and the released code invert when the mean fine sigmoid exceeds 0.5
    (docs/paper_and_code.md#evaluation-protocol).

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

def center_crop_view(image: np.ndarray, mask: np.ndarray | None = None, *, resize_short: int = 335,
                     crop: int = 320) -> EvalView:
    """The released evaluation's frame: short side resized to ``resize_short``, central ``crop`` square.

    docs/paper_and_code.md#evaluation-protocol (released code: 335 resize + 320 centre crop). Sizes follow
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
    check_image("image", image)
    require(is_int(crop) and is_int(resize_short) and resize_short >= crop >= 1,
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
        return resize_bilinear(x, size, antialias=True)[..., top:top + crop, left:left + crop]

    x = frame(image_tensor(image, torch.device("cpu")))
    view_image = tensor_image(x)
    view_mask = None
    if mask is not None:
        m = torch.from_numpy(mask.astype(np.float32))[None, None]
        view_mask = frame(m)[0, 0].clamp(0.0, 1.0).numpy()
    return EvalView(view_image, view_mask)


# ----------------------------------------------------------------------------- the method

class SempartMethod:
    """Sempart's trained head as a :class:`paperlib.methods.base.Method` (name 'sempart').

    ``predict(image)`` is ``predict_batch([image])[0]``: a batch of one, so the polarity rule is
    per image there. The batch rule of the paper and the released code (and train-mode
    BatchNorm's batch statistics) need the images together: call :meth:`predict_batch` with the
    images in the dataset's sorted order; it splits them into batches of
    ``protocol.batch_size``. Under ``resolution='center320'`` pass the images (and score against
    the ground truth) from :meth:`view`.

    Each Prediction holds: ``mask`` the fine sigmoid after the polarity flip, resized bilinearly
    to the image's (H, W); ``patch_mask`` the coarse sigmoid (h, w) flipped the same way; ``box``
    the CorLoc box: the fine sigmoid averaged over each patch (its patch-resolution mask),
    thresholded at 0.5, largest 4-connected component (:func:`paperlib.methods.boxes.mask_to_box`),
    scaled to the image's pixels.

    Args:
        model: a :class:`paperlib.model.sempart.SempartModel` (:func:`paperlib.model.sempart.load_sempart`).
        protocol: a :class:`paperlib.methods.sempart.EvalProtocol` (``PROTOCOLS['default']`` or
            ``PROTOCOLS['official']``).
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
    def batch_size(self) -> int:
        """Images predicted together: the protocol's batch (polarity and BatchNorm decided per batch)."""
        return self.protocol.batch_size

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
            short = self.protocol.resize_short or self.model.image_size + RELEASED_EVAL_MARGIN
            return center_crop_view(image, mask, resize_short=short, crop=self.model.image_size)
        check_image("image", image)
        if mask is not None:
            mask = np.asarray(mask, dtype=np.float32)
            require(mask.shape == image.shape[:2],
                    f"mask must be (H, W) = {image.shape[:2]} like the image, got {mask.shape}")
        return EvalView(image, mask)

    def predict_batch(self, images: Sequence[np.ndarray], *,
                      image_ids: Sequence[str | None] | None = None) -> list[Prediction]:
        """Predictions for a list of images, polarity and BatchNorm decided per batch of ``batch_size``.

        Paper section 5 / docs/paper_and_code.md#evaluation-protocol.

        Args:
            images: (H_i, W_i, 3) uint8 RGB arrays, sizes may differ.
            image_ids: unused (the head needs nothing but the pixels).

        Returns:
            One Prediction per image: mask (H_i, W_i), patch_mask (h, w), box (4,) or None.
        """
        require(len(images) > 0, "images is empty")
        for image in images:
            check_image("image", image)
        out: list[Prediction] = []
        S, n = self.model.image_size, self.protocol.batch_size
        for start in range(0, len(images), n):
            chunk = images[start:start + n]
            x = torch.cat([resize_bilinear(image_tensor(im, self.device), (S, S), antialias=True)
                           for im in chunk])                                  # (b, 3, S, S)
            logits = sempart_forward(self.model, x.clamp_(0.0, 1.0), bn_mode=self.protocol.bn_mode)
            fine, coarse, _ = apply_polarity(logits.fine.sigmoid(), logits.coarse.sigmoid(),
                                             rule=self.protocol.polarity)   # (b, 1, S, S), (b, 1, h, w)
            patch_fine = F.avg_pool2d(fine, self.patch_size)                # (b, 1, h, w)
            for i, image in enumerate(chunk):
                out.append(self._prediction(image.shape[:2], x[i], fine[i:i + 1], coarse[i, 0],
                                            patch_fine[i, 0]))
        return out

    def _prediction(self, size: tuple[int, int], x: torch.Tensor, fine: torch.Tensor,
                    coarse: torch.Tensor, patch_fine: torch.Tensor) -> Prediction:
        H, W = size
        h, w = patch_fine.shape
        mask = resize_bilinear(fine, (H, W), antialias=True)[0, 0].clamp(0.0, 1.0)   # (H, W)
        # One patch cell covers H / h x W / w pixels of the original image.
        box = mask_to_box(patch_fine, patch_size=(H / h, W / w), image_size=(H, W), threshold=0.5)
        frame = None
        if self.protocol.refine_at == "model":   # trick 1 on the model's input, r = 9 at 320
            frame_image = (x * 255.0).round().clamp(0, 255).byte().permute(1, 2, 0)   # (S, S, 3)
            frame = (frame_image.cpu().numpy(), fine[0, 0].float().cpu().numpy())
        return Prediction(mask=mask.float().cpu().numpy(), patch_mask=coarse.float().cpu().numpy(),
                          box=box, refine_frame=frame)

    def predict(self, image: np.ndarray, *, image_id: str | None = None) -> Prediction:
        """One image's prediction (a batch of one: polarity per image). ``image_id`` is unused.

        Args:
            image: (H, W, 3) uint8 RGB.

        Returns:
            Prediction(mask (H, W) float32, patch_mask (h, w) float32, box (4,) or None).
        """
        return self.predict_batch([image])[0]

    def discover(self, image: np.ndarray, *, image_id: str | None = None) -> np.ndarray | None:
        """The CorLoc box of one image (docs/paper_and_code.md#single-object-discovery), in its pixels.

        Args:
            image: (H, W, 3) uint8 RGB (the whole image: no crop, whatever the protocol).

        Returns:
            (4,) float64 xyxy box, or None when no patch is foreground.
        """
        return self.predict(image, image_id=image_id).box
