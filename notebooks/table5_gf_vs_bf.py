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
# # Table 5: the guided filter against the bilateral solver on other methods' masks
#
# **Claim (paper Sec. 5.4, Table 5):** trick 1 is not tied to Sempart. Guided-filtering the
# masks of TokenCut (training-free, DINO ViT-S/16) and of MOVE improves them on DUT-OMRON,
# DUTS-TE and ECSSD, while the bilateral solver (TokenCut's own post-processing) is not
# consistent. The text says "consistent improvement in all metrics with guided filtering"; the
# paper's own table is less uniform (MOVE + GF loses max F-beta, and TokenCut + GF keeps
# DUT-OMRON's Acc): read the cells below, not the sentence.
#
# Each image is predicted once and scored three ways -- raw, + GF ($r = 9$, $\epsilon = 10^{-3}$,
# the gray guide), + BF (TokenCut's solver settings) -- so the rows differ only by the refinement.
# MOVE has no public inference code here: pass its saved masks (`move_masks`) and they are
# scored the same way (`paperlib eval --method masks`).
#
# The full run (GPU machine, the official test sets, TokenCut's backbone; `paperlib notebook
# params table5_gf_vs_bf` lists every parameter):
#
# ```bash
# paperlib notebook run table5_gf_vs_bf --tag paper -p data_root ~/datasets \
#     -p backbone dino_vits16 -p weights ~/weights/dino_deitsmall16_pretrain.pth \
#     -y 'datasets: [dut-omron, duts-te, ecssd]' -p max_images None \
#     -y 'move_masks: {duts-te: move/duts-te, ecssd: move/ecssd, dut-omron: move/dut-omron}'
# ```
#
# (lists and mappings go with `-y`, YAML; `-p` would pass them as strings, which the parameter
# check refuses.) The tag `paper` is refused unless every dataset is the full official set and
# the backbone is pretrained.
#
# The defaults need nothing from outside: the offline `filterbank16` backbone on the synthetic
# DUTS-TE (`data_root synthetic`, written on first use). Those are smoke numbers: they show the
# pipeline, not the paper. `-p data_root DIR --tag sample` scores a real sample (e.g. the one
# `paperlib data sample` builds).

# %% tags=["parameters"]
from typing import Optional

data_root: str = "synthetic"        # folder with DUTS-TE/, DUT-OMRON/, ECSSD/ (official layouts), or "synthetic"
datasets: list[str] = ["duts-te"]   # the paper: [dut-omron, duts-te, ecssd]
backbone: str = "filterbank16"      # the paper (TokenCut's): dino_vits16
weights: Optional[str] = None       # the backbone's official .pth (None: $PAPERLIB_WEIGHTS_DIR, then timm's hub)
device: Optional[str] = None        # torch device (None: CUDA when present, else CPU)
max_images: Optional[int] = 24      # images per dataset (None: every image)
move_masks: dict[str, str] = {}     # {dataset: folder of MOVE's predicted masks}
radius: int = 9                     # guided filter radius: paperlib.refine.settings.PAPER_GF.radius
eps: float = 1e-3                   # guided filter regulariser: paperlib.refine.settings.PAPER_GF.eps
tag: str = "smoke"                  # names the outputs: figures/table5_<tag>.*, results/notebooks/<tag>/

# %%
from paperlib.notebook.session import start

run = start("table5_gf_vs_bf", globals())

# %%
from pathlib import Path

from IPython.display import display

from paperlib.data.saliency import open_dataset
from paperlib.methods.registry import build_method
from paperlib.paper.reported import paper_table
from paperlib.refine.masks import RefineSettings
from paperlib.eval.datasets import evaluate_dataset
from paperlib.paper.tables import beside_paper, describe_change, gains, plot_gains, scores_table

