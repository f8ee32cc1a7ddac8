"""The ``paperlib paper`` command: the whole paper on a GPU machine (see :mod:`paperlib.reproduce.run`).

Public API
----------
``add_paper(sub)``
    register ``paper`` on the sub-parsers of :func:`paperlib.cli.main.build_parser`.
"""

from __future__ import annotations

from pathlib import Path


def add_paper(sub) -> None:
    """Register ``paper``: data, weights, training, Tables 1-5, Figs. 6-8 and the book in one run."""
    p = sub.add_parser("paper", help="the whole paper: data, training runs, Tables 1-5, Figs. 6-8, the book",
                       description="Downloads (or verifies) the official datasets, trains the ablation heads, "
                                   "runs every notebook and builds the book; prints a measured cost "
                                   "estimate first. Interrupted runs continue where they stopped.")
    p.add_argument("--data-root", required=True, type=Path, help="folder of the official datasets")
    p.add_argument("--weights-dir", required=True, type=Path,
                   help="folder with the official backbone files (dino_deitsmall8_pretrain.pth, ...)")
    p.add_argument("--tag", default="paper", help="names every output (default paper: full official sets only)")
    p.add_argument("--archives", type=Path, help="folder of dataset archives fetched by hand (official names)")
    p.add_argument("--mirror", help="base URL of a mirror holding the official archive names")
    p.add_argument("--sha256", action="append", default=[], metavar="FILE=HEX",
                   help="expected SHA-256 of an archive, overriding the published or recorded one (repeatable)")
    p.add_argument("--move-masks", type=Path, help="MOVE's saved masks, one folder per test set (Table 5)")
    p.add_argument("--backbones", default="dino_vits8,dino_vits16,ibot_vits16",
                   help="Table 3's backbones, dino_vits8 first (default: the paper's three)")
    p.add_argument("--max-steps", type=int, help="cap on each run's training steps (default: 30 epochs)")
    p.add_argument("--limit", type=int, help="images scored per dataset (default: all)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="another TrainConfig field for every run (e.g. image_size=64 for a rehearsal)")
    p.add_argument("--workdir", type=Path, help="where figures/ and results/ go (default: the repository root)")
    p.add_argument("--device", help="torch device for the cost estimate (default: CUDA when present)")
    p.add_argument("--no-estimate", action="store_true", help="skip the timed cost estimate")
    p.add_argument("--dry-run", action="store_true", help="check data and weights, print the plan and the cost")
    p.set_defaults(run=_run)


def _run(args) -> int:
    from ..checks import require
    from ..reproduce.plan import PaperPlan
    from ..reproduce.run import run_paper
    from ..train.config import parse_field

    overrides = {}
    for item in args.set:
        require("=" in item, f"--set expects FIELD=VALUE, got {item!r}")
        name, text = (part.strip() for part in item.split("=", 1))
        overrides[name] = parse_field(name, text)
    digests = {}
    for item in args.sha256:
        require("=" in item, f"--sha256 expects FILE=HEX, got {item!r}")
        filename, digest = (part.strip() for part in item.split("=", 1))
        digests[filename] = digest
    plan = PaperPlan(data_root=args.data_root.expanduser(), weights_dir=args.weights_dir.expanduser(), tag=args.tag,
                     archives=args.archives, mirror=args.mirror, sha256=digests, move_masks=args.move_masks,
                     backbones=tuple(b.strip() for b in args.backbones.split(",") if b.strip()),
                     max_steps=args.max_steps, limit=args.limit, train_overrides=overrides)
    run_paper(plan, progress=not args.quiet, dry_run=args.dry_run, estimate_cost=not args.no_estimate,
              device=args.device, workdir=args.workdir, run_command=args.cli_main)
    return 0
