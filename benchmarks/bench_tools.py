"""paperlib beside the tools people would otherwise use: one table, measured side by side.

    python benchmarks/bench_tools.py [--rounds 5] [--images 100] [--metric-masks 1000] [--data DIR]
                                     [--only gf,commands,metrics,ncut,bs,throughput] [--json FILE] [--markdown FILE]
                                     [--tokencut DIR]

Every row times paperlib and its reference on the same inputs in the same process (commands:
the same machine, one after the other), interleaved round by round, and reports the medians
and their ratio (paperlib / reference: below 1, paperlib is faster) beside the goal of issue
11. Inputs are real: DUTS-TE photos and their ground truth from ``--data`` (the sample in the
official layout), the soft masks a patch-level method gives (ground truth at 1/8 resolution,
upsampled bilinearly), resized to 320 x 320 where a row says so. With no real data the rows
that need photos are skipped and say so.

Rows: the guided filter (paper settings r = 9, eps = 1e-3, gray guide) on a batch of 8
320 x 320 masks and on one 1024 x 1024, on the path ``refine`` / ``eval --refine gf`` / the
teacher target run (``guided_filter`` without gradients on a CPU) and on the differentiable
torch path, against OpenCV's ximgproc.guidedFilter looped (its border is ``reflect``; the
paper's is ``count``, both shown); ``paperlib refine`` and ``paperlib eval-masks`` over a
folder against the scripts of benchmarks/reference_scripts.py (wall time and peak memory of
the process); ``--help`` start-up; the metrics against pysodmetrics on 1,000 masks; the
normalized-cut eigenvector (TokenCut's graph on the filter bank's keys of a photo)
against the dense generalized ``scipy.linalg.eigh`` that TokenCut calls; the fast bilateral solver
(both bandwidth presets, 320 x 320 and 640 x 480) against TokenCut's released solver, read from a
TokenCut checkout given by ``--tokencut DIR`` (or $TOKENCUT_DIR; the row is skipped without one:
its code is not part of paperlib), with the largest difference of the two outputs. Threads: one
per library (OpenCV, torch, BLAS) so that ratios compare algorithms.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(contenders: dict, rounds: int) -> dict[str, float]:
    """Median seconds of each contender, run in turn each round after one warm-up round."""
    for fn in contenders.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            times[name].append(_time(fn))
    return {name: statistics.median(t) for name, t in times.items()}


def run_command(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of one command, run in a fresh process."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
             "t = time.perf_counter() - t; "
             "print(t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, rc)")
    out = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, check=True)
    seconds, mib, rc = out.stdout.split()
    if rc != "0":
        raise RuntimeError(f"{' '.join(argv)} exited {rc}")
    return float(seconds), float(mib)


def commands_interleaved(contenders: dict[str, list[str]], rounds: int, before=None) -> dict[str, dict]:
    """Median wall time and peak memory of each command, in turn each round."""
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    memory: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, argv in contenders.items():
            if before:
                before()
            s, m = run_command(argv)
            seconds[name].append(s)
            memory[name].append(m)
    return {name: {"seconds": statistics.median(seconds[name]), "peak_mib": max(memory[name])}
            for name in contenders}


# ----------------------------------------------------------------------------------------- inputs

def real_inputs(data: Path, n: int):
    """(images uint8, soft masks float32, ground truth bool) of the first n DUTS-TE pairs."""
    from paperlib.data.degrade import degrade_mask
    from paperlib.images import list_images, read_image, read_mask

    images = list_images(data / "DUTS-TE" / "DUTS-TE-Image")
    masks = list_images(data / "DUTS-TE" / "DUTS-TE-Mask")
    stems = sorted(set(images) & set(masks))[:n]
    photos = [read_image(images[s]) for s in stems]
    truth = [read_mask(masks[s]) > 0.5 for s in stems]
    soft = [degrade_mask(t.astype(np.float32), "down8") for t in truth]
    return stems, photos, soft, truth


def resized(arrays, size):
    import cv2
    return [cv2.resize(a.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA) for a in arrays]


# ------------------------------------------------------------------------------------------- rows

def rows_guided_filter(photos, soft, rounds: int) -> list[dict]:
    import cv2
    import cv2.ximgproc  # noqa: F401
    import torch

    from paperlib.refine import gf_image
    from paperlib.refine.gf_image import KERNEL, guided_filter_image
    from paperlib.refine.guided_filter import guided_filter
    from paperlib.refine.settings import PAPER_GF

    r, eps = PAPER_GF.radius, PAPER_GF.eps
    guides = resized([p.mean(axis=2) / 255 for p in photos[:8]], 320)
    srcs = resized(soft[:8], 320)
    g = torch.from_numpy(np.stack(guides))[:, None]
    s = torch.from_numpy(np.stack(srcs))[:, None]
    s_grad = s.clone().requires_grad_()

    def opencv():
        for guide, src in zip(guides, srcs):
            cv2.ximgproc.guidedFilter(guide, src, r, eps)

    def fast(border):
        def run():
            with torch.no_grad():
                guided_filter(g, s, radius=r, eps=eps, border=border)
        return run

    def forward_backward():
        guided_filter(g, s_grad, radius=r, eps=eps).sum().backward()
        s_grad.grad = None

    def one_by_one():
        for guide, src in zip(guides, srcs):
            guided_filter_image(guide, src, radius=r, eps=eps)

    def without_kernel():     # an install without a C compiler: OpenCV's box filters
        kernel, gf_image._gf_count = gf_image._gf_count, None
        try:
            one_by_one()
        finally:
            gf_image._gf_count = kernel

    # The count border's path: the compiled kernel where this install has it (setup.py).
    path = "compiled kernel" if KERNEL else "OpenCV box filters, no compiled kernel in this install"
    candidates = {"count": fast("count"), "reflect": fast("reflect"), "single": one_by_one,
                  "opencv": opencv, "torch": lambda: guided_filter(g, s_grad, radius=r, eps=eps),
                  "torch_fb": forward_backward}
    if KERNEL:
        candidates["no_kernel"] = without_kernel
    times = interleaved(candidates, rounds)
    ref = times["opencv"] / 8
    rows = [
        _row(f"guided filter, 8 x 320², count border (the paper's), a batch: the crop-zoom teacher's target "
             f"({path})", times["count"] / 8,
             "OpenCV ximgproc.guidedFilter, looped", ref, "<= 1.0", unit="ms/img"),
        _row("the same, reflect border (OpenCV's rule; OpenCV box filters, four images per call)", times["reflect"] / 8,
             "OpenCV ximgproc.guidedFilter, looped", ref, "<= 1.0", unit="ms/img"),
        _row(f"the same 8 images one at a time, count border: the path of `refine`, `segment`, "
             f"`eval --refine gf` ({path})", times["single"] / 8,
             "OpenCV ximgproc.guidedFilter, looped", ref, "<= 1.0", unit="ms/img"),
    ]
    if KERNEL:
        rows.append(_row("the same without the compiled kernel (an install without a C compiler: "
                         "OpenCV box filters)", times["no_kernel"] / 8,
                         "OpenCV ximgproc.guidedFilter, looped", ref, "-", unit="ms/img"))
    rows += [
        _row(f"guided filter, 8 x 320², differentiable path (autograd; on a CPU the forward by the {path}), "
             "forward", times["torch"] / 8, "OpenCV ximgproc.guidedFilter, looped", ref, "<= 2.0", unit="ms/img"),
        _row("the same, forward and backward (gradient of the mask, by OpenCV box filters; OpenCV has no "
             "backward)", times["torch_fb"] / 8,
             "OpenCV ximgproc.guidedFilter forward, looped", ref, "-", unit="ms/img"),
    ]
    big_guide = resized([photos[0].mean(axis=2) / 255], 1024)[0]
    big_src = resized([soft[0]], 1024)[0]
    times = interleaved({"ours": lambda: guided_filter_image(big_guide, big_src, radius=r, eps=eps),
                         "opencv": lambda: cv2.ximgproc.guidedFilter(big_guide, big_src, r, eps)}, rounds)
    rows.append(_row(f"guided filter, 1024², count border, `refine` path ({path})", times["ours"],
                     "OpenCV ximgproc.guidedFilter", times["opencv"], "<= 1.0", unit="ms"))
    return rows


def _write_folders(work: Path, stems, photos, soft, truth) -> None:
    from paperlib.images import write_image, write_mask_png

    for stem, photo, mask, gt in zip(stems, photos, soft, truth):
        write_image(work / "images" / f"{stem}.jpg", photo)
        write_mask_png(work / "masks" / f"{stem}.png", mask)
        write_mask_png(work / "gt" / f"{stem}.png", gt.astype(np.float32))


def rows_commands(stems, photos, soft, truth, rounds: int) -> list[dict]:
    import shutil

    paperlib = str(BIN / "paperlib")
    script = [sys.executable, str(ROOT / "benchmarks" / "reference_scripts.py")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _write_folders(work, stems, photos, soft, truth)

        def clear():
            for name in ("out_ours", "out_ref"):
                shutil.rmtree(work / name, ignore_errors=True)

        n = len(stems)
        refine = commands_interleaved({
            "ours": [paperlib, "-q", "refine", "--images", str(work / "images"), "--masks", str(work / "masks"),
                     "--out", str(work / "out_ours")],
            "ref": [*script, "refine", str(work / "images"), str(work / "masks"), str(work / "out_ref")],
        }, rounds, before=clear)
        evaluate = commands_interleaved({
            "ours": [paperlib, "-q", "eval-masks", "--pred", str(work / "masks"), "--gt", str(work / "gt")],
            "ref": [*script, "eval", str(work / "masks"), str(work / "gt")],
        }, rounds)
    helps = commands_interleaved({"top": [paperlib, "--help"], "refine": [paperlib, "refine", "--help"],
                                  "train": [paperlib, "train", "--help"], "ref": [*script, "help", "--help"]},
                                 rounds)
    rows = [
        _row(f"`paperlib refine`, {n} DUTS-TE photos, end to end", refine["ours"]["seconds"],
             "OpenCV script (reference_scripts.py refine)", refine["ref"]["seconds"], "<= 1.0", unit="s",
             memory=(refine["ours"]["peak_mib"], refine["ref"]["peak_mib"])),
        _row(f"`paperlib eval-masks`, {n} masks, end to end", evaluate["ours"]["seconds"],
             "OpenCV + pysodmetrics script", evaluate["ref"]["seconds"], "<= 1.0", unit="s",
             memory=(evaluate["ours"]["peak_mib"], evaluate["ref"]["peak_mib"])),
    ]
    for name, label in (("top", "`paperlib --help`"), ("refine", "`paperlib refine --help`"),
                        ("train", "`paperlib train --help`")):
        rows.append(_row(label, helps[name]["seconds"], "an argparse script's --help", helps["ref"]["seconds"],
                         "< 0.5 s", unit="s", memory=(helps[name]["peak_mib"], helps["ref"]["peak_mib"])))
    return rows


def rows_metrics(soft, truth, rounds: int, n_masks: int = 1000) -> list[dict]:
    import py_sod_metrics

    from paperlib.eval.metrics import SaliencyMetrics

    preds = resized(soft, 320)
    gts = [g > 0.5 for g in resized(truth, 320)]
    preds_u8 = [np.rint(p * 255).astype(np.uint8) for p in preds]   # 8-bit PNGs as both read them
    gts_u8 = [g.astype(np.uint8) * 255 for g in gts]
    k = len(preds)

    def ours():
        m = SaliencyMetrics()
        for i in range(n_masks):
            m.update(preds_u8[i % k], gts_u8[i % k])
        m.compute()

    def reference():
        fm, mae = py_sod_metrics.Fmeasure(), py_sod_metrics.MAE()
        for i in range(n_masks):
            fm.step(pred=preds_u8[i % k], gt=gts_u8[i % k])
            mae.step(pred=preds_u8[i % k], gt=gts_u8[i % k])
        fm.get_results()
        mae.get_results()

    times = interleaved({"ours": ours, "ref": reference}, rounds)
    return [_row(f"metrics (Acc, IoU, max F, MAE), {n_masks} masks 320²", times["ours"],
                 "pysodmetrics Fmeasure + MAE", times["ref"], "<= 0.2", unit="s")]


def rows_ncut(photos, rounds: int) -> list[dict]:
    import cv2
    import scipy.linalg

    from paperlib.backbones.features import image_tensor
    from paperlib.backbones.registry import load_backbone
    from paperlib.losses.ncut import affinity, second_smallest_eigenvector

    rows = []
    backbone = load_backbone("filterbank")                   # weight-free keys of a real photo
    for side in (320, 480):                                  # N = 1600, 3600 tokens at patch 8
        image = cv2.resize(photos[0], (side, side), interpolation=cv2.INTER_AREA)
        W = affinity(backbone.keys(image_tensor(image)))[0]   # TokenCut's graph (tau 0.2), as built
        n = W.shape[0]
        A = W.double().numpy()                                 # TokenCut's own float64 copy
        D = np.diag(A.sum(1))

        def tokencut():
            scipy.linalg.eigh(D - A, D, subset_by_index=[1, 2])

        times = interleaved({"ours": lambda: second_smallest_eigenvector(W),
                             "ref": tokencut}, max(1, rounds // 2) if n > 2000 else rounds)
        rows.append(_row(f"normalized-cut eigenvector, N = {n}", times["ours"],
                         "scipy.linalg.eigh(D - W, D), TokenCut's call", times["ref"],
                         "<= 0.05" if n == 1600 else "-", unit="ms"))
    return rows


def load_tokencut_solver(checkout: Path):
    """TokenCut's released ``bilateral_solver.py`` from a checkout, as a module. Its call of
    scipy's ``cg(..., tol=)`` predates scipy 1.14, which renamed the keyword ``rtol``: the module
    gets a ``cg`` that passes it on under the new name (nothing else changes)."""
    import importlib.util

    import scipy.sparse.linalg

    path = checkout / "unsupervised_saliency_detection" / "bilateral_solver.py"
    if not path.is_file():
        raise SystemExit(f"--tokencut {checkout}: no unsupervised_saliency_detection/bilateral_solver.py in it")
    spec = importlib.util.spec_from_file_location("tokencut_bilateral_solver", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.cg = lambda *args, tol=None, **kwargs: scipy.sparse.linalg.cg(*args, rtol=tol, **kwargs)
    return module


def rows_bilateral_solver(photos, soft, rounds: int, checkout: Path) -> list[dict]:
    import cv2

    from paperlib.refine.bilateral_solver import OFFICIAL, TOKENCUT, bilateral_solve

    released = load_tokencut_solver(checkout)
    rows = []
    for size in ((320, 320), (640, 480)):
        image = cv2.resize(photos[0], size, interpolation=cv2.INTER_AREA)
        target = cv2.resize(soft[0], size, interpolation=cv2.INTER_LINEAR).astype(np.float64)
        for name, params in (("TokenCut's +BF, sigma 16/16/8", TOKENCUT), ("released defaults, sigma 24/4/4", OFFICIAL)):
            def theirs():
                grid = released.BilateralGrid(image, sigma_spatial=params.sigma_spatial,
                                              sigma_luma=params.sigma_luma, sigma_chroma=params.sigma_chroma)
                solver = released.BilateralSolver(grid, {"lam": params.lam, "A_diag_min": 1e-5,
                                                         "cg_tol": params.cg_tol, "cg_maxiter": params.cg_maxiter})
                h, w = target.shape
                return solver.solve(target.reshape(-1, 1), np.full((h * w, 1), params.confidence)).reshape(h, w)

            def ours():
                return bilateral_solve(image, target, params=params)

            difference = float(np.abs(ours() - theirs()).max())
            times = interleaved({"ours": ours, "ref": theirs}, rounds)
            rows.append(_row(f"bilateral solver, {size[0]} x {size[1]}, {name} (outputs differ by {difference:.0e})",
                             times["ours"], "TokenCut's released solver", times["ref"], "<= 0.5", unit="ms"))
    return rows


def throughput(photos, rounds: int) -> list[dict]:
    """Images per second on this machine of the work that has no outside reference: features of
    the `filterbank` backbone and of DINO ViT-S/8 (random weights: the same arithmetic as the real
    ones), TokenCut on the offline backbone at the photos' own size, and Sempart's evaluation
    (ViT-S/8 and an untrained head, the same arithmetic as a trained one)."""
    import cv2
    import torch

    from paperlib.backbones.features import image_tensor
    from paperlib.backbones.registry import load_backbone
    from paperlib.methods.registry import build_method
    from paperlib.methods.sempart import SempartMethod
    from paperlib.model.head import SempartHead
    from paperlib.model.sempart import SempartModel

    batch = torch.cat([image_tensor(cv2.resize(p, (320, 320), interpolation=cv2.INTER_AREA)) for p in photos[:8]])
    filterbank = load_backbone("filterbank", device="cpu")
    vit = load_backbone("dino_vits8", device="cpu", _random_init=True)
    tokencut = build_method("tokencut", backbone="filterbank", device="cpu")
    torch.manual_seed(0)      # an untrained head does the arithmetic of a trained one
    sempart = SempartMethod(SempartModel(SempartHead(vit.dim, vit.patch_size).eval(), vit))
    times = interleaved({"filterbank": lambda: filterbank.keys(batch), "vit": lambda: vit.keys(batch),
                         "tokencut": lambda: [tokencut.predict(p) for p in photos[:8]],
                         "sempart": lambda: sempart.predict_batch(photos[:8])}, max(1, rounds // 2))
    return [{"work": "features, `filterbank` (no weights), 8 x 320²", "images_per_s": 8 / times["filterbank"]},
            {"work": "keys, DINO ViT-S/8 (random weights, same arithmetic), 8 x 320²", "images_per_s": 8 / times["vit"]},
            {"work": "TokenCut on `filterbank`, DUTS-TE photos at their size (~400 x 300)",
             "images_per_s": 8 / times["tokencut"]},
            {"work": "Sempart evaluation (ViT-S/8 + head, the default protocol), batches of 8 photos",
             "images_per_s": 8 / times["sempart"]}]


def _row(work, ours, reference, theirs, goal, *, unit, memory=None) -> dict:
    scale = {"ms": 1e3, "ms/img": 1e3, "s": 1.0}[unit]
    return {"work": work, "paperlib": ours * scale, "reference": reference, "reference_time": theirs * scale,
            "unit": unit, "ratio": ours / theirs, "goal": goal,
            "peak_mib": None if memory is None else {"paperlib": memory[0], "reference": memory[1]}}


def markdown(rows: list[dict], machine: str, command: str, rates: list[dict] = ()) -> str:
    lines = [f"Measured with `{command}` on {machine}. Ratio = paperlib / reference "
             f"(below 1: paperlib is faster).", "",
             "| work | paperlib | reference | ratio | goal |", "|---|---|---|---|---|"]
    for r in rows:
        mem = r["peak_mib"]
        ours = f"{r['paperlib']:.3g} {r['unit']}" + (f", {mem['paperlib']:.0f} MiB" if mem else "")
        ref = f"{r['reference']}: {r['reference_time']:.3g} {r['unit']}" + (f", {mem['reference']:.0f} MiB" if mem else "")
        lines.append(f"| {r['work']} | {ours} | {ref} | {r['ratio']:.2f} | {r['goal']} |")
    if rates:
        lines += ["", "| work (no outside reference) | images/s |", "|---|---|"]
        lines += [f"| {r['work']} | {r['images_per_s']:.3g} |" for r in rates]
    return "\n".join(lines) + "\n"


def steady_allocator() -> bool:
    """Tell glibc's malloc to keep freed memory (no trimming, no mmap for buffers under 32 MiB).

    Code that allocates image-sized temporaries on every call, as OpenCV's guidedFilter does, runs
    at a speed that depends on the allocator's state: when glibc hands its 4 MiB temporaries back
    to the OS after each 1024 x 1024 call it took 32-35 ms a call in earlier runs of this script,
    when it keeps them 16-18 ms. Fixing the thresholds puts every
    contender in the second, fastest state for the whole run, whatever the rows before did; it
    can only flatter the reference tools (paperlib keeps its scratch memory between calls).
    Returns False where there is no glibc (the rows are then timed as the allocator falls).
    """
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3         # glibc's malloc.h
    return bool(libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per row (median taken)")
    parser.add_argument("--images", type=int, default=100, help="DUTS-TE pairs for the folder commands")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("PAPERLIB_DATA", ROOT.parent / "shared" / "data")),
                        help="datasets folder holding DUTS-TE in the official layout")
    parser.add_argument("--json", type=Path, help="write the rows as JSON")
    parser.add_argument("--markdown", type=Path, help="write the table as Markdown")
    parser.add_argument("--metric-masks", type=int, default=1000, help="masks scored in the metrics row")
    parser.add_argument("--only", default="gf,commands,metrics,ncut,bs,throughput", help="which groups of rows to run")
    parser.add_argument("--tokencut", type=Path, default=os.environ.get("TOKENCUT_DIR"),
                        help="a checkout of TokenCut (github.com/YangtaoWANG95/TokenCut): its released bilateral "
                             "solver is the reference of the 'bs' rows (skipped without it)")
    args = parser.parse_args(argv)

    import cv2
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    from paperlib.refine.gf_image import KERNEL

    steady = steady_allocator()
    only = set(args.only.split(","))
    machine = (f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, torch {torch.__version__}, "
               f"OpenCV {cv2.__version__}, guided-filter kernel {'compiled' if KERNEL else 'not compiled'}, "
               + ("glibc malloc keeping freed memory (steady_allocator)" if steady
                  else "the platform's malloc as it comes"))
    rows, rates = [], []
    have_data = (args.data / "DUTS-TE" / "DUTS-TE-Image").is_dir()
    if not have_data:
        print(f"no DUTS-TE under {args.data}: the rows on real photos are skipped", file=sys.stderr)
    else:
        stems, photos, soft, truth = real_inputs(args.data, max(args.images, 8))
        if "gf" in only:
            rows += rows_guided_filter(photos, soft, args.rounds)
        if "commands" in only:
            rows += rows_commands(stems[:args.images], photos[:args.images], soft[:args.images],
                                  truth[:args.images], max(1, args.rounds // 2))
        if "metrics" in only:
            rows += rows_metrics(soft, truth, args.rounds, args.metric_masks)
        if "ncut" in only:
            rows += rows_ncut(photos, args.rounds)
        if "bs" in only:
            if args.tokencut is None:
                print("no --tokencut checkout: the bilateral solver rows are skipped", file=sys.stderr)
            else:
                rows += rows_bilateral_solver(photos, soft, args.rounds, Path(args.tokencut).expanduser())
        if "throughput" in only:
            rates = throughput(photos, args.rounds)
    command = "python benchmarks/bench_tools.py " + " ".join(argv if argv is not None else sys.argv[1:])
    table = markdown(rows, machine, command.strip(), rates)
    print(table)
    if args.json:
        from paperlib.eval.folders import write_json
        write_json(args.json, {"machine": machine, "command": command.strip(), "rows": rows, "throughput": rates})
    if args.markdown:
        from paperlib.images import atomic_path
        with atomic_path(args.markdown) as tmp:
            tmp.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
