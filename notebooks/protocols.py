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
# # Comparing numbers across papers: one set of predictions, every evaluation protocol
#
# **Claim (the field's, not the paper's):** numbers that do not reproduce are often the
# evaluation protocol, not the method. Saliency papers report Acc, IoU and max F-beta (eq. 9)
# under conventions that differ in small ways: how many thresholds, where the maximum is taken,
# beta^2, the precision of an empty prediction, how the anti-aliased ground truth is binarised,
# whether predictions are stretched, and which part of the image is scored. This notebook
# scores **one** set of predictions under paperlib's default protocol
# (docs/paper_and_code.md#saliency-metrics), under each convention changed one at a time, and
# under the protocols of other codebases (the paper's released code, TokenCut, SelfMask, FOUND,
# pysodmetrics), each read from its public repository and cited in
# `paperlib.eval.protocols.NAMED_PROTOCOLS`.
#
# Every image is predicted once (once per BatchNorm / polarity setting for a Sempart head) and
# every protocol scores that prediction, so the rows differ by the protocol alone.
#
# The full runs (GPU machine, the official DUTS-TE; `paperlib notebook params protocols` lists
# every parameter): TokenCut with its own backbone, a trained Sempart head (adds BatchNorm,
# polarity and the spread over batch orders), and a folder of another method's masks:
#
# ```bash
# paperlib notebook run protocols --tag paper -p data_root ~/datasets -p backbone dino_vits16 \
#     -p weights ~/weights/dino_deitsmall16_pretrain.pth -p max_images None
# paperlib notebook run protocols --tag paper -p data_root ~/datasets -p method sempart \
#     -p checkpoint results/notebooks/paper/ablation/dino_vits8-crop_paper/last.pt \
#     -p weights ~/weights/dino_deitsmall8_pretrain.pth -p max_images None
# paperlib notebook run protocols --tag paper -p data_root ~/datasets -p method masks \
#     -p masks move/duts-te -p max_images None
# ```
#
# The authors' released head works the same way (`-p checkpoint released.pth`, see the README).
# The defaults need nothing from outside: TokenCut on the `offline` backbone over the synthetic
# DUTS-TE -- smoke numbers. `-p data_root DIR --tag sample -p max_images None` scores a real
# sample (e.g. the one `paperlib data sample` builds).

# %% tags=["parameters"]
from typing import Optional

data_root: str = "synthetic"          # folder with DUTS-TE/ (official layout), or "synthetic"
dataset: str = "duts-te"              # any of duts-te, dut-omron, ecssd under data_root
method: str = "tokencut"              # tokencut, sempart (needs checkpoint), masks (needs masks), or centre
backbone: str = "offline"             # tokencut's backbone: offline (no weights) or dino_vits16 (TokenCut's)
weights: Optional[str] = None         # the backbone's official .pth (sempart: its checkpoint's backbone)
checkpoint: Optional[str] = None      # sempart: a trained or released head (.pt / .pth)
masks: Optional[str] = None           # masks: a folder of another method's predicted masks, one per image stem
refine: str = "none"                  # none, gf (trick 1) or bf, applied before scoring
protocols: Optional[list[str]] = None  # protocol names to score (None: every convention and named protocol)
orders: int = 5                       # sempart: shuffled batch orders per BatchNorm mode (0: skip)
device: Optional[str] = None          # torch device (None: CUDA when present, else CPU)
max_images: Optional[int] = 24        # images scored (None: every image)
tag: str = "smoke"                    # names the outputs: figures/protocols_<method>[_<refine>]_<tag>.*

# %%
from paperlib.notebook.session import start

run = start("protocols", globals())

# %%
from pathlib import Path

from IPython.display import display

from paperlib.data.saliency import open_dataset
from paperlib.eval.protocols import (
    batch_order_spread,
    plot_protocol_deltas,
    protocol_table,
    protocols_for,
    score_protocols,
    spread_summary,
)
from paperlib.methods.registry import build_method

# %% [markdown]
# ## The predictions and the protocols

