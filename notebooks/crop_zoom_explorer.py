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
# # Trick 2 by hand: the crop-zoom consistency of one training step
#
# **Claim (paper Sec. 4, "Multi-Scale Consistency"; Tables 3 and 4):** a teacher that sees a
# zoomed crop of the image gives a more detailed mask of that region than the student sees on
# the whole image; training the student to match it helps small objects and thin structures.
# In the ablations the crop helps single-object discovery (CorLoc, Table 4) most, the guided
# filter saliency IoU (Table 3); the paper's numbers are printed below from
# `paperlib/resources/paper_results.csv`.
#
# One training step with the crop (what `paperlib.train.train_step` runs):
#
# * the student predicts the fine map $\hat s = f(I)$ on the $S \times S$ input ($S = 320$);
# * a box is drawn, and $CU(I, \hat s) = \{I_c, s_c\}$ crops the same box of the image and of
#   the mask and zooms both back to $S \times S$ (bilinear). The paper's box is $80 \times 80$,
#   zoom $\times 4$; the released code's is $160 \times 160$ at row 80 (zoom $\times 2$);
# * the same network on the crop is the teacher: $\hat s_c = f(I_c)$, guided-filtered with the
#   gray $I_c$ as guide ($r = 9$, $\epsilon = 10^{-3}$), clamped to $[10^{-6}, 1 - 10^{-6}]$, and
#   detached: $s_{target} = SG[GF(\hat s_c)]$. The stop-gradient keeps the pair from collapsing;
# * $\mathcal{L}_{eq} = \frac{1}{hw}\,\lVert s_c - s_{target} \rVert_2^2$, added to the loss as
#   $\lambda_{eq} \mathcal{L}_{eq}$ with $\lambda_{eq} = 0.01$;
# * the crop pass also trains the network through its own normalised cut,
#   $\lambda_{Ncut\text{-}crop}\,\mathcal{L}_{Ncut}(I_c)$ with the crop's own feature affinity
#   ($\lambda = 0.01$; not drawn here: it needs the backbone's keys, not just the masks).
#
# Below: one box and its eight maps, several boxes of consecutive training steps with their
# $\mathcal{L}_{eq}$, and sliders to place a box by hand. Box $k$ is exactly the box training
# step $k$ draws in a run with `seed` (`TrainConfig.seed`) and crop `sampler`.
#
# **Which f.** With `checkpoint` (a trained Sempart head, `paperlib train`), f is that head run
# as training runs it, BatchNorm on its running statistics (`bn_mode='eval'`; `'train'`: this
# image's statistics). Without one, a *mask source* stands in (no weights are needed): the
# offline image's true mask seen through a fixed loss of resolution D (`degradation`,
# 'blocky16' = a ViT-S/16 patch mask) on each input grid. The student is D of the full image's
# mask, the "teacher" D of the zoomed mask, so it is finer by the zoom *by construction*. This
# shows the box, the zoom, what GF does to the target and the size of L_eq under the
# assumption trick 2 rests on; it does not show that a trained head behaves so (that needs a
# checkpoint). With your own prediction as `mask_path`, set `degradation='none'`: the teacher
# is then the student's own crop-zoom and L_eq measures only what GF changes.
#
# ```bash
# papermill notebooks/crop_zoom_explorer.ipynb out.ipynb -p checkpoint runs/last.pt -p image_path photo.jpg
# ```

# %% tags=["parameters"]
checkpoint = None           # a trained Sempart head (paperlib-sempart-1 .pt); None: the mask source
weights = None              # its backbone's weights file; None: $PAPERLIB_WEIGHTS_DIR or the hub
bn_mode = "eval"            # checkpoint BatchNorm: 'eval' (running statistics) or 'train' (this image's)
image_path = None           # your image; None: the offline synthetic sample
mask_path = None            # without checkpoint: a mask of image_path for the mask source
degradation = "blocky16"    # the mask source's D (paperlib.gf_sweep.DEGRADATIONS or 'none')
sample_seed = 1             # the offline sample (paperlib.explore.explorer_sample)
sampler = "paper"           # 'paper' (S/4 box, x4) or 'official' (160 px at row 80, x2; size >= 240)
seed = 0                    # the training run's seed: box k is the box of its step k
size = 320                  # S, the training input side (paper: 320)
n_boxes = 8                 # training steps whose boxes are scored
n_grid = 4                  # of which the first n_grid are drawn
figures_dir = "figures"

# %%
from pathlib import Path

from IPython.display import display

from paperlib.crop_explorer import open_crop_explorer
from paperlib.paper_results import TABLE_CAPTIONS, paper_table
from paperlib.images import save_figure

# %% [markdown]
# ## The paper's ablations (Tables 3 and 4)

# %%
print(TABLE_CAPTIONS[4])
display(paper_table(4))
print(TABLE_CAPTIONS[3])
display(paper_table(3))

# %% [markdown]
# ## The boxes of the first training steps and their L_eq

# %%
explorer = open_crop_explorer(checkpoint=checkpoint, weights=weights, image_path=image_path,
                              mask_path=mask_path, sample_seed=sample_seed, degradation=degradation,
                              bn_mode=bn_mode, size=size, sampler=sampler, seed=seed)
print(explorer.predictor.label)
losses = explorer.losses(range(n_boxes))
display(losses)

# %% [markdown]
# ## One box, every map
# The box of largest L_eq among those steps: the input with the box (red), the zoomed crop
# I_c, the student's map and its crop-zoom, the teacher's map on I_c, the guided-filtered
# target, what the filter changed, and the squared error whose mean is L_eq.

# %%
Path(figures_dir).mkdir(parents=True, exist_ok=True)
box = explorer.sample_box(int(losses.loc[losses.l_eq.idxmax(), "step"]))
fig = explorer.figure(box)
save_figure(fig, Path(figures_dir) / "crop_zoom_explorer.png", dpi=110)

# %% [markdown]
# ## Several training steps

# %%
fig = explorer.grid_figure(range(n_grid))
save_figure(fig, Path(figures_dir) / "crop_zoom_explorer_grid.png", dpi=90)

# %% [markdown]
# ## Try it
# Sliders move and resize the box; "resample" shows the next training step's box, the
# dropdown switches the sampler (in JupyterLab; a static run shows the starting box).

# %%
explorer.widget(box)
