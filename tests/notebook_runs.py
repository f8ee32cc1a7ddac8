"""Running a notebook in a test: the same runner a reader types (`paperlib notebook run`), in tmp_path."""

from __future__ import annotations

from pathlib import Path

from paperlib.notebook.run import NotebookRun, run_notebook

CELL_TIMEOUT = 300  # seconds per cell: a hung kernel fails the test instead of the CI run


def run(name: str, workdir: Path, parameters: dict | None = None, **kwargs) -> NotebookRun:
    """Execute ``notebooks/<name>.py`` with ``parameters`` in ``workdir`` (figures/ and results/ there)."""
    kwargs.setdefault("cell_timeout", CELL_TIMEOUT)
    return run_notebook(name, parameters or {}, workdir=workdir, progress=False, **kwargs)
