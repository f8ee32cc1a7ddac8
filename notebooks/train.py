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
# # Training the Sempart head with the crop-zoom trick
#
# **Claim (paper Sec. 4-5):** a Sempart-style head trained without labels on frozen DINO
# ViT-S/8 keys -- normalized-cut loss on the coarse map, graph total variation on both maps, a
# super-resolution consistency between them -- improves when a teacher pass on a zoomed crop,
# guided-filtered and detached, supervises the matching region of the student's fine map
# (L_eq, weight 0.01) and the crop's own normalized cut is added (weight 0.01).
#
# This notebook trains one run and shows its loss terms and its masks. Every field of
# `paperlib.train_config.TrainConfig` is a parameter below, so papermill can run any preset:
#
# ```bash
# papermill notebooks/train.ipynb out.ipynb -p preset paper -p data_root ~/datasets \
#     -p weights ~/weights/dino_deitsmall8_pretrain.pth -p out_dir runs/paper
# ```
#
# The defaults are the offline smoke run (filterbank backbone, synthetic data written here).

# %% tags=["parameters"]
preset = "smoke"            # 'paper', 'official' or 'smoke' (paperlib.train_config.PRESETS)
out_dir = "results/notebooks/train_run"
synth_if_missing = True     # write the synthetic DUTS-TR / DUTS-TE split when data_root lacks it
# Every TrainConfig field; None keeps the preset's value.
data_root = "results/notebooks/data"
dataset = None
backbone = None
weights = None
image_size = None
resize_short = None
batch_size = None
epochs = None
max_steps = None
lr = None
betas = None
weight_decay = None
w_ncut = None
w_gtv_fine = None
w_gtv_coarse = None
w_sr = None
w_ncut_crop = None
w_eq = None
crop = None
teacher_bn_mode = None
seed = None
num_workers = None
val_fraction = None
select_on = None
test_dataset = None
checkpoint_every = None
log_every = None
device = None
amp = None
channels_last = None
compile = None

# %%
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from paperlib.data import open_dataset
from paperlib.methods import build_method
from paperlib.segment import evaluate_dataset, overlay
from paperlib.synth import synthesize_missing
from paperlib.train import train
from paperlib.train_config import TrainConfig, config_from
from paperlib.images import save_figure

# %% [markdown]
# ## The run's configuration

# %%
fields = list(TrainConfig.__dataclass_fields__)
overrides = {name: value for name, value in globals().items() if name in fields and value is not None}
if synth_if_missing:
    synthesize_missing(data_root)
config = config_from(preset, **overrides)
pd.Series(config.to_dict(), name=preset).to_frame()

# %% [markdown]
# ## Training
# `init.pt` keeps the untrained head; `log.csv` every loss term of every step.

# %%
shutil.rmtree(out_dir, ignore_errors=True)
result = train(config, out_dir)
log = pd.read_csv(Path(out_dir) / "log.csv")
log.tail()

# %%
terms = ["ncut", "gtv_fine", "gtv_coarse", "sr", "ncut_crop", "eq", "total"]
axes = log.plot(x="step", y=terms, subplots=True, layout=(2, 4), figsize=(14, 5), legend=False,
                title=terms, sharex=True)
plt.tight_layout()
Path("figures").mkdir(exist_ok=True)
save_figure(plt.gcf(), f"figures/train_{preset}_losses.png", dpi=110)

# %% [markdown]
# ## The untrained and trained heads on the test split

# %%
test_set = open_dataset(config.test_dataset, config.data_root)
scores = {name: evaluate_dataset(test_set, build_method("sempart", checkpoint=str(Path(out_dir) / f"{name}.pt")),
                                 refines=("none", "gf"), progress=False)
          for name in ("init", "last")}
pd.DataFrame({f"{name} + {r}": res.scores.as_dict() for name, by_refine in scores.items()
              for r, res in by_refine.items()}).loc[["acc", "iou", "max_fbeta", "mae", "n_images"]].T

# %%
method = build_method("sempart", checkpoint=str(Path(out_dir) / "last.pt"))
samples = [test_set[i] for i in range(min(4, len(test_set)))]
fig, axes = plt.subplots(len(samples), 1, figsize=(8, 3 * len(samples)))
for ax, sample in zip(axes, samples):
    ax.imshow(overlay(sample.image, method.predict(sample.image).mask))
    ax.set_title(sample.stem)
    ax.axis("off")
plt.tight_layout()
