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
# # Background: normalized cuts, graph total variation, the guided filter, crop-zoom
#
# The method in one paragraph (paper Sec. 3-4): a frozen self-supervised ViT gives one feature
# per 8 x 8 patch; features of one object are similar, so the patches form a graph whose
# **normalized cut** separates object from background (TokenCut solves it once per image with
# an eigenvector; Sempart trains a head whose coarse mask minimises a relaxed cut over a
# dataset). **Graph total variation** keeps masks smooth where the image or the features are,
# a fine branch brings the mask to pixel resolution, and the paper's two tricks sharpen it:
# (1) the **guided filter** snaps the mask's edges to the image's, (2) a **crop-zoom** teacher
# asks the mask of a zoomed crop to agree with the crop of the mask.
#
# Every number below is computed by the package on one image (offline by default: a synthetic
# composite and the `filterbank16` colour/texture features; `-p backbone dino_vits16 -p weights
# ...` for DINO keys).

# %% tags=["parameters"]
sample_seed = 1             # the offline image (paperlib.explore.explorer_sample)
size = 320                  # image side
backbone = "filterbank16"   # 'dino_vits16' / 'dino_vits8' with weights for the real features
weights = None
tau = 0.2                   # TokenCut's affinity threshold (Sempart's losses: 0.4)
figures_dir = "figures"

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

from paperlib.backbones import load_backbone
from paperlib.crop_zoom import CropBox, crop_zoom
from paperlib.explore import explorer_sample
from paperlib.features import normalise
from paperlib.graph_tv import gtv_coarse, gtv_fine
from paperlib.guided_filter import guided_filter, image_to_guide
from paperlib.images import resize_mask, save_figure
from paperlib.ncut import affinity, ncut_of_partition, ncut_value, second_smallest_eigenvector

Path(figures_dir).mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## 1. Patches as a graph (paper eq. 2)
# Keys K (D x N, one column per patch, L2-normalised); similarity S = K^T K; the affinity
# W_ij = 1 where S_ij > tau, else a tiny eps that keeps the graph connected. Below: the row of W
# of one patch on the object and one on the background.

