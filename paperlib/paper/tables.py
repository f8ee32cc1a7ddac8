"""Our scores laid out as the paper's tables, beside the paper's own numbers (Tables 1-5).

The notebooks compute scores with :func:`paperlib.eval.datasets.evaluate_dataset` (or read
``paperlib eval --json`` files) and hand them here; the paper's values come from
:mod:`paperlib.paper.reported`, never typed in.

Public API:

* :func:`scores_table` -- {row: {dataset: scores}} -> rows x (dataset, metric);
* :func:`read_eval_json` -- the scores of one ``paperlib eval --json`` file, per refinement;
* :func:`beside_paper` -- our table and the paper's same cells, one above the other;
* :func:`gains` -- each row minus a base row (what a trick adds);
* :func:`plot_gains` -- our gains against the paper's, one panel per metric;
* :func:`describe_change` -- one sentence reading one row against another;
* :func:`write_table` -- CSV and Markdown, written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..checks import InputError, require
from ..images import atomic_path
from .reported import paper_table

SALIENCY_METRICS = ("acc", "iou", "max_fbeta")
# How the figures and sentences name each metric, and its unit (paperlib.eval.metrics, paperlib.eval.corloc).
METRIC_NAMES = {"acc": ("Acc", "0-1"), "iou": ("IoU", "0-1"), "max_fbeta": ("max F-beta", "0-1"),
                "mae": ("MAE", "0-1"), "corloc": ("CorLoc", "%")}
LOWER_IS_BETTER = frozenset({"mae"})


def _value(scores, metric: str) -> float:
    if isinstance(scores, Mapping):
        require(metric in scores, f"scores have no {metric!r}: got keys {sorted(scores)}")
        return float(scores[metric])
    return float(getattr(scores, metric))


def scores_table(results: Mapping[str, Mapping[str, object]], *,
                 metrics: Sequence[str] = SALIENCY_METRICS) -> pd.DataFrame:
    """Rows of scores as the paper lays them out.

    Args:
        results: row name (e.g. 'TokenCut + GF') -> dataset name -> a
            :class:`~paperlib.eval.metrics.SaliencyScores`, its ``as_dict()``, or {'corloc': x}.
        metrics: the columns under each dataset ('acc', 'iou', 'max_fbeta'; 'corloc').

    Returns:
        DataFrame indexed by row name, columns (dataset, metric), in the given orders.
    """
    require(len(results) > 0, "results is empty")
    datasets = list(dict.fromkeys(d for per_dataset in results.values() for d in per_dataset))
    columns = pd.MultiIndex.from_tuples([(d, m) for d in datasets for m in metrics], names=["dataset", "metric"])
    rows = {name: [(_value(per_dataset[d], m) if d in per_dataset else np.nan) for d in datasets for m in metrics]
            for name, per_dataset in results.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns).rename_axis("method")


def read_eval_json(path: str | Path) -> dict[str, dict]:
    """The scores of a ``paperlib eval --json`` file: refinement ('none', 'gf', 'bf') -> scores dict."""
    path = Path(path)
    require(path.is_file(), f"eval result {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not a JSON file ({err})") from None
    require(isinstance(data, dict) and isinstance(data.get("scores"), dict),
            f"{path}: not a `paperlib eval --json` result (no 'scores' per refinement)")
    return data["scores"]


def beside_paper(ours: pd.DataFrame, table: int) -> pd.DataFrame:
    """Our rows and the paper's rows of the same keys, on our columns.

    Args:
        ours: rows keyed as in the paper's table: by method name (Tables 1, 2, 5; from
            :func:`scores_table`) or by the ablation's switches (Tables 3, 4: (backbone,) crop, gf).
        table: the paper's table number (:func:`paperlib.paper.reported.paper_table`).

    Returns:
        DataFrame indexed by ours' keys plus a last level ``source`` ('ours' / 'paper'; NaN
        where the paper has no such row or cell), columns as ``ours``.
    """
    paper = paper_table(table)
    require(list(paper.index.names) == list(ours.index.names),
            f"table {table} is indexed by {list(paper.index.names)}, ours by {list(ours.index.names)}")
    paper = paper.reindex(index=ours.index, columns=ours.columns)
    keys, rows = [], []
    for key in ours.index:
        for source, frame in (("ours", ours), ("paper", paper)):
            keys.append((*key, source) if isinstance(key, tuple) else (key, source))
            rows.append(frame.loc[key].to_numpy())
    index = pd.MultiIndex.from_tuples(keys, names=[*ours.index.names, "source"])
    return pd.DataFrame(rows, index=index, columns=ours.columns)


def gains(table: pd.DataFrame, base: str, rows: Sequence[str] | None = None) -> pd.DataFrame:
    """``table.loc[row] - table.loc[base]`` for each row (all other rows by default)."""
    require(base in table.index, f"base row {base!r} is not in the table: {list(table.index)}")
    rows = [r for r in table.index if r != base] if rows is None else list(rows)
    missing = [r for r in rows if r not in table.index]
    require(not missing, f"rows {missing} are not in the table: {list(table.index)}")
    return table.loc[rows] - table.loc[base]


def plot_gains(ours: pd.DataFrame, paper: pd.DataFrame | None = None, *, title: str = "",
               base: str | None = None):
    """Bars of each row's gain per (dataset, metric), ours solid, the paper's hatched.

    Args:
        ours: from :func:`gains`.
        paper: the paper's gains on the same rows and columns, or None.
        title: the figure's title.
        base: the row the gains are taken over, named in the y labels (None: "the base row").

    Returns:
        matplotlib Figure with one panel per metric; every panel labels its axes (test set;
        the metric's gain and its unit) and has a line at 0 (no change).
    """
    import matplotlib.pyplot as plt

    metrics = list(dict.fromkeys(ours.columns.get_level_values("metric")))
    datasets = list(dict.fromkeys(ours.columns.get_level_values("dataset")))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.6), squeeze=False,
                             layout="constrained")
    n_bars = len(ours.index) * (1 if paper is None else 2)
    width = 0.8 / n_bars
    for ax, metric in zip(axes[0], metrics):
        x = np.arange(len(datasets))
        k = 0
        for row in ours.index:
            for source, frame, hatch in (("ours", ours, None), ("paper", paper, "//")):
                if frame is None:
                    continue
                values = [frame.loc[row, (d, metric)] if (d, metric) in frame.columns else np.nan for d in datasets]
                ax.bar(x + (k - (n_bars - 1) / 2) * width, values, width, hatch=hatch,
                       label=f"{row} ({source})", color=f"C{list(ours.index).index(row)}",
                       alpha=1.0 if source == "ours" else 0.5)
                k += 1
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(x, datasets)
        name, unit = METRIC_NAMES.get(metric, (metric, "0-1"))
        ax.set_title(f"{name}: gain over {base or 'the base row'}", fontsize=10)
        ax.set_xlabel("test set")
        ax.set_ylabel(f"{name} gain ({'percentage points' if unit == '%' else unit + ' scale'})")
    axes[0][-1].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _better(metric: str, change: float) -> str:
    if change == 0:
        return "unchanged"
    return "better" if (change > 0) != (metric in LOWER_IS_BETTER) else "worse"


def describe_change(table: pd.DataFrame, base: str, row: str, *,
                    metrics: Sequence[str] | None = None) -> str:
    """One sentence reading a table: each metric of ``row`` against ``base``, signed and judged.

    For a notebook's reading of a result (the text never types the numbers; this prints them):
    ``describe_change(scores, "untrained", "trained")`` ->
    ``"trained against untrained: IoU 0.195 vs 0.204 (-0.009, worse), ..."``.

    Args:
        table: rows of scores; columns are metric names, or (dataset, metric) pairs as
            :func:`scores_table` makes them.
        base: the row compared with.
        row: the row read.
        metrics: the metrics to read (default: every column whose metric is in
            :data:`METRIC_NAMES`, e.g. not ``n_images``).

    Returns:
        str, one sentence; "better" / "worse" follow the metric's direction (lower MAE is better).
    """
    for name in (base, row):
        require(name in table.index, f"row {name!r} is not in the table: {list(table.index)}")
    parts = []
    for column in table.columns:
        dataset, metric = column if isinstance(column, tuple) else (None, column)
        if (metric not in METRIC_NAMES) if metrics is None else (metric not in metrics):
            continue
        a, b = float(table.loc[base, column]), float(table.loc[row, column])
        if np.isnan(a) or np.isnan(b):
            continue
        name = METRIC_NAMES.get(metric, (metric, ""))[0]
        digits = 1 if metric == "corloc" else 3
        where = f"{dataset} " if dataset is not None else ""
        parts.append(f"{where}{name} {b:.{digits}f} vs {a:.{digits}f} "
                     f"({b - a:+.{digits}f}, {_better(metric, round(b - a, digits))})")
    require(parts, f"no metric to compare between {base!r} and {row!r} (columns {list(table.columns)})")
    return f"{_row_name(table, row)} against {_row_name(table, base)}: " + ", ".join(parts) + "."


def _row_name(table: pd.DataFrame, key) -> str:
    """A row key as text: ``crop=True, gf=False`` for the ablation tables' switch tuples."""
    if not isinstance(key, tuple):
        return str(key)
    names = [n if n is not None else f"level {i}" for i, n in enumerate(table.index.names)]
    return ", ".join(f"{n}={v}" for n, v in zip(names, key))


def write_table(frame: pd.DataFrame, path: str | Path, *, digits: int = 3, caption: str | None = None) -> None:
    """Write ``frame`` to ``path`` (.csv) and beside it as Markdown (.md), each atomically.

    ``caption`` (what the numbers were computed on) becomes the Markdown table's first line.
    """
    path = Path(path)
    require(path.suffix == ".csv", f"write_table writes a .csv (and a .md beside it), got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp)
    flat = frame.copy()
    if isinstance(flat.columns, pd.MultiIndex):
        flat.columns = [" ".join(map(str, c)) for c in flat.columns]
    flat = flat.reset_index()
    header = "| " + " | ".join(map(str, flat.columns)) + " |"
    lines = ([f"*{caption}*", ""] if caption else []) + [header, "|" + "---|" * len(flat.columns)]
    for row in flat.itertuples(index=False):
        cells = [("" if pd.isna(v) else f"{v:.{digits}f}") if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    with atomic_path(path.with_suffix(".md")) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
