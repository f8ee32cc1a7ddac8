"""The ``paperlib baselines`` command: every weight-free segmenter side by side on a dataset,
and the guided filter against the bilateral solver on soft coarse masks
(:mod:`paperlib.paper.baselines`).

Public API
----------
``add_baselines(sub)``
    register ``baselines`` on the sub-parsers of :func:`paperlib.cli.main.build_parser`.
"""

from __future__ import annotations

from pathlib import Path


def add_baselines(sub) -> None:
    """Register ``baselines``: the offline table, its figure, and the refinement study."""
    p = sub.add_parser("baselines", help="without weights: every offline segmenter side by side, and GF vs BF",
                       description="Scores the centre prior, spectral residual and fine-grained saliency, TokenCut "
                                   "on the filterbank and offline backbones (raw, + GF, + BF) and any Sempart "
                                   "heads given with --head on one dataset, with images/s; then refines the "
                                   "ground truth spoiled to 1/8 (soft coarse masks) with GF and with BF. Writes "
                                   "baselines.md/.csv/.json/.png, examples.png (masks on six photos) and "
                                   "refinement.csv/.png into --out.")
    p.add_argument("--dataset", default="duts-te", help="saliency dataset name (default duts-te)")
    p.add_argument("--root", required=True, type=Path, help="datasets folder")
    p.add_argument("--out", required=True, type=Path, help="folder for the table, figures and per-image rows")
    p.add_argument("--head", action="append", default=[], metavar="LABEL=CHECKPOINT",
                   help="a Sempart head trained on offline features, scored raw and + GF (repeatable)")
    p.add_argument("--limit", type=int, help="only the first N images")
    p.add_argument("--no-study", action="store_true", help="skip the GF vs BF study on coarse masks")
    p.set_defaults(run=_run)


def _heads(values: list[str]) -> list[tuple[str, Path]]:
    from ..checks import InputError

    heads = []
    for value in values:
        label, sep, path = value.partition("=")
        if not sep or not label.strip() or not path.strip():
            raise InputError(f"--head {value!r}: expected LABEL=CHECKPOINT, e.g. 'head, crop-zoom on=runs/on/last.pt'")
        checkpoint = Path(path.strip()).expanduser()
        if not checkpoint.is_file():
            raise InputError(f"--head {label.strip()}: checkpoint {checkpoint} is not a file")
        heads.append((label.strip(), checkpoint))
    return heads


def _run(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..checks import check_output_dir
    from ..data.saliency import open_dataset
    from ..eval.folders import write_csv, write_json
    from ..images import atomic_path, save_figure
    from ..paper.baselines import (
        baselines_figure,
        baselines_table,
        examples_figure,
        refinement_figure,
        refinement_study,
        rows_as_dicts,
        run_baselines,
    )
    from .masks import dataset_inputs

    heads = _heads(args.head)
    dataset = open_dataset(args.dataset, args.root)
    out = check_output_dir("--out", args.out, inputs=dataset_inputs(dataset))
    rows = run_baselines(dataset, heads=heads, limit=args.limit, progress=not args.quiet)
    table = baselines_table(rows)
    if getattr(dataset, "is_synthetic", False):
        print(f"note: {args.root} holds the synthetic set: smoke numbers, not real photos")
    print(f"{args.dataset}: {rows[0].images} image(s)\n{table}")
    with atomic_path(out / "baselines.md") as tmp:
        tmp.write_text(f"{args.dataset}, {rows[0].images} images\n\n{table}")
    write_csv(out / "baselines.csv", rows_as_dicts(rows))
    write_json(out / "baselines.json", {"dataset": args.dataset, "rows": rows_as_dicts(rows)})
    figure = baselines_figure(rows, title=f"Without weights: {args.dataset}, {rows[0].images} images")
    save_figure(figure, out / "baselines.png")
    plt.close(figure)
    figure = examples_figure(dataset, heads=heads)
    save_figure(figure, out / "examples.png")
    plt.close(figure)
    if not args.no_study:
        study = refinement_study(dataset, limit=args.limit, progress=not args.quiet)
        print(study.summary())
        write_csv(out / "refinement.csv", study.rows)
        figure = refinement_figure(study)
        save_figure(figure, out / "refinement.png")
        plt.close(figure)
    print(f"wrote {out}")
    return 0
