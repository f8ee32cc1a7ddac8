"""Seeded randomness, augmentation and data order of training (docs/paper_and_code.md#training).

Every random draw of the data pipeline comes from its own generator seeded by
``(seed, purpose, epoch or step, index)``, so runs (and resumed runs) replay exactly.

Public API:

* :func:`seeded_generator` -- a CPU generator seeded from a tuple of ints;
* :data:`SEED_ORDER`, :data:`SEED_AUGMENT`, :data:`SEED_CROP`, :data:`SEED_SPLIT` -- the
  purposes that keep the streams independent; :data:`JITTER` -- the colour-jitter strengths;
* :func:`augment` -- the training augmentation of one image;
* :func:`eval_transform` -- the validation view of one image and its mask;
* :class:`AugmentedDataset` / :class:`EvalDataset` -- a dataset seen through those transforms;
* :func:`split_indices` -- the seeded train / validation split;
* :func:`epoch_batches` -- the seeded batches of one epoch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .config import TrainConfig

# Purposes of the seeded generators; each stream is independent of the others.
SEED_ORDER, SEED_AUGMENT, SEED_CROP, SEED_SPLIT = 0, 1, 2, 3

# Colour jitter (brightness, contrast, saturation, hue): docs/paper_and_code.md#training.
JITTER = (0.4, 0.4, 0.2, 0.1)


def seeded_generator(*ints: int) -> torch.Generator:
    """A CPU torch.Generator seeded from a tuple of non-negative ints (numpy's SeedSequence)."""
    state = np.random.SeedSequence(list(ints)).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _resize_short(x: torch.Tensor, short: int) -> torch.Tensor:
    """(C, H, W) -> (C, H', W') with min(H', W') = short, bilinear with antialiasing."""
    H, W = x.shape[-2:]
    scale = short / min(H, W)
    size = (max(short, round(H * scale)), max(short, round(W * scale)))
    return F.interpolate(x[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]


def augment(image: np.ndarray, *, generator: torch.Generator, resize_short: int, image_size: int) -> torch.Tensor:
    """The training augmentation (docs/paper_and_code.md#training), all randomness from ``generator``.

    Resize the short side to ``resize_short`` (bilinear, antialiased), a random
    ``image_size`` square crop, horizontal flip (p 0.5), colour jitter (brightness 0.4,
    contrast 0.4, saturation 0.2, hue 0.1, in a random order; p 0.8) and grayscale (p 0.2).
    The same random numbers are drawn whatever branch is taken, so the stream is stable.

    Args:
        image: (H, W, 3) uint8 RGB.
        generator: the image's own generator (see :func:`seeded_generator`).
        resize_short: short side after resizing, >= image_size.
        image_size: side of the square output.

    Returns:
        (3, image_size, image_size) float32 RGB in [0, 1].
    """
    import torchvision.transforms.v2.functional as TF

    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0  # (3, H, W)
    x = _resize_short(x, resize_short).clamp_(0.0, 1.0)
    H, W = x.shape[-2:]
    top = int(torch.randint(0, H - image_size + 1, (1,), generator=generator))
    left = int(torch.randint(0, W - image_size + 1, (1,), generator=generator))
    x = x[:, top:top + image_size, left:left + image_size]
    u_flip, u_jitter, u_gray = torch.rand(3, generator=generator).tolist()
    b, c, s, h = JITTER
    lo = torch.tensor([1 - b, 1 - c, 1 - s, -h])
    factors = (lo + (torch.tensor([1 + b, 1 + c, 1 + s, h]) - lo) * torch.rand(4, generator=generator)).tolist()
    order = torch.randperm(4, generator=generator).tolist()
    if u_flip < 0.5:
        x = x.flip(-1)
    if u_jitter < 0.8:
        ops = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
        for k in order:
            x = ops[k](x, factors[k])
    if u_gray < 0.2:
        x = TF.rgb_to_grayscale(x, num_output_channels=3)
    return x.clamp(0.0, 1.0).contiguous()


def eval_transform(image: np.ndarray, mask: np.ndarray, *, resize_short: int,
                   image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Validation input: resize the short side, centre crop (the released code's eval view).

    Args:
        image: (H, W, 3) uint8 RGB.
        mask: (H, W) float in [0, 1].

    Returns:
        image (3, S, S) float in [0, 1] and mask (S, S) float in [0, 1], S = image_size.
    """
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0
    m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None]
    x, m = _resize_short(x, resize_short).clamp_(0, 1), _resize_short(m, resize_short).clamp_(0, 1)
    H, W = x.shape[-2:]
    top, left = (H - image_size) // 2, (W - image_size) // 2
    return (x[:, top:top + image_size, left:left + image_size].contiguous(),
            m[0, top:top + image_size, left:left + image_size].contiguous())


class AugmentedDataset(torch.utils.data.Dataset):
    """Images of ``dataset`` augmented with the generator of (seed, epoch, index)."""

    def __init__(self, dataset, config: TrainConfig, epoch: int) -> None:
        self.dataset, self.config, self.epoch = dataset, config, epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> torch.Tensor:
        cfg = self.config
        g = seeded_generator(cfg.seed, SEED_AUGMENT, self.epoch, index)
        return augment(self.dataset[index].image, generator=g, resize_short=cfg.resize_short,
                       image_size=cfg.image_size)


class EvalDataset(torch.utils.data.Dataset):
    """Images and masks of ``dataset[indices]`` in the validation view of :func:`eval_transform`."""

    def __init__(self, dataset, indices: Sequence[int], config: TrainConfig) -> None:
        self.dataset, self.indices, self.config = dataset, list(indices), config

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        s = self.dataset[self.indices[i]]
        return eval_transform(s.image, s.mask, resize_short=self.config.resize_short,
                              image_size=self.config.image_size)


def split_indices(n: int, *, seed: int, val_fraction: float) -> tuple[list[int], list[int]]:
    """Seeded train / validation split of ``n`` images.

    Returns:
        (train indices, validation indices), both sorted; round(n * val_fraction) validation
        images, at least one when val_fraction > 0.
    """
    n_val = 0 if val_fraction == 0 else max(1, round(n * val_fraction))
    perm = torch.randperm(n, generator=seeded_generator(seed, SEED_SPLIT)).tolist()
    return sorted(perm[n_val:]), sorted(perm[:n_val])


def epoch_batches(n_train: int, *, seed: int, epoch: int, batch_size: int) -> list[list[int]]:
    """The epoch's batches: a seeded permutation of 0..n_train-1 cut into full batches."""
    order = torch.randperm(n_train, generator=seeded_generator(seed, SEED_ORDER, epoch)).tolist()
    return [order[k * batch_size:(k + 1) * batch_size] for k in range(n_train // batch_size)]