# %%
root = run.data_root(data_root, splits=("te",))
data = run.use_dataset(open_dataset(dataset, root), used=max_images)
if method == "sempart":
    run.use_checkpoint(checkpoint)
    segmenter = build_method("sempart", checkpoint=checkpoint, weights=weights, device=device)
    run.use_backbone(segmenter.model.config["backbone"], weights, device)
    name = "sempart"
elif method == "masks":
    segmenter = build_method("masks", masks=masks)
    name = "masks"
elif method == "tokencut":
    run.use_backbone(backbone, weights, device)
    segmenter = build_method("tokencut", backbone=backbone, weights=weights, device=device)
    name = f"tokencut_{backbone}"
else:   # a weight-free method: centre, spectral, finegrained
    segmenter = build_method(method)
    name = method
name = name if refine == "none" else f"{name}_{refine}"
chosen = protocols_for(segmenter, protocols)
scores = score_protocols(data, segmenter, chosen, refine=refine, limit=max_images, progress=False)
print(f"{len(chosen)} protocols on {scores['default'].n_images} images: {', '.join(chosen)}")

# %% [markdown]
# ## The change each protocol makes
# `acc`, `iou`, `max_fbeta` under each protocol; `d_*` the change from paperlib's default (the
# first row); `kind`: one convention changed (`convention`) or another codebase's whole
# protocol (`named`); `source`: the repository and files the protocol's facts come from.

# %%
table = protocol_table(scores)
stem = f"protocols_{name}_{tag}"
run.write_table(table, Path("figures") / f"{stem}.csv")
display(table.drop(columns=["source"]).round(4))

# %% [markdown]
# **Reading the table.** Look down the `d_*` columns for the rows far from 0. Three kinds of
# change behave differently. The threshold count (255 vs 256) and the precision of an empty
# prediction only touch the ends of the F curve: 256 thresholds add one point where every pixel
# is foreground, and an empty prediction has recall 0, so its F is 0 whatever its precision --
# both rarely move max F-beta, and never Acc or IoU (an empty prediction's precision matters
# for the precision curve and for images with empty ground truth, of which the saliency sets
# have none). The F aggregation and beta^2 change max F-beta alone, and by the most: the mean
# of per-image maxima lets every image pick its own threshold, so it is never below the curve's
# maximum, and beta^2 = 0.09 weights precision more. The ground-truth rule, the stretch, the
# 8-bit rounding and the frame change the pixels that are scored, so they move all three
# metrics. The named rows combine several of these at once; compare a named row with the
# single conventions it contains to see which one carries it.

# %% [markdown]
# ## The same changes as bars

# %%
fig = plot_protocol_deltas(table, title=run.title("Change from paperlib's default protocol"))
run.save_figure(fig, Path("figures") / f"{stem}.png");

# %% [markdown]
# **Reading the figure.** One panel per metric, one bar per protocol, the line at 0 is
# paperlib's default. Blue bars change one convention, orange bars are another codebase's
# protocol. A bar's length is what a reader would be wrong by when comparing a number computed
# one way with a number computed the other way; put it beside the gaps between methods in a
# paper's table before reading a ranking.

# %% [markdown]
# ## Sempart: the order of the images
# With BatchNorm in train mode (the released evaluation) a prediction depends on the other
# images of its batch of 8, and the batch polarity rule decides per batch in either mode; so the
# score depends on the order the images arrive in. The head is scored under the default
# protocol for `orders` orders (order 0 is the sorted one) in each BatchNorm mode. (Only for
# `method sempart` with `orders` > 0.)

# %%
if method == "sempart" and orders > 0:
    spread = batch_order_spread(data, segmenter, orders=orders, limit=max_images, refine=refine,
                                progress=False)
    summary = spread_summary(spread)
    run.write_table(summary, Path("figures") / f"{stem}_batch_orders.csv", digits=4)
    display(spread.round(4))
    display(summary.round(4))
else:
    print("no batch orders: they matter for a Sempart head only (-p method sempart -p checkpoint ...)")

# %% [markdown]
# **Reading the spread.** The `std` and `range` columns are how much a number moves when only
# the order of the test images changes. In eval mode what moves it is the batch polarity rule
# alone (a batch whose mean mask is above 0.5 flips together); in train mode the masks
# themselves change with their batch-mates. A difference between two heads smaller than the
# train-mode range is not a difference the released evaluation can resolve.
