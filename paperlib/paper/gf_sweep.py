"""Where does the guided filter pay? Masks of known quality, refined over a grid of (radius, eps).

Ground-truth masks are degraded the way real predictions are imperfect (:mod:`paperlib.data.degrade`:
computed at the backbone's patch resolution (1/8, 1/16) then upsampled, or blurred) and each is
guided-filtered with its image over a grid of radius and eps. The table reports every metric
before and after, so a user sees where each setting helps and where it hurts.

    sweep(pairs, radii=, eps=, ...)  the table (a pandas DataFrame), one row per setting
    plot_sweep(table, path)          heat maps of the IoU and max-F changes
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..checks import check_choice, require
from ..data.degrade import DEGRADATIONS, degrade_mask
from ..eval.metrics import SaliencyMetrics
from ..images import save_figure
from ..refine.guided_filter import guided_filter, image_to_guide
from ..refine.settings import check_radius


def sweep(pairs: Iterable[tuple[np.ndarray, np.ndarray]], *, radii: Sequence[int] = (2, 4, 9, 16, 32),
          eps: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1),
          degradations: Sequence[str] = tuple(DEGRADATIONS), border: str = "count",
          n_images: int | None = None, progress: bool = True):
    """Score degraded masks before and after the guided filter over a (radius, eps) grid.

    Args:
        pairs: (image RGB uint8 (H, W, 3), ground truth float (H, W) in [0, 1]) pairs.
        radii, eps: the grid; the paper's setting (9, 1e-3) is best kept inside it.
        degradations: names from :data:`DEGRADATIONS`.
        border: guided-filter border rule.
        n_images: length of ``pairs`` for the progress bar, if known.

    Returns:
        pandas DataFrame, one row per (degradation, radius, eps) plus a ``radius = 0`` row per
        degradation for the unfiltered masks, with acc, iou, max_fbeta, mae and their changes
        (``d_*``) against the unfiltered row.
    """
    import pandas as pd
    import torch
    from tqdm.auto import tqdm

    for name in degradations:
        check_choice("degradation", name, DEGRADATIONS)
    require(len(radii) > 0 and len(eps) > 0, "radii and eps must not be empty")
    for r in radii:
        check_radius(r)
    require(all(r >= 1 for r in radii), f"radii must be >= 1, got {list(radii)}: radius 0 (the unfiltered mask) "
                                        f"is the row every sweep starts from")
    require(len(set(radii)) == len(radii) and len(set(eps)) == len(eps),
            f"radii and eps must not repeat a value, got radii {list(radii)}, eps {list(eps)}")
    grid = [(int(r), float(e)) for r in radii for e in eps]
    accs = {(d, 0, 0.0): SaliencyMetrics() for d in degradations}
    accs.update({(d, r, e): SaliencyMetrics() for d in degradations for r, e in grid})
    count = 0
    for image, gt in tqdm(pairs, total=n_images, desc="gf sweep", disable=not progress, unit="img"):
        spoiled = np.stack([degrade_mask(gt, d) for d in degradations])     # (C, H, W)
        rgb = torch.from_numpy(np.asarray(image)).permute(2, 0, 1)[None].double() / 255.0
        guide = image_to_guide(rgb)                                           # (1, 1, H, W)
        src = torch.from_numpy(spoiled).double()[None]                        # (1, C, H, W)
        for c, d in enumerate(degradations):
            accs[(d, 0, 0.0)].update(spoiled[c], gt)
        for r, e in grid:
            out = guided_filter(guide, src, radius=r, eps=e, border=border)   # (1, C, H, W)
            out = out[0].clamp(0.0, 1.0).float().numpy()
            for c, d in enumerate(degradations):
                accs[(d, r, e)].update(out[c], gt)
        count += 1
    require(count > 0, "sweep: no image pairs were given")
    rows = []
    for (d, r, e), acc in accs.items():
        s = acc.compute()
        rows.append(dict(degradation=d, radius=r, eps=e, acc=s.acc, iou=s.iou,
                         max_fbeta=s.max_fbeta, mae=s.mae, n_images=count))
    table = pd.DataFrame(rows).sort_values(["degradation", "radius", "eps"]).reset_index(drop=True)
    base = table[table.radius == 0].set_index("degradation")
    for col in ("acc", "iou", "max_fbeta", "mae"):
        table[f"d_{col}"] = table[col] - table.degradation.map(base[col])
    return table


def plot_sweep(table, path: str | Path, *, metrics: Sequence[str] = ("iou", "max_fbeta")) -> None:
    """Heat maps of the change in each metric over (radius, eps), one column per degradation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    degs = list(dict.fromkeys(table.degradation))
    fig, axes = plt.subplots(len(metrics), len(degs), figsize=(3.2 * len(degs), 2.8 * len(metrics)),
                             squeeze=False, constrained_layout=True)
    filtered = table[table.radius > 0]
    lim = max(1e-6, float(np.abs(filtered[[f"d_{m}" for m in metrics]].to_numpy()).max()))
    for i, m in enumerate(metrics):
        for j, d in enumerate(degs):
            grid = filtered[filtered.degradation == d].pivot(index="radius", columns="eps",
                                                             values=f"d_{m}")
            ax = axes[i, j]
            im = ax.imshow(grid.to_numpy(), cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
            ax.set_xticks(range(grid.shape[1]), [f"{e:g}" for e in grid.columns])
            ax.set_yticks(range(grid.shape[0]), [str(r) for r in grid.index])
            for (y, x), v in np.ndenumerate(grid.to_numpy()):
                ax.text(x, y, f"{v:+.3f}", ha="center", va="center", fontsize=7)
            ax.set_title(f"{d}: change in {m}", fontsize=9)
            ax.set_xlabel("eps")
            ax.set_ylabel("radius")
    fig.colorbar(im, ax=axes, shrink=0.6)
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def markdown_table(table, *, metric_cols: Sequence[str] = ("iou", "max_fbeta", "acc", "mae")) -> str:
    """The sweep as a Markdown table: absolute values, with changes against the unfiltered row."""
    head = "| degradation | radius | eps | " + " | ".join(metric_cols) + " |"
    lines = [head, "|" + "---|" * (3 + len(metric_cols))]
    for row in table.itertuples():
        if row.radius == 0:
            cells = [f"{getattr(row, m):.3f}" for m in metric_cols]
            lines.append(f"| {row.degradation} | none | - | " + " | ".join(cells) + " |")
        else:
            cells = [f"{getattr(row, m):.3f} ({getattr(row, 'd_' + m):+.3f})" for m in metric_cols]
            lines.append(f"| {row.degradation} | {row.radius} | {row.eps:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
