"""The paper's experiments as functions the table notebooks call (Tables 1-4).

Tables 1-4 compare heads trained without and with trick 2 (the crop-zoom loss), each scored
without and with trick 1 (the guided filter at evaluation). So an experiment is: one training
run per (backbone, crop) -- :func:`ablation_runs`, which resumes or reuses what is already on
disk -- then every run scored once per dataset with all refinements from one prediction --
:func:`saliency_ablation` (Acc, IoU, max F-beta) and :func:`corloc_ablation` (CorLoc) -- and
the rows of each table picked from those scores -- :func:`table1_rows`, :func:`table3_frame`,
:func:`table2_rows`, :func:`table4_frame`.

Our reading where the paper is terse: "Sempart*" is the head trained without the crop and
scored raw; "Ours" is trained with the crop and scored after the guided filter (Table 3's
last row per backbone equals Table 1's "Ours"); "+ BF" replaces the guided filter by the
bilateral solver on the same head. Training without the crop (``crop='none'``) drops both of
trick 2's terms, L_eq and the Ncut loss on the crop: Sempart* has no crop-zoom at all.

Parameters that arrive from papermill are checked for their kind: ``-p`` passes a JSON list
or dict as a string, which would otherwise be read letter by letter (use ``-y``).

Public API: :data:`CROPS`, :func:`run_dir`, :func:`ablation_runs`, :func:`resolve_runs`, :func:`main_backbone`,
:func:`saliency_ablation`,
:func:`corloc_ablation`, :func:`table1_rows`, :func:`table2_rows`, :func:`table3_frame`,
:func:`table4_frame`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from ..checks import check_choice, check_mapping, check_names, require
from ..data.boxes import open_corloc_dataset
from ..data.saliency import open_dataset
from ..eval.corloc import CorLoc
from ..eval.datasets import evaluate_dataset
from ..images import read_image
from ..methods.refined import refined_box
from ..methods.registry import build_method
from ..model.sempart import read_checkpoint
from ..train.config import config_from
from ..train.loop import train

# Trick 2 off ('none': Sempart*) and on ('paper': the 80 px crop zoomed x4).
CROPS = ("none", "paper")


def run_dir(out_dir: str | Path, backbone: str, crop: str) -> Path:
    """The run folder of one (backbone, crop) under ``out_dir``: ``<backbone>-crop_<crop>``."""
    return Path(out_dir) / f"{backbone}-crop_{crop}"


def ablation_runs(data_root: str | Path, out_dir: str | Path, *, backbones: Sequence[str] = ("dino_vits8",),
                  crops: Sequence[str] = CROPS, preset: str = "paper", weights: Mapping[str, str] | None = None,
                  progress: bool = True, **overrides) -> dict[tuple[str, str], Path]:
    """Train one head per (backbone, crop), or continue / reuse the run already in ``out_dir``.

    A run folder holding ``last.pt`` is resumed (:func:`paperlib.train.loop.train` with
    ``resume=True``): a finished run returns at once, an interrupted one continues to the same
    weights, and a run whose config differs is refused (delete the folder to retrain).

    Args:
        data_root: folder holding DUTS-TR/.
        out_dir: parent of the run folders (:func:`run_dir`).
        backbones: backbone registry names (paper Table 3: dino_vits8, dino_vits16, ibot_vits16).
        crops: from :data:`CROPS`.
        preset: the TrainConfig preset ('paper', 'official' or 'smoke').
        weights: backbone name -> its official checkpoint file (None: $PAPERLIB_WEIGHTS_DIR / hub).
        progress: progress bars.
        **overrides: other TrainConfig fields, the same for every run (e.g. max_steps).

    Returns:
        (backbone, crop) -> the run's ``last.pt``.
    """
    backbones, crops = check_names("backbones", backbones), check_names("crops", crops)
    weights = check_mapping("weights", weights)
    require(len(backbones) > 0 and len(crops) > 0, "ablation_runs needs at least one backbone and one crop")
    for crop in crops:
        check_choice("crop", crop, CROPS)
    out = {}
    for backbone in backbones:
        for crop in crops:
            config = config_from(preset, data_root=str(data_root), backbone=backbone, crop=crop,
                                 weights=weights.get(backbone), **overrides)
            folder = run_dir(out_dir, backbone, crop)
            result = train(config, folder, resume=(folder / "last.pt").is_file(), progress=progress)
            out[(backbone, crop)] = result.last_checkpoint
    return out


def resolve_runs(checkpoints: Mapping[str, str] | None, data_root: str | Path, out_dir: str | Path,
                 **kwargs) -> dict[tuple[str, str], Path]:
    """The heads a table scores: the given ones, or :func:`ablation_runs` trains them.

    Args:
        checkpoints: {"<backbone>/<crop>": path} (keys a papermill parameter can hold), or None.
        data_root, out_dir, **kwargs: for :func:`ablation_runs` when ``checkpoints`` is None.

    Returns:
        (backbone, crop) -> checkpoint path.
    """
    if checkpoints is None:
        return ablation_runs(data_root, out_dir, **kwargs)
    runs = {}
    for key, path in check_mapping("checkpoints", checkpoints).items():
        parts = str(key).split("/")
        require(len(parts) == 2 and parts[1] in CROPS,
                f"checkpoints keys are '<backbone>/<crop>' with crop in {CROPS}, got {key!r}")
        path = Path(path).expanduser()
        require(path.is_file(), f"checkpoint {path} (for {key}) does not exist")
        config = read_checkpoint(path)["config"]
        require(config.get("backbone") == parts[0],
                f"checkpoint {path} was trained on {config.get('backbone')!r}, not on {parts[0]!r} as {key!r} says")
        if "crop" in config:
            require(config["crop"] == parts[1] or (parts[1] == "paper" and config["crop"] == "official"),
                    f"checkpoint {path} was trained with crop={config['crop']!r}, not {parts[1]!r} as {key!r} says")
        runs[(parts[0], parts[1])] = path
    return runs


def main_backbone(runs: Mapping[tuple[str, str], object]) -> str:
    """The backbone of Tables 1, 2 and 4: DINO ViT-S/8 when among the runs, else the first run's."""
    backbones = [backbone for backbone, _ in runs]
    require(len(backbones) > 0, "no runs")
    return "dino_vits8" if "dino_vits8" in backbones else backbones[0]


