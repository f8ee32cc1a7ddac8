"""Tests of paperlib.train.data: seeded augmentation, split and epoch order."""

from __future__ import annotations

import numpy as np
import torch

from paperlib.train.data import augment, epoch_batches, seeded_generator, split_indices


def test_augment_is_a_function_of_the_generator():
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    a = augment(image, generator=seeded_generator(0, 1, 2), resize_short=36, image_size=32)
    b = augment(image, generator=seeded_generator(0, 1, 2), resize_short=36, image_size=32)
    c = augment(image, generator=seeded_generator(0, 1, 3), resize_short=36, image_size=32)
    assert a.shape == (3, 32, 32) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0


def test_augment_statistics_match_the_probabilities():
    # A left-dark / right-bright image: the flip shows in which half is brighter; a grey
    # image (equal channels) shows the grayscale or a saturation factor of 0 (never drawn).
    image = np.zeros((40, 40, 3), dtype=np.uint8)
    image[:, 20:] = (200, 60, 30)
    flips = grays = 0
    n = 400
    for i in range(n):
        x = augment(image, generator=seeded_generator(5, i), resize_short=40, image_size=40)
        flips += bool(x[:, :, :20].mean() > x[:, :, 20:].mean())
        grays += bool(torch.allclose(x[0], x[1], atol=1e-6) and torch.allclose(x[1], x[2], atol=1e-6))
    # Binomial(400, 0.5) and (400, 0.2): 4 standard deviations are 40 and 32.
    assert abs(flips - 0.5 * n) < 40
    assert abs(grays - 0.2 * n) < 32


def test_split_and_epoch_order_are_seeded_partitions():
    train_idx, val_idx = split_indices(20, seed=3, val_fraction=0.1)
    assert len(val_idx) == 2 and sorted(train_idx + val_idx) == list(range(20))
    assert split_indices(20, seed=3, val_fraction=0.1) == (train_idx, val_idx)
    b0 = epoch_batches(18, seed=3, epoch=0, batch_size=4)
    assert len(b0) == 4 and all(len(b) == 4 for b in b0) and len({i for b in b0 for i in b}) == 16
    assert b0 == epoch_batches(18, seed=3, epoch=0, batch_size=4)
    assert b0 != epoch_batches(18, seed=3, epoch=1, batch_size=4)
