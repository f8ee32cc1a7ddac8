"""Our scores laid out as the paper's tables, beside the paper's own numbers (Tables 1-5).

The notebooks compute scores with :func:`paperlib.segment.evaluate_dataset` (or read
``paperlib eval --json`` files) and hand them here; the paper's values come from
:mod:`paperlib.paper_results`, never typed in.

Public API:

* :func:`scores_table` -- {row: {dataset: scores}} -> rows x (dataset, metric);
* :func:`read_eval_json` -- the scores of one ``paperlib eval --json`` file, per refinement;
* :func:`beside_paper` -- our table and the paper's same cells, one above the other;
* :func:`gains` -- each row minus a base row (what a trick adds);
* :func:`plot_gains` -- our gains against the paper's, one panel per metric;
* :func:`write_table` -- CSV and Markdown, written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .validation import InputError, require

SALIENCY_METRICS = ("acc", "iou", "max_fbeta")


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
            :class:`~paperlib.metrics.SaliencyScores`, its ``as_dict()``, or {'corloc': x}.
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
        table: the paper's table number (:func:`paperlib.paper_results.paper_table`).

    Returns:
        DataFrame indexed by ours' keys plus a last level ``source`` ('ours' / 'paper'; NaN
        where the paper has no such row or cell), columns as ``ours``.
    """
    from .paper_results import paper_table

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


def plot_gains(ours: pd.DataFrame, paper: pd.DataFrame | None = None, *, title: str = ""):
    """Bars of each row's gain per (dataset, metric), ours solid, the paper's hatched.

    Args:
        ours: from :func:`gains`.
        paper: the paper's gains on the same rows and columns, or None.
        title: the figure's title.

    Returns:
        matplotlib Figure with one panel per metric.
    """
    import matplotlib.pyplot as plt

    metrics = list(dict.fromkeys(ours.columns.get_level_values("metric")))
    datasets = list(dict.fromkeys(ours.columns.get_level_values("dataset")))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.4), squeeze=False,
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
        ax.set_title(metric)
    axes[0][0].set_ylabel("gain over the base row")
    axes[0][-1].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def write_table(frame: pd.DataFrame, path: str | Path, *, digits: int = 3) -> None:
    """Write ``frame`` to ``path`` (.csv) and beside it as Markdown (.md), each atomically."""
    from .images import atomic_path

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
    lines = [header, "|" + "---|" * len(flat.columns)]
    for row in flat.itertuples(index=False):
        cells = [("" if pd.isna(v) else f"{v:.{digits}f}") if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    with atomic_path(path.with_suffix(".md")) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
