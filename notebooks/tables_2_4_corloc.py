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
# # Tables 2 and 4: single-object discovery (CorLoc), and the ablation of the two tricks
#
# **Claims (paper Sec. 5.3 and 5.4):** the tricks raise CorLoc over Sempart* on VOC07, VOC12
# and COCO20K (Table 2's arrows); unlike saliency, it is the crop-zoom loss that brings the
# gain here, the guided filter barely moves the boxes (Table 4).
#
# A box is the largest 4-connected component of the mask at patch resolution (thresholded at
# 0.5), scaled to the image; a hit has IoU >= 0.5 with any ground-truth box. With the guided
# filter, the refined mask is averaged back onto the patch grid and boxed the same way
# (`paperlib.methods.refined_box`; `paperlib corloc --refine gf`).
#
# The heads are the same runs as `tables_1_3_saliency.py` (same `out_dir`: finished runs are
# reused, not retrained). The paper's run:
#
# ```bash
# papermill notebooks/tables_2_4_corloc.ipynb out.ipynb -p preset paper -p max_steps None \
#     -p data_root ~/datasets -p synth_if_missing False -p out_dir runs/ablation -p tag paper \
#     -y 'backbones: [dino_vits8]' -y 'weights: {dino_vits8: ~/weights/dino_deitsmall8_pretrain.pth}' \
#     -y 'datasets: [voc07, voc12, coco20k]' -p limit None
# ```
#
# (lists and mappings go with `-y`; `-p` would pass them as strings.)
#
# Defaults: the offline smoke runs, CorLoc on the synthetic set's object boxes (`synth`) --
# smoke numbers, not the paper's.

# %% tags=["parameters"]
data_root = "results/notebooks/data"   # holds DUTS-TR/ (training) and the detection sets
synth_if_missing = True                 # write synthetic DUTS-TR / DUTS-TE (with boxes) when missing
out_dir = "results/notebooks/ablation"  # run folders shared with tables_1_3_saliency
checkpoints = None                      # {"<backbone>/<crop>": path}: score these instead of training
backbones = ["filterbank"]              # Table 4: DINO ViT-S/8 only
weights = {}
preset = "smoke"
max_steps = 60
datasets = ["synth"]                    # the paper: ["voc07", "voc12", "coco20k"]
protocol = "default"
limit = None
device = None
tag = "smoke"                           # names the outputs figures/table2_<tag>.* and table4_<tag>.*

# %%
from pathlib import Path

from IPython.display import display

from paperlib.experiments import corloc_ablation, main_backbone, resolve_runs, table2_rows, table4_frame
from paperlib.synth import synthesize_missing
from paperlib.tables import beside_paper, scores_table, write_table

# %%
if synth_if_missing:
    synthesize_missing(data_root)
runs = resolve_runs(checkpoints, data_root, out_dir, backbones=backbones, preset=preset, weights=weights,
                    max_steps=max_steps)
results = corloc_ablation(runs, datasets, data_root, weights=weights, protocol=protocol, device=device,
                          limit=limit)

# %% [markdown]
# ## Table 2 (the reproducible rows; CorLoc in %)

# %%
table2 = scores_table(table2_rows(results, backbone=main_backbone(runs)), metrics=("corloc",))
write_table(beside_paper(table2, 2), Path("figures") / f"table2_{tag}.csv", digits=1)
display(beside_paper(table2, 2).round(1))

# %% [markdown]
# ## Table 4: each trick alone and both

# %%
table4 = table4_frame(results, backbone=main_backbone(runs))
write_table(beside_paper(table4, 4), Path("figures") / f"table4_{tag}.csv", digits=1)
display(beside_paper(table4, 4).round(1))
