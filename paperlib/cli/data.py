"""The ``paperlib data`` sub-commands: download, verify, sample, synth, photos, degrade.

Public API
----------
``add_data(sub)``
    register ``data`` and its actions on the sub-parsers of :func:`paperlib.cli.main.build_parser`.
``PHOTOS``
    the scikit-image photos ``data photos`` writes.
"""

from __future__ import annotations

from pathlib import Path


def add_data(sub) -> None:
    """Register ``data`` with its actions: download, verify, sample, synth, photos, degrade."""
    p = sub.add_parser("data", help="download, verify, sample, synthesise or degrade datasets")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    d = dsub.add_parser("download", help="fetch an official dataset archive, check it, unpack it")
    d.add_argument("name", help="duts-tr, duts-te, dut-omron, ecssd, voc07, voc12, coco20k")
    d.add_argument("--root", required=True, type=Path, help="datasets folder")
    d.add_argument("--sha256", help="expected SHA-256: HEX for a one-archive dataset, or FILE=HEX")
    d.add_argument("--mirror", help="base URL of a mirror holding the same archive names")
    d.add_argument("--archive", action="append", default=[], type=Path, metavar="FILE",
                   help="an official archive fetched by hand, matched by its file name (repeatable); "
                        "checked and unpacked like a download, never moved or deleted")
    d.add_argument("--keep-archives", action="store_true", help="keep the archives after unpacking")
    d.set_defaults(run=_run_download)

    v = dsub.add_parser("verify", help="check a dataset folder: counts, pairs, readability, sizes")
    v.add_argument("name", help="duts-tr, duts-te, dut-omron, ecssd, voc07, voc12, coco20k")
    v.add_argument("--root", required=True, type=Path, help="datasets folder")
    v.add_argument("--subset", action="store_true",
                   help="accept fewer images than the official count (a sample of the dataset)")
    v.add_argument("--decode", action="store_true", help="decode every file fully (slower, finds truncation)")
    v.set_defaults(run=_run_verify)

    sa = dsub.add_parser("sample", help="copy every K-th image/mask pair of a full dataset (the README's samples)")
    sa.add_argument("name", help="duts-tr, duts-te, dut-omron, ecssd")
    sa.add_argument("--root", required=True, type=Path, help="datasets folder holding the full set")
    sa.add_argument("--out", required=True, type=Path, help="datasets folder to write the sample into")
    sa.add_argument("--every", type=int, help="take one pair in EVERY (default: 10 for duts-te, 25 for "
                                              "duts-tr, as the shared samples; 10 otherwise)")
    sa.add_argument("--offset", type=int, help="index of the first pair taken (default: 3 for duts-te and 7 "
                                               "for duts-tr with their default --every, as the shared "
                                               "samples; 0 otherwise)")
    sa.add_argument("--link", action="store_true", help="hard-link the files where possible instead of copying")
    sa.set_defaults(run=_run_sample)

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
    from ..data.release.download import download

    report = download(args.name, args.root, sha256=args.sha256, mirror=args.mirror, archives=args.archive,
                      keep_archives=args.keep_archives, progress=not args.quiet)
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1


def _run_verify(args) -> int:
    from ..data.release.verify import verify

    report = verify(args.name, args.root, expect_complete=not args.subset, decode=args.decode,
                    progress=not args.quiet)
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1


def _run_sample(args) -> int:
    from ..data.sample import sample_dataset

    report = sample_dataset(args.name, args.root, args.out, every=args.every, offset=args.offset,
                            link=args.link, progress=not args.quiet)
    for line in report.lines():
        print(line)
    return 0


def _run_synth(args) -> int:
    from ..data.synth import synthesize

    report = synthesize(args.out, n=args.n, seed=args.seed, split=args.split,
                        progress=not args.quiet)
    print(report)
    return 0


PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle")  # scikit-image's own


def _run_photos(args) -> int:
    from ..checks import check_output_dir
    from ..data.skimage_sources import load_source
    from ..images import write_image

    check_output_dir("--out", args.out, inputs={})
    for name in PHOTOS:
        write_image(args.out / f"{name}.jpg", load_source(name))
    print(f"wrote {len(PHOTOS)} photo(s) bundled with scikit-image -> {args.out}")
    return 0


def _run_degrade(args) -> int:
    from tqdm.auto import tqdm

    from ..checks import check_dir, check_output_dir, require
    from ..data.degrade import degrade_mask
    from ..images import list_images, read_mask, write_mask_png

    masks = list_images(check_dir("--masks", args.masks))
    require(len(masks) > 0, f"--masks: no mask images found in {args.masks}")
    check_output_dir("--out", args.out, inputs={"--masks": args.masks})
    for stem, path in tqdm(masks.items(), desc=args.degradation, disable=args.quiet, unit="img"):
        write_mask_png(args.out / f"{stem}.png", degrade_mask(read_mask(path), args.degradation))
    print(f"wrote {len(masks)} {args.degradation} mask(s) -> {args.out}")
    return 0

