"""Where a result came from: one JSON record beside every table, figure and executed notebook.

A record says which notebook wrote the file and with which parameters, the code (commit and
whether the tree had uncommitted changes), the data (each dataset's root, whether it is the
synthetic set, a sample or the full official set, and how many images were used), the backbone
and the SHA-256 of its weights file, the package versions, the device, the wall time, and the
SHA-256 of each output. ``results/MANIFEST.json`` lists every output with its record.

Public API
----------
``code_state(repo=None) -> dict``            commit and dirty flag of the checkout (None outside git).
``versions() -> dict``                       Python and the packages a result depends on.
``weights_identity(backbone, weights) -> str``  ``sha256:<hex>``, ``hub:<timm name>`` or ``none``.
``describe_device(device) -> str``           e.g. "cpu (2 threads)" or "cuda:0 (NVIDIA H100 ...)".
``sidecar_path(path) -> Path``               ``<file>.provenance.json``.
``write_record(output_paths, record, *, manifest)``  sidecars plus manifest entries, atomically.
``read_manifest(path) -> dict``              the manifest's entries by output path.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..backbones.catalog import BACKBONES
from ..backbones.registry import weights_dir_file
from ..backbones.weights import file_sha256
from ..images import atomic_path

SIDECAR_SUFFIX = ".provenance.json"
MANIFEST = Path("results") / "MANIFEST.json"
_PACKAGES = ("paperlib", "torch", "torchvision", "timm", "numpy", "scipy", "scikit-image", "pillow",
             "opencv-contrib-python-headless", "pandas", "matplotlib", "papermill", "jupytext")
_REPO = Path(__file__).resolve().parents[2]   # the checkout holding paperlib/


def code_state(repo: str | Path | None = None) -> dict[str, Any]:
    """``{"commit": hex or None, "dirty": bool or None}`` of the git checkout holding the package.

    ``dirty``: tracked files other than the outputs under ``figures/`` and ``results/`` differ
    from the commit.
    """
    repo = Path(repo) if repo is not None else _REPO
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=20, check=True).stdout.strip()
        # Dirty means the code, notebooks or docs differ from the commit; the results the runs
        # write themselves (figures/, results/) do not count, or every second run would say dirty.
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no", "--",
                                 ".", ":(exclude)figures", ":(exclude)results"],
                                capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}   # an installed package, or no git on the machine
    return {"commit": commit, "dirty": bool(status.strip())}


def versions() -> dict[str, str]:
    """Python's version and each installed package's (absent packages are left out)."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def weights_identity(backbone: str, weights: str | os.PathLike | None) -> str:
    """The weights a backbone name would load, as :func:`paperlib.backbones.registry.load_backbone` finds them.

    Returns:
        ``"none"`` for an offline backbone without weights, ``"sha256:<hex>"`` for a file
        (``weights`` or ``$PAPERLIB_WEIGHTS_DIR/<official name>``), else ``"hub:<timm name>"``.
    """
    info = BACKBONES.get(backbone)
    if info is None or info.timm_name is None:
        return "none"
    weights = weights if weights is not None else weights_dir_file(backbone)   # load_backbone's order
    if weights is not None and str(weights) != "hub" and Path(weights).expanduser().is_file():
        return f"sha256:{file_sha256(Path(weights).expanduser())}"
    return f"hub:{info.timm_name}"


def describe_device(device: str | None = None) -> str:
    """The device a run used, with the GPU's name or the CPU's thread count."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    kind = str(device)
    if kind.startswith("cuda") and torch.cuda.is_available():
        return f"{kind} ({torch.cuda.get_device_name(torch.device(kind))})"
    return f"{kind} ({torch.get_num_threads()} threads, {platform.machine()})"


def sidecar_path(path: str | Path) -> Path:
    """The record's path beside an output: ``figures/t.png`` -> ``figures/t.png.provenance.json``."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _write_json(path: Path, payload: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock beside ``path``: notebooks run in parallel (make -j) share one manifest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _key(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base))
    except ValueError:
        return str(path.resolve())


def read_manifest(path: str | Path = MANIFEST) -> dict[str, dict]:
    """The manifest's entries, ``{output path: entry}``; empty when there is none yet."""
    path = Path(path)
    if not path.is_file():
        return {}
    return json.loads(path.read_text()).get("outputs", {})


def write_record(outputs: Iterable[str | Path], record: Mapping[str, Any], *,
                 manifest: str | Path | None = MANIFEST) -> list[dict]:
    """Write one sidecar per output and list the outputs in the manifest.

    Args:
        outputs: files just written (tables, figures, an executed notebook).
        record: what produced them (notebook, parameters, code, data, backbone, ...); each
            sidecar holds it plus ``"outputs"`` with the SHA-256 of every file in the group.
        manifest: the manifest to update (None: sidecars only).

    Returns:
        ``[{"path", "sha256"}]`` of the outputs.
    """
    paths = [Path(p) for p in outputs]
    # Paths are recorded from the checkout (the folder holding results/MANIFEST.json).
    base = Path(manifest).resolve().parents[1] if manifest is not None else Path.cwd().resolve()
    files = [{"path": _key(p, base), "sha256": file_sha256(p)} for p in paths]
    full = dict(record, outputs=files)
    for path in paths:
        _write_json(sidecar_path(path), full)
    if manifest is not None:
        manifest = Path(manifest)
        with _locked(manifest):
            entries = read_manifest(manifest)
            for item in files:
                entries[item["path"]] = {"sha256": item["sha256"], "sidecar": str(sidecar_path(item["path"])),
                                         "notebook": record.get("notebook"), "tag": record.get("tag"),
                                         "data": record.get("data_label"), "commit": record.get("code", {}).get("commit"),
                                         "written": record.get("finished")}
            _write_json(manifest, {"about": "every result written by a notebook run, with its provenance "
                                            "record beside it (<file>.provenance.json)",
                                   "outputs": dict(sorted(entries.items()))})
    return files
