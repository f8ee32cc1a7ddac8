"""The whole paper in one call: data, weights, the training runs, Tables 1-5, Figs. 6-8, the book.

``make paper DATA=~/datasets WEIGHTS=~/weights`` runs :func:`run_paper` on a :class:`PaperPlan`:

1. **data** -- each dataset the paper uses is verified where it is, or downloaded (or taken from
   archives fetched by hand) through :func:`paperlib.data.release.download.download`: the same SHA-256 check,
   safe unpacking and layout as ``paperlib data download``. A ``paper`` tag needs every set in
   full and refuses a sample or the synthetic set before any training starts;
2. **weights** -- every backbone's official file must be in ``weights_dir``;
3. **cost** -- two training steps and one prediction are timed here and the whole run priced
   (:mod:`paperlib.reproduce.cost`), printed before the long work starts;
4. **notebooks** -- :func:`paperlib.reproduce.plan.notebook_steps` in order, each through
   :func:`paperlib.notebook.run.run_notebook` (so each has its provenance record); the
   ``paperlib eval`` files Figs. 6-8 plot are written first. A notebook already executed with
   the same parameters at the same commit is skipped, and the ablation runs resume, so an
   interrupted paper run continues where it stopped;
5. **book** -- :func:`paperlib.book.build.build_book` of the executed notebooks.

A progress line is printed after each step, and ``results/notebooks/<tag>/PAPER_RUN.json``
holds the summary (steps, status, seconds).

Public API
----------
``run_paper(plan, *, progress=True, dry_run=False, echo=print, device=None) -> dict``
``prepare_data(plan, *, progress=True) -> dict``  dataset -> (kind, images), downloading what is missing.
``check_weights(plan) -> dict``                  backbone -> its file; an InputError lists any missing.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Callable

from ..backbones.catalog import BACKBONES
from ..book.build import build_book
from ..checks import InputError, require
from ..data.release.download import download
from ..data.release.sources import SOURCES
from ..data.release.verify import dataset_kind
from ..images import atomic_path
from ..notebook.run import repo_root, run_notebook
from .cost import estimate
from .plan import CORLOC, SALIENCY, TRAIN, PaperPlan, command_line, eval_steps, notebook_steps, weights_files


def check_weights(plan: PaperPlan) -> dict[str, Path]:
    """Every backbone's official file in ``plan.weights_dir``, or one error listing what to fetch."""
    files = weights_files(plan)
    missing = [f"{path} (from {BACKBONES[name].weights_url or 'its authors'})" for name, path in files.items()
               if not path.is_file()]
    require(not missing, f"--weights-dir: missing {'; '.join(missing)}")
    return files


def _archives_for(name: str, folder: Path | None) -> list[Path]:
    """The dataset's archives in ``folder`` by their official names; an error naming them when none is."""
    if folder is None:
        return []
    expected = [item.filename for item in SOURCES[name]]
    found = [folder / f for f in expected if (folder / f).is_file()]
    present = sorted(p.name for p in folder.iterdir() if p.is_file())
    require(found, f"--archives {folder}: {name} is missing and none of its files ({', '.join(expected)}) is "
                   f"there; the folder holds {', '.join(present[:8]) or 'nothing'}")
    return found


def prepare_data(plan: PaperPlan, *, progress: bool = True, dry_run: bool = False,
                 echo: Callable[[str], None] = print) -> dict:
    """Verify each dataset of the paper under ``plan.data_root``, downloading the missing ones.

    Args:
        plan: the paper run.
        progress: progress bars.
        dry_run: only say what is there and what would be fetched; write nothing.
        echo: where the lines go.

    Returns:
        ``{dataset: {"kind": 'full' | 'sample' | 'synthetic' | 'missing', "images": n}}``.

    Raises:
        InputError: with a ``paper`` tag, a dataset that is not the full official set; a missing
            ``plan.archives`` folder, or a missing dataset without its archives there.
    """
    root = Path(plan.data_root).expanduser()
    if plan.archives is not None:
        require(Path(plan.archives).is_dir(), f"--archives: folder {plan.archives} does not exist")
    found = {}
    for name in (TRAIN,) + SALIENCY + CORLOC:
        try:
            kind = dataset_kind(name, root)
            echo(f"  {name}: {kind.kind}, {kind.images:,} images at {root}")
        except InputError:
            archives = _archives_for(name, plan.archives)
            source = (f"unpacking {', '.join(a.name for a in archives)} from {plan.archives}" if archives
                      else f"downloading {', '.join(item.filename for item in SOURCES[name])}")
            if dry_run:
                echo(f"  {name}: not under {root}; would be fetched: {source}")
                found[name] = {"kind": "missing", "images": 0}
                continue
            echo(f"  {name}: not under {root}; {source}")
            files = {item.filename for item in SOURCES[name]}
            digests = {f: d for f, d in plan.sha256.items() if f in files} or None
            report = download(name, root, progress=progress, mirror=plan.mirror, archives=archives or None,
                              sha256=digests)
            # Only the paper needs every image; a smaller run (the dress rehearsal) takes a clean subset.
            good = report.verify.clean and (report.verify.complete or "paper" not in plan.tag)
            require(good, f"{name}: the download did not verify: {'; '.join(report.lines()[-3:])}")
            kind = dataset_kind(name, root)
        found[name] = {"kind": kind.kind, "images": kind.images}
        if "paper" in plan.tag:
            require(kind.kind == "full", f"tag {plan.tag!r} needs the full {name}; {root} holds a {kind.kind} "
                                         f"({kind.images} images): pass another --tag for a smaller run")
    return found


