"""The ``paperlib`` command line. Each sub-command is a thin layer over a package function.

Bad input ends with one line on stderr naming the file or parameter, and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Callable, Sequence

from .validation import InputError

EXIT_BAD_INPUT = 2


def _add_refine(sub) -> None:
    p = sub.add_parser("refine", help="trick 1: guided-filter (or bilateral-solve) any method's masks",
                       description="Refine every mask in --masks with its image (matched by stem) "
                                   "and write 8-bit PNGs of the image's size to --out.")
    p.add_argument("--images", required=True, type=Path, help="folder of images")
    p.add_argument("--masks", required=True, type=Path, help="folder of soft or hard masks")
    p.add_argument("--out", required=True, type=Path, help="output folder for refined PNG masks")
    p.add_argument("--method", choices=("gf", "bf"), default="gf",
                   help="gf: guided filter (default); bf: fast bilateral solver")
    p.add_argument("--radius", type=int, default=9, help="guided-filter radius (default 9: 19x19 window)")
    p.add_argument("--eps", type=float, default=1e-3, help="guided-filter eps (default 1e-3)")
    p.add_argument("--border", choices=("count", "reflect", "reflect_101"), default="count",
                   help="window rule at the borders: count (default, truncated windows as He and the paper), reflect (OpenCV), reflect_101 (kornia)")
    p.add_argument("--bs-preset", choices=("tokencut", "official"), default="tokencut",
                   help="bilateral solver settings (default tokencut: sigma 16/16/8, lambda 256)")
    p.set_defaults(run=_run_refine)


def _run_refine(args) -> int:
    from .refine import RefineSettings, refine_folder

    settings = RefineSettings(method=args.method, radius=args.radius, eps=args.eps,
                              border=args.border, bs_preset=args.bs_preset)
    report = refine_folder(args.images, args.masks, args.out, settings, progress=not args.quiet)
    print(f"refined {report.n_written} mask(s) with {args.method} -> {report.out_dir}"
          + (f" ({report.n_resized} resized to their image first)" if report.n_resized else ""))
    return 0


def _add_eval_masks(sub) -> None:
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
    from .evaluate import evaluate_folders, write_json

    from .validation import require

    require(args.per_image is None or len(args.pred) == 1,
            "--per-image takes one --pred folder (write one CSV per run)")
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


def _add_data(sub) -> None:
    p = sub.add_parser("data", help="download, verify, synthesise or degrade datasets")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    d = dsub.add_parser("download", help="fetch an official dataset archive, check it, unpack it")
    d.add_argument("name", help="duts-tr, duts-te, dut-omron, ecssd, voc07, voc12, coco20k")
    d.add_argument("--root", required=True, type=Path, help="datasets folder")
    d.add_argument("--sha256", help="expected SHA-256: HEX for a one-archive dataset, or FILE=HEX")
    d.add_argument("--mirror", help="base URL of a mirror holding the same archive names")
    d.add_argument("--keep-archives", action="store_true", help="keep the archives after unpacking")
    d.set_defaults(run=_run_download)

    v = dsub.add_parser("verify", help="check a dataset folder: counts, pairs, readability, sizes")
    v.add_argument("name", help="duts-tr, duts-te, dut-omron, ecssd, voc07, voc12, coco20k")
    v.add_argument("--root", required=True, type=Path, help="datasets folder")
    v.add_argument("--subset", action="store_true",
                   help="accept fewer images than the official count (a sample of the dataset)")
    v.add_argument("--decode", action="store_true", help="decode every file fully (slower, finds truncation)")
    v.set_defaults(run=_run_verify)

    s = dsub.add_parser("synth", help="write the embedded synthetic dataset (DUTS layout, no downloads)")
    s.add_argument("--out", required=True, type=Path, help="datasets folder to write into")
    s.add_argument("--n", type=int, default=60, help="number of images (default 60)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--split", choices=("te", "tr"), default="te", help="DUTS-TE (default) or DUTS-TR layout")
    s.set_defaults(run=_run_synth)

    ph = dsub.add_parser("photos", help="write the natural photos bundled with scikit-image (offline)")
    ph.add_argument("--out", required=True, type=Path, help="output folder for JPEG files")
    ph.set_defaults(run=_run_photos)

    g = dsub.add_parser("degrade", help="spoil ground-truth masks (low resolution, blur) for studies")
    g.add_argument("--masks", required=True, type=Path, help="folder of ground-truth masks")
    g.add_argument("--out", required=True, type=Path, help="output folder")
    g.add_argument("--degradation", default="down16",
                   help="down8, down16, blocky16 or blur4 (default down16)")
    g.set_defaults(run=_run_degrade)


def _run_download(args) -> int:
    from .download import download

    report = download(args.name, args.root, sha256=args.sha256, mirror=args.mirror,
                      keep_archives=args.keep_archives, progress=not args.quiet)
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1


def _run_verify(args) -> int:
    from .verify import verify

    report = verify(args.name, args.root, expect_complete=not args.subset, decode=args.decode,
                    progress=not args.quiet)
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1


def _run_synth(args) -> int:
    from .synth import synthesize

    report = synthesize(args.out, n=args.n, seed=args.seed, split=args.split,
                        progress=not args.quiet)
    print(report)
    return 0


PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle")  # scikit-image's own


def _run_photos(args) -> int:
    from .images import write_image
    from .synth_sample import load_source

    for name in PHOTOS:
        write_image(args.out / f"{name}.jpg", load_source(name))
    print(f"wrote {len(PHOTOS)} photo(s) bundled with scikit-image -> {args.out}")
    return 0


def _run_degrade(args) -> int:
    from tqdm.auto import tqdm

    from .gf_sweep import degrade_mask
    from .images import list_images, read_mask, write_mask_png
    from .validation import check_dir, require

    masks = list_images(check_dir("--masks", args.masks))
    require(len(masks) > 0, f"--masks: no mask images found in {args.masks}")
    for stem, path in tqdm(masks.items(), desc=args.degradation, disable=args.quiet, unit="img"):
        write_mask_png(args.out / f"{stem}.png", degrade_mask(read_mask(path), args.degradation))
    print(f"wrote {len(masks)} {args.degradation} mask(s) -> {args.out}")
    return 0


def _add_gf_sweep(sub) -> None:
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


def _run_gf_sweep(args) -> int:
    from .data import open_dataset
    from .gf_sweep import markdown_table, plot_sweep, sweep
    from .images import atomic_path
    from .validation import require

    radii = _parse_list("--radii", args.radii, int)
    eps = _parse_list("--eps", args.eps, float)
    dataset = open_dataset(args.dataset, args.root)
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


def _add_method_options(p, *, refine_default: str) -> None:
    """Options shared by segment, eval and corloc: which method, backbone and weights."""
    p.add_argument("--method", default="tokencut", help="segmentation method (default tokencut)")
    p.add_argument("--backbone", default="dino_vits16",
                   help="dino_vits8, dino_vits16 (default, TokenCut's), dino_vitb8, dino_vitb16, "
                        "ibot_vits16, dinov2_vits14, or filterbank / filterbank16 (offline, no weights)")
    p.add_argument("--weights", help="official backbone checkpoint (.pth); default: "
                                     "$PAPERLIB_WEIGHTS_DIR or timm's hub")
    p.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    p.add_argument("--checkpoint", type=Path, help="trained Sempart head (.pt) for --method sempart")
    p.add_argument("--protocol", choices=("default", "official"), default="default",
                   help="sempart evaluation protocol: default (BatchNorm eval, full resolution, "
                        "polarity per batch of 8 in sorted order) or official (released code: "
                        "BatchNorm train, 335 resize + 320 centre crop)")
    p.add_argument("--bn-mode", choices=("eval", "train"), help="sempart: BatchNorm mode (overrides --protocol)")
    p.add_argument("--polarity", choices=("batch", "image"),
                   help="sempart: foreground flip rule, per batch of 8 or per image (overrides --protocol)")
    p.add_argument("--resolution", choices=("full", "center320"),
                   help="sempart: scored frame, full ground truth or 335-resize + 320 centre crop "
                        "(overrides --protocol)")
    p.add_argument("--refine-at", choices=("model", "full"),
                   help="sempart: where trick 1 filters: on the model's 320 input (model, default) "
                        "or on the prediction at the scored resolution (full)")
    p.add_argument("--tau", type=float, default=0.2, help="TokenCut affinity threshold (default 0.2)")
    p.add_argument("--max-side", type=int, default=1024,
                   help="TokenCut: shrink images whose long side exceeds this before the cut "
                        "(memory grows with side^4; 0: never; default 1024)")
    p.add_argument("--cache", type=Path, help="feature cache folder: backbone keys are stored there "
                                              "and reused by later runs on the same images")
    p.add_argument("--refine", default=refine_default,
                   help=f"none, gf (guided filter), bf (bilateral solver); comma-separated in eval "
                        f"(default {refine_default})")
    p.add_argument("--radius", type=int, default=9, help="guided-filter radius (default 9)")
    p.add_argument("--eps", type=float, default=1e-3, help="guided-filter eps (default 1e-3)")


def _method_from_args(args):
    from .methods import build_method
    from .validation import require

    require(args.method != "sempart" or args.cache is None,
            "--cache holds backbone keys for tokencut; sempart recomputes them (drop --cache)")

    options = ({"tau": args.tau, "max_side": args.max_side or None} if args.method == "tokencut"
               else {})
    return build_method(args.method, backbone=args.backbone, weights=args.weights,
                        device=args.device, cache_dir=args.cache, checkpoint=args.checkpoint,
                        protocol=args.protocol,
                        protocol_options={"bn_mode": args.bn_mode, "polarity": args.polarity,
                                          "resolution": args.resolution,
                                          "refine_at": args.refine_at}, **options)


def _method_label(method, args) -> str:
    """'tokencut/dino_vits16', or the backbone a Sempart checkpoint names."""
    backbone = getattr(getattr(method, "model", None), "backbone", None)
    name = getattr(backbone, "name", None) or args.backbone
    protocol = getattr(method, "protocol", None)
    if protocol is None:
        return f"{method.name}/{name}"
    return (f"{method.name}/{name} [{args.protocol}: BN {protocol.bn_mode}, flip per "
            f"{protocol.polarity}, {protocol.resolution}, GF at {protocol.refine_at}]")


def _refine_settings(args):
    from .refine import RefineSettings

    return RefineSettings(radius=args.radius, eps=args.eps)


def _add_segment(sub) -> None:
    p = sub.add_parser("segment", help="segment your own images: mask PNGs and overlays",
                       description="Writes <stem>.png (mask at the image's size) and "
                                   "<stem>_overlay.jpg for every image given or found in a folder.")
    p.add_argument("paths", nargs="+", type=Path, help="image files and/or folders")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--no-overlays", action="store_true", help="write masks only")
    _add_method_options(p, refine_default="gf")
    p.set_defaults(run=_run_segment)


def _run_segment(args) -> int:
    from .segment import collect_images, segment_paths
    from .validation import check_choice

    check_choice("--refine", args.refine, ("none", "gf", "bf"))
    settings = _refine_settings(args)
    files = collect_images(args.paths)      # bad paths fail before any weights are loaded
    method = _method_from_args(args)
    report = segment_paths(files, args.out, method, refine=args.refine, settings=settings,
                           overlays=not args.no_overlays, progress=not args.quiet)
    print(f"segmented {report.n_images} image(s) with {_method_label(method, args)}, "
          f"refine={report.refine} -> {report.out_dir}")
    return 0


def _add_dataset_options(p, *, datasets: str, per_image: str) -> None:
    """Options shared by eval and corloc: which dataset, how much of it, where results go."""
    p.add_argument("--dataset", required=True, help=datasets)
    p.add_argument("--root", required=True, type=Path, help="datasets folder")
    p.add_argument("--limit", type=int, help="only the first N images")
    p.add_argument("--json", type=Path, help="write the scores")
    p.add_argument("--per-image", type=Path, metavar="CSV", help=per_image)


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="Table 1 metrics of a method on a saliency dataset",
                       description="Predicts every image once and scores each refinement given "
                                   "in --refine (e.g. none,gf,bf for a Table 5 block).")
    _add_dataset_options(p, datasets="duts-te, dut-omron, ecssd, duts-tr",
                         per_image="per-image rows (refine, stem, acc, iou, mae, fbeta_max, fg_ratio)")
    p.add_argument("--save-masks", type=Path, help="write predicted masks (one sub-folder per refinement "
                                                   "when several)")
    _add_method_options(p, refine_default="none")
    p.set_defaults(run=_run_eval)


def _run_eval(args) -> int:
    from .data import open_dataset
    from .evaluate import write_csv, write_json
    from .segment import evaluate_dataset

    refines = [r.strip() for r in args.refine.split(",") if r.strip()]
    dataset = open_dataset(args.dataset, args.root)
    method = _method_from_args(args)
    results = evaluate_dataset(dataset, method, refines=refines, settings=_refine_settings(args),
                               limit=args.limit, save_masks=args.save_masks, progress=not args.quiet)
    label = _method_label(method, args)
    if getattr(dataset, "is_synthetic", False):
        print(f"note: {args.root} holds the synthetic set: smoke numbers, not the paper's")
    print(f"{args.dataset}: {len(next(iter(results.values())).rows)} image(s)")
    table = [(f"{label}" + ("" if r == "none" else f" + {r.upper()}"), res.scores.as_dict())
             for r, res in results.items()]
    print(format_scores(table))
    if args.json:
        protocol = getattr(method, "protocol", None)
        write_json(args.json, {"dataset": args.dataset, "method": label,
                               "protocol": None if protocol is None else dataclasses.asdict(protocol),
                               "synthetic": bool(getattr(dataset, "is_synthetic", False)),
                               "scores": {r: res.scores.as_dict() for r, res in results.items()}})
    if args.per_image:
        write_csv(args.per_image, [{"refine": r, **row} for r, res in results.items() for row in res.rows])
    return 0


def _add_corloc(sub) -> None:
    p = sub.add_parser("corloc", help="single-object discovery: CorLoc on VOC07, VOC12, COCO20K",
                       description="A hit when the predicted box has IoU >= 0.5 with any "
                                   "ground-truth box; CorLoc = hits / images.")
    _add_dataset_options(p, datasets="voc07, voc12, coco20k, or synth (offline)",
                         per_image="per-image rows (image_id, pred_box, best_iou, hit, n_gt)")
    _add_method_options(p, refine_default="none")
    p.set_defaults(run=_run_corloc)


def _run_corloc(args) -> int:
    from .validation import require

    require(args.refine == "none", "--refine does not apply to corloc: boxes come from the raw mask")
    from .box_datasets import CORLOC_DATASETS, open_corloc_dataset
    from .corloc import corloc_evaluate
    from .evaluate import write_csv, write_json

    dataset = open_corloc_dataset(args.dataset, args.root)
    method = _method_from_args(args)
    batched = {}
    if hasattr(method, "predict_batch"):   # Sempart: polarity and BatchNorm decided per batch
        batched = dict(batch_size=method.protocol.batch_size,
                       predict_batch_fn=lambda images, _ids: [p.box for p in method.predict_batch(images)])
    result = corloc_evaluate(dataset, lambda image, image_id: method.discover(image, image_id=image_id),
                             progress=not args.quiet, limit=args.limit, **batched)
    expected = CORLOC_DATASETS[args.dataset].n_images
    print(f"{args.dataset}: CorLoc {100 * result.corloc:.1f} ({result.n_hits}/{result.n_images}) "
          f"with {_method_label(method, args)}")
    if expected and result.n_images < expected:
        print(f"note: {result.n_images} of the {expected} images of {args.dataset} were scored")
    if args.json:
        write_json(args.json, {"dataset": args.dataset, "method": _method_label(method, args),
                               "corloc": result.corloc, "n_images": result.n_images,
                               "n_hits": result.n_hits})
    if args.per_image:
        write_csv(args.per_image, [row._asdict() for row in result.rows])
    return 0


def _add_train(sub) -> None:
    from .train import add_train_arguments, run_train

    p = sub.add_parser("train", help="train the Sempart head (with trick 2) without labels",
                       description="Every field of the preset can be set by its own flag or with "
                                   "--set field=value. Writes RUN/last.pt, best.pt, log.csv, val.csv.")
    add_train_arguments(p)
    p.set_defaults(run=run_train)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``paperlib`` command."""
    parser = argparse.ArgumentParser(
        prog="paperlib",
        description="Two Tricks to Improve Unsupervised Segmentation Learning: tools and evaluation.")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_refine, _add_eval_masks, _add_segment, _add_eval, _add_corloc, _add_train,
                _add_data, _add_gf_sweep):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 check failed, 2 bad input)."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except InputError as err:
        print(f"paperlib: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as err:
        print(f"paperlib: error: {err.filename or ''}: {err.strerror or err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("paperlib: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
