"""The scripts a user would otherwise write, timed beside paperlib's commands by bench_tools.py.

    python benchmarks/reference_scripts.py refine IMAGES MASKS OUT [--radius 9] [--eps 1e-3]
    python benchmarks/reference_scripts.py eval PRED GT
    python benchmarks/reference_scripts.py help --help

``refine``: OpenCV's ximgproc.guidedFilter on each mask with the image's gray mean as guide,
PNG out (what `paperlib refine` does, with OpenCV's reflect border). ``eval``: OpenCV reads,
pysodmetrics scores (F-measure curve, MAE) and IoU at 0.5 (what `paperlib eval-masks` does).
``help``: an argparse script's --help, the floor for a command's start-up.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def refine(images: Path, masks: Path, out: Path, radius: int, eps: float) -> None:
    import cv2
    import cv2.ximgproc  # noqa: F401
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    by_stem = {p.stem: p for p in images.iterdir()}
    for mask_path in sorted(masks.glob("*.png")):
        image = cv2.imread(str(by_stem[mask_path.stem]), cv2.IMREAD_COLOR)
        guide = image.astype(np.float32).mean(axis=2) / 255
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
        if mask.shape != guide.shape:
            mask = cv2.resize(mask, guide.shape[::-1], interpolation=cv2.INTER_LINEAR)
        q = cv2.ximgproc.guidedFilter(guide, mask, radius, eps)
        cv2.imwrite(str(out / mask_path.name), np.rint(np.clip(q, 0, 1) * 255).astype(np.uint8))


def evaluate(pred: Path, gt: Path) -> None:
    import cv2
    import numpy as np
    import py_sod_metrics

    fm, mae = py_sod_metrics.Fmeasure(), py_sod_metrics.MAE()
    ious = []
    for gt_path in sorted(gt.glob("*.png")):
        g = cv2.imread(str(gt_path), cv2.IMREAD_GRAYSCALE)
        p = cv2.imread(str(pred / gt_path.name), cv2.IMREAD_GRAYSCALE)
        if p.shape != g.shape:
            p = cv2.resize(p, g.shape[::-1], interpolation=cv2.INTER_LINEAR)
        fm.step(pred=p, gt=g)
        mae.step(pred=p, gt=g)
        inter = np.logical_and(p > 127, g > 127).sum()
        ious.append(inter / max(np.logical_or(p > 127, g > 127).sum(), 1))
    print(f"maxF {fm.get_results()['fm']['curve'].max():.4f} MAE {mae.get_results()['mae']:.4f} "
          f"IoU {np.mean(ious):.4f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("refine")
    r.add_argument("images", type=Path)
    r.add_argument("masks", type=Path)
    r.add_argument("out", type=Path)
    r.add_argument("--radius", type=int, default=9)
    r.add_argument("--eps", type=float, default=1e-3)
    e = sub.add_parser("eval")
    e.add_argument("pred", type=Path)
    e.add_argument("gt", type=Path)
    sub.add_parser("help")
    args = parser.parse_args(argv)
    if args.command == "refine":
        refine(args.images, args.masks, args.out, args.radius, args.eps)
    elif args.command == "eval":
        evaluate(args.pred, args.gt)


if __name__ == "__main__":
    main(sys.argv[1:])
