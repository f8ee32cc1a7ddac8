"""Speed of trick 1 and of the metrics, side by side with the reference tools, in one run.

    python benchmarks/bench_refine.py [--repeat 5] [--json FILE]

Guided filter (paper settings r=9, eps=1e-3, grey guide, 320 x 320, batch 8): paperlib
(torch, count border) vs OpenCV's ximgproc.guidedFilter (looped over the batch) vs kornia's
guided_blur. Saliency metrics on 400 x 300 masks: paperlib's SaliencyMetrics vs pysodmetrics
(F-measure + MAE). Reports the median time of each and the ratio to the reference.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch


def _median_seconds(fn, repeat: int) -> float:
    fn()                                   # warm-up: allocations, lazy imports
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_guided_filter(repeat: int, device: str) -> dict:
    import cv2
    import kornia

    from paperlib.refine.guided_filter import PAPER_GF, guided_filter

    r, eps = PAPER_GF.radius, PAPER_GF.eps

    rng = np.random.default_rng(0)
    guide = rng.random((8, 1, 320, 320), dtype=np.float32)
    src = rng.random((8, 1, 320, 320), dtype=np.float32)
    g, s = torch.from_numpy(guide).to(device), torch.from_numpy(src).to(device)

    def ours():
        guided_filter(g, s, radius=r, eps=eps)
        if device == "cuda":
            torch.cuda.synchronize()

    def opencv():
        for b in range(8):
            cv2.ximgproc.guidedFilter(guide[b, 0], src[b, 0], r, eps)

    def korn():
        kornia.filters.guided_blur(g, s, 2 * r + 1, eps)
        if device == "cuda":
            torch.cuda.synchronize()

    out = {name: _median_seconds(fn, repeat) for name, fn in
           (("paperlib", ours), ("opencv_ximgproc", opencv), ("kornia", korn))}
    return out


def bench_metrics(repeat: int, n_images: int = 200) -> dict:
    import py_sod_metrics

    from paperlib.eval.metrics import SaliencyMetrics

    rng = np.random.default_rng(0)
    preds = [rng.random((300, 400), dtype=np.float32) for _ in range(8)]
    gts = [(rng.random((300, 400)) > 0.7) for _ in range(8)]
    preds_u8 = [np.rint(p * 255).astype(np.uint8) for p in preds]
    gts_u8 = [g.astype(np.uint8) * 255 for g in gts]

    def ours():
        m = SaliencyMetrics()
        for i in range(n_images):
            m.update(preds[i % 8], gts[i % 8])
        m.compute()

    def reference():
        fm, mae = py_sod_metrics.Fmeasure(), py_sod_metrics.MAE()
        for i in range(n_images):
            fm.step(pred=preds_u8[i % 8], gt=gts_u8[i % 8])
            mae.step(pred=preds_u8[i % 8], gt=gts_u8[i % 8])
        fm.get_results()
        mae.get_results()

    return {"paperlib": _median_seconds(ours, repeat), "pysodmetrics": _median_seconds(reference, repeat),
            "n_images": n_images}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", help="write the results")
    args = parser.parse_args()
    gf = bench_guided_filter(args.repeat, args.device)
    mt = bench_metrics(args.repeat)
    print(f"machine: {platform.processor() or platform.machine()}, torch threads "
          f"{torch.get_num_threads()}, device {args.device}")
    print("guided filter, batch 8 x 320 x 320, r=9, eps=1e-3 (median seconds; ratio = time / paperlib)")
    for name, t in gf.items():
        print(f"  {name:16s} {t * 1e3:9.1f} ms   x{t / gf['paperlib']:.2f}")
    print(f"saliency metrics, {mt['n_images']} masks of 400 x 300 (median seconds)")
    for name in ("paperlib", "pysodmetrics"):
        print(f"  {name:16s} {mt[name] * 1e3:9.1f} ms   x{mt[name] / mt['paperlib']:.2f}")
    if args.json:
        from paperlib.eval.folders import write_json

        write_json(args.json, {"device": args.device, "guided_filter": gf, "metrics": mt})


if __name__ == "__main__":
    main()
