"""Trick 2: multi-scale consistency through a cropped and zoomed teacher (paper Sec. 4, Fig. 3).

One training step with the crop:

1. the student predicts ``s_hat`` = sigmoid(fine logits) on the full image I;
2. a box is drawn (:data:`CROP_SAMPLERS`) and ``I_c = crop_zoom(I, box, size)`` is the crop
   enlarged back to the input size (the paper's CU(I, s_hat));
3. the same network on I_c is the teacher: its fine sigmoid, guided-filtered with I_c as the
   guide and detached, is the target (:func:`teacher_target`, SG[GF(s_hat_c)]);
4. L_eq = mean((crop_zoom(s_hat, box, size) - target)^2) (:func:`crop_consistency_loss`);
5. the crop pass also trains the network through the Ncut loss on its own coarse map and its
   own affinity (:func:`ncut_crop_loss`).

**One box per batch.** Every image of a batch is cropped at the same place, so a crop is one
slice of the batch tensor, one resize, and the teacher runs on one (B, 3, size, size) batch.
The described procedure (docs/paper_and_code.md#crop-zoom-consistency) draws a single random
placement per step and does not mention per-image boxes; this module offers only the shared box.
Per-image boxes would change which regions are sampled within a step, not the loss of any one
image.

**Box placement.** ``"paper"``: an 80 x 80 box anywhere in the 320 x 320 input, zoomed x4
(paper Sec. 5). ``"official"``: the released code's effective placement, a 160 x 160 box whose top
edge is always at row 80 and whose left edge is a random column in [10, 29], zoomed x2 (an
indexing slip in that code; docs/paper_and_code.md#crop-zoom-consistency).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, NamedTuple, Sequence

import torch
import torch.nn.functional as F

from ..backbones.catalog import IMAGENET_MEAN, IMAGENET_STD
from ..checks import check_choice, check_int, check_tensor, is_int, require
from ..refine.guided_filter import guided_filter, image_to_guide
from ..refine.settings import PAPER_GF, GuidedFilterSettings
from .ncut import affinity
from .objective import S_CLAMP, ncut_loss
from .settings import SEMPART_AFFINITY, AffinityParams

# The paper's crop: a quarter of the input's side (80 x 80 in 320 x 320), zoomed x4 (paper Sec. 5,
# "Multi-scale consistency"); the trainer and the explorer scale it with the input size.
PAPER_ZOOM = 4
PAPER_CROP = 320 // PAPER_ZOOM
# The released code's effective crop: 160 x 160 at row 80, left edge in [10, 29]
# (docs/paper_and_code.md#crop-zoom-consistency).
OFFICIAL_CROP = 160
OFFICIAL_TOP = 80
OFFICIAL_LEFT = (10, 29)  # inclusive


class CropBox(NamedTuple):
    """A box in pixels: rows ``top .. top + height - 1``, columns ``left .. left + width - 1``."""

    top: int
    left: int
    height: int
    width: int


def check_box(box, H: int, W: int) -> CropBox:
    """``box`` as a :class:`CropBox` of ints inside an H x W image, or an InputError naming it."""
    require(isinstance(box, Sequence) and len(box) == 4
            and all(is_int(v) for v in box),
            f"box must be a CropBox of 4 ints (top, left, height, width), got {box!r}")
    box = CropBox(*(int(v) for v in box))
    require(box.height >= 1 and box.width >= 1, f"box must have a positive height and width, got {box}")
    require(box.top >= 0 and box.left >= 0 and box.top + box.height <= H and box.left + box.width <= W,
            f"box {tuple(box)} must lie inside the {H} x {W} image")
    return box


def _check_size(size) -> tuple[int, int]:
    if is_int(size):
        size = (int(size), int(size))
    require(isinstance(size, Sequence) and len(size) == 2
            and all(is_int(v) and v >= 1 for v in size),
            f"size must be a positive int or a pair of positive ints (H, W), got {size!r}")
    return int(size[0]), int(size[1])


def crop_zoom(x: torch.Tensor, box: CropBox, size: int | tuple[int, int]) -> torch.Tensor:
    """Crop every image of a batch by one box and resize it (the paper's CU, Sec. 4).

    Bilinear resizing with ``align_corners=False`` (pixel centres at half-integers, as OpenCV's
    ``INTER_LINEAR``) and no antialiasing. Differentiable in ``x``.

    Args:
        x: (B, C, H, W) image, mask or logits.
        box: CropBox inside the H x W grid.
        size: output size, an int for a square or (H_out, W_out).

    Returns:
        (B, C, H_out, W_out), dtype of ``x``.
    """
    check_tensor("x", x, ndim=4, floating=True)
    box = check_box(box, x.shape[2], x.shape[3])
    size = _check_size(size)
    crop = x[:, :, box.top:box.top + box.height, box.left:box.left + box.width]  # (B, C, height, width)
    return F.interpolate(crop, size=size, mode="bilinear", align_corners=False)


def _check_generator(generator) -> None:
    require(isinstance(generator, torch.Generator),
            f"generator must be a torch.Generator (seed it for exact replay), got {type(generator).__name__}")


def sample_crop_paper(generator: torch.Generator, *, image_size: int = 320,
                      crop: int = PAPER_CROP) -> CropBox:
    """A ``crop`` x ``crop`` box placed uniformly inside the image (paper Sec. 5).

    Args:
        generator: torch.Generator that draws the placement (one draw of two integers).
        image_size: side of the square network input (320).
        crop: side of the box (80, zoomed x4 back to 320).

    Returns:
        CropBox with top, left uniform in [0, image_size - crop].
    """
    _check_generator(generator)
    require(is_int(image_size) and is_int(crop) and 1 <= crop <= image_size,
            f"crop and image_size must be ints with 1 <= crop <= image_size, got crop={crop!r}, "
            f"image_size={image_size!r}")
    top, left = torch.randint(0, image_size - crop + 1, (2,), generator=generator).tolist()
    return CropBox(top, left, int(crop), int(crop))


def sample_crop_official(generator: torch.Generator, *, image_size: int = 320) -> CropBox:
    """The released code's effective box: 160 x 160, top 80, left random in [10, 29].

    See docs/paper_and_code.md#crop-zoom-consistency.

    Args:
        generator: torch.Generator that draws the left edge (one draw of one integer).
        image_size: side of the square network input (320; at least 240 to hold the box).

    Returns:
        CropBox(80, left, 160, 160) with left in [10, 29]; zoomed x2 back to 320.
    """
    _check_generator(generator)
    check_int("image_size", image_size, low=OFFICIAL_TOP + OFFICIAL_CROP)  # room for the box at row 80
    low, high = OFFICIAL_LEFT
    left = int(torch.randint(low, high + 1, (1,), generator=generator))
    return CropBox(OFFICIAL_TOP, left, OFFICIAL_CROP, OFFICIAL_CROP)


# Box samplers by preset name; each is called as sampler(generator, image_size=...) -> CropBox.
CROP_SAMPLERS: dict[str, Callable[..., CropBox]] = {
    "paper": sample_crop_paper,
    "official": sample_crop_official,
}


def sample_box(sampler: str, generator: torch.Generator, *, image_size: int) -> CropBox:
    """The trick-2 box of one training step, by sampler name (training and the explorer both draw here).

    Args:
        sampler: 'paper' (a box of side ``image_size // PAPER_ZOOM``, 80 at 320, placed
            uniformly) or 'official' (the released code's fixed-size box).
        generator: torch.Generator seeded for the step (exact replay).
        image_size: side S of the square network input.

    Returns:
        CropBox inside the S x S input.
    """
    check_choice("sampler", sampler, CROP_SAMPLERS)
    if sampler == "paper":
        check_int("image_size", image_size, low=PAPER_ZOOM)
        return sample_crop_paper(generator, image_size=image_size, crop=image_size // PAPER_ZOOM)
    return sample_crop_official(generator, image_size=image_size)


def teacher_target(crop_image: torch.Tensor, teacher_fine_logits: torch.Tensor, *,
                   mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                   gf: GuidedFilterSettings = PAPER_GF, radius: int | None = None,
                   eps: float | None = None) -> torch.Tensor:
    """The target of L_eq: SG[GF(sigmoid(teacher logits), gray crop)], clamped (paper Sec. 4).

    The guide is the zoomed crop un-normalised to [0, 1] and averaged over R, G, B
    (:func:`paperlib.refine.guided_filter.image_to_guide`); the guided filter runs with ``gf`` (the
    paper's radius 9, eps 1e-3 and truncated border windows by default); the result is clamped
    to [1e-6, 1 - 1e-6] and detached, so no gradient reaches the teacher through the target.

    Args:
        crop_image: (B, 3, H, W) the zoomed crop as fed to the teacher (ImageNet-normalised).
        teacher_fine_logits: (B, 1, H, W) the network's fine logits on ``crop_image``.
        mean, std: the normalisation of ``crop_image`` (ImageNet's).
        gf: the teacher's guided filter (:data:`paperlib.refine.settings.PAPER_GF`).
        radius, eps: shorthands that replace ``gf``'s radius or eps when given (None: ``gf``'s).

    Returns:
        (B, 1, H, W) detached target in [1e-6, 1 - 1e-6].
    """
    require(isinstance(gf, GuidedFilterSettings),
            f"gf must be a GuidedFilterSettings, got {type(gf).__name__}")
    # replace() re-runs GuidedFilterSettings' checks, so a bad radius or eps fails here.
    gf = replace(gf, **{name: value for name, value in (("radius", radius), ("eps", eps))
                        if value is not None})
    check_tensor("crop_image", crop_image, ndim=4, channels=3, floating=True)
    check_tensor("teacher_fine_logits", teacher_fine_logits, ndim=4, channels=1, floating=True)
    require(crop_image.shape[0] == teacher_fine_logits.shape[0]
            and crop_image.shape[2:] == teacher_fine_logits.shape[2:],
            f"crop_image and teacher_fine_logits must have the same batch size, height and width, "
            f"got {tuple(crop_image.shape)} and {tuple(teacher_fine_logits.shape)}")
    with torch.no_grad():  # stop-gradient: the target needs no graph, so none is built
        guide = image_to_guide(crop_image, mean=mean, std=std)  # (B, 1, H, W) in [0, 1]
        q = guided_filter(guide, torch.sigmoid(teacher_fine_logits), radius=gf.radius, eps=gf.eps,
                          border=gf.border)
    return q.clamp(S_CLAMP, 1.0 - S_CLAMP)


def crop_consistency_loss(student_fine_logits: torch.Tensor, box: CropBox,
                          target: torch.Tensor) -> torch.Tensor:
    """L_eq = mean((crop_zoom(sigmoid(student logits), box) - target)^2) (paper Sec. 4).

    The student's full-image fine sigmoid is cropped by ``box`` and zoomed to the target's size;
    the paper's 1/(hw) ||s_c - s_target||^2, averaged over the batch too.

    Args:
        student_fine_logits: (B, 1, H, W) the network's fine logits on the full image.
        box: the CropBox the teacher's input was cut with.
        target: (B, 1, H_t, W_t) from :func:`teacher_target` (already detached).

    Returns:
        () loss; gradients reach the student only.
    """
    check_tensor("student_fine_logits", student_fine_logits, ndim=4, channels=1, floating=True)
    check_tensor("target", target, ndim=4, channels=1, floating=True)
    require(target.shape[0] == student_fine_logits.shape[0],
            f"target and student_fine_logits must have the same batch size, got "
            f"{tuple(target.shape)} and {tuple(student_fine_logits.shape)}")
    s_c = crop_zoom(torch.sigmoid(student_fine_logits), box, tuple(target.shape[2:]))  # (B, 1, H_t, W_t)
    return (s_c - target.detach()).pow(2).mean()


def ncut_crop_loss(crop_keys: torch.Tensor, crop_coarse_logits: torch.Tensor, *,
                   affinity_params: AffinityParams = SEMPART_AFFINITY) -> torch.Tensor:
    """L_Ncut-crop: the Ncut loss of the crop pass with the crop's own affinity (paper Sec. 5).

    Backpropagates into the network that produced ``crop_coarse_logits`` (docs/paper_and_code.md#losses).

    Args:
        crop_keys: (B, D, h, w) backbone features of the zoomed crop.
        crop_coarse_logits: (B, 1, h, w) the network's coarse logits on the zoomed crop.
        affinity_params: the graph's tau / eps / binary (Sempart's).

    Returns:
        () loss.
    """
    check_tensor("crop_keys", crop_keys, ndim=4, floating=True)
    check_tensor("crop_coarse_logits", crop_coarse_logits, ndim=4, channels=1, floating=True)
    require(crop_keys.shape[0] == crop_coarse_logits.shape[0]
            and crop_keys.shape[2:] == crop_coarse_logits.shape[2:],
            f"crop_keys and crop_coarse_logits must share the batch size and grid, got "
            f"{tuple(crop_keys.shape)} and {tuple(crop_coarse_logits.shape)}")
    W = affinity(crop_keys, **affinity_params._asdict())  # (B, N, N)
    return ncut_loss(W, torch.sigmoid(crop_coarse_logits))
