"""Run a notebook the way a reader types it: ``paperlib notebook run NAME -p key value ...``.

The jupytext source ``notebooks/NAME.py`` is the notebook; this module builds the ``.ipynb``
itself, checks the parameters against the typed parameters cell *before* a kernel starts (an
unknown name, a wrong type or a ``-p`` string where a list belongs is one line naming it),
executes it with papermill from the repository root, and writes the executed notebook to a
path derived from the notebook and its tag -- ``results/notebooks/<tag>/NAME.ipynb`` -- so a
``paper`` run never overwrites a ``smoke`` run. The executed notebook gets a provenance record
(``NAME.ipynb.provenance.json``: the session's record of data, backbone and outputs, plus the
runner's parameters and wall time) and an entry in ``results/MANIFEST.json``. A run that fails
keeps its partial notebook as ``NAME.failed.ipynb`` and never replaces a good one.

Public API
----------
``repo_root() -> Path``                          the checkout holding ``notebooks/``.
``notebook_names(root=None) -> list[str]``       the notebooks, sorted.
``notebook_parameters(name, root=None)``         the declared ``ParamSpec`` list of a notebook.
``parse_cli_parameters(pairs, yamls) -> dict``   ``-p key value`` (typed as papermill types them) and ``-y`` YAML.
``run_notebook(name, parameters, *, tag=None, out=None, ...) -> NotebookRun``  build, check, execute, record.
``is_done(executed, parameters)``                 an executed notebook already has these parameters, this clean commit.
``NotebookFailed``                               a cell raised something other than bad input.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..checks import InputError, require
from .params import ParamSpec, check_given, declared_parameters
from .provenance import MANIFEST, code_state, describe_device, sidecar_path, versions, write_record
from .session import RUN_RECORD_ENV

_PACKAGE_PARENT = Path(__file__).resolve().parents[2]   # the folder holding paperlib/
KERNEL = "python3"
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


class NotebookFailed(RuntimeError):
    """A notebook cell raised an error that is not bad input (the partial notebook is kept)."""


def repo_root() -> Path:
    """The checkout with ``notebooks/``: the package's parent, else the working directory."""
    for candidate in (_PACKAGE_PARENT, Path.cwd()):
        if (candidate / "notebooks").is_dir() and (candidate / "paperlib").is_dir():
            return candidate
    raise InputError("no notebooks/ folder: run from a clone of the paperlib repository")


def notebook_names(root: Path | None = None) -> list[str]:
    """The names of the notebooks (``notebooks/*.py``), sorted."""
    return sorted(p.stem for p in ((root or repo_root()) / "notebooks").glob("*.py"))


def _source(name: str, root: Path) -> Path:
    path = root / "notebooks" / f"{name.removesuffix('.py').removesuffix('.ipynb')}.py"
    require(path.is_file(), f"notebook {name!r} not found; choose one of: {', '.join(notebook_names(root))}")
    return path


def _parameters_source(path: Path) -> str:
    import jupytext

    cells = [c for c in jupytext.read(path).cells if "parameters" in c.metadata.get("tags", [])]
    require(len(cells) == 1, f"{path}: expected one cell tagged 'parameters', found {len(cells)}")
    return cells[0].source


def notebook_parameters(name: str, root: Path | None = None) -> list[ParamSpec]:
    """The typed parameters notebook ``name`` declares, in order."""
    return declared_parameters(_parameters_source(_source(name, root or repo_root())))


def _typed(text: str) -> Any:
    """A ``-p`` value typed the way papermill's command line types it."""
    if text in ("True", "False"):
        return text == "True"
    if text == "None":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_cli_parameters(pairs: Sequence[Sequence[str]] = (), yamls: Sequence[str] = ()) -> dict[str, Any]:
    """Parameters from ``-p key value`` pairs and ``-y 'key: value'`` YAML texts, later ones winning."""
    import yaml

    out: dict[str, Any] = {}
    for key, value in pairs:
        out[key] = _typed(value)
    for text in yamls:
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise InputError(f"-y {text!r} is not valid YAML ({str(err).splitlines()[0]})") from None
        require(isinstance(loaded, dict), f"-y {text!r} must be a YAML mapping such as 'name: value'")
        out.update(loaded)
    return out


def is_done(executed: Path, parameters: Mapping[str, Any], root: Path | None = None) -> bool:
    """Whether ``executed`` ran with exactly ``parameters`` at the current commit, code clean then and now."""
    record_path = sidecar_path(executed)
    if not (executed.is_file() and record_path.is_file()):
        return False
    record, code = json.loads(record_path.read_text()), code_state(root)
    then = record.get("code", {})
    return (record.get("given") == json.loads(json.dumps(dict(parameters), default=str))
            and code["commit"] is not None and then.get("commit") == code["commit"]
            and then.get("dirty") is False and code["dirty"] is False)


