"""Training throughput at the paper's configuration, and what a full run would cost.

    python benchmarks/bench_train.py [--variants fp32,bf16,bf16-cl,bf16-cl-compile] [--steps 3]
                                     [--backbone dino_vits8] [--crop paper] [--json FILE]

Times :func:`paperlib.train.step.train_step` (frozen backbone forward on the image and on the
zoomed crop, head forward and backward, AdamW) at batch 8, 320 x 320, on whatever device runs
it, once per speed variant (float32; bf16 autocast; + channels-last; + torch.compile), side by
side with ratios to the first. For each it reports seconds per step, samples per second, peak
memory, the achieved TFLOP/s, and the estimated wall time of the paper's 30 epochs on DUTS-TR
(10,553 images; with the default 5 % held out for validation, 10,025 train: 37,590 steps of 8).

It also measures how many images one DataLoader worker reads and augments per second, and so
how many workers the fastest variant needs (``--num-workers`` of training; the default on CUDA
is min(8, CPUs)).

The arithmetic of one step is counted once with ``torch.utils.flop_counter`` (attention through
the math kernel so that every matmul is seen), which is what the TFLOP/s figures divide. The
backbone forward is also timed both ways, :meth:`Backbone.features` (all blocks) against
:meth:`Backbone.keys` (stops at the last block's qkv, what training uses).

The backbone's weights do not change the arithmetic, so when no checkpoint is given the DINO
architecture is built with random weights -- labelled as such -- which times exactly the same
work. On a CPU the default is the float32 variant alone (bf16 autocast and compilation pay on
GPUs; pass --variants to time them here too).
"""

from __future__ import annotations

import argparse
import math
import resource
import time

import torch

DUTS_TR_IMAGES = 10_553   # paper Sec. 5.2
EPOCHS = 30               # paper Sec. 5.1

# name -> TrainConfig fields
VARIANTS = {
    "fp32": dict(amp="off"),
    "bf16": dict(amp="bf16"),
    "bf16-cl": dict(amp="bf16", channels_last=True),
    "bf16-cl-compile": dict(amp="bf16", channels_last=True, compile=True),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20   # Linux: KiB


def _fresh_head(backbone, config, device):
    from paperlib.model.head import SempartHead

    torch.manual_seed(0)
    head = SempartHead(dim=backbone.dim, patch_size=backbone.patch_size).to(device).train()
    if config.channels_last:
        head = head.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr, betas=config.betas,
                                  weight_decay=config.weight_decay)
    return (torch.compile(head) if config.compile else head), optimizer


