"""Training throughput at the paper's configuration, and what a full run would cost.

    python benchmarks/bench_train.py [--steps 3] [--backbone dino_vits8] [--crop paper] [--json FILE]

Times :func:`paperlib.train.train_step` (frozen backbone forward on the image and on the
zoomed crop, head forward and backward, AdamW) at batch 8, 320 x 320, on whatever device runs
it, and reports samples per second, peak memory, and the estimated wall time of the paper's
30 epochs on DUTS-TR (10,553 images; with the default 5 % held out for validation, 10,025
train: 37,590 steps of 8). The backbone's weights do not change
the arithmetic, so when no checkpoint is given the DINO architecture is built with random
weights -- labelled as such -- which times exactly the same work.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch

DUTS_TR_IMAGES = 10_553   # paper Sec. 5.2
EPOCHS = 30               # paper Sec. 5.1


def main() -> None:
    from paperlib.backbones import load_backbone
    from paperlib.head import SempartHead
    from paperlib.train import train_step
    from paperlib.train_data import split_indices
    from paperlib.train_config import config_from

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps (after one warm-up)")
    parser.add_argument("--backbone", default="dino_vits8")
    parser.add_argument("--weights", help="backbone checkpoint; default: random weights (timing only)")
    parser.add_argument("--crop", default="paper", choices=("paper", "official", "none"))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=320)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", help="write the results")
    args = parser.parse_args()

    device = torch.device(args.device)
    config = config_from("paper", backbone=args.backbone, crop=args.crop, batch_size=args.batch_size,
                         image_size=args.image_size, device=args.device)
    if args.weights:
        backbone = load_backbone(args.backbone, weights=args.weights, device=device)
    elif args.backbone.startswith("filterbank"):
        backbone = load_backbone(args.backbone, device=device)
    else:
        backbone = load_backbone(args.backbone, device=device, _random_init=True)
    torch.manual_seed(0)
    head = SempartHead(dim=backbone.dim, patch_size=backbone.patch_size).to(device).train()
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr, betas=config.betas,
                                  weight_decay=config.weight_decay)
    images = torch.rand(args.batch_size, 3, args.image_size, args.image_size, device=device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    train_step(head, backbone, optimizer, images, config=config, step=0)   # warm-up
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        train_step(head, backbone, optimizer, images, config=config, step=step)
    sync()
    seconds_per_step = (time.perf_counter() - start) / args.steps
    samples_per_second = args.batch_size / seconds_per_step
    n_train = len(split_indices(DUTS_TR_IMAGES, seed=config.seed,
                                val_fraction=config.val_fraction if config.select_on == "val" else 0.0)[0])
    steps_full = EPOCHS * (n_train // args.batch_size)   # the trainer drops a last partial batch
    peak = (torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    result = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else f"cpu x{torch.get_num_threads()} threads",
        "backbone": args.backbone, "weights": args.weights or "random (timing only)",
        "crop": args.crop, "batch_size": args.batch_size, "image_size": args.image_size,
        "amp_bf16": bool(config.amp and device.type == "cuda"),
        "seconds_per_step": seconds_per_step, "samples_per_second": samples_per_second,
        "peak_memory_gib": peak, "peak_memory_kind": "GPU allocated" if device.type == "cuda" else "process RSS",
        "full_run_steps": steps_full, "full_run_hours": steps_full * seconds_per_step / 3600,
    }
    for key, value in result.items():
        print(f"{key:20s} {value:.4g}" if isinstance(value, float) else f"{key:20s} {value}")
    if args.json:
        from paperlib.evaluate import write_json

        write_json(args.json, result)


if __name__ == "__main__":
    main()
