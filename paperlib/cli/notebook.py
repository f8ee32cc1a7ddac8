"""The ``paperlib notebook`` sub-commands: run, list, params.

Public API
----------
``add_notebook(sub)``
    register ``notebook`` and its actions on the sub-parsers of :func:`paperlib.cli.main.build_parser`.
"""

from __future__ import annotations

import sys
from pathlib import Path


def add_notebook(sub) -> None:
    """Register ``notebook`` with its actions: run, list, params."""
    p = sub.add_parser("notebook", help="run a paper notebook with parameters; list them; show their parameters")
    nsub = p.add_subparsers(dest="notebook_command", required=True, metavar="ACTION")

    r = nsub.add_parser("run", help="build the notebook from its source, check the parameters, execute it",
                        description="Executes notebooks/NAME.py from the repository root into "
                                    "results/notebooks/<tag>/NAME.ipynb with a provenance record beside it.")
    r.add_argument("name", help="the notebook (see `paperlib notebook list`)")
    r.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a parameter, typed as papermill types it (True/False/None, numbers, else a string)")
    r.add_argument("-y", "--yaml", action="append", default=[], metavar="YAML",
                   help="parameters as YAML, for lists and mappings: -y 'datasets: [duts-te, ecssd]'")
    r.add_argument("--tag", help="names the output folder and the tables/figures (default: the "
                                 "notebook's tag parameter, smoke)")
    r.add_argument("--out", type=Path, help="folder for the executed notebook (default results/notebooks/<tag>)")
    r.add_argument("--workdir", type=Path, help="where the notebook runs and writes figures/ and results/ "
                                                "(default: the repository root)")
    r.add_argument("--cell-timeout", type=int, help="seconds allowed per cell (default: no limit)")
    r.add_argument("--skip-if-done", action="store_true",
                   help="keep an executed notebook that ran with these parameters at this commit (clean code)")
    r.set_defaults(run=_run)

    ls = nsub.add_parser("list", help="the notebooks and what each shows")
    ls.set_defaults(run=_list)

    pa = nsub.add_parser("params", help="a notebook's parameters: name, type, default, meaning")
    pa.add_argument("name")
    pa.set_defaults(run=_params)


def _run(args) -> int:
    from ..notebook.run import NotebookFailed, parse_cli_parameters, run_notebook

    parameters = parse_cli_parameters(args.parameter, args.yaml)
    try:
        done = run_notebook(args.name, parameters, tag=args.tag, out=args.out, workdir=args.workdir, progress=not args.quiet,
                            cell_timeout=args.cell_timeout, skip_if_done=args.skip_if_done)
    except NotebookFailed as err:
        print(f"paperlib: notebook failed: {err}", file=sys.stderr)
        return 1
    if done.skipped:
        print(f"{done.notebook} [{done.tag}]: {done.executed} is up to date (same parameters, same commit)")
        return 0
    print(f"{done.notebook} [{done.tag}]: {done.executed} ({done.wall_s:.0f} s)")
    for output in done.outputs:
        print(f"  wrote {output}")
    print(f"  provenance: {done.sidecar}")
    return 0


def _list(args) -> int:
    import jupytext

    from ..notebook.run import notebook_names, repo_root

    root = repo_root()
    for name in notebook_names(root):
        cells = jupytext.read(root / "notebooks" / f"{name}.py").cells
        title = next((c.source.splitlines()[0].lstrip("# ") for c in cells if c.cell_type == "markdown"), "")
        print(f"{name:24s} {title}")
    return 0


def _params(args) -> int:
    from ..notebook.run import notebook_parameters

    for spec in notebook_parameters(args.name):
        print(f"{spec.name}: {spec.annotation} = {spec.default!r}" + (f"    # {spec.help}" if spec.help else ""))
    return 0
