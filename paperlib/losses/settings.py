"""The token graph's thresholds and the loss weights, with no torch (the CLI and configs read them).

Public API
----------
``AffinityParams(tau, eps, binary=True)``
    thresholds of the token graph of :func:`paperlib.losses.ncut.affinity` (paper eq. 2).
``TOKENCUT_AFFINITY``, ``SEMPART_AFFINITY``
    TokenCut's (tau 0.2, eps 1e-5) and Sempart's losses' (tau 0.4, eps 1e-6) thresholds.
``check_affinity(tau, eps)``
    the one rule for a token graph's thresholds, as a one-line ``InputError``.
``LossWeights``
    the lambdas of the training objective (eq. 8 and trick 2), the one home of their defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import NamedTuple

from ..checks import check_positive, is_number, require


class AffinityParams(NamedTuple):
    """Thresholds of the token graph; pass as ``affinity(keys, **params._asdict())``."""

    tau: float   # cosine similarity above which two tokens are linked
    eps: float   # weight of the pairs that are not linked (keeps the graph connected)
    binary: bool = True  # True: linked pairs weigh 1; False: they weigh their similarity S_ij


# TokenCut (Wang et al. 2022), object discovery and saliency: tau 0.2, eps 1e-5
# (docs/paper_and_code.md#affinity).
TOKENCUT_AFFINITY = AffinityParams(tau=0.2, eps=1e-5)
# Sempart's Ncut and GTV-coarse losses: tau 0.4, eps 1e-6 (docs/paper_and_code.md#affinity).
SEMPART_AFFINITY = AffinityParams(tau=0.4, eps=1e-6)


def check_affinity(tau: float, eps: float) -> None:
    """The one rule for a token graph's thresholds: tau a cosine similarity in [-1, 1), eps in (0, 1).

    tau >= 1 links no pair (a graph of eps alone) and NaN compares false with everything, so both
    would cut noise without a word: refused, naming the parameter.
    """
    require(is_number(tau) and math.isfinite(tau) and -1 <= tau < 1,
            f"tau must be a cosine similarity in [-1, 1), got {tau!r}")
    require(is_number(eps) and math.isfinite(eps) and 0 < eps < 1,
            f"eps must be in (0, 1) (the weight of unlinked pairs; > 0 keeps the graph connected), got {eps!r}")


@dataclass(frozen=True)
class LossWeights:
    """Weights lambda of the terms of the training objective (paper Sec. 5, docs/paper_and_code.md#losses)."""

    ncut: float = 1.0         # eq. (8) has no weight on L_Ncut
    gtv_fine: float = 1.0     # lambda_GTV-fine = 1, paper Sec. 5
    gtv_coarse: float = 1.0   # lambda_GTV-coarse = 1, paper Sec. 5
    sr: float = 1.0           # lambda_SR = 1, paper Sec. 5
    ncut_crop: float = 0.01   # lambda_Ncut-Crop = 0.01, paper Sec. 5
    eq: float = 0.01          # lambda_eq = 0.01, paper Sec. 5

    def __post_init__(self) -> None:
        for field in fields(self):
            check_positive(f"LossWeights.{field.name}", getattr(self, field.name), allow_zero=True)