# %%
ex = explorer_sample(sample_seed, size=size)
net = load_backbone(backbone, weights=weights)
p = net.patch_size
x = torch.from_numpy(ex.image).permute(2, 0, 1)[None].float() / 255.0           # (1, 3, S, S)
keys = net.keys(x)                                                             # (1, D, h, w)
h, w = keys.shape[-2:]
W = affinity(keys.double(), tau=tau, eps=1e-5)                                 # (1, N, N)
truth_patch = resize_mask(ex.truth, (h, w)) > 0.5                              # (h, w) object patches
inside = int(np.flatnonzero(truth_patch.ravel())[len(np.flatnonzero(truth_patch.ravel())) // 2])
outside = int(np.flatnonzero(~truth_patch.ravel())[0])
fig, axes = plt.subplots(1, 4, figsize=(14, 3.6), layout="constrained")
axes[0].imshow(ex.image)
axes[0].set_title("image")
axes[1].imshow(truth_patch, cmap="gray")
axes[1].set_title(f"true mask on the {h} x {w} patch grid")
axes[2].imshow(W[0, inside].reshape(h, w), cmap="gray")
axes[2].set_title("W row of an object patch")
axes[3].imshow(W[0, outside].reshape(h, w), cmap="gray")
axes[3].set_title("W row of a background patch")
for ax in axes:
    ax.set_axis_off()
save_figure(fig, Path(figures_dir) / "theory_affinity.png", dpi=100)

# %% [markdown]
# ## 2. The normalized cut and its spectral relaxation (paper eq. 1; TokenCut)
# Ncut(A, B) = cut(A, B) / assoc(A, V) + cut(A, B) / assoc(B, V): cheap to cut, but each side
# must be well connected. Minimising it over all bipartitions is NP-hard; relaxing the indicator
# to real values gives the generalised eigenproblem (D - W) v = lambda D v, whose second-smallest
# eigenvector (the Fiedler vector) split at its mean is TokenCut's bipartition.

# %%
v, lam = second_smallest_eigenvector(W[0])                                     # (N,), ()
split = (v > v.mean()).reshape(h, w)
partitions = {
    "Fiedler vector split (TokenCut)": split,
    "its complement": ~split,
    "true mask (patch grid)": torch.from_numpy(truth_patch),
    "left half of the image": torch.arange(w)[None, :].expand(h, w) < w // 2,
}
rng = np.random.default_rng(0)
partitions["random half of the patches"] = torch.from_numpy(rng.random((h, w)) < 0.5)
cuts = pd.Series({name: float(ncut_of_partition(W[0], a.reshape(-1))) for name, a in partitions.items()},
                 name="Ncut").to_frame()
cuts["foreground patches"] = [int(a.sum()) for a in partitions.values()]
display(cuts.round(4))
fig, axes = plt.subplots(1, 2, figsize=(8, 3.6), layout="constrained")
axes[0].imshow(v.reshape(h, w), cmap="coolwarm")
axes[0].set_title(f"Fiedler vector (lambda_2 = {float(lam):.3g})")
axes[1].imshow(split, cmap="gray")
axes[1].set_title("split at its mean")
for ax in axes:
    ax.set_axis_off()
save_figure(fig, Path(figures_dir) / "theory_fiedler.png", dpi=100)

# %% [markdown]
# ## 3. The cut as a loss (paper eq. 3)
# Sempart replaces the indicator by the head's soft coarse mask s in [0, 1]:
# Ncut(s) = s^T W (1 - s) / s^T W 1 + (1 - s)^T W s / (1 - s)^T W 1, differentiable and
# symmetric (Ncut(s) = Ncut(1 - s): the loss cannot tell object from background, hence the
# polarity flip at evaluation). Sliding s from the uninformative 0.5 to the true mask:

# %%
alphas = np.linspace(0, 1, 21)
target = torch.from_numpy(truth_patch.astype(np.float64)).reshape(1, -1)
soft = [(1 - a) * 0.5 + a * target for a in alphas]
curve = pd.DataFrame({"alpha": alphas,
                      "Ncut(s)": [float(ncut_value(W, s)) for s in soft],
                      "Ncut(1 - s)": [float(ncut_value(W, 1 - s)) for s in soft]})
ax = curve.plot(x="alpha", y=["Ncut(s)", "Ncut(1 - s)"], style=["-", "--"], figsize=(5, 3.2))
ax.set_xlabel("s = (1 - alpha) 0.5 + alpha * true mask")
save_figure(ax.figure, Path(figures_dir) / "theory_ncut_loss.png", dpi=100)

# %% [markdown]
# ## 4. Graph total variation (paper eqs. 5-7)
# GTV(s) = mean over pixels i and their 8 neighbours j of a_ij |s_i - s_j|, with a_ij =
# exp(-||x_i - x_j||^2 / sigma) on the image (fine mask) or the affinity on the keys (coarse
# mask). A change of the mask costs little where the image (or the features) change too: the
# true mask scores lower than the same area placed elsewhere or a ragged copy.

# %%
image_norm = normalise(x)                                                      # (1, 3, S, S)
fine_masks = {
    "true mask": ex.truth,
    "true mask, 1/16 resolution (blocky)": ex.mask,
    "true mask shifted 24 px": np.roll(ex.truth, 24, axis=1),
    "true mask with 5 % pixels flipped": np.where(rng.random(ex.truth.shape) < 0.05, 1 - ex.truth, ex.truth),
}
coarse = {name: resize_mask(m, (h, w)) for name, m in fine_masks.items()}
gtv = pd.DataFrame({
    "GTV fine (image weights)": {name: float(gtv_fine(image_norm, torch.from_numpy(m.astype(np.float32))[None, None]))
                                 for name, m in fine_masks.items()},
    "GTV coarse (key affinity)": {name: float(gtv_coarse(keys, torch.from_numpy(m)[None, None].float()))
                                  for name, m in coarse.items()},
})
display(gtv.round(5))

# %% [markdown]
# ## 5. Trick 1: the guided filter (paper Sec. 4; He et al.)
# In each (2r + 1)^2 window the output is a linear function of the guide I, q = a I + b, with
# a = cov(I, p) / (var(I) + eps): where the guide has an edge (var >> eps) the mask follows it,
# where it is flat (var << eps) the mask is smoothed. A row through the object:

# %%
guide = image_to_guide(x)                                                      # (1, 1, S, S) gray in [0, 1]
src = torch.from_numpy(ex.mask)[None, None]
row = int(np.flatnonzero(ex.truth.any(axis=1))[len(np.flatnonzero(ex.truth.any(axis=1))) // 2])
profiles = pd.DataFrame({"guide (gray image)": guide[0, 0, row].numpy(), "true mask": ex.truth[row],
                         "blocky mask": ex.mask[row]})
for eps_value in (1e-4, 1e-2):
    q = guided_filter(guide, src, radius=9, eps=eps_value).clamp(0, 1)
    profiles[f"guided filter r=9, eps={eps_value:g}"] = q[0, 0, row].numpy()
ax = profiles.plot(figsize=(10, 3.4), style=["-", "-", "--", "-", "-"], alpha=0.9)
ax.set_xlabel(f"column (row {row})")
save_figure(ax.figure, Path(figures_dir) / "theory_guided_filter.png", dpi=100)

# %% [markdown]
# ## 6. Trick 2: crop-zoom consistency (paper Sec. 4)
# CU(I, s) crops the same box from the image and the mask and enlarges both to the input size.
# The teacher (the same network) predicts on the zoomed image, its mask is guided-filtered,
# clamped and detached (stop-gradient): SG[GF(s_c)]. L_eq is the mean squared difference
# between that target and the zoomed crop of the student's full-image mask, weight 0.01. A
# small object seen 4x larger gets a sharper target. `notebooks/crop_zoom_explorer.py`
# explores it with a trained head.

# %%
S = size
box = CropBox(top=S // 4, left=S // 4, height=S // 4, width=S // 4)           # the paper's 80 px at 320
crop_image = crop_zoom(x, box, S)                                              # (1, 3, S, S)
crop_mask = crop_zoom(src, box, S)                                             # (1, 1, S, S)
target = guided_filter(image_to_guide(crop_image), crop_mask, radius=9, eps=1e-3).clamp(1e-6, 1 - 1e-6)
fig, axes = plt.subplots(1, 4, figsize=(14, 3.6), layout="constrained")
framed = ex.image.copy()
framed[box.top, box.left:box.left + box.width] = framed[box.top + box.height - 1, box.left:box.left + box.width] = 255
framed[box.top:box.top + box.height, box.left] = framed[box.top:box.top + box.height, box.left + box.width - 1] = 255
for ax, (title, data) in zip(axes, (("image and the box", framed),
                                    ("zoomed crop I_c", crop_image[0].permute(1, 2, 0).numpy()),
                                    ("zoomed crop of the mask", crop_mask[0, 0].numpy()),
                                    ("GF(zoomed mask), guide I_c", target[0, 0].numpy()))):
    ax.imshow(data, cmap="gray", vmin=0, vmax=1)
    ax.set_title(title)
    ax.set_axis_off()
save_figure(fig, Path(figures_dir) / "theory_crop_zoom.png", dpi=100)
