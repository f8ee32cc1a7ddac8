"""The ``paperlib`` sub-commands on mask folders, no model involved: refine, eval-masks, gf-sweep.

Public API
----------
``add_refine(sub)``, ``add_eval_masks(sub)``, ``add_gf_sweep(sub)``
    register the sub-command on the sub-parsers of :func:`paperlib.cli.main.build_parser`.
``format_scores(rows) -> str``
    the plain-text score table that ``eval-masks`` and ``eval`` print.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from ..checks import InputError, require
from ..refine.settings import BORDERS, PAPER_GF

FILTERS = ("gf", "bf")


class _FilterOption(argparse.Action):
    """``--filter`` and its deprecated spelling ``--method``: one dest, each spelling's value kept.

    Both store into ``args.filter``; ``args.filter_given`` maps the spellings used to their
    values so that :func:`_run_refine` can refuse two that disagree and flag the old one.
    """

    def __call__(self, parser, namespace, values, option_string=None):
        given = dict(getattr(namespace, "filter_given", None) or {})
        given[option_string] = values
        namespace.filter_given = given
        setattr(namespace, self.dest, values)


def add_refine(sub) -> None:
    """Register ``refine``: trick 1 on every mask of a folder."""
    p = sub.add_parser("refine", help="trick 1: guided-filter (or bilateral-solve) any method's masks",
                       description="Refine every mask in --masks with its image (matched by stem) "
                                   "and write 8-bit PNGs of the image's size to --out.")
    p.add_argument("--images", required=True, type=Path, help="folder of images")
    p.add_argument("--masks", required=True, type=Path, help="folder of soft or hard masks")
    p.add_argument("--out", required=True, type=Path, help="output folder for refined PNG masks")
    p.add_argument("--filter", choices=FILTERS, default="gf", action=_FilterOption,
                   help="gf: guided filter (default); bf: fast bilateral solver")
    # The old name of --filter, kept so that existing scripts run; hidden from --help.
    p.add_argument("--method", dest="filter", choices=FILTERS, default=argparse.SUPPRESS,
                   action=_FilterOption, help=argparse.SUPPRESS)
    p.add_argument("--radius", type=int, default=PAPER_GF.radius,
                   help=f"guided-filter radius (default {PAPER_GF.radius}: "
                        f"{2 * PAPER_GF.radius + 1}x{2 * PAPER_GF.radius + 1} window)")
    p.add_argument("--eps", type=float, default=PAPER_GF.eps,
                   help=f"guided-filter eps (default {PAPER_GF.eps:g})")
    p.add_argument("--border", choices=BORDERS, default=PAPER_GF.border,
                   help=f"window rule at the borders (default {PAPER_GF.border}): count (truncated "
                        f"windows as He and the paper), reflect (OpenCV), reflect_101 (kornia)")
    p.add_argument("--bs-preset", choices=("tokencut", "official"), default="tokencut",
                   help="bilateral solver settings (default tokencut: sigma 16/16/8, lambda 256)")
    p.set_defaults(run=_run_refine)


def _run_refine(args) -> int:
    from ..refine.masks import RefineSettings, refine_folder

    given = getattr(args, "filter_given", None) or {}
    require(len(set(given.values())) <= 1,
            f"--filter {given.get('--filter')} and --method {given.get('--method')} disagree "
            f"(--method is the deprecated name of --filter: give --filter only)")
    if "--method" in given:
        print("paperlib refine: --method is deprecated, use --filter", file=sys.stderr)
    settings = RefineSettings(method=args.filter, radius=args.radius, eps=args.eps,
                              border=args.border, bs_preset=args.bs_preset)
    report = refine_folder(args.images, args.masks, args.out, settings, progress=not args.quiet)
    print(f"refined {report.n_written} mask(s) with {args.filter} -> {report.out_dir}"
          + (f" ({report.n_resized} resized to their image first)" if report.n_resized else ""))
    return 0


def add_eval_masks(sub) -> None:
    """Register ``eval-masks``: score folders of predicted masks against ground truth."""
    p = sub.add_parser("eval-masks", help="score a folder of predicted masks against ground truth",
                       description="Acc, IoU, max F-beta (beta^2 = 0.3) and MAE, as defined in the "
                                   "README, for predictions matched to ground truth by stem.")
    p.add_argument("--pred", required=True, type=Path, nargs="+",
                   help="folder(s) of predicted masks; several folders give one row each")
    p.add_argument("--gt", required=True, type=Path, help="folder of ground-truth masks")
    p.add_argument("--json", type=Path, help="write the summary (acc, iou, max_fbeta, mae, n_images)")
    p.add_argument("--per-image", type=Path, metavar="CSV", help="write per-image scores")
    p.add_argument("--allow-missing", action="store_true",
                   help="evaluate the stems present in both folders when predictions are missing")
    p.set_defaults(run=_run_eval_masks)


def _run_eval_masks(args) -> int:
    from ..checks import check_output_file, require
    from ..eval.folders import evaluate_folders, write_json

    require(args.per_image is None or len(args.pred) == 1,
            "--per-image takes one --pred folder (write one CSV per run)")
    inputs = {"--gt": args.gt, **{f"--pred {p}": p for p in args.pred}}
    for option in ("json", "per_image"):
        check_output_file(f"--{option.replace('_', '-')}", getattr(args, option), inputs=inputs)
    summaries = {}
    for pred in args.pred:
        result = evaluate_folders(pred, args.gt, allow_missing=args.allow_missing,
                                  per_image_csv=args.per_image, progress=not args.quiet)
        summaries[str(pred)] = result.summary()
        if result.n_resized:
            print(f"note: {pred}: {result.n_resized} prediction(s) resized bilinearly to their "
                  f"ground truth")
        if result.n_missing:
            print(f"note: {pred}: {result.n_missing} ground-truth mask(s) without a prediction "
                  f"were left out")
    print(format_scores(list(summaries.items())))
    if args.json:
        # One folder: the summary itself; several: one summary per folder.
        write_json(args.json, next(iter(summaries.values())) if len(summaries) == 1 else summaries)
    return 0


def format_scores(rows: Sequence[tuple[str, dict]]) -> str:
    """A plain-text table of named score dicts (acc, iou, max_fbeta, mae, n_images)."""
    width = max(12, *(len(name) for name, _ in rows))
    lines = [f"{'':{width}}  {'Acc':>6}  {'IoU':>6}  {'maxFb':>6}  {'MAE':>6}  {'images':>6}"]
    for name, s in rows:
        lines.append(f"{name:{width}}  {s['acc']:6.3f}  {s['iou']:6.3f}  {s['max_fbeta']:6.3f}  "
                     f"{s['mae']:6.3f}  {s['n_images']:6d}")
    return "\n".join(lines)


def add_gf_sweep(sub) -> None:
    """Register ``gf-sweep``: the guided filter over (radius, eps) on degraded ground truth."""
    p = sub.add_parser("gf-sweep", help="guided filter on masks of known quality over (radius, eps)",
                       description="Degrade ground-truth masks (1/8, 1/16 resolution, blur), refine "
                                   "them with the guided filter over a grid, report every metric.")
    p.add_argument("--dataset", default="duts-te", help="registered dataset name (default duts-te)")
    p.add_argument("--root", required=True, type=Path, help="datasets folder")
    p.add_argument("--n", type=int, help="use the first N images (default all)")
    p.add_argument("--radii", default="2,4,9,16,32", help="comma-separated radii")
    p.add_argument("--eps", default="1e-4,1e-3,1e-2,1e-1", help="comma-separated eps values")
    p.add_argument("--csv", type=Path, help="write the table as CSV")
    p.add_argument("--markdown", type=Path, help="write the table as Markdown")
    p.add_argument("--plot", type=Path, help="write heat maps of the changes (PNG)")
    p.set_defaults(run=_run_gf_sweep)


def _parse_list(name: str, text: str, cast: Callable):
    try:
        values = [cast(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"{name}: expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise InputError(f"{name}: no values given")
    return values


def dataset_inputs(dataset) -> dict[str, Path]:
    """The folders a dataset's images and masks are read from, and the dataset's own folder."""
    from ..checks import dataset_folder

    folders = getattr(dataset, "folders", None)
    if folders is None:
        return {}
    return {"the dataset": dataset_folder(folders.images_dir, folders.masks_dir),
            "the dataset's images": folders.images_dir, "the dataset's masks": folders.masks_dir}


def _run_gf_sweep(args) -> int:
    from ..checks import check_output_file, require
    from ..data.saliency import open_dataset
    from ..images import atomic_path
    from ..paper.gf_sweep import markdown_table, plot_sweep, sweep

    radii = _parse_list("--radii", args.radii, int)
    eps = _parse_list("--eps", args.eps, float)
    dataset = open_dataset(args.dataset, args.root)
    for option in ("csv", "markdown", "plot"):
        check_output_file(f"--{option}", getattr(args, option), inputs=dataset_inputs(dataset))
    n = len(dataset) if args.n is None else min(args.n, len(dataset))
    require(n > 0, f"--n must be >= 1, got {args.n}")
    pairs = ((dataset[i].image, dataset[i].mask) for i in range(n))
    table = sweep(pairs, radii=radii, eps=eps, n_images=n, progress=not args.quiet)
    text = markdown_table(table)
    print(text)
    if args.csv:
        with atomic_path(args.csv) as tmp:
            table.to_csv(tmp, index=False)
    if args.markdown:
        with atomic_path(args.markdown) as tmp:
            tmp.write_text(text + "\n")
    if args.plot:
        plot_sweep(table, args.plot)
    return 0

