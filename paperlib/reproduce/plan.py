"""The whole paper as a list of steps: which data, which weights, which notebook runs, in order.

:func:`paperlib.reproduce.run.run_paper` carries the plan out; :mod:`paperlib.reproduce.cost` prices it.
A plan is data, so ``paperlib paper --dry-run`` can print every command it stands for, and the
dress rehearsal runs the very same plan with smaller numbers (steps, images, input size).

Public API
----------
``PaperPlan``                  the settings of one run of the paper (data, weights, tag, shrinking).
``SALIENCY``, ``CORLOC``, ``TRAIN``, ``TABLE3_BACKBONES``, ``TOKENCUT_BACKBONE``  what the paper uses.
``weights_files(plan)``        backbone -> its official weights file under ``plan.weights_dir``.
``notebook_steps(plan)``       the notebook runs, in order, as ``NotebookStep``.
``eval_steps(plan)``           the ``paperlib eval`` runs whose JSON files Figs. 6-8 plot.
``example_image(plan)``        the DUTS-TE image (and truth) the theory and explorer pages show.
``command_line(step, tag)``    a step as the ``paperlib notebook run`` line a reader would type.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from ..backbones.catalog import BACKBONES
from ..checks import InputError, require
from ..data.saliency import find_layout, pair_files

# The paper's datasets (Sec. 5): saliency test sets, CorLoc sets, the training set.
SALIENCY = ("dut-omron", "duts-te", "ecssd")
CORLOC = ("voc07", "voc12", "coco20k")
TRAIN = "duts-tr"
# Table 3's backbones; Tables 1, 2 and 4 use the first. Table 5's TokenCut uses ViT-S/16.
TABLE3_BACKBONES = ("dino_vits8", "dino_vits16", "ibot_vits16")
TOKENCUT_BACKBONE = "dino_vits16"


@dataclass(frozen=True)
class PaperPlan:
    """One run of the whole paper.

    ``max_steps``, ``limit`` and ``train_overrides`` exist for the dress rehearsal (and for a
    first look on a budget); the paper is ``None``, ``None``, ``{}``.
    """

    data_root: Path                   # the official datasets (downloaded here when missing)
    weights_dir: Path                 # the official backbone files, by their official names
    tag: str = "paper"                # names every output; 'paper' demands the full official sets
    archives: Path | None = None      # a folder of archives fetched by hand (official names)
    mirror: str | None = None         # a base URL serving the official archive names
    sha256: Mapping[str, str] = field(default_factory=dict)   # archive file name -> expected SHA-256 (overrides)
    move_masks: Path | None = None    # MOVE's saved masks, one folder per test set (Table 5's MOVE rows)
    backbones: tuple[str, ...] = TABLE3_BACKBONES
    max_steps: int | None = None      # None: the preset's 30 epochs
    limit: int | None = None          # images scored per dataset (None: all)
    train_overrides: Mapping[str, Any] = field(default_factory=dict)   # other TrainConfig fields

    def __post_init__(self) -> None:
        require(len(self.backbones) > 0, "the paper run needs at least one backbone")
        require(self.backbones[0] == "dino_vits8", "Tables 1, 2 and 4 use dino_vits8: it comes first in backbones")

    @property
    def ablation_dir(self) -> str:
        return f"results/notebooks/{self.tag}/ablation"

    @property
    def eval_dir(self) -> str:
        return f"results/notebooks/{self.tag}/evals"

    def checkpoint(self, backbone: str, crop: str) -> str:
        """The ``last.pt`` of one ablation run (:func:`paperlib.paper.experiments.run_dir`)."""
        return f"{self.ablation_dir}/{backbone}-crop_{crop}/last.pt"


def weights_files(plan: PaperPlan) -> dict[str, Path]:
    """Every backbone the plan needs -> its official file in ``plan.weights_dir``."""
    names = dict.fromkeys(plan.backbones + (TOKENCUT_BACKBONE,))
    return {name: Path(plan.weights_dir).expanduser() / BACKBONES[name].weights_file for name in names}


@dataclass(frozen=True)
class NotebookStep:
    """One ``paperlib notebook run``."""

    notebook: str
    parameters: dict[str, Any]
    why: str


def example_image(plan: PaperPlan) -> tuple[Path, Path] | None:
    """The first DUTS-TE image (sorted by name) and its ground truth: what the explorers and the
    theory show in a paper run (None while DUTS-TE is not under ``plan.data_root``)."""
    try:
        pairs = pair_files(find_layout("duts-te", Path(plan.data_root).expanduser())).pairs
    except InputError:
        return None
    return (pairs[0][1], pairs[0][2]) if pairs else None


def notebook_steps(plan: PaperPlan) -> list[NotebookStep]:
    """The notebook runs of the paper, in the order they depend on each other."""
    weights = {name: str(path) for name, path in weights_files(plan).items()}
    root = str(plan.data_root)
    runs = dict(preset="paper", max_steps=plan.max_steps, data_root=root, limit=plan.limit,
                train_overrides=dict(plan.train_overrides), out_dir=plan.ablation_dir)
    steps = [
        NotebookStep("tables_1_3_saliency", dict(runs, backbones=list(plan.backbones), datasets=list(SALIENCY),
                                                 weights={b: weights[b] for b in plan.backbones}),
                     f"Tables 1 and 3: trains {2 * len(plan.backbones)} heads (each backbone, crop-zoom off and on)"),
        NotebookStep("tables_2_4_corloc", dict(runs, backbones=["dino_vits8"], datasets=list(CORLOC),
                                               weights={"dino_vits8": weights["dino_vits8"]}),
                     "Tables 2 and 4: CorLoc of the dino_vits8 heads"),
        NotebookStep("table5_gf_vs_bf", dict(data_root=root, datasets=list(SALIENCY), backbone=TOKENCUT_BACKBONE,
                                             weights=weights[TOKENCUT_BACKBONE], max_images=plan.limit,
                                             move_masks=_move_masks(plan)),
                     "Table 5: TokenCut raw, + GF, + BF" + (" and MOVE's masks" if plan.move_masks else "")),
        NotebookStep("figs_6_8_iou_by_size", dict(results={d: {"Sempart*": f"{plan.eval_dir}/{d}_baseline.json",
                                                               "Ours": f"{plan.eval_dir}/{d}_ours.json"}
                                                           for d in SALIENCY}),
                     "Figs. 6-8: IoU per object size, Sempart* against Ours"),
        NotebookStep("train", dict(preset="paper", data_root=root, weights=weights["dino_vits8"],
                                   out_dir=f"{plan.ablation_dir}/dino_vits8-crop_paper",
                                   max_steps=plan.max_steps, **plan.train_overrides),
                     "the Ours head's training curves (its finished run, not retrained)"),
        NotebookStep("theory", dict(backbone=TOKENCUT_BACKBONE, weights=weights[TOKENCUT_BACKBONE], **_image(plan)),
                     "the background, on DINO keys and a DUTS-TE image"),
        NotebookStep("gf_explorer", dict(_image(plan, mask=True)),
                     "trick 1 by hand, on the Sempart* mask of a DUTS-TE image"),
        NotebookStep("crop_zoom_explorer", dict(checkpoint=plan.checkpoint("dino_vits8", "paper"),
                                                weights=weights["dino_vits8"], image_path=_image(plan)["image_path"]),
                     "trick 2 by hand, on the trained Ours head and a DUTS-TE image"),
    ]
    return steps


def _image(plan: PaperPlan, *, mask: bool = False) -> dict[str, str | None]:
    """Parameters naming the example image, its truth and (``mask``) the Sempart* mask of it."""
    example = example_image(plan)
    if example is None:
        return {"image_path": None, "truth_path": None} | ({"mask_path": None} if mask else {})
    image, truth = example
    out = {"image_path": str(image), "truth_path": str(truth)}
    if mask:
        out["mask_path"] = f"{plan.eval_dir}/masks_duts-te_baseline/{image.stem}.png"
    return out


def _move_masks(plan: PaperPlan) -> dict[str, str]:
    if plan.move_masks is None:
        return {}
    folders = {d: Path(plan.move_masks).expanduser() / d for d in SALIENCY}
    return {d: str(p) for d, p in folders.items() if p.is_dir()}


@dataclass(frozen=True)
class EvalStep:
    """One ``paperlib eval`` whose JSON file Figs. 6-8 plot."""

    dataset: str
    label: str        # 'baseline' (Sempart*, raw) or 'ours' (crop-zoom head + GF)
    argv: tuple[str, ...]
    json: str


def eval_steps(plan: PaperPlan) -> list[EvalStep]:
    """Sempart* (crop-zoom off, raw) and Ours (crop-zoom on, + GF) on each saliency test set."""
    weights = str(weights_files(plan)["dino_vits8"])
    out = []
    for dataset in SALIENCY:
        for label, crop, refine in (("baseline", "none", "none"), ("ours", "paper", "gf")):
            json_path = f"{plan.eval_dir}/{dataset}_{label}.json"
            argv = ["eval", "--method", "sempart", "--checkpoint", plan.checkpoint("dino_vits8", crop),
                    "--dataset", dataset, "--root", str(plan.data_root), "--weights", weights,
                    "--refine", refine, "--json", json_path]
            if (dataset, label) == ("duts-te", "baseline"):     # the gf_explorer page shows one of them
                argv += ["--save-masks", f"{plan.eval_dir}/masks_duts-te_baseline"]
            if plan.limit is not None:
                argv += ["--limit", str(plan.limit)]
            out.append(EvalStep(dataset, label, tuple(argv), json_path))
    return out


def command_line(step: NotebookStep, tag: str) -> str:
    """The step as a reader types it: ``paperlib notebook run NAME --tag TAG -p ... -y '...'``."""
    words = ["paperlib", "notebook", "run", step.notebook, "--tag", tag]
    for name, value in step.parameters.items():
        if isinstance(value, (list, dict)):
            flow = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
            words += ["-y", f"{name}: {flow}"]
        else:
            words += ["-p", name, str(value)]
    return shlex.join(words)
