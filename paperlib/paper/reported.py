"""The numbers the paper reports (Tables 1-5), read from the one data file that holds them.

STYLE: no number is typed into a notebook by hand except the paper's own, and those live in
``paperlib/resources/paper_results.csv`` with their source. Notebooks put our measurements
beside them with :func:`paper_table`.

Tables (paper Sec. 5):

1. saliency segmentation, Acc / IoU / max F-beta on DUT-OMRON, DUTS-TE, ECSSD;
2. single-object discovery, CorLoc on VOC07, VOC12, COCO20K;
3. ablation of the two tricks (crop, GF) on saliency IoU, three backbones;
4. ablation of the two tricks on CorLoc (DINO ViT-S/8);
5. guided filter against the bilateral solver on TokenCut and MOVE (metrics of Table 1).

Public API:

* :data:`TABLE_CAPTIONS`;
* :func:`paper_results` -- the long table: one row per (table, row, dataset, metric);
* :func:`paper_table` -- one table laid out as printed (rows x (dataset, metric)).
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

from ..checks import check_choice

TABLE_CAPTIONS = {
    1: "Unsupervised saliency segmentation (Acc, IoU, max F-beta)",
    2: "Single-object discovery (CorLoc, %)",
    3: "Ablation of the tricks on saliency segmentation (IoU)",
    4: "Ablation of the tricks on single-object discovery (CorLoc, %)",
    5: "Guided filter and bilateral solver on TokenCut and MOVE (Acc, IoU, max F-beta)",
}

# Row keys of each table as printed: the method, or the ablation's switches.
_ROW_KEYS = {1: ["method"], 2: ["method"], 3: ["backbone", "crop", "gf"], 4: ["crop", "gf"], 5: ["method"]}
_DATASET_ORDER = ["dut-omron", "duts-te", "ecssd", "voc07", "voc12", "coco20k"]
_METRIC_ORDER = ["acc", "iou", "max_fbeta", "corloc"]


def paper_results(table: int | None = None) -> pd.DataFrame:
    """The paper's reported values, one row per number.

    Args:
        table: 1-5 for one table, None for all.

    Returns:
        DataFrame with columns table (int), method (str; 'Sempart*' is the authors' own
        implementation, 'Ours' it with both tricks; the ablations' other rows are 'Sempart* +
        crop' and 'Sempart* + GF'), backbone (registry name or ''), crop, gf
        (bool in Tables 3-4, None elsewhere), dataset (registry name), metric ('acc', 'iou',
        'max_fbeta' as fractions, 'corloc' in %), value (float), in the paper's row order.
    """
    if table is not None:
        check_choice("table", table, TABLE_CAPTIONS)
    source = resources.files("paperlib") / "resources" / "paper_results.csv"
    with source.open("r", encoding="utf-8") as fh:
        frame = pd.read_csv(fh, comment="#", dtype={"method": str, "backbone": str, "dataset": str,
                                                    "metric": str, "crop": str, "gf": str},
                            keep_default_na=False)
    for switch in ("crop", "gf"):
        frame[switch] = frame[switch].map({"true": True, "false": False, "": None})
    frame["value"] = frame["value"].astype(float)
    if table is not None:
        frame = frame[frame["table"] == table].reset_index(drop=True)
    return frame


def paper_table(table: int) -> pd.DataFrame:
    """One table laid out as the paper prints it.

    Args:
        table: 1-5.

    Returns:
        DataFrame indexed by the table's row keys (method; or backbone / crop / gf in the
        ablations), with columns (dataset, metric), in the paper's order.
    """
    check_choice("table", table, TABLE_CAPTIONS)
    long = paper_results(table)
    keys = _ROW_KEYS[table]
    rows = list(dict.fromkeys(map(tuple, long[keys].itertuples(index=False, name=None))))
    wide = long.pivot_table(index=keys, columns=["dataset", "metric"], values="value", sort=False)
    columns = sorted(wide.columns, key=lambda c: (_DATASET_ORDER.index(c[0]), _METRIC_ORDER.index(c[1])))
    index = pd.MultiIndex.from_tuples(rows, names=keys) if len(keys) > 1 else pd.Index([r[0] for r in rows],
                                                                                       name=keys[0])
    return wide.reindex(index=index, columns=pd.MultiIndex.from_tuples(columns, names=["dataset", "metric"]))