def _sempart(checkpoint, weights, device, protocol):
    return build_method("sempart", checkpoint=str(checkpoint), weights=weights, device=device, protocol=protocol)


def saliency_ablation(checkpoints: Mapping[tuple[str, str], str | Path], datasets: Sequence[str],
                      data_root: str | Path, *, weights: Mapping[str, str] | None = None,
                      refines: Sequence[str] = ("none", "gf", "bf"), protocol: str = "default",
                      device: str | None = None, limit: int | None = None, progress: bool = True) -> dict:
    """Score every run on every saliency dataset, each refinement from one prediction.

    Args:
        checkpoints: (backbone, crop) -> trained head (from :func:`ablation_runs`).
        datasets: saliency dataset names ('dut-omron', 'duts-te', 'ecssd').
        data_root: folder holding them.
        weights: backbone name -> official checkpoint file.
        refines: refinements scored ('none', 'gf', 'bf').
        protocol: the Sempart evaluation protocol ('default' or 'official').
        device: where to run (None: CUDA when available).
        limit: score only the first ``limit`` images of each dataset (a quick look).
        progress: progress bars.

    Returns:
        {(backbone, crop, refine): {dataset: SaliencyScores}}.
    """
    datasets, weights = check_names("datasets", datasets), check_mapping("weights", weights)
    results: dict = {}
    for (backbone, crop), checkpoint in checkpoints.items():
        method = _sempart(checkpoint, weights.get(backbone), device, protocol)
        for name in datasets:
            by_refine = evaluate_dataset(open_dataset(name, data_root), method, refines=refines,
                                         limit=limit, progress=progress)
            for refine, result in by_refine.items():
                results.setdefault((backbone, crop, refine), {})[name] = result.scores
    return results