def count_step_flops(backbone, config, images) -> float:
    """Floating-point operations of one training step (forward, backward; multiply-add = 2)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from paperlib.train.config import config_from
    from paperlib.train.step import train_step

    plain = config_from("paper", **{**config.to_dict(), "amp": "off", "compile": False, "channels_last": False})
    head, optimizer = _fresh_head(backbone, plain, images.device)
    counter = FlopCounterMode(display=False)
    # The fused attention kernels of CPUs are not in the counter's table; the math kernel is.
    with sdpa_kernel(SDPBackend.MATH), counter:
        train_step(head, backbone, optimizer, images, config=plain, step=0)
    return float(counter.get_total_flops())


def time_variant(backbone, config, images, steps: int) -> dict:
    """Seconds per step and peak memory of ``steps`` train steps after the warm-up steps.

    Two warm-up steps (allocator, cuDNN autotuning); six with torch.compile, whose first
    steps compile the two BatchNorm modes' graphs and then keep tuning (measured on a CPU:
    10.3, 6.2, 2.6, 1.8, 1.7, 0.7 s for the first six bf16 steps at 64 px).
    """
    from paperlib.train.step import train_step

    device = images.device
    head, optimizer = _fresh_head(backbone, config, device)
    warmup = 6 if config.compile else 2
    for step in range(warmup):
        train_step(head, backbone, optimizer, images, config=config, step=step)
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for step in range(warmup, warmup + steps):
        train_step(head, backbone, optimizer, images, config=config, step=step)
    _sync(device)
    return {"seconds_per_step": (time.perf_counter() - start) / steps, "peak_memory_gib": _peak_memory_gib(device)}


def time_backbone(backbone, images, amp_dtype, repeats: int = 3) -> dict:
    """Median seconds of features() and keys() on the batch."""
    out = {}
    for name in ("features", "keys"):
        fn = getattr(backbone, name)
        fn(images, autocast=amp_dtype)   # warm-up
        times = []
        for _ in range(repeats):
            _sync(images.device)
            start = time.perf_counter()
            fn(images, autocast=amp_dtype)
            _sync(images.device)
            times.append(time.perf_counter() - start)
        out[f"backbone_{name}_seconds"] = sorted(times)[len(times) // 2]
    out["keys_speedup"] = out["backbone_features_seconds"] / out["backbone_keys_seconds"]
    return out


def time_augmentation(data_root: str | None, config, n: int = 48) -> float:
    """Images per second one DataLoader worker reads and augments (docs/paper_and_code.md#training).

    From ``data_root``'s DUTS-TR when given, else from a synthetic DUTS-TR of ``n`` images.
    """
    import tempfile

    from paperlib.data.saliency import open_dataset
    from paperlib.data.synth import synthesize
    from paperlib.train.data import AugmentedDataset

    with tempfile.TemporaryDirectory() as tmp:
        if data_root is None:
            synthesize(tmp, n=n, seed=0, split="tr", progress=False)
        dataset = open_dataset("duts-tr", data_root or tmp)
        augmented = AugmentedDataset(dataset, config, epoch=0)
        augmented[0]   # imports and first-call set-up
        count = min(n, len(dataset))
        start = time.perf_counter()
        for i in range(count):
            augmented[i]
        return count / (time.perf_counter() - start)


def main() -> None:
    from paperlib.backbones.registry import load_backbone
    from paperlib.train.config import config_from
    from paperlib.train.data import split_indices
    from paperlib.train.runtime import autocast_dtype

    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS) if cuda else "fp32",
                        help=f"comma-separated, from {', '.join(VARIANTS)} (default: all on CUDA, fp32 on CPU)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant (after the warm-up steps)")
    parser.add_argument("--backbone", default="dino_vits8")
    parser.add_argument("--weights", help="backbone checkpoint; default: random weights (timing only)")
    parser.add_argument("--crop", default="paper", choices=("paper", "official", "none"))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=320)
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    parser.add_argument("--no-flops", action="store_true", help="skip the FLOP count (one extra step)")
    parser.add_argument("--data-root", help="folder with DUTS-TR/ for the data-loading rate (default: synthetic)")
    parser.add_argument("--json", help="write the results")
    args = parser.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown or not variants:
        parser.error(f"--variants: unknown {', '.join(unknown) or '(empty)'}; choose from {', '.join(VARIANTS)}")

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True   # as paperlib.train.loop.train sets it (fixed shapes)
    base = config_from("paper", backbone=args.backbone, crop=args.crop, batch_size=args.batch_size,
                       image_size=args.image_size, device=args.device)
    if args.weights:
        backbone = load_backbone(args.backbone, weights=args.weights, device=device)
    elif args.backbone.startswith("filterbank"):
        backbone = load_backbone(args.backbone, device=device)
    else:
        backbone = load_backbone(args.backbone, device=device, _random_init=True)
    images = torch.rand(args.batch_size, 3, args.image_size, args.image_size, device=device,
                        generator=torch.Generator(device).manual_seed(0))

    n_train = len(split_indices(DUTS_TR_IMAGES, seed=base.seed,
                                val_fraction=base.val_fraction if base.select_on == "val" else 0.0)[0])
    steps_full = EPOCHS * (n_train // args.batch_size)   # the trainer drops a last partial batch
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda"
        else f"cpu x{torch.get_num_threads()} threads",
        "torch": torch.__version__, "backbone": args.backbone, "weights": args.weights or "random (timing only)",
        "crop": args.crop, "batch_size": args.batch_size, "image_size": args.image_size,
        "full_run_steps": steps_full,
    }
    flops = None if args.no_flops else count_step_flops(backbone, base, images)
    result["step_tflop"] = None if flops is None else flops / 1e12
    result.update(time_backbone(backbone, images, autocast_dtype(VARIANTS[variants[-1]]["amp"], device)))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # a DataLoader worker runs single-threaded
    try:
        result["augment_images_per_second_per_worker"] = time_augmentation(args.data_root, base)
    finally:
        torch.set_num_threads(threads)

    rows = []
    for name in variants:
        config = config_from("paper", **{**base.to_dict(), **VARIANTS[name]})
        timing = time_variant(backbone, config, images, args.steps)
        s = timing["seconds_per_step"]
        rows.append({"variant": name, **timing, "samples_per_second": args.batch_size / s,
                     "achieved_tflops": None if flops is None else flops / s / 1e12,
                     "full_run_hours": steps_full * s / 3600,
                     "speedup": rows[0]["seconds_per_step"] / s if rows else 1.0})
    result["variants"] = rows
    fastest = max(r["samples_per_second"] for r in rows)
    result["workers_to_feed_fastest"] = math.ceil(fastest / result["augment_images_per_second_per_worker"])

    for key, value in result.items():
        if key != "variants":
            print(f"{key:38s} {value:.4g}" if isinstance(value, float) else f"{key:38s} {value}")
    print(f"\n{'variant':18s} {'s/step':>8s} {'img/s':>8s} {'peak GiB':>9s} {'TFLOP/s':>8s} "
          f"{'30 ep (h)':>10s} {'speedup':>8s}")
    for r in rows:
        tflops = "-" if r["achieved_tflops"] is None else f"{r['achieved_tflops']:.3g}"
        print(f"{r['variant']:18s} {r['seconds_per_step']:8.3g} {r['samples_per_second']:8.3g} "
              f"{r['peak_memory_gib']:9.3g} {tflops:>8s} {r['full_run_hours']:10.3g} {r['speedup']:8.2f}")
    if device.type != "cuda":
        print("(peak memory on a CPU is the process's maximum resident set, cumulative over variants)")
    if args.json:
        from paperlib.eval.folders import write_json

        write_json(args.json, result)


if __name__ == "__main__":
    main()
