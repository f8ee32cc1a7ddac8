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
from typing import Optional

sample_seed: int = 1                # the offline image (paperlib.viz.gf_explorer.explorer_sample)
image_path: Optional[str] = None    # a real image instead (with truth_path, its ground-truth mask)
truth_path: Optional[str] = None    # the ground truth of image_path
size: int = 320                     # image side in pixels
backbone: str = "filterbank16"      # dino_vits16 / dino_vits8 with weights for the real features
weights: Optional[str] = None       # the backbone's official .pth
tau: float = 0.2                    # TokenCut's affinity threshold (Sempart's losses: 0.4)
figures_dir: str = "figures"        # where the figures go
tag: str = "smoke"                  # smoke (the offline defaults): figures/theory_*.png; any other tag: figures/theory_*_<tag>.png

# %%
from paperlib.notebook.session import start

run = start("theory", globals())
run.use_backbone(backbone, weights)
run.use_image(image_path)
suffix = "" if tag == "smoke" else f"_{tag}"   # the offline illustrations are kept in git unsuffixed

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

from paperlib.backbones.registry import load_backbone
from paperlib.losses.crop_zoom import CropBox, crop_zoom
from paperlib.viz.gf_explorer import explorer_from_files, explorer_sample
from paperlib.backbones.features import normalise
from paperlib.losses.graph_tv import gtv_coarse, gtv_fine
from paperlib.refine.guided_filter import PAPER_GF, guided_filter, image_to_guide
from paperlib.images import resize_mask
from paperlib.losses.objective import sr_loss
from paperlib.losses.settings import TOKENCUT_AFFINITY, LossWeights
from paperlib.losses.ncut import (
    affinity, ncut_of_partition, ncut_value, second_smallest_eigenvector,
)
from paperlib.viz.theory_figures import (
    plot_affinity_rows, plot_crop_zoom, plot_fiedler, plot_ncut_curve, plot_profiles,
)

# %% [markdown]
# ## 1. Patches as a graph (paper eq. 2)
# The backbone gives one key vector $F_{v_i} \in \mathbb{R}^D$ per patch $v_i$; L2-normalised
# and stacked as the columns of $K \in \mathbb{R}^{D \times N}$ ($N = h w$ patches, row-major),
# their cosine similarities are $K^\top K$. TokenCut links two patches when their similarity
# exceeds a threshold $\tau$ (paper eq. 2):
#
# $$w_{ij} = \begin{cases} 1 & \text{if } \langle F_{v_i}, F_{v_j} \rangle > \tau, \\ \epsilon & \text{otherwise,} \end{cases} \qquad (2)$$
#
# where the small $\epsilon > 0$ keeps every node connected. TokenCut uses $\tau = 0.2$,
# $\epsilon = 10^{-5}$ (`paperlib.losses.settings.TOKENCUT_AFFINITY`); Sempart's losses $\tau = 0.4$,
# $\epsilon = 10^{-6}$ (`SEMPART_AFFINITY`). The $W$ of this notebook is
# `paperlib.losses.ncut.affinity(keys, tau=tau, eps=TOKENCUT_AFFINITY.eps)`, with the `tau` parameter. Below: the row
# $w_{i\cdot}$ of one patch $i$ on the object and of one on the background.

# %%
# The figures are drawn by paperlib/viz/theory_figures.py (labels, colour bars, tests).
if image_path is None:
    ex = explorer_sample(sample_seed, size=size)
else:
    ex = explorer_from_files(image_path, truth_path, size=size)