# %%
root = run.data_root(data_root, splits=("te",))
run.use_backbone(backbone, weights, device)
tokencut = build_method("tokencut", backbone=backbone, weights=weights, device=device)
settings = RefineSettings(radius=radius, eps=eps)
rows = {"TokenCut": {}, "TokenCut + GF": {}, "TokenCut + BF": {}}
if move_masks:
    rows.update({"MOVE": {}, "MOVE + GF": {}, "MOVE + BF": {}})
for name in datasets:
    dataset = run.use_dataset(open_dataset(name, root), used=max_images)
    by_refine = evaluate_dataset(dataset, tokencut, refines=("none", "gf", "bf"), settings=settings,
                                 limit=max_images)
    for refine, label in (("none", "TokenCut"), ("gf", "TokenCut + GF"), ("bf", "TokenCut + BF")):
        rows[label][name] = by_refine[refine].scores
    if name in move_masks:
        move = build_method("masks", masks=move_masks[name])
        by_refine = evaluate_dataset(dataset, move, refines=("none", "gf", "bf"), settings=settings,
                                     limit=max_images)
        for refine, label in (("none", "MOVE"), ("gf", "MOVE + GF"), ("bf", "MOVE + BF")):
            rows[label][name] = by_refine[refine].scores

# %% [markdown]
# ## The table, ours above the paper's
# `n` images per dataset as scored here; the paper's rows are its Table 5 (all images).

# %%
ours = scores_table({k: v for k, v in rows.items() if v})
table = beside_paper(ours, 5)
run.write_table(table, Path("figures") / f"table5_{tag}.csv")
display(table.round(3))
for method in ("TokenCut", "MOVE"):
    for refined in (f"{method} + GF", f"{method} + BF"):
        if {method, refined} <= set(ours.index):
            print(describe_change(ours, method, refined))

# %% [markdown]
# **Reading the table.** Each method's three rows come from one prediction per image, so their
# differences are the refinements' alone. Read the `paper` cells first: for TokenCut both
# refinements raise every score (except the filter on DUT-OMRON's Acc, unchanged), and the
# bilateral solver more than the guided filter; for MOVE
# the filter gains a little IoU on DUTS-TE and ECSSD but loses max F-beta on DUT-OMRON, while
# the solver gains on DUT-OMRON and loses IoU on DUTS-TE and ECSSD. "Not consistent" is about
# the solver on MOVE. Then the printed lines for our rows. On the offline smoke run (the
# filter-bank backbone on synthetic composites) TokenCut often takes the background side or a
# textured patch (the README's demo shows it): no refinement repairs a mask that is on the wrong
# object, both only move its edges, so expect small changes of either sign. The guided filter
# can still raise max F-beta while IoU barely moves: it makes the mask soft near edges, which
# the 255 thresholds of max F-beta can use and the single 0.5 threshold of IoU cannot.

# %% [markdown]
# ## What each refinement adds
# The claim is about gains, which compare across datasets and backbones better than raw scores.

# %%
paper = paper_table(5)
figure_rows = [r for r in ("TokenCut + GF", "TokenCut + BF") if r in ours.index]
ours_gain = gains(ours, "TokenCut", figure_rows)
paper_gain = gains(paper.reindex(columns=ours.columns), "TokenCut", figure_rows)
display(ours_gain.round(3))
fig = plot_gains(ours_gain, paper_gain, title=run.title("Table 5: gain of each refinement over TokenCut"),
                 base="TokenCut")
run.save_figure(fig, Path("figures") / f"table5_{tag}.png");

# %% [markdown]
# **Reading the figure.** One panel per metric: for each refinement, our gain over raw TokenCut
# (solid) beside the paper's (hatched), with 0 marked. No hatched bar is below 0, and the
# bilateral solver's are above the guided filter's: on TokenCut the paper's own numbers favour
# the solver. A solid bar near 0 or below it, on a smoke run, says that a refinement cannot fix
# a mask that is wrong on a whole object, not that the paper's claim fails; only the run on the
# official sets with DINO ViT-S/16 compares with the hatched bars.
