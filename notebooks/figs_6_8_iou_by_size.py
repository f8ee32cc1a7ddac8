# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Figs. 6-8: mean IoU per ground-truth object size
#
# **Claim (paper Appendix B.1, Figs. 6-8):** sort the images of DUT-OMRON, DUTS-TE and ECSSD
# into 20 equal bins of their ground-truth foreground ratio and average the IoU in each bin.
# The baseline and the improved model fail in the same places: bad predictions concentrate on
# images with tiny or huge objects. The two tricks (the crop-zoom consistency loss and the
# guided filter) help most in those extreme bins, and the improved model is above the baseline
# in every bin.
#
# **The paper's figures** come from scores saved by `paperlib eval` on the official test sets,
# one JSON file per model (each holds one score dict per refinement). `make paper` writes them
# from the heads `tables_1_3_saliency` trained; by hand:
#
# ```bash
# paperlib eval --dataset dut-omron --root ~/datasets --method sempart --refine none \
#     --checkpoint results/notebooks/paper/ablation/dino_vits8-crop_none/last.pt \
#     --weights ~/weights/dino_deitsmall8_pretrain.pth --json results/notebooks/paper/evals/dut-omron_baseline.json
# paperlib eval --dataset dut-omron --root ~/datasets --method sempart --refine gf \
#     --checkpoint results/notebooks/paper/ablation/dino_vits8-crop_paper/last.pt \
#     --weights ~/weights/dino_deitsmall8_pretrain.pth --json results/notebooks/paper/evals/dut-omron_ours.json
# # ... the same for duts-te and ecssd, then:
# paperlib notebook run figs_6_8_iou_by_size --tag paper -y '
# results:
#   dut-omron: {"Sempart*": results/notebooks/paper/evals/dut-omron_baseline.json, Ours: results/notebooks/paper/evals/dut-omron_ours.json}
#   duts-te: {"Sempart*": results/notebooks/paper/evals/duts-te_baseline.json, Ours: results/notebooks/paper/evals/duts-te_ours.json}
#   ecssd: {"Sempart*": results/notebooks/paper/evals/ecssd_baseline.json, Ours: results/notebooks/paper/evals/ecssd_ours.json}'
# ```
#
# A file that holds several refinements (`--refine none,gf`) is named with the one to plot:
# `Ours: [results/notebooks/paper/evals/duts-te_ours.json, gf]`.
#
# **The defaults** need nothing from outside: TokenCut on the offline `filterbank16` backbone,
# without and with the guided filter (trick 1), scored in one pass on the synthetic DUTS-TE
# (`data_root synthetic`). Their figure and table are named
# `figs_6_8_iou_by_size_tokencut_<backbone>_<tag>`: TokenCut's rows, not the paper's figures,
# and smoke numbers. On a real sample of the test sets, to see trick 1's effect per object size
# on TokenCut: `paperlib notebook run figs_6_8_iou_by_size --tag sample -p data_root DIR`.

# %% tags=["parameters"]
from typing import Any, Optional

results: Optional[dict[str, dict[str, Any]]] = None  # {dataset: {name: eval JSON, or [JSON, refinement]}}; None: compute below
# Used only when results is None: TokenCut without and with the guided filter, scored on the fly.
datasets: list[str] = ["duts-te"]      # any of duts-te, dut-omron, ecssd under data_root
data_root: str = "synthetic"           # folder with the test sets (official layouts), or "synthetic"
backbone: str = "filterbank16"         # offline; dino_vits16 (TokenCut's) with weights for real features
weights: Optional[str] = None          # the backbone's official .pth
device: Optional[str] = None           # torch device (None: CUDA when present, else CPU)
refine_labels: dict[str, str] = {"none": "TokenCut", "gf": "TokenCut + GF"}  # refinement -> name in the figure
max_images: Optional[int] = None       # score only the first N images of each dataset
figures_dir: str = "figures"           # where the figure and its table go
tag: str = "smoke"                     # names the outputs figs_6_8_iou_by_size[_tokencut_<backbone>]_<tag>.*

# %%
from paperlib.notebook.session import start

run = start("figs_6_8_iou_by_size", globals())

# %%
from pathlib import Path

import pandas as pd