net = load_backbone(backbone, weights=weights)
p = net.patch_size
x = torch.from_numpy(ex.image).permute(2, 0, 1)[None].float() / 255.0           # (1, 3, S, S)
keys = net.keys(x)                                                             # (1, D, h, w)
h, w = keys.shape[-2:]
W = affinity(keys.double(), tau=tau, eps=TOKENCUT_AFFINITY.eps)                                 # (1, N, N)
truth_patch = resize_mask(ex.truth, (h, w)) > 0.5                              # (h, w) object patches
inside = int(np.flatnonzero(truth_patch.ravel())[len(np.flatnonzero(truth_patch.ravel())) // 2])
outside = int(np.flatnonzero(~truth_patch.ravel())[0])
fig = plot_affinity_rows(ex.image, truth_patch, W[0].numpy(), inside=inside, outside=outside, tau=tau,
                         eps=TOKENCUT_AFFINITY.eps)
run.save_figure(fig, Path(figures_dir) / f"theory_affinity{suffix}.png", dpi=100);

# %% [markdown]
# **Reading the figure.** With features that separate object from background, the row of an
# object patch is white on the object and black (weight $\epsilon$) elsewhere, and the row of a
# background patch the reverse: $W$ is then close to two blocks, which is what a cut can find.
# Look for how far the two rows are from that. The offline filter-bank features describe colour
# and texture only, so expect stray links (background patches of a similar texture linked to
# the object and background patches missing from their own row); DINO keys
# (`-p backbone dino_vits16 -p weights ...`) give cleaner rows. Raising `tau` removes links,
# lowering it adds them.

# %% [markdown]
# ## 2. The normalized cut and its spectral relaxation (paper eq. 1; TokenCut)
# A bipartition of the nodes $V$ into $A$ and $B = V \setminus A$ costs (paper eq. 1)
#
# $$\text{Ncut}(A, B) = \frac{\text{cut}(A, B)}{\text{assoc}(A, V)} + \frac{\text{cut}(B, A)}{\text{assoc}(B, V)}, \qquad (1)$$
#
# $$\text{cut}(A, B) = \sum_{u \in A,\, v \in B} w_{uv}, \qquad \text{assoc}(A, V) = \sum_{u \in A,\, t \in V} w_{ut}.$$
#
# The cut counts the links that cross; dividing by each side's total links makes cutting off a
# small or weakly linked group expensive, so Ncut prefers two coherent parts. Minimising it over
# all bipartitions is NP-complete (Shi and Malik); relaxing the indicator of $A$ to real values
# gives the generalised eigenproblem $(D - W)\, v = \lambda D v$ with $D = \text{diag}(W \mathbf{1})$,
# whose second-smallest eigenvector $v$ (the Fiedler vector), split at its mean, is TokenCut's
# bipartition (`paperlib.losses.ncut.second_smallest_eigenvector`). The table scores several
# bipartitions of this graph with eq. (1) (`paperlib.losses.ncut.ncut_of_partition`).

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
print("lowest Ncut:", cuts["Ncut"].idxmin())
fig = plot_fiedler(v.reshape(h, w).numpy(), float(lam), split.numpy())
run.save_figure(fig, Path(figures_dir) / f"theory_fiedler{suffix}.png", dpi=100);

# %% [markdown]
# **Reading the table and the figure.** Look for three things.
# (i) A split and its complement have the same Ncut: eq. (1) is symmetric in $A$ and $B$, so the
# cut cannot say which side is the object (TokenCut takes the side of the eigenvector's largest
# entry; the Sempart evaluation flips masks whose mean is above 0.5, per batch of 8).
# (ii) Splits that ignore the graph -- the left half, a random half -- score near 1: each side
# keeps about the share of its links that its size predicts. Splits along the object score far
# lower; the maximum of eq. (1) is 2.
# (iii) The eigenvector's split can score *below* the true mask (the printed line says which
# split is lowest here): Ncut measures the graph, not the truth, and where the features link a
# few background patches to the object, the cheapest cut follows the features' mistakes. The
# eigenvector map is close to two-valued (one level on the object, one on the background), which
# is why a split at its mean works; its colour bar is centred on that mean.

# %% [markdown]
# ## 3. The cut as a loss (paper eq. 3)
# Sempart replaces the indicator of $A$ by the head's soft coarse mask
# $S = S_\text{coarse} \in [0, 1]^{|V|}$, one value per patch (paper eq. 3, $\mathbf{1}$ a vector
# of ones):
#
# $$\mathcal{L}_\text{Ncut} = \text{Ncut}(A, B) = \frac{S^\top W (\mathbf{1} - S)}{S^\top W \mathbf{1}} + \frac{(\mathbf{1} - S)^\top W S}{(\mathbf{1} - S)^\top W \mathbf{1}}. \qquad (3)$$
#
# For a 0/1 indicator $S$ this is eq. (1); for soft $S$ it is differentiable. It is symmetric,
# $\mathcal{L}_\text{Ncut}(S) = \mathcal{L}_\text{Ncut}(\mathbf{1} - S)$: the loss cannot tell
# object from background, hence the polarity flip at evaluation. In the code
# (`paperlib.losses.objective.ncut_loss` over `paperlib.losses.ncut.ncut_value`) the training loss builds $W$
# with Sempart's $\tau = 0.4$, $\epsilon = 10^{-6}$, clamps $S$ to $[10^{-6}, 1 - 10^{-6}]$,
# floors each denominator at $10^{-6}$ and averages over the batch. The curve below slides $S$
# from $0.5$ everywhere to the true mask, on this notebook's $W$:

# %%
alphas = np.linspace(0, 1, 21)
target = torch.from_numpy(truth_patch.astype(np.float64)).reshape(1, -1)
soft = [(1 - a) * 0.5 + a * target for a in alphas]
curve = pd.DataFrame({"alpha": alphas,
                      "Ncut(s)": [float(ncut_value(W, s)) for s in soft],
                      "Ncut(1 - s)": [float(ncut_value(W, 1 - s)) for s in soft]})
fig = plot_ncut_curve(curve)
run.save_figure(fig, Path(figures_dir) / f"theory_ncut_loss{suffix}.png", dpi=100);

# %% [markdown]
# **Reading the curve.** At $S = 0.5$ everywhere the loss is exactly 1 (each term of eq. (3) is
# $\tfrac14 \mathbf{1}^\top W \mathbf{1} / \tfrac12 \mathbf{1}^\top W \mathbf{1} = \tfrac12$), and
# it falls to the true mask's Ncut of the table above at $\alpha = 1$. The two curves lie on top
# of each other: the symmetry. Note that the curve starts flat: by that symmetry $S = 0.5$ is a
# stationary point of the loss (its gradient there is 0), so training relies on the head's
# random initialisation to leave it, and either polarity can come out.

# %% [markdown]
# ## 4. Graph total variation (paper eqs. 5-7)
# A smoothness loss on a graph with edge weights $a_{ij}$, for the fine mask and for the coarse
# one (paper eqs. 5-7):
#
# $$\mathcal{L}_\text{GTV-fine/coarse} = \frac{1}{2} \sum_{(i,j) \in E} a_{ij} (s_i - s_j)^2, \qquad (5)$$
#
# $$a_{ij}^\text{fine} = \exp\left(-\lVert x_i - x_j \rVert_2^2 / \sigma\right), \qquad (6)$$
#
# $$a_{ij}^\text{coarse} = w_{ij}\, \mathbf{I}\{i \in \mathcal{N}(j)\}, \qquad (7)$$
#
# with $\mathcal{N}(j)$ the grid neighbours of node $j$ and $\mathbf{I}$ the indicator. For the
# fine mask $x_i$ is pixel $i$ of the network's input (ImageNet-normalised RGB) and $\sigma = 1$;
# for the coarse mask $w_{ij}$ is the affinity of eq. (2) on the keys, with Sempart's
# $\tau = 0.4$, $\epsilon = 10^{-6}$. A jump of the mask costs its size squared times the
# similarity of the two nodes: a mask edge is cheap where the image (or the features) have an
# edge too, and expensive inside a uniform region.
#
# **What the code computes** (`paperlib.losses.graph_tv.gtv_fine` and `gtv_coarse`). The paper's
# implementation section replaces the sum by an average, "since we observed that this improves
# stability". With $E$ the 8-neighbour pairs of the $H \times W$ pixel grid (or of the
# $h \times w$ patch grid) and a batch of $B$ masks, the code returns
#
# $$\frac{1}{8BHW} \sum_{b=1}^{B} \sum_{i=1}^{HW} \sum_{k=1}^{8} a_{i,\,i+k}\, (s_i - s_{i+k})^2,$$
#
# the mean over the batch, the pixels $i$ and their 8 neighbours $i + k$. Every neighbour pair
# is counted from both of its ends; reading $E$ in eq. (5) as these ordered pairs (the factor
# $\frac{1}{2}$ undoes the double count), the code's value is eq. (5) divided by $4HW$ per image,
# a constant factor that weighs this term against the others of eq. (8) below. A neighbour
# outside the grid is the mirrored pixel, so a constant mask costs exactly 0. The table scores
# four masks of the same image (the coarse column on the patch grid, each mask resized to it):

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
print("lowest in each column:", gtv.idxmin().to_dict())

# %% [markdown]
# **Reading the table.** Lower is smoother on the graph. Expect the true mask lowest in both
# columns (the printed line says): its only jumps lie on the object's outline, where $a_{ij}$ is
# small. The copy with 5 % of its pixels flipped pays for thousands of isolated jumps inside
# uniform regions, where $a_{ij}$ is close to 1: in the fine column it is by far the worst. The
# shifted copy puts its outline across the background's texture and the object's interior; the
# blocky copy's staircase cuts across the object's edge. The two columns are different graphs on
# different grids, so compare rows within a column, not across: on the patch grid most flipped
# pixels average away, and the order of the other masks can change.
#
# ## 5. From coarse to fine, and the whole objective (paper eqs. 4 and 8)
# Eq. (3) trains only $S_\text{coarse}$. The fine mask learns where the object is through a
# consistency with the coarse one (paper eq. 4):
#
# $$\mathcal{L}_\text{SR} = \lVert \text{down}(S_\text{fine}) - S_\text{coarse} \rVert_2^2. \qquad (4)$$
#
# In the code (`paperlib.losses.objective.sr_loss`) $\text{down}$ is a bilinear resize to the patch grid
# (`align_corners=False`, no antialiasing: at a factor of 8 each coarse value is the mean of the
# $2 \times 2$ fine pixels at the centre of its $8 \times 8$ block), the squared norm is a mean
# over the $h w$ patches and the batch, and both maps receive gradients (no stop-gradient).
# The segmentation head is trained with the sum of the terms (paper eq. 8):
#
# $$\mathcal{L}_\text{sempart} = \mathcal{L}_\text{Ncut} + \lambda_\text{GTV-coarse}\, \mathcal{L}_\text{GTV-coarse} + \lambda_\text{GTV-fine}\, \mathcal{L}_\text{GTV-fine} + \lambda_\text{SR}\, \mathcal{L}_\text{SR}, \qquad (8)$$
#
# with $\lambda_\text{GTV-coarse} = \lambda_\text{GTV-fine} = \lambda_\text{SR} = 1$ (paper
# Sec. 5.1). Trick 2 (section 7) adds $\lambda_{eq} \mathcal{L}_{eq}$ and the crop's own normalized
# cut $\lambda_\text{Ncut-Crop} \mathcal{L}_\text{Ncut}(I_c)$ to eq. (8), both weights 0.01.
# `paperlib.losses.objective.sempart_loss` computes every term; the weights live in one place,
# `paperlib.losses.settings.LossWeights`, printed below. $\mathcal{L}_\text{SR}$ of the true fine mask
# against three coarse masks:

# %%
from dataclasses import asdict

fine_true = torch.from_numpy(ex.truth.astype(np.float32))[None, None]          # (1, 1, S, S)
coarse_true = torch.from_numpy(truth_patch.astype(np.float32))[None, None]     # (1, 1, h, w)
sr = pd.Series({
    "S_coarse = the true mask on the patch grid": float(sr_loss(fine_true, coarse_true)),
    "S_coarse = the same, shifted 3 patches": float(sr_loss(fine_true, torch.roll(coarse_true, 3, dims=-1))),
    "S_coarse = 0.5 everywhere": float(sr_loss(fine_true, torch.full_like(coarse_true, 0.5))),
}, name="L_SR (eq. 4)")
display(sr.to_frame().round(4))
display(pd.Series(asdict(LossWeights()), name="lambda").to_frame())

# %% [markdown]
# **Reading the tables.** $\mathcal{L}_\text{SR}$ is near 0 when the two maps agree: the true
# mask against its own patch-grid version pays only along the outline, where a patch is partly
# object. A shifted coarse mask pays on every patch the shift moved, and a coarse mask of 0.5
# pays $0.25$ on every patch where the fine mask is 0 or 1. The weights are those of the
# paper's Sec. 5.1: eq. (8) has no weight on $\mathcal{L}_\text{Ncut}$ (1 here), the two crop
# terms of trick 2 weigh 0.01.

# %% [markdown]
# ## 6. Trick 1: the guided filter (paper Sec. 4; He et al.)
# The guided filter assumes that in every window $\omega_k$ of $(2r + 1) \times (2r + 1)$ pixels
# the output $q$ is an affine function of the guide $I$: $q_i = a_k I_i + b_k = p_i - n_i$ for
# all $i \in \omega_k$, with $p$ the input (here the mask) and $n$ the noise the filter removes.
# $a_k$ and $b_k$ minimise (paper Sec. 4)
#
# $$E(a_k, b_k) = \sum_{i \in \omega_k} \left( (a_k I_i + b_k - p_i)^2 + \epsilon a_k^2 \right),$$
#
# whose solution is
#
# $$a_k = \frac{\frac{1}{|\omega|} \sum_{i \in \omega_k} I_i p_i - \mu_k \bar{p}_k}{\sigma_k^2 + \epsilon}, \qquad b_k = \bar{p}_k - a_k \mu_k,$$
#
# with $\mu_k$ and $\sigma_k^2$ the mean and variance of $I$ in $\omega_k$ and $\bar{p}_k$ the
# mean of $p$ there. The numerator is the covariance of $I$ and $p$ in the window: where the guide
# has an edge ($\sigma_k^2 \gg \epsilon$) the output follows the guide, where it is flat
# ($\sigma_k^2 \ll \epsilon$, $a_k \to 0$) the output is the window's mean of $p$. Each pixel
# then averages the $a_k$, $b_k$ of the windows that contain it (He et al.; in the code,
# `paperlib.refine.guided_filter.guided_filter`: `mean_I`, `var_I`, `cov_Ip`, `a`, `b`, windows cut at
# the image border). The paper filters the predicted mask with the gray image as guide,
# $q = \text{GF}(p, I)$, with $r = 9$ and $\epsilon = 10^{-3}$ at $320 \times 320$. One row
# through the object, the blocky mask filtered with two values of $\epsilon$:

# %%
guide = image_to_guide(x)                                                      # (1, 1, S, S) gray in [0, 1]
src = torch.from_numpy(ex.mask)[None, None]
row = int(np.flatnonzero(ex.truth.any(axis=1))[len(np.flatnonzero(ex.truth.any(axis=1))) // 2])
profiles = pd.DataFrame({"guide (gray image)": guide[0, 0, row].numpy(), "true mask": ex.truth[row],
                         "blocky mask": ex.mask[row]})
for eps_value in (1e-4, 1e-2):
    q = guided_filter(guide, src, radius=PAPER_GF.radius, eps=eps_value).clamp(0, 1)
    profiles[f"guided filter r={PAPER_GF.radius}, eps={eps_value:g}"] = q[0, 0, row].numpy()
fig = plot_profiles(profiles, row=row, styles={"blocky mask": "--"})
run.save_figure(fig, Path(figures_dir) / f"theory_guided_filter{suffix}.png", dpi=100);

# %% [markdown]
# **Reading the plot.** Compare where each mask crosses 0.5 (the threshold of the metrics) with
# the true mask's edges. The blocky mask's steps sit on the patch grid, up to a patch away from
# them. The filter pulls a crossing toward a jump of the gray guide when that jump dominates the
# window; where the object and the background have similar gray levels and the background's
# texture varies more than the edge does, the window has no clear edge to follow and the ramp
# can end up no closer, or further, than the block was -- the filter sees only gray levels.
# Its output stays soft, a ramp about one window ($2r + 1$ pixels) wide. The smaller
# $\epsilon$ follows the guide more closely (steeper ramps, but small bumps where the texture
# has edges of its own); the larger one smooths more. `notebooks/gf_explorer.py` scores
# $r$ and $\epsilon$ against the ground truth over a whole image.

# %% [markdown]
# ## 7. Trick 2: crop-zoom consistency (paper Sec. 4, Fig. 3)
# With $f$ the network and $\hat{s} = f(I)$ its mask of the input $I$, the paper's steps are:
#
# 1. crop the same random box of the image and of the mask and enlarge both to the input size,
#    $CU(I, \hat{s}) = \{I_c, s_c\}$;
# 2. predict on the zoomed image, $\hat{s}_c = f(I_c)$ (the teacher is the same network), and
#    refine it with the guided filter, guide $I_c$;
# 3. stop the gradient, $s_\text{target} = SG[\text{GF}(\hat{s}_c)]$, so that the pair cannot
#    collapse to a trivial agreement;
# 4. $\mathcal{L}_{eq} = \frac{1}{hw} \lVert s_c - s_\text{target} \rVert_2^2$, with $h \times w$
#    the size of the masks, added to eq. (8) as $\lambda_{eq} \mathcal{L}_{eq}$,
#    $\lambda_{eq} = 0.01$.
#
# In the code (`paperlib.losses.crop_zoom`): the box is $80 \times 80$ in the $320 \times 320$ input
# (zoom $\times 4$, paper Sec. 5), zooming is bilinear, the target is clamped to
# $[10^{-6}, 1 - 10^{-6}]$, and $\mathcal{L}_{eq}$ is the mean over the $S \times S$ pixels and
# the batch. A small object seen 4 times larger is covered by 16 times more patches, so the
# teacher's mask of it can be sharper than the student's. Below, the blocky mask stands in for
# the network's prediction: its zoomed crop and what the guided filter makes of it on $I_c$.
# `notebooks/crop_zoom_explorer.py` computes $\mathcal{L}_{eq}$ of whole training steps.

# %%
S = size
box = CropBox(top=S // 4, left=S // 4, height=S // 4, width=S // 4)           # the paper's 80 px at 320
crop_image = crop_zoom(x, box, S)                                              # (1, 3, S, S)
crop_mask = crop_zoom(src, box, S)                                             # (1, 1, S, S)
target = guided_filter(image_to_guide(crop_image), crop_mask, radius=PAPER_GF.radius,
                       eps=PAPER_GF.eps).clamp(1e-6, 1 - 1e-6)
fig = plot_crop_zoom(ex.image, box, crop_image[0].permute(1, 2, 0).numpy(), crop_mask[0, 0].numpy(),
                     target[0, 0].numpy())
run.save_figure(fig, Path(figures_dir) / f"theory_crop_zoom{suffix}.png", dpi=100);

# %% [markdown]
# **Reading the figure.** In the zoomed crop each step of the blocky mask is 4 times larger than
# in the full image; the guided filter pulls the mask's edge onto the object's outline in
# $I_c$, rounding the staircase. That is the kind of target trick 2 gives the student: here it
# comes from the student's own mask, so it only shows what the filter adds; in training the
# target comes from the network run on $I_c$, which sees the region at 4 times the resolution
# and can add detail the student's mask does not have.
