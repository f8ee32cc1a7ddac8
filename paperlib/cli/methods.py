"""The ``paperlib`` sub-commands that run a segmentation method: segment, eval, corloc.

They share the options that choose the method, its backbone, weights and protocol
(``--method``, ``--backbone``, ``--protocol``, ``--refine``, ...); eval and corloc also share
the dataset options (``--dataset``, ``--root``, ``--limit``, ``--json``, ``--per-image``).

Public API
----------
``add_segment(sub)``, ``add_eval(sub)``, ``add_corloc(sub)``
    register the sub-command on the sub-parsers of :func:`paperlib.cli.main.build_parser`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..losses.settings import TOKENCUT_AFFINITY
from ..refine.settings import PAPER_GF
from .masks import dataset_inputs, format_scores


def _add_method_options(p, *, refine_default: str) -> None:
    """Options shared by segment, eval and corloc: which method, backbone and weights."""
    p.add_argument("--method", default="tokencut",
                   help="tokencut (default), sempart (--checkpoint), masks (--masks: another method's "
                        "saved masks, one PNG per image stem), centre (the centre prior, no pixels read), "
                        "spectral or finegrained (OpenCV's static saliency baselines: spectral residual, "
                        "fine grained; no backbone)")
    p.add_argument("--masks", type=Path, help="folder of predicted masks for --method masks")
    p.add_argument("--backbone", default="dino_vits16",
                   help="dino_vits8, dino_vits16 (default, TokenCut's), dino_vitb8, dino_vitb16, "
                        "ibot_vits16, dinov2_vits14; without weights: offline (real photos), "
                        "filterbank / filterbank16")
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
    p.add_argument("--tau", type=float, default=TOKENCUT_AFFINITY.tau,
                   help=f"TokenCut affinity threshold (default {TOKENCUT_AFFINITY.tau})")
    p.add_argument("--max-side", type=int, default=1024,
                   help="TokenCut: shrink images whose long side exceeds this before the cut "
                        "(memory grows with side^4; 0: never; default 1024)")
    p.add_argument("--cache", type=Path, help="feature cache folder: backbone keys are stored there "
                                              "and reused by later runs on the same images")
    p.add_argument("--refine", default=refine_default,
                   help=f"none, gf (guided filter), bf (bilateral solver); comma-separated in eval "
                        f"(default {refine_default})")
    p.add_argument("--radius", type=int, default=PAPER_GF.radius,
                   help=f"guided-filter radius (default {PAPER_GF.radius})")
    p.add_argument("--eps", type=float, default=PAPER_GF.eps,
                   help=f"guided-filter eps (default {PAPER_GF.eps:g})")


def _method_from_args(args):
    from ..checks import require
    from ..methods.registry import build_method

    require(args.method == "tokencut" or args.cache is None,
            f"--cache holds backbone keys for tokencut; {args.method} does not use them (drop --cache)")
    require(args.method == "masks" or args.masks is None, f"--masks is for --method masks, not {args.method}")

    options = ({"tau": args.tau, "max_side": args.max_side or None} if args.method == "tokencut"
               else {})
    return build_method(args.method, backbone=args.backbone, weights=args.weights,
                        device=args.device, cache_dir=args.cache, checkpoint=args.checkpoint,
                        protocol=args.protocol,
                        protocol_options={"bn_mode": args.bn_mode, "polarity": args.polarity,
                                          "resolution": args.resolution,
                                          "refine_at": args.refine_at},
                        masks=None if args.masks is None else str(args.masks), **options)


def _method_label(method, args) -> str:
    """'tokencut/dino_vits16', 'masks/DIR', or the backbone a Sempart checkpoint names."""
    if method.name == "masks":
        return f"masks/{method.folder}"
    if method.name == "centre":
        return f"centre prior (sigma {method.sigma:g} of each side)"
    if method.name in ("spectral", "finegrained"):
        return method.label
    backbone = getattr(getattr(method, "model", None), "backbone", None)
    name = getattr(backbone, "name", None) or args.backbone
    protocol = getattr(method, "protocol", None)
    if protocol is None:
        return f"{method.name}/{name}"
    return (f"{method.name}/{name} [{args.protocol}: BN {protocol.bn_mode}, flip per "
            f"{protocol.polarity}, {protocol.resolution}, GF at {protocol.refine_at}]")


def _refine_settings(args):
    from ..refine.masks import RefineSettings

    return RefineSettings(radius=args.radius, eps=args.eps)


def add_segment(sub) -> None:
    """Register ``segment``: masks and overlays for your own images."""
    p = sub.add_parser("segment", help="segment your own images: mask PNGs and overlays",
                       description="Writes <stem>.png (mask at the image's size) and "
                                   "overlays/<stem>.jpg for every image given or found in a folder.")
    p.add_argument("paths", nargs="+", type=Path, help="image files and/or folders")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--no-overlays", action="store_true", help="write masks only")
    _add_method_options(p, refine_default="gf")
    p.set_defaults(run=_run_segment)


def _run_segment(args) -> int:
    from ..checks import check_choice
    from ..methods.segment import collect_images, segment_paths

    check_choice("--refine", args.refine, ("none", "gf", "bf"))
    settings = _refine_settings(args)
    collect_images(args.paths)              # bad paths fail before any weights are loaded
    method = _method_from_args(args)
    report = segment_paths(args.paths, args.out, method, refine=args.refine, settings=settings,
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


def add_eval(sub) -> None:
    """Register ``eval``: Table 1 metrics of a method on a saliency dataset."""
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
    from ..checks import check_output_file
    from ..data.saliency import open_dataset
    from ..eval.datasets import evaluate_dataset
    from ..eval.folders import write_csv, write_json

    refines = [r.strip() for r in args.refine.split(",") if r.strip()]
    dataset = open_dataset(args.dataset, args.root)
    inputs = {**dataset_inputs(dataset), "--masks": getattr(args, "masks", None)}
    for option in ("json", "per_image"):
        check_output_file(f"--{option.replace('_', '-')}", getattr(args, option), inputs=inputs)
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


def add_corloc(sub) -> None:
    """Register ``corloc``: single-object discovery on VOC07, VOC12, COCO20K."""
    p = sub.add_parser("corloc", help="single-object discovery: CorLoc on VOC07, VOC12, COCO20K",
                       description="A hit when the predicted box has IoU >= 0.5 with any "
                                   "ground-truth box; CorLoc = hits / images.")
    _add_dataset_options(p, datasets="voc07, voc12, coco20k, or synth (offline)",
                         per_image="per-image rows (image_id, pred_box, best_iou, hit, n_gt)")
    _add_method_options(p, refine_default="none")
    p.set_defaults(run=_run_corloc)


def _corloc_predictors(method, refine: str, settings):
    """(predict_box_fn, batch options) for corloc_evaluate: boxes of the raw or refined masks."""
    from ..methods.refined import refined_box

    batched = {}
    if method.batch_size > 1:   # Sempart: polarity and BatchNorm decided per batch
        batched = dict(batch_size=method.batch_size,
                       predict_batch_fn=lambda images, ids: [
                           refined_box(image, p, refine=refine, settings=settings)
                           for image, p in zip(images, method.predict_batch(images, image_ids=ids))])
    if refine == "none":
        return (lambda image, image_id: method.discover(image, image_id=image_id)), batched
    return (lambda image, image_id: refined_box(image, method.predict(image, image_id=image_id),
                                                refine=refine, settings=settings)), batched


def _run_corloc(args) -> int:
    from ..checks import check_choice, check_output_file

    check_choice("--refine", args.refine, ("none", "gf", "bf"))
    from ..data.boxes import CORLOC_DATASETS, open_corloc_dataset
    from ..eval.corloc import corloc_evaluate
    from ..eval.folders import write_csv, write_json

    dataset = open_corloc_dataset(args.dataset, args.root)
    for option in ("json", "per_image"):
        check_output_file(f"--{option.replace('_', '-')}", getattr(args, option),
                          inputs={**{f"the dataset's {a.replace('_', ' ')}": getattr(dataset, a, None)
                                     for a in ("base", "images_dir", "annotations_dir")},
                                  "--masks": getattr(args, "masks", None)})
    method = _method_from_args(args)
    predict_box, batched = _corloc_predictors(method, args.refine, _refine_settings(args))
    result = corloc_evaluate(dataset, predict_box, progress=not args.quiet, limit=args.limit, **batched)
    expected = CORLOC_DATASETS[args.dataset].n_images
    refined = "" if args.refine == "none" else f" + {args.refine.upper()}"
    print(f"{args.dataset}: CorLoc {100 * result.corloc:.1f} ({result.n_hits}/{result.n_images}) "
          f"with {_method_label(method, args)}{refined}")
    if expected and result.n_images < expected:
        print(f"note: {result.n_images} of the {expected} images of {args.dataset} were scored")
    if args.json:
        write_json(args.json, {"dataset": args.dataset, "method": _method_label(method, args),
                               "refine": args.refine, "corloc": result.corloc, "n_images": result.n_images,
                               "n_hits": result.n_hits})
    if args.per_image:
        write_csv(args.per_image, [row._asdict() for row in result.rows])
    return 0

