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
# The filter (He et al.) fits, in every (2r + 1)^2 window, the mask p as a linear function of
# the guide I: q = a I + b, with a = cov(I, p) / (var(I) + eps) and b = mean(p) - a mean(I),
# then averages the a and b of the windows covering each pixel. So
#
# * **r** is how far an image edge can reach to pull the mask (the paper: r = 9 at 320 x 320);
# * **eps** is how strong an edge must be to count: where var(I) << eps the window is smoothed
#   flat (a -> 0), where var(I) >> eps the mask follows the guide (a -> cov / var). The paper
#   uses eps = 1e-3 on a [0, 1] gray guide (the image's channel mean).
#
# Below: one image and a coarse mask, what the paper's setting does to it, IoU over a grid of
# (r, eps), and sliders to try any setting. The explorer runs exactly what `paperlib refine`
# runs, so a setting found here carries over to the command. Defaults need nothing from outside
# (an offline synthetic image and its true mask spoilt to 1/16 resolution, like a ViT-S/16
# TokenCut mask); pass `image_path`, `mask_path` (and `truth_path`) for your own.
#
# ```bash
# papermill notebooks/gf_explorer.ipynb out.ipynb -p image_path photo.jpg -p mask_path photo_mask.png
# ```

# %% tags=["parameters"]
image_path = None           # your image (any format PIL reads); None: the offline sample
mask_path = None            # its predicted soft mask (grayscale PNG, 0-255 or 0-1)
truth_path = None           # optional ground truth, for the IoU figures
sample_seed = 1             # the offline sample (paperlib.explore.explorer_sample)
size = 320                  # its side in pixels: the paper filters at 320 x 320
degradation = "blocky16"    # how its mask is spoilt (paperlib.gf_sweep.DEGRADATIONS)
radius = 9                  # the paper's r at 320 x 320
eps = 1e-3                  # the paper's epsilon
border = "count"            # 'count' (He's code), 'reflect' (OpenCV), 'reflect_101' (kornia)
radii = [1, 2, 4, 9, 16, 32]
eps_values = [1e-6, 1e-4, 1e-3, 1e-2, 1e-1]
figures_dir = "figures"

# %%
from pathlib import Path

from IPython.display import display

from paperlib.explore import GFExplorer, explorer_sample
from paperlib.images import read_image, read_mask, resize_mask, save_figure

# %% [markdown]
# ## The image and its mask

# %%
if image_path is None:
    explorer = explorer_sample(sample_seed, size=size, degradation=degradation)
    explorer = GFExplorer(explorer.image, explorer.mask, explorer.truth, border=border)
else:
    image = read_image(image_path)
    mask = resize_mask(read_mask(mask_path), image.shape[:2])
    truth = None if truth_path is None else resize_mask(read_mask(truth_path), image.shape[:2], mode="nearest")
    explorer = GFExplorer(image, mask, truth, border=border)
Path(figures_dir).mkdir(parents=True, exist_ok=True)
fig = explorer.figure(radius, eps)
save_figure(fig, Path(figures_dir) / "gf_explorer_paper_setting.png", dpi=110)

# %% [markdown]
# ## IoU over (r, eps)
# Blue: the filter helps this mask; red: it hurts. Small radii barely move a blocky mask; large
# ones reach past the object's own edges; eps matters once it nears the guide's local variance.

# %%
if explorer.truth is not None:
    grid = explorer.grid(radii=radii, eps_values=eps_values)
    fig = explorer.grid_figure(grid)
    save_figure(fig, Path(figures_dir) / "gf_explorer_grid.png", dpi=110)
    display(grid.round(4))

# %% [markdown]
# ## Try it
# The sliders redraw the panels above for any r and eps (in JupyterLab; a static run shows the
# starting setting).

# %%
explorer.widget(radius=radius, eps=eps)
