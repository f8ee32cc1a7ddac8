"""Figs. 6-8: mean IoU per ground-truth object size, a baseline beside an improved method.

Appendix B.1 bins the images of DUT-OMRON (Fig. 6), DUTS-TE (Fig. 7) and ECSSD (Fig. 8) by the
fraction of their pixels that the ground truth marks as salient, in 20 equal bins of [0, 1],
and plots the mean IoU in each bin for the baseline and for the model with both tricks.
:class:`paperlib.eval.metrics.SaliencyMetrics` already accumulates those bins
(:class:`~paperlib.eval.metrics.IouBySize`); this module reads them back from wherever they were
saved, lays them out as one tidy table and draws the figure.

    read_iou_by_size(source, entry=, dataset=)   IouBySize of one result, from memory or a file
    is_synthetic(source)                         does an eval file say it scored synthetic data?
    size_table(results, dataset=)                tidy table: name, bin, lo, hi, count, mean_iou
    plot_iou_by_size(table, dataset=, path=)     one dataset: grouped bars + image counts below
    plot_iou_by_size_datasets(table, path=)      several datasets side by side (Figs. 6-8)

A *source* is any of: an :class:`~paperlib.eval.metrics.IouBySize`; a
:class:`~paperlib.eval.metrics.SaliencyScores` (or a result holding one as ``.scores``, such as
:class:`paperlib.eval.datasets.DatasetEval`); the dict of :meth:`SaliencyScores.as_dict`; the path of
a JSON file written by ``paperlib eval --json`` (one score dict per refinement: ``entry`` picks
one, e.g. ``"gf"``) or by ``paperlib eval-masks --json`` (one summary, or one per ``--pred``
folder); or a pair ``(path, entry)``, the form a notebook parameter takes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..checks import InputError, require
from ..eval.metrics import IouBySize, SaliencyScores
from ..images import save_figure

# Display names of the datasets of Figs. 6-8 (and the training split), for titles.
DATASET_TITLES = {"dut-omron": "DUT-OMRON", "duts-te": "DUTS-TE", "ecssd": "ECSSD",
                  "duts-tr": "DUTS-TR"}
TABLE_COLUMNS = ("name", "bin", "lo", "hi", "count", "mean_iou")


# ----------------------------------------------------------------------------- reading

def _unpack(source, entry: str | None) -> tuple[object, str | None]:
    """A ``(path, entry)`` pair split into its parts; anything else passes through."""
    if isinstance(source, (tuple, list)):
        require(len(source) == 2 and isinstance(source[1], str),
                f"a (source, entry) pair must have two items, the second a string such as 'gf'; "
                f"got {source!r}")
        require(entry is None or entry == source[1],
                f"entry={entry!r} contradicts the pair's entry {source[1]!r}")
        return source[0], source[1]
    return source, entry


def _load_json(path: Path) -> dict:
    """The JSON object in ``path``, or an InputError naming the file."""
    require(path.is_file(), f"{path}: file not found")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: not a JSON file ({err})") from None
    require(isinstance(data, dict), f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _pick(entries: Mapping, entry: str | None, where: str, kind: str) -> tuple[str, object]:
    """One entry of a file holding several results (refinements or --pred folders)."""
    names = list(entries)
    require(len(names) > 0, f"{where}: holds no {kind}")
    if entry is None:
        require(len(names) == 1,
                f"{where}: holds the {kind} {', '.join(map(repr, names))}; choose one "
                f"(entry={names[-1]!r}, or a (path, {names[-1]!r}) pair)")
        entry = names[0]
    require(entry in entries, f"{where}: no {kind} {entry!r}; it holds {', '.join(map(repr, names))}")
    return entry, entries[entry]


def _block_from_dict(data: Mapping, where: str, entry: str | None, dataset: str | None) -> Mapping:
    """The ``iou_by_size`` dict inside an as_dict / eval / eval-masks dict."""
    if "scores" in data and isinstance(data["scores"], Mapping):  # paperlib eval --json
        found = data.get("dataset")
        require(dataset is None or found is None or str(found).lower() == dataset.lower(),
                f"{where}: scores dataset {found!r}, not {dataset!r}")
        entry, scores = _pick(data["scores"], entry, where, "refinement(s)")
        require(isinstance(scores, Mapping) and "iou_by_size" in scores,
                f"{where}: scores[{entry!r}] has no iou_by_size (written before paperlib saved "
                f"Figs. 6-8 bins; run paperlib eval again)")
        return scores["iou_by_size"]
    if "iou_by_size" in data:  # SaliencyScores.as_dict() or a one-folder eval-masks summary
        require(entry is None, f"{where}: holds one result, so entry {entry!r} does not apply")
        return data["iou_by_size"]
    if {"edges", "counts", "mean_iou"} <= set(data):  # the IouBySize part on its own
        require(entry is None, f"{where}: holds one result, so entry {entry!r} does not apply")
        return data
    if data and all(isinstance(v, Mapping) and "iou_by_size" in v for v in data.values()):
        _, summary = _pick(data, entry, where, "--pred folder(s)")  # eval-masks, several folders
        return summary["iou_by_size"]
    raise InputError(f"{where}: no iou_by_size found (expected SaliencyScores.as_dict() or a "
                     f"file written by `paperlib eval --json` or `paperlib eval-masks --json`)")


def _checked(edges, counts, mean_iou, where: str) -> IouBySize:
    """Validate the three arrays of one IouBySize; None in ``mean_iou`` reads as NaN."""
    try:
        edges = np.asarray(edges, dtype=np.float64)
        counts_f = np.asarray(counts, dtype=np.float64)
        mean_iou = np.asarray([np.nan if v is None else v for v in mean_iou], dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputError(f"{where}: iou_by_size must hold lists of numbers ({err})") from None
    n = edges.size - 1
    require(edges.ndim == 1 and n >= 1, f"{where}: iou_by_size edges must be a list of >= 2 numbers")
    require(counts_f.shape == (n,) and mean_iou.shape == (n,),
            f"{where}: iou_by_size has {n + 1} edges, so counts and mean_iou need {n} values each, "
            f"got {counts_f.size} and {mean_iou.size}")
    require(edges[0] >= 0 and edges[-1] <= 1 and bool(np.all(np.diff(edges) > 0)),
            f"{where}: iou_by_size edges must increase within [0, 1]")
    require(bool(np.all(counts_f >= 0)) and bool(np.all(counts_f == np.round(counts_f))),
            f"{where}: iou_by_size counts must be non-negative integers")
    empty = counts_f == 0
    require(bool(np.all(np.isnan(mean_iou) == empty)),
            f"{where}: iou_by_size mean_iou must be null exactly where a bin's count is 0")
    kept = mean_iou[~empty]
    require(bool(np.all((kept >= 0) & (kept <= 1))), f"{where}: iou_by_size mean_iou must lie in [0, 1]")
    return IouBySize(edges=edges, counts=counts_f.astype(np.int64), mean_iou=mean_iou)


def _read(source, entry: str | None, dataset: str | None, name: str) -> tuple[IouBySize, str]:
    """The IouBySize of a source and the label that names it in messages (a file path or name)."""
    source, entry = _unpack(source, entry)
    if isinstance(source, (str, Path)):
        where = str(source)
        block = _block_from_dict(_load_json(Path(source)), where, entry, dataset)
    elif isinstance(source, Mapping):
        where = f"{name} (dict)"
        block = _block_from_dict(source, where, entry, dataset)
    else:
        where = name
        require(entry is None, f"{where}: entry {entry!r} applies only to files holding several results")
        if isinstance(getattr(source, "scores", None), SaliencyScores):  # DatasetEval, FolderEval
            source = source.scores
        if isinstance(source, SaliencyScores):
            source = source.iou_by_size
        require(isinstance(source, IouBySize),
                f"{where}: expected a path, a dict, SaliencyScores or IouBySize, "
                f"got {type(source).__name__}")
        return _checked(source.edges, source.counts, source.mean_iou, where), where
    require(isinstance(block, Mapping) and {"edges", "counts", "mean_iou"} <= set(block),
            f"{where}: iou_by_size needs edges, counts and mean_iou")
    return _checked(block["edges"], block["counts"], block["mean_iou"], where), where


def read_iou_by_size(source, *, entry: str | None = None, dataset: str | None = None) -> IouBySize:
    """The mean IoU per ground-truth size bin of one result (Appendix B.1, Figs. 6-8).

    Args:
        source: an IouBySize, a SaliencyScores (or an object with one as ``.scores``), the dict
            of ``SaliencyScores.as_dict()``, a path to a ``paperlib eval --json`` or
            ``paperlib eval-masks --json`` file, or a pair ``(path, entry)``.
        entry: which result of a file holding several: a refinement ('none', 'gf', 'bf') of an
            eval file, or a ``--pred`` folder of an eval-masks file. Needed only when there are
            several.
        dataset: when given, an eval file that names another dataset is an error.

    Returns:
        IouBySize: ``edges`` (n + 1,), ``counts`` (n,) int64, ``mean_iou`` (n,) with NaN where
        a bin is empty.

    Raises:
        InputError: naming the file when it is missing, not JSON, holds no ``iou_by_size``,
            holds several results and no ``entry`` picks one, or holds inconsistent bins.
    """
    return _read(source, entry, dataset, "source")[0]


def is_synthetic(source) -> bool:
    """Whether a ``paperlib eval --json`` file says it scored the synthetic offline data.

    Only eval files record it (their ``synthetic`` field); every other source gives False.

    Args:
        source: as for :func:`read_iou_by_size`.

    Returns:
        bool.
    """
    source, _ = _unpack(source, None)
    if isinstance(source, (str, Path)):
        source = _load_json(Path(source))
    return isinstance(source, Mapping) and bool(source.get("synthetic", False))


def size_table(results: Mapping[str, object], *, dataset: str | None = None) -> "pandas.DataFrame":
    """One tidy table of the size bins of several named results on one dataset (Figs. 6-8).

    Args:
        results: name -> source (see :func:`read_iou_by_size`), e.g.
            ``{"Sempart*": "base.json", "Ours": ("ours.json", "gf")}``; the order is kept.
        dataset: the dataset's name; adds a leading ``dataset`` column and makes an eval file
            scored on another dataset an error.

    Returns:
        pandas DataFrame with one row per (name, bin), len(results) * n rows, columns
        ``[dataset,] name, bin, lo, hi, count, mean_iou`` (bin 0..n-1 covers [lo, hi); NaN
        mean IoU for an empty bin).

    Raises:
        InputError: for an unreadable source, or results whose bin edges differ (naming both).
    """
    import pandas as pd

    require(isinstance(results, Mapping) and len(results) > 0,
            "results must map at least one name to a result (e.g. {'Ours': 'ours.json'})")
    frames, first = [], None
    for name, source in results.items():
        require(isinstance(name, str) and name != "",
                f"result names must be non-empty strings, got {name!r}")
        by_size, where = _read(source, None, dataset, repr(name))
        if first is None:
            first = (by_size.edges, where)
        require(by_size.edges.shape == first[0].shape and np.allclose(by_size.edges, first[0],
                                                                      rtol=0, atol=1e-12),
                f"{where}: its {by_size.edges.size - 1} size bins differ from the "
                f"{first[0].size - 1} bins of {first[1]}; score both with the same n_size_bins")
        n = by_size.counts.size
        frames.append(pd.DataFrame({"name": name, "bin": np.arange(n), "lo": by_size.edges[:-1],
                                    "hi": by_size.edges[1:], "count": by_size.counts,
                                    "mean_iou": by_size.mean_iou}))
    table = pd.concat(frames, ignore_index=True)
    if dataset is not None:
        table.insert(0, "dataset", dataset)
    return table


# ----------------------------------------------------------------------------- figures

def _check_table(table) -> None:
    import pandas as pd

    require(isinstance(table, pd.DataFrame) and set(TABLE_COLUMNS) <= set(table.columns),
            f"table must be a DataFrame from size_table() with columns {', '.join(TABLE_COLUMNS)}")
    require(len(table) > 0, "table is empty")


def _title(dataset: str) -> str:
    return DATASET_TITLES.get(str(dataset).lower(), str(dataset))


def _draw_panel(ax_iou, ax_count, rows, title: str) -> None:
    """Grouped bars of mean IoU per bin (none where a bin is empty) over a thin count histogram."""
    from matplotlib.patches import Patch

    names = list(dict.fromkeys(rows["name"]))
    per_name = [rows[rows["name"] == name].sort_values("bin") for name in names]
    lo, hi = per_name[0]["lo"].to_numpy(), per_name[0]["hi"].to_numpy()
    n, k = lo.size, len(names)
    require(all(len(r) == n for r in per_name), f"{title}: every result needs the same {n} bins")
    x = np.arange(n)
    width = 0.8 / k  # the group fills 80 % of a bin's slot

    counts = np.stack([r["count"].to_numpy() for r in per_name])  # (k, n)
    for i in np.flatnonzero(counts.sum(0) == 0):  # no image of this size: a shaded gap, not 0
        ax_iou.axvspan(i - 0.5, i + 0.5, color="0.93", zorder=0, lw=0)
    for j, (name, r) in enumerate(zip(names, per_name)):
        kept = r["count"].to_numpy() > 0
        offset = (j - (k - 1) / 2) * width
        total = int(r["count"].sum())
        overall = float((r["count"] * r["mean_iou"].fillna(0)).sum() / total) if total else math.nan
        ax_iou.bar(x[kept] + offset, r["mean_iou"].to_numpy()[kept], width, color=f"C{j}",
                   label=f"{name} (mean IoU {overall:.3f}, {total} images)")
    handles, _ = ax_iou.get_legend_handles_labels()
    if (counts.sum(0) == 0).any():  # a legend entry for the shading, not another bar container
        handles.append(Patch(color="0.93", label="no image of that size"))
    ax_iou.set_ylim(0, 1.3)  # IoU tops out at 1; the band above holds the legend, clear of bars
    ax_iou.set_yticks(np.linspace(0, 1, 6))
    ax_iou.set_ylabel("mean IoU per bin (0-1)")
    ax_iou.set_title(title, fontsize=11)
    ax_iou.grid(axis="y", alpha=0.3)
    ax_iou.legend(handles=handles, fontsize=8, loc="upper left", ncols=2, framealpha=0.9)

    if (counts == counts[0]).all():  # same ground truth for every result: one histogram
        ax_count.bar(x, counts[0], 0.8, color="0.55")
    else:  # e.g. a centre-cropped protocol beside a full-frame one
        for j, c in enumerate(counts):
            ax_count.bar(x + (j - (k - 1) / 2) * width, c, width, color=f"C{j}", alpha=0.6)
    ax_count.set_ylabel("images per bin", fontsize=9)
    ax_count.set_xticks(x, [f"{a:.2f}-{b:.2f}" for a, b in zip(lo, hi)], rotation=90, fontsize=7)
    ax_count.set_xlabel("ground-truth foreground ratio (object pixels / image pixels)")
    ax_count.set_xlim(-0.6, n - 0.4)


def _save(fig, path: str | Path | None, dpi: int) -> None:
    if path is not None:
        save_figure(fig, path, dpi=dpi)


def plot_iou_by_size(table, *, dataset: str | None = None, title: str | None = None,
                     path: str | Path | None = None, dpi: int = 150) -> "matplotlib.figure.Figure":
    """One of Figs. 6-8: mean IoU per ground-truth size bin, one bar per result, counts below.

    Empty bins get no bar (a shaded gap), never a bar of height 0.

    Args:
        table: from :func:`size_table` (2+ names for a comparison; one works too).
        dataset: the dataset drawn: selects its rows when ``table`` has a ``dataset`` column
            holding several, and names the figure when it has none.
        title: the figure's title (default: the dataset's name and what is plotted).
        path: where to write the figure (atomically; the format follows the suffix).
        dpi: resolution of the written file.

    Returns:
        matplotlib Figure with two axes: ``axes[0]`` one bar container per result,
        ``axes[1]`` the image counts per bin.
    """
    import matplotlib.pyplot as plt

    _check_table(table)
    if "dataset" in table.columns:
        present = list(dict.fromkeys(table["dataset"]))
        if dataset is None:
            require(len(present) == 1, f"table holds the datasets {', '.join(map(str, present))}: "
                                       f"pass dataset= to choose one")
            dataset = present[0]
        require(dataset in present,
                f"dataset {dataset!r} is not in the table ({', '.join(map(str, present))})")
        table = table[table["dataset"] == dataset]
    require(dataset is not None, "pass dataset= to name the figure's dataset")
    fig, (ax_iou, ax_count) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True, layout="constrained",
                                           gridspec_kw={"height_ratios": (3, 1)})
    _draw_panel(ax_iou, ax_count, table,
                title or f"{_title(dataset)}: mean IoU per ground-truth object size")
    _save(fig, path, dpi)
    return fig


def plot_iou_by_size_datasets(table, *, title: str | None = None, path: str | Path | None = None,
                              dpi: int = 150) -> "matplotlib.figure.Figure":
    """Figs. 6-8 side by side: one column per dataset, in the table's order.

    Args:
        table: :func:`size_table` outputs with ``dataset=`` given, concatenated
            (``pd.concat([size_table(r, dataset=d) for d, r in results.items()])``).
        title: the figure's title (default: what is plotted and where the paper shows it).
        path: where to write the figure (atomically; the format follows the suffix).
        dpi: resolution of the written file.

    Returns:
        matplotlib Figure with a (2, n_datasets) grid of axes: row 0 the mean IoU bars (one
        container per result), row 1 the image counts.
    """
    import matplotlib.pyplot as plt

    _check_table(table)
    require("dataset" in table.columns,
            "table needs a dataset column: build it with size_table(..., dataset=)")
    datasets = list(dict.fromkeys(table["dataset"]))
    fig, axes = plt.subplots(2, len(datasets), figsize=(6.5 * len(datasets), 5.5), squeeze=False,
                             sharex="col", layout="constrained", gridspec_kw={"height_ratios": (3, 1)})
    for col, dataset in enumerate(datasets):
        _draw_panel(axes[0, col], axes[1, col], table[table["dataset"] == dataset], _title(dataset))
    fig.suptitle(title or "Mean IoU per ground-truth object size (Appendix B.1, Figs. 6-8)")
    _save(fig, path, dpi)
    return fig
