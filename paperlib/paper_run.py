"""The whole paper in one call: data, weights, the training runs, Tables 1-5, Figs. 6-8, the book.

``make paper DATA=~/datasets WEIGHTS=~/weights`` runs :func:`run_paper` on a :class:`PaperPlan`:

1. **data** -- each dataset the paper uses is verified where it is, or downloaded (or taken from
   archives fetched by hand) through :func:`paperlib.download.download`: the same SHA-256 check,
   safe unpacking and layout as ``paperlib data download``. A ``paper`` tag needs every set in
   full and refuses a sample or the synthetic set before any training starts;
2. **weights** -- every backbone's official file must be in ``weights_dir``;
3. **cost** -- two training steps and one prediction are timed here and the whole run priced
   (:mod:`paperlib.paper_cost`), printed before the long work starts;
4. **notebooks** -- :func:`paperlib.paper_plan.notebook_steps` in order, each through
   :func:`paperlib.notebook_run.run_notebook` (so each has its provenance record); the
   ``paperlib eval`` files Figs. 6-8 plot are written first. A notebook already executed with
   the same parameters at the same commit is skipped, and the ablation runs resume, so an
   interrupted paper run continues where it stopped;
5. **book** -- :func:`paperlib.book.build_book` of the executed notebooks.

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
from pathlib import Path
from typing import Callable

from .images import atomic_path
from .paper_plan import CORLOC, SALIENCY, TRAIN, PaperPlan, command_line, eval_steps, notebook_steps, weights_files
from .validation import InputError, require


def check_weights(plan: PaperPlan) -> dict[str, Path]:
    """Every backbone's official file in ``plan.weights_dir``, or one error listing what to fetch."""
    from .backbones import BACKBONES

    files = weights_files(plan)
    missing = [f"{path} (from {BACKBONES[name].weights_url or 'its authors'})" for name, path in files.items()
               if not path.is_file()]
    require(not missing, f"--weights-dir: missing {'; '.join(missing)}")
    return files


def _archives_for(name: str, folder: Path | None) -> list[Path]:
    from .sources import SOURCES

    if folder is None:
        return []
    return [folder / item.filename for item in SOURCES[name] if (folder / item.filename).is_file()]


def prepare_data(plan: PaperPlan, *, progress: bool = True, echo: Callable[[str], None] = print) -> dict:
    """Verify each dataset of the paper under ``plan.data_root``, downloading the missing ones.

    Returns:
        ``{dataset: {"kind": 'full' | 'sample' | 'synthetic', "images": n}}``.

    Raises:
        InputError: with a ``paper`` tag, a dataset that is not the full official set.
    """
    from .download import download
    from .sources import SOURCES
    from .verify import dataset_kind

    root = Path(plan.data_root).expanduser()
    found = {}
    for name in (TRAIN,) + SALIENCY + CORLOC:
        try:
            kind = dataset_kind(name, root)
            echo(f"  {name}: {kind.kind}, {kind.images:,} images at {root}")
        except InputError:
            archives = _archives_for(name, plan.archives)
            echo(f"  {name}: not under {root}; " + (f"unpacking {len(archives)} archive(s) from {plan.archives}"
                                                   if archives else "downloading"))
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


def _already_done(executed: Path, parameters: dict) -> bool:
    """The notebook ran with these parameters at this commit on a clean tree (its provenance says so)."""
    from .provenance import code_state, sidecar_path

    record_path = sidecar_path(executed)
    if not (executed.is_file() and record_path.is_file()):
        return False
    record = json.loads(record_path.read_text())
    code = code_state()
    return (record.get("given") == json.loads(json.dumps(parameters)) and not code["dirty"]
            and record.get("code", {}).get("commit") == code["commit"] and not record["code"].get("dirty"))


def run_paper(plan: PaperPlan, *, progress: bool = True, dry_run: bool = False, estimate_cost: bool = True,
              device: str | None = None, workdir: Path | None = None,
              echo: Callable[[str], None] = print) -> dict:
    """Run the whole paper (see the module docstring); returns the summary written to PAPER_RUN.json.

    Args:
        plan: what to run.
        progress: progress bars.
        dry_run: print the plan, the commands and the cost estimate; run nothing else.
        estimate_cost: time two training steps and one prediction first and print the estimate.
        device: torch device for the estimate (the runs choose theirs: CUDA when present).
        workdir: where the notebooks run and write (default: the repository root).
        echo: where progress lines go.
    """
    from .book import build_book
    from .cli import main as cli_main
    from .notebook_run import repo_root, run_notebook
    from .paper_cost import estimate

    workdir = Path(workdir or repo_root())
    steps = notebook_steps(plan)
    evals = eval_steps(plan)
    echo(f"the paper, tag {plan.tag!r}: data, weights, {len(evals)} eval files, {len(steps)} notebooks, the book")
    for step in steps:
        echo(f"  {command_line(step, plan.tag)}")
    echo("data:")
    data = prepare_data(plan, progress=progress, echo=echo)
    weights = check_weights(plan)
    echo("weights: " + ", ".join(f"{name} {path}" for name, path in weights.items()))
    summary = {"tag": plan.tag, "data": data, "steps": []}
    if estimate_cost:
        cost = estimate(plan, {name: d["images"] for name, d in data.items()}, device=device)
        for line in cost.lines():
            echo(line)
        summary["estimate_s"] = round(cost.total_s)
    if dry_run:
        return summary

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
                    require(_in(workdir, cli_main, argv) == 0, f"paperlib {' '.join(e.argv)} failed")
            done("eval files for Figs. 6-8", "done", time.time() - t0, plan.eval_dir)
        t0 = time.time()
        executed = out_dir / f"{step.notebook}.ipynb"
        if _already_done(executed, step.parameters):
            done(step.notebook, "already done", 0.0, str(executed))
            continue
        result = run_notebook(step.notebook, step.parameters, tag=plan.tag, workdir=workdir, progress=progress)
        done(step.notebook, "done", time.time() - t0, str(result.executed))
    t0 = time.time()
    index_html = build_book(out_dir, workdir / "results" / "book" / plan.tag)
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