def run_paper(plan: PaperPlan, *, progress: bool = True, dry_run: bool = False, estimate_cost: bool = True,
              device: str | None = None, workdir: Path | None = None,
              echo: Callable[[str], None] = print,
              run_command: Callable[[list[str]], int] | None = None) -> dict:
    """Run the whole paper (see the module docstring); returns the summary written to PAPER_RUN.json.

    Args:
        plan: what to run.
        progress: progress bars.
        dry_run: check the weights, say which datasets are there and which would be fetched, print
            the commands and (data present) the cost estimate; download, train and write nothing.
        estimate_cost: time two training steps and one prediction first and print the estimate.
        device: torch device for the estimate (the runs choose theirs: CUDA when present).
        workdir: where the notebooks run and write (default: the repository root).
        echo: where progress lines go.
        run_command: runs one ``paperlib`` command line (its arguments) and returns its exit
            status; the CLI passes its own ``main``, so the eval files come from exactly the
            commands printed. Needed unless ``dry_run``.
    """
    workdir = Path(workdir or repo_root())
    echo(f"the paper, tag {plan.tag!r}: weights, data, eval files, notebooks, the book")
    weights = check_weights(plan)
    echo("weights: " + ", ".join(f"{name} {path}" for name, path in weights.items()))
    echo("data:")
    data = prepare_data(plan, progress=progress, dry_run=dry_run, echo=echo)
    summary = {"tag": plan.tag, "data": data, "steps": []}
    steps, evals = notebook_steps(plan), eval_steps(plan)     # after the data: they name a DUTS-TE image
    echo(f"{len(evals)} paperlib eval files for Figs. 6-8, then {len(steps)} notebooks:")
    for step in steps:
        echo(f"  {command_line(step, plan.tag)}")
    if estimate_cost and not any(d["kind"] == "missing" for d in data.values()):
        cost = estimate(plan, {name: d["images"] for name, d in data.items()}, device=device)
        for line in cost.lines():
            echo(line)
        summary["estimate_s"] = round(cost.total_s)
    if dry_run:
        return summary
    require(run_command is not None, "run_paper needs run_command (the paperlib CLI's main) to run its commands")

    out_dir = workdir / "results" / "notebooks" / plan.tag
    started = time.time()
    total = len(steps) + 2   # the notebooks, the eval files, the book

    def done(name: str, status: str, seconds: float, where: str = "") -> None:
        summary["steps"].append({"step": name, "status": status, "seconds": round(seconds, 1), "output": where})
        echo(f"[{len(summary['steps'])}/{total}] {name}: {status} in {seconds / 60:.1f} min "
             f"(elapsed {(time.time() - started) / 3600:.2f} h)" + (f" -> {where}" if where else ""))
        out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(out_dir / "PAPER_RUN.json") as tmp:
            tmp.write_text(json.dumps(summary, indent=2) + "\n")

    for step in steps:
        if step.notebook == "figs_6_8_iou_by_size":   # its scores come from the trained heads
            t0 = time.time()
            for e in evals:
                if not (workdir / e.json).is_file():
                    argv = ["-q"] * (not progress) + list(e.argv)
                    require(_in(workdir, run_command, argv) == 0, f"paperlib {' '.join(e.argv)} failed")
            done("eval files for Figs. 6-8", "done", time.time() - t0, plan.eval_dir)
        t0 = time.time()
        result = run_notebook(step.notebook, step.parameters, tag=plan.tag, workdir=workdir, progress=progress,
                              skip_if_done=True)
        done(step.notebook, "already done" if result.skipped else "done", time.time() - t0, str(result.executed))
    t0 = time.time()
    with warnings.catch_warnings(record=True) as notes:
        warnings.simplefilter("always")
        index_html = build_book(out_dir, workdir / "results" / "book" / plan.tag)
    for note in notes:
        echo(f"note: {note.message}")
    done("book", "built", time.time() - t0, str(index_html))
    return summary


def _in(workdir: Path, fn, argv) -> int:
    """Run a ``paperlib`` command from ``workdir`` (its relative paths are the notebooks')."""
    previous = Path.cwd()
    os.chdir(workdir)
    try:
        return fn(argv)
    finally:
        os.chdir(previous)
