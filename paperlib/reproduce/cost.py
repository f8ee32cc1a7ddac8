"""What the whole paper will cost on this machine, measured before it starts.

The estimate is work x measured rate: the training steps of every ablation run times the seconds
of a real training step (the paper's configuration, this device, the real weights, two steps
timed after a warm-up), plus every image the tables score times the seconds of one Sempart
prediction with the bilateral solver (the slowest refinement, so an upper bound per image).
It leaves out data loading, downloads and the first epoch's warm-up, and says so.

Public API
----------
``CostEstimate``                       the measured rates, the work and the total, with ``lines()``.
``training_steps(plan, n_train)``      optimiser steps of one ablation run.
``predictions(plan, counts)``          images predicted by the tables and figures.
``estimate(plan, counts, device)``     time two steps and one prediction here; the estimate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping

from ..backbones.registry import load_backbone
from ..devices import resolve_device
from ..methods.refined import predict_refined
from ..methods.sempart import SempartMethod
from ..model.head import SempartHead
from ..model.sempart import SempartModel
from ..train.config import config_from
from ..train.data import split_indices
from ..train.step import train_step
from .plan import CORLOC, SALIENCY, TRAIN, PaperPlan, weights_files


@dataclass(frozen=True)
class CostEstimate:
    """Measured rates and the work they price."""

    device: str
    step_s: float          # one training step of the paper's configuration
    image_s: float         # one Sempart prediction + bilateral solver, one test image
    runs: int              # ablation runs to train
    steps_per_run: int
    images: int            # predictions the tables and figures make

    @property
    def total_s(self) -> float:
        return self.runs * self.steps_per_run * self.step_s + self.images * self.image_s

    def lines(self) -> list[str]:
        train_h = self.runs * self.steps_per_run * self.step_s / 3600
        score_h = self.images * self.image_s / 3600
        return [f"cost estimate, measured on {self.device}:",
                f"  training  {self.runs} runs x {self.steps_per_run:,} steps x {self.step_s:.3f} s = {train_h:.1f} h",
                f"  scoring   {self.images:,} predictions x {self.image_s:.3f} s = {score_h:.1f} h",
                f"  total     about {self.total_s / 3600:.1f} h, not counting downloads, data loading and warm-up"
                f" (finished runs and notebooks are reused, so a rerun costs less)"]


def training_steps(plan: PaperPlan, n_train: int) -> int:
    """Optimiser steps of one ablation run (``max_steps``, else epochs x batches of the training split)."""
    config = config_from("paper", max_steps=plan.max_steps, **plan.train_overrides)
    if config.max_steps is not None:
        return config.max_steps
    held_out = config.val_fraction if config.select_on == "val" else 0.0    # as paperlib.train.loop.train splits
    train_idx, _ = split_indices(n_train, seed=config.seed, val_fraction=held_out)
    return config.epochs * (len(train_idx) // config.batch_size)   # as the trainer: whole batches only


def predictions(plan: PaperPlan, counts: Mapping[str, int]) -> int:
    """Images predicted: every head on the saliency sets, the ViT-S/8 heads on the CorLoc sets,
    TokenCut for Table 5, and the two heads again for Figs. 6-8."""
    def used(name: str) -> int:
        return min(counts.get(name, 0), plan.limit) if plan.limit is not None else counts.get(name, 0)

    saliency, corloc = sum(map(used, SALIENCY)), sum(map(used, CORLOC))
    return 2 * len(plan.backbones) * saliency + 2 * corloc + saliency + 2 * saliency


def _time(fn, repeats: int) -> float:
    fn()                                   # warm-up: allocator, cuDNN autotuning, caches
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def estimate(plan: PaperPlan, counts: Mapping[str, int], device: str | None = None) -> CostEstimate:
    """Time two training steps and one prediction of the paper's configuration on ``device``.

    Args:
        plan: the paper run.
        counts: images per dataset (as found on disk).
        device: torch device (None: CUDA when present, else CPU).
    """
    import numpy as np
    import torch

    device = resolve_device(device)
    weights = str(weights_files(plan)["dino_vits8"])
    config = config_from("paper", weights=weights, max_steps=plan.max_steps, **plan.train_overrides)
    backbone = load_backbone("dino_vits8", weights=weights, device=device)
    torch.manual_seed(0)
    head = SempartHead(backbone.dim, backbone.patch_size).to(device).train()
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr, betas=config.betas)
    images = torch.rand(config.batch_size, 3, config.image_size, config.image_size, device=device)
    counter = iter(range(10**6))

    def step():
        train_step(head, backbone, optimizer, images, config=config, step=next(counter))
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    step_s = _time(step, 2)
    method = SempartMethod(SempartModel(head.eval(), backbone, image_size=config.image_size, config=config.to_dict()))
    photo = (np.random.default_rng(0).random((300, 400, 3)) * 255).astype(np.uint8)   # a DUTS-sized image
    image_s = _time(lambda: predict_refined(method, photo, refine="bf"), 1)
    n_train = counts.get(TRAIN, 0)
    return CostEstimate(str(device), step_s, image_s, 2 * len(plan.backbones), training_steps(plan, n_train),
                        predictions(plan, counts))