def corloc_ablation(checkpoints: Mapping[tuple[str, str], str | Path], datasets: Sequence[str],
                    data_root: str | Path, *, weights: Mapping[str, str] | None = None,
                    refines: Sequence[str] = ("none", "gf"), protocol: str = "default",
                    device: str | None = None, limit: int | None = None, progress: bool = True) -> dict:
    """CorLoc of every run on every detection dataset, raw and refined (:func:`paperlib.methods.refined.refined_box`).

    Each batch is predicted once; every refinement boxes its own refined masks.

    Returns:
        {(backbone, crop, refine): {dataset: {'corloc': percent (0-100, as the paper prints it;
        the ``corloc`` command's JSON holds the fraction), 'n_images': n}}}.
    """
    from tqdm.auto import tqdm

    datasets, weights = check_names("datasets", datasets), check_mapping("weights", weights)
    results: dict = {}
    for (backbone, crop), checkpoint in checkpoints.items():
        method = _sempart(checkpoint, weights.get(backbone), device, protocol)
        step = method.batch_size
        for name in datasets:
            dataset = open_corloc_dataset(name, data_root)
            n = len(dataset) if limit is None else min(limit, len(dataset))
            scores = {r: CorLoc() for r in refines}
            bar = tqdm(total=n, desc=f"corloc {backbone}/{crop} {name}", disable=not progress, unit="img")
            for start in range(0, n, step):
                items = [dataset[i] for i in range(start, min(n, start + step))]
                images = [read_image(item.image_path) for item in items]
                for image, item, pred in zip(images, items, method.predict_batch(images, image_ids=[item.image_id for item in items])):
                    for r in refines:
                        scores[r].update(refined_box(image, pred, refine=r), item.boxes)
                bar.update(len(items))
            bar.close()
            for r in refines:
                results.setdefault((backbone, crop, r), {})[name] = {"corloc": 100.0 * scores[r].value,
                                                                     "n_images": scores[r].n_images}
    return results


def table1_rows(results: Mapping, backbone: str = "dino_vits8") -> dict:
    """Table 1's reproducible rows from :func:`saliency_ablation`'s results (missing ones left out)."""
    wanted = {"Sempart*": ("none", "none"), "Ours": ("paper", "gf"),
              "Sempart* + BF": ("none", "bf"), "Ours + BF": ("paper", "bf")}
    return {row: results[(backbone, crop, refine)] for row, (crop, refine) in wanted.items()
            if (backbone, crop, refine) in results}


def table2_rows(results: Mapping, backbone: str = "dino_vits8") -> dict:
    """Table 2's reproducible rows (Sempart*, Ours) from :func:`corloc_ablation`'s results."""
    wanted = {"Sempart*": ("none", "none"), "Ours": ("paper", "gf")}
    return {row: results[(backbone, crop, refine)] for row, (crop, refine) in wanted.items()
            if (backbone, crop, refine) in results}


def _ablation_frame(results: Mapping, metric: str, backbone_level: bool) -> pd.DataFrame:
    rows = {}
    for (backbone, crop, refine), per_dataset in results.items():
        if refine not in ("none", "gf"):
            continue
        key = (backbone, crop != "none", refine == "gf") if backbone_level else (crop != "none", refine == "gf")
        rows[key] = {(d, metric): float(s[metric] if isinstance(s, Mapping) else getattr(s, metric))
                     for d, s in per_dataset.items()}
    require(len(rows) > 0, "no raw or guided-filtered results to tabulate")
    names = ["backbone", "crop", "gf"] if backbone_level else ["crop", "gf"]
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index = pd.MultiIndex.from_tuples(frame.index, names=names)
    frame.columns = pd.MultiIndex.from_tuples(frame.columns, names=["dataset", "metric"])
    # The paper's row order: backbones as given (ViT-S/8, ViT-S/16, iBOT in the paper), then
    # (crop, gf) = (F, F), (T, F), (F, T), (T, T).
    first_seen = {key[:-2]: i for i, key in reversed(list(enumerate(frame.index)))}
    order = sorted(frame.index, key=lambda k: (first_seen[k[:-2]], k[-1], k[-2]))
    return frame.loc[order]


def table3_frame(results: Mapping) -> pd.DataFrame:
    """Table 3 (IoU by backbone, crop, GF) from :func:`saliency_ablation`'s results."""
    return _ablation_frame(results, "iou", backbone_level=True)


def table4_frame(results: Mapping, backbone: str = "dino_vits8") -> pd.DataFrame:
    """Table 4 (CorLoc by crop, GF; one backbone) from :func:`corloc_ablation`'s results."""
    return _ablation_frame({k: v for k, v in results.items() if k[0] == backbone}, "corloc", backbone_level=False)