@dataclass(frozen=True)
class NotebookRun:
    """What :func:`run_notebook` did."""

    notebook: str
    tag: str
    executed: Path
    sidecar: Path
    outputs: tuple[str, ...]
    wall_s: float
    skipped: bool = False      # an earlier run with the same parameters at the same clean commit was kept


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def run_notebook(name: str, parameters: Mapping[str, Any] | None = None, *, tag: str | None = None,
                 out: str | Path | None = None, workdir: str | Path | None = None, root: Path | None = None,
                 progress: bool = True, cell_timeout: int | None = None, skip_if_done: bool = False) -> NotebookRun:
    """Build, check, execute and record one notebook.

    Args:
        name: the notebook (``notebooks/<name>.py``).
        parameters: ``{name: value}`` for the parameters cell; checked against its annotations.
        tag: names the output folder; passed on as the ``tag`` parameter when the notebook has
            one (default: that parameter's value, else 'smoke').
        out: the folder for the executed notebook (default ``<workdir>/results/notebooks/<tag>``).
        workdir: where the notebook runs and writes ``figures/`` and ``results/`` (default: the
            repository root).
        root: the repository root holding ``notebooks/`` (default :func:`repo_root`).
        progress: papermill's cell progress bar.
        cell_timeout: seconds allowed per cell (None: no limit).
        skip_if_done: keep an executed notebook whose record has these parameters and this commit,
            both with clean code (:func:`is_done`), instead of running it again.

    Returns:
        :class:`NotebookRun` with the executed notebook's path and its provenance sidecar.

    Raises:
        InputError: unknown notebook or parameter, wrong type, or a cell that refused its input.
        NotebookFailed: any other error in a cell.
    """
    import jupytext
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    root = root or repo_root()
    source = _source(name, root)
    name = source.stem
    specs = declared_parameters(_parameters_source(source))
    parameters = dict(parameters or {})
    declared = {s.name: s for s in specs}
    if tag is not None and "tag" in declared:
        given = parameters.get("tag", tag)
        require(given == tag, f"--tag {tag!r} and -p tag {given!r} disagree")
        parameters["tag"] = tag
    values = check_given(parameters, specs)
    tag = tag if tag is not None else str(values.get("tag", "smoke"))
    require(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", tag) is not None,
            f"--tag {tag!r} must be a plain name: letters, digits, '_', '-', '.' (not first)")
    workdir = Path(workdir).expanduser() if workdir is not None else root
    require(workdir.is_dir(), f"--workdir {workdir} is not a folder")
    out_dir = Path(out).expanduser() if out is not None else workdir / "results" / "notebooks" / tag
    executed = out_dir / f"{name}.ipynb"
    if skip_if_done and is_done(executed, parameters, root):
        record = json.loads(sidecar_path(executed).read_text())
        return NotebookRun(name, tag, executed, sidecar_path(executed),
                           tuple(record.get("outputs_written", [])), 0.0, skipped=True)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)

    started = time.time()
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=f".{name}.", ignore_cleanup_errors=True) as work:
        work = Path(work)
        built, partial, record_file = work / f"{name}.source.ipynb", work / f"{name}.ipynb", work / "record.json"
        jupytext.write(jupytext.read(source), built)
        # The kernel inherits the environment: give it the run record's path, and the inline
        # backend so figures are shown in the notebook even where MPLBACKEND=Agg (CI) is set.
        saved = {k: os.environ.get(k) for k in (RUN_RECORD_ENV, "MPLBACKEND")}
        os.environ.update({RUN_RECORD_ENV: str(record_file), "MPLBACKEND": INLINE_BACKEND})
        try:
            papermill.execute_notebook(str(built), str(partial), parameters=parameters, cwd=str(workdir),
                                       kernel_name=KERNEL, progress_bar=progress,
                                       execution_timeout=cell_timeout, report_mode=False,
                                       # ipykernel warns on every start that its local TCP link is
                                       # not encrypted: noise on a reader's terminal; errors still show.
                                       extra_arguments=["--IPKernelApp.log_level=ERROR"])
        except PapermillExecutionError as err:
            message = str(err.evalue).splitlines()[0] if err.evalue else err.ename
            if err.ename == "InputError":       # refused input: nothing to inspect, nothing left behind
                if created:
                    shutil.rmtree(out_dir, ignore_errors=True)
                raise InputError(f"{name}: {message}") from None
            failed = out_dir / f"{name}.failed.ipynb"
            if partial.exists():
                os.replace(partial, failed)
            raise NotebookFailed(f"{name}: {err.ename}: {message} (partial notebook: {failed})") from None
        except (CellTimeoutError, DeadKernelError) as err:   # a cell past --cell-timeout, a kernel killed
            failed = out_dir / f"{name}.failed.ipynb"
            if partial.exists():
                os.replace(partial, failed)
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise NotebookFailed(f"{name}: {type(err).__name__}: {reason}") from None
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        session = json.loads(record_file.read_text()) if record_file.is_file() else {}
        os.replace(partial, executed)
    (out_dir / f"{name}.failed.ipynb").unlink(missing_ok=True)   # an earlier failure, now superseded
    wall = round(time.time() - started, 1)
    record = dict(session, notebook=name, tag=tag, parameters=values, given=parameters,
                  source=_relative(source, root), wall_s=wall,
                  outputs_written=session.get("outputs", []))
    record.setdefault("code", code_state(root))
    record.setdefault("versions", versions())
    record.setdefault("device", describe_device(None))
    record.setdefault("data_label", f"[{tag}]")
    manifest = workdir / MANIFEST
    write_record([executed], record, manifest=manifest)
    return NotebookRun(name, tag, executed, sidecar_path(executed), tuple(session.get("outputs", [])), wall)
