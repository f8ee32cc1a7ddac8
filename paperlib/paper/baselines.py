"""What a machine without weights gets: every offline segmenter side by side, and where each
refinement pays.

Issue 12 of the project: the centre prior, OpenCV's two static saliency maps (spectral residual,
fine grained), TokenCut on the weight-free backbones raw and refined (guided filter, bilateral
solver), and Sempart heads trained without labels on the offline features, all scored in one
run on the same images with the same metrics, with their speed; then the two refinements on
soft coarse masks (the ground truth at 1/8 of its resolution, the kind of mask a patch-level
method gives), where the bilateral solver can erase small objects that the guided filter keeps.

    BASELINES                                   the rows run without weights: label, method, options, refinements
    run_baselines(dataset, heads=..., ...)      -> list of BaselineRow (scores and images/s)
    baselines_table(rows)                       -> Markdown table
    baselines_figure(rows)                      -> matplotlib Figure (IoU and max F per row)
    refinement_study(dataset, ...)              -> RefinementStudy (GF against BF on coarse masks)
    refinement_figure(study)                    -> matplotlib Figure
    examples_figure(dataset, heads=..., count=6) -> matplotlib Figure (masks on photos, method by method)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..checks import require
from ..data.degrade import degrade_mask
from ..eval.datasets import evaluate_dataset
from ..eval.metrics import SaliencyMetrics
from ..methods.refined import predict_refined
from ..methods.registry import build_method
from ..methods.segment import overlay
from ..refine.masks import RefineSettings, erased, refine_mask


@dataclass(frozen=True)
class Baseline:
    """One method of the table: its label, ``build_method`` name and options, refinements scored."""

    label: str
    method: str
    options: tuple[tuple[str, object], ...] = ()
    refines: tuple[str, ...] = ("none",)


# The rows that need no weights, in the order of the table.
BASELINES: tuple[Baseline, ...] = (
    Baseline("centre prior (no pixel read)", "centre", refines=("none", "bf")),
    Baseline("spectral residual (Hou & Zhang 2007)", "spectral", refines=("none", "gf")),
    Baseline("fine grained (Montabone & Soto 2010)", "finegrained", refines=("none", "gf")),
    Baseline("TokenCut / filterbank", "tokencut", (("backbone", "filterbank"),)),
    Baseline("TokenCut / offline", "tokencut", (("backbone", "offline"),), refines=("none", "gf", "bf")),
)
# A trained head's refinements: raw and trick 1, as in the paper's Table 1.
HEAD_REFINES = ("none", "gf")


@dataclass(frozen=True)
class BaselineRow:
    """One line of the table: a method, a refinement, its scores and speed."""

    label: str
    refine: str
    acc: float
    iou: float
    max_f: float
    mae: float
    images: int
    images_per_s: float
    erased: int          # images whose object the refinement wiped out (0 for 'none')

    @property
    def name(self) -> str:
        return self.label + ("" if self.refine == "none" else f" + {self.refine.upper()}")


def run_baselines(dataset, *, heads: Sequence[tuple[str, str | Path]] = (),
                  baselines: Sequence[Baseline] = BASELINES, limit: int | None = None,
                  device: str | None = "cpu", progress: bool = True) -> list[BaselineRow]:
    """Score every baseline, then every trained head, on ``dataset`` (Table 1's metrics).

    Args:
        dataset: a saliency dataset (:func:`paperlib.data.saliency.open_dataset`).
        heads: (label, checkpoint) of Sempart heads to add (trained on the offline features:
            ``paperlib train --backbone offline``), each scored raw and with trick 1.
        baselines: the weight-free rows (default :data:`BASELINES`).
        limit: score only the first ``limit`` images.
        device: where the methods run.

    Returns:
        One :class:`BaselineRow` per method and refinement, in table order.
    """
    jobs = [(b.label, b.method, dict(b.options), b.refines) for b in baselines]
    jobs += [(label, "sempart", {"checkpoint": str(path)}, HEAD_REFINES) for label, path in heads]
    require(len(jobs) > 0, "no baseline and no head to score")
    rows = []
    for label, name, options, refines in jobs:
        method = build_method(name, device=device, **options)
        results = evaluate_dataset(dataset, method, refines=refines, limit=limit, progress=progress)
        for refine, result in results.items():
            scores = result.scores.as_dict()
            rows.append(BaselineRow(label=label, refine=refine, acc=scores["acc"], iou=scores["iou"],
                                    max_f=scores["max_fbeta"], mae=scores["mae"], images=len(result.rows),
                                    images_per_s=result.images_per_second,
                                    erased=sum(bool(r.get("erased")) for r in result.rows)))
    return rows


def baselines_table(rows: Sequence[BaselineRow]) -> str:
    """The rows as a Markdown table, best IoU in bold."""
    best = max(r.iou for r in rows)
    lines = ["| method | Acc | IoU | max F-beta | MAE | images/s | objects erased |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        iou = f"**{r.iou:.3f}**" if r.iou == best else f"{r.iou:.3f}"
        lines.append(f"| {r.name} | {r.acc:.3f} | {iou} | {r.max_f:.3f} | {r.mae:.3f} | "
                     f"{r.images_per_s:.3g} | {r.erased if r.refine != 'none' else '-'} |")
    return "\n".join(lines) + "\n"


def rows_as_dicts(rows: Sequence[BaselineRow]) -> list[dict]:
    return [{"method": r.name, **asdict(r)} for r in rows]


def baselines_figure(rows: Sequence[BaselineRow], *, title: str = ""):
    """Horizontal bars of IoU and max F-beta per row, images/s written beside them."""
    import matplotlib.pyplot as plt

    names = [r.name for r in rows][::-1]
    iou = [r.iou for r in rows][::-1]
    max_f = [r.max_f for r in rows][::-1]
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(8.5, 0.42 * len(rows) + 1.4))
    ax.barh(y + 0.2, max_f, height=0.4, color="#9ecae1", label="max F-beta")
    ax.barh(y - 0.2, iou, height=0.4, color="#3182bd", label="IoU")
    for k, r in enumerate(rows[::-1]):
        ax.text(max(r.iou, r.max_f) + 0.01, k, f"{r.images_per_s:.3g} img/s", va="center", fontsize=8)
    ax.set_yticks(y, names, fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("score")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title or f"Without weights: {rows[0].images} images", fontsize=10)
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class RefinementStudy:
    """The guided filter against the bilateral solver on soft coarse masks, image by image.

    ``rows``: per image, its stem, the object's share of the image, and the IoU of the coarse
    mask, of it + GF and of it + BF, and whether each refinement erased the object.
    """

    degradation: str
    rows: list[dict]

    @property
    def n(self) -> int:
        return len(self.rows)

    def mean(self, key: str) -> float:
        return float(np.mean([r[key] for r in self.rows]))

    @property
    def bf_below_gf(self) -> int:
        return sum(r["iou_bf"] < r["iou_gf"] for r in self.rows)

    @property
    def bf_erased(self) -> list[str]:
        return [r["stem"] for r in self.rows if r["bf_erased"]]

    @property
    def gf_erased(self) -> list[str]:
        return [r["stem"] for r in self.rows if r["gf_erased"]]

    def worst(self, k: int = 5) -> list[dict]:
        """The k images where BF loses most IoU against GF."""
        return sorted(self.rows, key=lambda r: r["iou_bf"] - r["iou_gf"])[:k]

    def summary(self) -> str:
        worst = self.worst(3)
        lost = ", ".join(f"{r['stem']} ({r['iou_gf']:.2f} -> {r['iou_bf']:.2f})" for r in worst)
        small = [r for r in self.rows if r["object_share"] < 0.05]
        small_erased = sum(r["bf_erased"] for r in small)
        return (f"soft coarse masks ({self.degradation}, {self.n} images): mean IoU {self.mean('iou_raw'):.3f}, "
                f"+ GF {self.mean('iou_gf'):.3f}, + BF {self.mean('iou_bf'):.3f}; BF below GF on "
                f"{self.bf_below_gf} of {self.n}; BF erased the object on {len(self.bf_erased)} "
                f"({small_erased} of the {len(small)} objects under 5% of the image), GF on "
                f"{len(self.gf_erased)}; largest BF losses: {lost}")


def refinement_study(dataset, *, degradation: str = "down8", limit: int | None = None,
                     settings: RefineSettings | None = None, progress: bool = True) -> RefinementStudy:
    """Refine each image's ground truth, spoiled by ``degradation``, with GF and with BF.

    The coarse mask stands in for a patch-level prediction (``down8``: the ground truth at 1/8
    of its resolution, upsampled bilinearly: ViT-S/8's patch grid); both refinements see the
    same mask and image, and each is scored against the full ground truth (IoU at 0.5).
    """
    from tqdm.auto import tqdm

    n = len(dataset) if limit is None else min(limit, len(dataset))
    require(n > 0, "the dataset is empty")
    settings = settings or RefineSettings()
    rows = []
    for i in tqdm(range(n), desc=f"GF vs BF on {degradation} masks", disable=not progress, unit="img"):
        sample = dataset[i]
        truth = sample.mask
        coarse = degrade_mask(truth, degradation)
        refined = {m: refine_mask(sample.image, coarse, RefineSettings(**{**asdict(settings), "method": m}))
                   for m in ("gf", "bf")}
        ious = {}
        for key, mask in (("raw", coarse), ("gf", refined["gf"]), ("bf", refined["bf"])):
            metric = SaliencyMetrics()
            ious[key] = metric.update(mask, truth).iou
        rows.append({"stem": sample.stem, "object_share": float(np.mean(truth > 0.5)),
                     "iou_raw": ious["raw"], "iou_gf": ious["gf"], "iou_bf": ious["bf"],
                     "gf_erased": erased(coarse, refined["gf"]), "bf_erased": erased(coarse, refined["bf"])})
    return RefinementStudy(degradation=degradation, rows=rows)


def refinement_figure(study: RefinementStudy):
    """Left: IoU + BF against IoU + GF per image, coloured by object size. Right: BF - GF by
    object size (the losses gather on small objects)."""
    import matplotlib.pyplot as plt

    share = np.array([r["object_share"] for r in study.rows])
    gf = np.array([r["iou_gf"] for r in study.rows])
    bf = np.array([r["iou_bf"] for r in study.rows])
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    dots = left.scatter(gf, bf, c=np.log10(np.maximum(share, 1e-4)), s=10, cmap="viridis")
    left.plot([0, 1], [0, 1], color="grey", lw=0.8)
    left.set_xlabel("IoU, coarse mask + GF")
    left.set_ylabel("IoU, coarse mask + BF")
    left.set_title(f"BF below GF on {study.bf_below_gf} of {study.n} images", fontsize=10)
    fig.colorbar(dots, ax=left, label="log10 object share of the image")
    right.scatter(share, bf - gf, s=10, color="#3182bd")
    right.axhline(0, color="grey", lw=0.8)
    right.set_xscale("log")
    right.set_xlabel("object share of the image")
    right.set_ylabel("IoU + BF  -  IoU + GF")
    right.set_title(f"BF erased the object on {len(study.bf_erased)} images", fontsize=10)
    fig.suptitle(f"Refining soft coarse masks ({study.degradation}): where each refinement pays", fontsize=11)
    fig.tight_layout()
    return fig



def examples_figure(dataset, *, heads: Sequence[tuple[str, str | Path]] = (), count: int = 6,
                    device: str | None = "cpu"):
    """``count`` photos spread evenly over ``dataset``, each with its ground truth and the masks
    (tinted where > 0.5) of the centre prior, TokenCut / offline + GF and each head + GF."""
    import matplotlib.pyplot as plt

    require(count >= 1, f"count must be >= 1, got {count}")
    n = len(dataset)
    m = min(count, n)
    picks = sorted({round(k * (n - 1) / max(m - 1, 1)) for k in range(m)})
    columns = [("centre prior", build_method("centre", device=device), "none"),
               ("TokenCut / offline + GF", build_method("tokencut", backbone="offline", device=device), "gf")]
    columns += [(f"{label} + GF", build_method("sempart", checkpoint=str(path), device=device), "gf")
                for label, path in heads]
    fig, axes = plt.subplots(len(picks), len(columns) + 1, figsize=(2.4 * (len(columns) + 1), 2.0 * len(picks)),
                             squeeze=False)
    for row, index in enumerate(picks):
        sample = dataset[index]
        width = sample.image.shape[1]
        panels = [("ground truth", sample.mask)]
        panels += [(name, predict_refined(method, sample.image, refine=refine, image_id=sample.stem)[1])
                   for name, method, refine in columns]
        for col, (name, mask) in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(overlay(sample.image, mask)[:, width + 8:])
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=8)
        axes[row, 0].set_ylabel(sample.stem[-8:], fontsize=7)
    fig.tight_layout()
    return fig