from paperlib.data.saliency import open_dataset
from paperlib.images import atomic_path
from paperlib.methods.registry import build_method
from paperlib.eval.datasets import evaluate_dataset
from paperlib.paper.size_figures import plot_iou_by_size_datasets, size_table

# %% [markdown]
# ## The scores
# From the saved eval files, or computed here: each image is predicted once and scored both
# raw and guided-filtered (`evaluate_dataset(..., refines=("none", "gf"))`).

# %%
if results is None:
    root = run.data_root(data_root, splits=("te",))
    run.use_backbone(backbone, weights, device)
    method = build_method("tokencut", backbone=backbone, weights=weights, device=device)
    sources = {}
    for name in datasets:
        dataset = run.use_dataset(open_dataset(name, root), used=max_images)
        evals = evaluate_dataset(dataset, method, refines=tuple(refine_labels), limit=max_images, progress=False)
        sources[name] = {label: evals[r] for r, label in refine_labels.items()}
    # TokenCut's rows are not the paper's figures (Sempart* against Ours): named apart.
    stem = f"figs_6_8_iou_by_size_tokencut_{backbone}_{tag}"
else:
    sources = results
    for by_name in results.values():
        for source in by_name.values():
            run.use_scores(source[0] if isinstance(source, list) else source)
    stem = f"figs_6_8_iou_by_size_{tag}"

# %% [markdown]
# ## Mean IoU per size bin
# One row per (dataset, result, bin); `count` is the number of images in the bin and
# `mean_iou` is NaN where the bin is empty. The CSV holds the whole table.

# %%
table = pd.concat([size_table(by_name, dataset=name) for name, by_name in sources.items()],
                  ignore_index=True)
with atomic_path(Path(figures_dir) / f"{stem}.csv") as tmp:
    table.to_csv(tmp, index=False)
run.wrote(Path(figures_dir) / f"{stem}.csv")
names = list(dict.fromkeys(table["name"]))
wide = table.pivot(index=["dataset", "bin", "lo", "hi"], columns="name", values="mean_iou")[names]
wide.round(3)

# %% [markdown]
# **Reading the table.** Each row is one size bin of one dataset (`lo`-`hi`: the share of the
# image covered by the ground-truth object), each column one result. A NaN is a bin without
# images. Look down a column for where IoU drops; across a row for which result is higher in
# that bin. The figure below shows the same numbers with the number of images per bin, which
# decides how much a bin's mean can be trusted.
#
# ## Figs. 6-8
# Grouped bars per size bin (no bar, a shaded gap, where no image has that size) and the
# number of images per bin below. The legend gives each result's mean IoU over all images.

# %%
fig = plot_iou_by_size_datasets(table, path=Path(figures_dir) / f"{stem}.png",
                                title=run.title("Mean IoU per ground-truth object size"))
run.wrote(Path(figures_dir) / f"{stem}.png");

# %% [markdown]
# **Reading the figure.** Upper panel: the mean IoU of the images in each size bin, one bar per
# result (shaded gaps: no image of that size); lower panel: how many images each bin holds. In
# the paper's figures both models are worst in the first bins (tiny objects, where a patch-level
# mask misses the object) and in the last ones (huge objects, where the background is a thin
# border), and the improved model is above the baseline in every bin. Judge a bin's bars by its
# count: a bin of one or two images can sit anywhere. On the default smoke run (TokenCut on the
# filter-bank backbone, synthetic composites) IoU mostly depends on whether TokenCut picked the
# object at all, so the bars vary from bin to bin more than with size, and the synthetic objects
# do not fill the largest bins.
#
# ## Where the improvement lands
# The improved result minus the first one (the baseline), per bin: the claim is that the gain
# is largest in the first and last populated bins.

# %%
wide[names[1:]].sub(wide[names[0]], axis=0).dropna(how="all").round(3)

# %% [markdown]
# **Reading the differences.** Positive: the second result is better in that bin, negative:
# worse; empty bins are left out. For the claim to hold on a real run, the first and last
# populated bins should hold the largest positive values and no bin should be negative. With
# the guided filter alone on TokenCut (the default), expect small values of either sign: the
# filter moves a mask's edges by a few pixels, which matters most where the object is small
# and its outline is a large share of it.
