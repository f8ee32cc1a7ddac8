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
# # Trick 1 by hand: the guided filter's radius and epsilon
#
# **Claim (paper Sec. 4, "Guided Filtering"; Tables 3 and 5):** filtering a predicted mask
# with its image as guide moves the mask's edges onto the image's edges, which raises IoU
# for coarse masks (TokenCut's patch-level masks: the TokenCut + GF rows of Table 5).
#
# The filter (He et al.; paper Sec. 4) fits, in every window $\omega_k$ of
# $(2r + 1) \times (2r + 1)$ pixels, the mask $p$ as an affine function of the guide $I$,
# $q_i = a_k I_i + b_k$, by minimising
# $E(a_k, b_k) = \sum_{i \in \omega_k} \left( (a_k I_i + b_k - p_i)^2 + \epsilon a_k^2 \right)$:
#
# $$a_k = \frac{\frac{1}{|\omega|} \sum_{i \in \omega_k} I_i p_i - \mu_k \bar{p}_k}{\sigma_k^2 + \epsilon}, \qquad b_k = \bar{p}_k - a_k \mu_k,$$
#
# with $\mu_k$, $\sigma_k^2$ the mean and variance of $I$ in the window and $\bar{p}_k$ the mean of
# $p$; each pixel then averages the $a_k$ and $b_k$ of the windows that contain it. So
#
# * **$r$** is how far an image edge can reach to pull the mask (the paper: $r = 9$ at
#   $320 \times 320$);
# * **$\epsilon$** is how strong an edge must be to count: where $\sigma_k^2 \ll \epsilon$ the
#   window is smoothed flat ($a_k \to 0$), where $\sigma_k^2 \gg \epsilon$ the mask follows the
#   guide ($a_k \to \text{cov}(I, p) / \sigma_k^2$). The paper uses $\epsilon = 10^{-3}$ on a
#   $[0, 1]$ gray guide (the mean of the image's R, G, B).
#
# Below: one image and a coarse mask, what the paper's setting does to it, IoU over a grid of
# (r, eps), and sliders to try any setting. The explorer runs exactly what `paperlib refine`
# runs, so a setting found here carries over to the command. Defaults need nothing from outside
# (an offline synthetic image and its true mask spoilt to 1/16 resolution, like a ViT-S/16
# TokenCut mask); pass `image_path`, `mask_path` (and `truth_path`) for your own.
#
# ```bash
# paperlib notebook run gf_explorer --tag my_photo -p image_path photo.jpg -p mask_path photo_mask.png
# ```

# %% tags=["parameters"]
from typing import Optional

image_path: Optional[str] = None    # your image (any format PIL reads); None: the offline sample
mask_path: Optional[str] = None     # its predicted soft mask (grayscale PNG, 0-255 or 0-1)
truth_path: Optional[str] = None    # optional ground truth, for the IoU figures
sample_seed: int = 1                # the offline sample (paperlib.viz.gf_explorer.explorer_sample)
size: int = 320                     # its side in pixels: the paper filters at 320 x 320
degradation: str = "blocky16"       # how its mask is spoilt (paperlib.data.degrade.DEGRADATIONS)
radius: int = 9                     # guided filter radius at 320 x 320: paperlib.refine.settings.PAPER_GF.radius
eps: float = 1e-3                   # guided filter regulariser: paperlib.refine.settings.PAPER_GF.eps
border: str = "count"               # count (PAPER_GF.border, He's code), reflect (OpenCV), reflect_101 (kornia)
radii: list[int] = [1, 2, 4, 9, 16, 32]  # the grid's radii
eps_values: list[float] = [1e-6, 1e-4, 1e-3, 1e-2, 1e-1]  # the grid's epsilons
figures_dir: str = "figures"        # where the figures go
tag: str = "smoke"                  # smoke (the offline defaults): figures/gf_explorer_*.png; any other tag: ..._<tag>.png

# %%
from paperlib.notebook.session import start

run = start("gf_explorer", globals())
suffix = "" if tag == "smoke" else f"_{tag}"   # the offline illustrations are kept in git unsuffixed

# %%
from pathlib import Path

from IPython.display import display

from paperlib.viz.gf_explorer import GFExplorer, explorer_sample
from paperlib.images import read_image, read_mask, resize_mask

# %% [markdown]
# ## The image and its mask

# %%
run.use_image(image_path)
if image_path is None:
    explorer = explorer_sample(sample_seed, size=size, degradation=degradation)
    explorer = GFExplorer(explorer.image, explorer.mask, explorer.truth, border=border)
else:
    image = read_image(image_path)
    mask = resize_mask(read_mask(mask_path), image.shape[:2])
    truth = None if truth_path is None else resize_mask(read_mask(truth_path), image.shape[:2], mode="nearest")
    explorer = GFExplorer(image, mask, truth, border=border)
fig = explorer.figure(radius, eps)
run.save_figure(fig, Path(figures_dir) / f"gf_explorer_paper_setting{suffix}.png", dpi=110);

# %% [markdown]
# **Reading the figure.** The last panel, $q - p$, is what the filter did: red where it added to
# the mask, blue where it removed, gray where nothing changed. On a blocky mask the changes hug
# the staircase: the corners of blocks that stick out of the object are cut back, the notches
# are filled, and a thin band follows the image's edges. Far from an edge the mask is unchanged
# (a constant mask stays constant). When a ground truth is given, the titles give the IoU before
# and after; the grid below shows whether the change holds for other settings.

# %% [markdown]
# ## IoU over (r, eps)
# Blue: the filter helps this mask; red: it hurts. Small radii barely move a blocky mask; large
# ones reach past the object's own edges; eps matters once it nears the guide's local variance.

# %%
if explorer.truth is not None:
    grid = explorer.grid(radii=radii, eps_values=eps_values)
    fig = explorer.grid_figure(grid)
    run.save_figure(fig, Path(figures_dir) / f"gf_explorer_grid{suffix}.png", dpi=110)
    display(grid.round(4))
    best_r, best_eps = grid.stack().idxmax()
    print(f"highest IoU at r = {best_r}, eps = {best_eps:g}")

# %% [markdown]
# **Reading the grid.** Read it by rows first: the radius matters more than $\epsilon$ for a
# blocky mask. A radius well below the mask's error (with the default `blocky16`, blocks of
# 16 px) cannot reach the true edge and changes little; a radius around the block size moves
# the edges onto the image's; a much larger radius puts more and more of the background's own
# edges inside each window, they pull the mask too, and the gain falls or turns negative. $\epsilon$ matters once it approaches the guide's local variance:
# the largest values smooth the mask instead of snapping it. The best cell of one image is not a
# recommendation -- the paper fixes $r = 9$, $\epsilon = 10^{-3}$ for every dataset, and the
# table notebooks score that setting on whole test sets.

# %% [markdown]
# ## Try it
# The sliders redraw the panels above for any r and eps (in JupyterLab; a static run shows the
# starting setting).

# %%
explorer.widget(radius=radius, eps=eps)
