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
# one JSON file per model (each holds one score dict per refinement):
#
# ```bash
# paperlib eval --dataset dut-omron --root ~/datasets --method sempart --checkpoint runs/baseline/last.pt \
#     --refine none --json results/figs/dut-omron_baseline.json
# paperlib eval --dataset dut-omron --root ~/datasets --method sempart --checkpoint runs/paper/last.pt \
#     --refine gf --json results/figs/dut-omron_ours.json
# # ... the same for duts-te and ecssd, then:
# papermill notebooks/figs_6_8_iou_by_size.ipynb out.ipynb -y '
# results:
#   dut-omron: {"Sempart*": results/figs/dut-omron_baseline.json, Ours: results/figs/dut-omron_ours.json}
#   duts-te: {"Sempart*": results/figs/duts-te_baseline.json, Ours: results/figs/duts-te_ours.json}
#   ecssd: {"Sempart*": results/figs/ecssd_baseline.json, Ours: results/figs/ecssd_ours.json}'
# ```
#
# A file that holds several refinements (`--refine none,gf`) is named with the one to plot:
# `Ours: [results/figs/duts-te_ours.json, gf]`.
#
# **The defaults** need nothing from outside: TokenCut on the offline `filterbank16` backbone,
# without and with the guided filter (trick 1), scored in one pass on synthetic DUTS-TE
# composites written here. Their figure and table are suffixed `_tokencut_<backbone>_smoke`:
# they exercise the pipeline and are not the paper's figures (on real data, without `_smoke`). Point `data_root` (and `backbone`, `weights`) at
# the real test sets to see trick 1's effect per object size on TokenCut.

# %% tags=["parameters"]
results = None                 # {dataset: {name: eval JSON path, or [path, refinement]}}; None: compute below
# Used only when results is None: TokenCut without and with the guided filter, scored on the fly.
datasets = ["duts-te"]         # any of duts-te, dut-omron, ecssd under data_root
data_root = "results/notebooks/data"
backbone = "filterbank16"      # offline; dino_vits16 (TokenCut's) with weights for real features
weights = None
device = None
refine_labels = {"none": "TokenCut", "gf": "TokenCut + GF"}  # refinement -> name in the figure
max_images = None              # score only the first N images of each dataset
figures_dir = "figures"

# %%
from pathlib import Path

import pandas as pd

from paperlib.data import open_dataset
from paperlib.images import atomic_path
from paperlib.methods import build_method
from paperlib.segment import evaluate_dataset
from paperlib.size_figures import is_synthetic, plot_iou_by_size_datasets, size_table
from paperlib.synth import synthesize_missing

# %% [markdown]
# ## The scores
# From the saved eval files, or computed here: each image is predicted once and scored both
# raw and guided-filtered (`evaluate_dataset(..., refines=("none", "gf"))`).

# %%
if results is None:
    if "duts-te" in datasets:
        synthesize_missing(data_root, splits=("te",))   # the notebooks' shared offline set
    method = build_method("tokencut", backbone=backbone, weights=weights, device=device)
    opened = {name: open_dataset(name, data_root) for name in datasets}
    sources = {}
    for name, dataset in opened.items():
        evals = evaluate_dataset(dataset, method, refines=tuple(refine_labels), limit=max_images, progress=False)
        sources[name] = {label: evals[r] for r, label in refine_labels.items()}
    # TokenCut's rows are not the paper's figures (Sempart* against Ours): named apart, and
    # 'smoke' on the synthetic set.
    smoke = any(dataset.is_synthetic for dataset in opened.values())
    suffix = f"_tokencut_{backbone}" + ("_smoke" if smoke else "")
else:
    sources = results
    smoke = any(is_synthetic(s) for by_name in results.values() for s in by_name.values())
    suffix = "_smoke" if smoke else ""

# %% [markdown]
# ## Mean IoU per size bin
# One row per (dataset, result, bin); `count` is the number of images in the bin and
# `mean_iou` is NaN where the bin is empty. The CSV holds the whole table.

# %%
table = pd.concat([size_table(by_name, dataset=name) for name, by_name in sources.items()],
                  ignore_index=True)
Path(figures_dir).mkdir(parents=True, exist_ok=True)
with atomic_path(Path(figures_dir) / f"figs_6_8_iou_by_size{suffix}.csv") as tmp:
    table.to_csv(tmp, index=False)
names = list(dict.fromkeys(table["name"]))
wide = table.pivot(index=["dataset", "bin", "lo", "hi"], columns="name", values="mean_iou")[names]
wide.round(3)

# %% [markdown]
# ## Figs. 6-8
# Grouped bars per size bin (no bar, a shaded gap, where no image has that size) and the
# number of images per bin below. The legend gives each result's mean IoU over all images.

# %%
fig = plot_iou_by_size_datasets(
    table, path=Path(figures_dir) / f"figs_6_8_iou_by_size{suffix}.png",
    title=("Mean IoU per ground-truth object size -- smoke run, not the paper's Figs. 6-8" if smoke
           else f"TokenCut ({backbone}) without and with trick 1, per object size" if results is None else None))

# %% [markdown]
# ## Where the improvement lands
# The improved result minus the first one (the baseline), per bin: the claim is that the gain
# is largest in the first and last populated bins.

# %%
wide[names[1:]].sub(wide[names[0]], axis=0).dropna(how="all").round(3)
