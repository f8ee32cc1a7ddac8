"""One notebook run seen from inside the kernel: checked parameters, honest labels, recorded outputs.

Every notebook calls :func:`start` right after its parameters cell::

    run = start("table5_gf_vs_bf", globals())

which checks the parameters (:func:`paperlib.notebook.params.check_parameters`), moves a run
started from ``notebooks/`` to the repository root (so outputs land in ``figures/`` and
``results/``, never ``notebooks/figures/``), and returns a :class:`NotebookSession`. The notebook
then opens its data, backbone and outputs through the session, which

* writes the offline synthetic set only when ``data_root`` is the word ``"synthetic"`` (any
  other root must exist and is only read);
* refuses a run whose tag claims more than its data are: ``paper`` needs every dataset in full
  and a pretrained backbone; the synthetic set is only ever tagged ``smoke``, and a sample of a
  dataset (or part of one, ``max_images``) only with a tag holding ``sample``;
* puts the tag, the data (kind and image count) and the backbone into every title
  (:attr:`NotebookSession.label`);
* writes a provenance record beside every table and figure and lists it in
  ``results/MANIFEST.json`` (:mod:`paperlib.notebook.provenance`).

When the notebook runs under ``paperlib notebook run``, the runner sets ``$PAPERLIB_RUN_RECORD``
and the session leaves its record there too, for the executed notebook's own sidecar.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from ..backbones.catalog import BACKBONES, OFFLINE_BACKBONES
from ..backbones.weights import file_sha256
from ..checks import check_choice, require
from ..data.boxes import CORLOC_DATASETS
from ..data.saliency import DATASETS, find_sample_marker
from ..data.synth import synthesize_missing
from ..devices import resolve_device
from ..images import save_figure
from ..model.sempart import read_checkpoint
from ..paper.tables import write_table
from .params import check_parameters
from .provenance import code_state, describe_device, versions, weights_identity, write_record

SYNTHETIC = "synthetic"                           # the data_root value that asks for the offline set
SYNTHETIC_ROOT = Path("results") / "notebooks" / "data"   # where that set is written
RUN_RECORD_ENV = "PAPERLIB_RUN_RECORD"
_KIND_WORDS = {"synthetic": "the synthetic set is tagged with 'smoke' (and not 'sample' or 'paper')",
               "sample": "a sample, or part of a dataset (max_images), is tagged with 'sample' "
                         "(and not 'smoke' or 'paper')",
               "full": "a full official set is tagged 'paper' or a name without 'smoke' or 'sample'"}


@dataclass(frozen=True)
class DataUse:
    """One dataset as a run used it."""

    name: str
    root: str
    kind: str        # 'synthetic', 'sample' or 'full'
    images: int      # images in the folder
    used: int        # images the run scored (max_images / limit)
    sha256: str | None = None   # of a scores file read instead of the images (paperlib eval --json)

    @property
    def label(self) -> str:
        count = f"{self.used} images" if self.used == self.images else f"{self.used} of {self.images} images"
        return f"{self.kind} {self.name.upper()}, {count}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _official(name: str) -> int | None:
    """The official image count of a registered dataset (None: no official count)."""
    spec = DATASETS.get(name) or CORLOC_DATASETS.get(name)
    return spec.n_images if spec is not None else None


def _kind(synthetic: bool, images: int, official: int | None) -> str:
    """'synthetic' (marked so), 'full' (at least the official count), else 'sample' (as
    :func:`paperlib.data.release.verify.dataset_kind` decides for a dataset under a root)."""
    if synthetic:
        return "synthetic"
    return "full" if official is not None and images >= official else "sample"


def repo_root_from(cwd: Path) -> Path | None:
    """The checkout above a ``notebooks/`` folder (one holding ``paperlib/`` and ``notebooks/``)."""
    if cwd.name == "notebooks" and (cwd.parent / "paperlib").is_dir():
        return cwd.parent
    return None


class NotebookSession:
    """The run of one notebook: its parameters, the data and backbone it used, what it wrote."""

    def __init__(self, notebook: str, parameters: Mapping[str, Any]):
        self.notebook = notebook
        self.parameters = dict(parameters)
        self.tag = str(self.parameters.get("tag", "smoke"))
        self.data: list[DataUse] = []
        self.backbones: dict[str, str] = {}   # name -> weights identity (sha256:..., hub:..., none)
        self.checkpoints: dict[str, dict] = {}  # trained heads shown: path -> sha256, step, backbone
        self.images: list[str] = []            # single images an explorer shows
        self.device: str | None = None
        self.outputs: list[str] = []
        self.started = time.time()
        self.started_at = _now()
        self.code = code_state()      # once, at the start: the code the whole run used
        self.versions = versions()

    # -- what the run uses -------------------------------------------------------------------

    def data_root(self, value: str, *, splits: tuple[str, ...] = ("tr", "te")) -> Path:
        """The folder a notebook reads: the synthetic set (written if missing) or an existing root."""
        if value == SYNTHETIC:
            self._check_words("synthetic", "data_root 'synthetic', the offline synthetic set")
            synthesize_missing(SYNTHETIC_ROOT, splits=splits)
            return SYNTHETIC_ROOT
        path = Path(value).expanduser()
        require(path.is_dir(), f"data_root: folder {path.resolve()} does not exist"
                               + ("" if path.is_absolute() else f" (relative paths are read from {Path.cwd()})"))
        return path

    def use_dataset(self, dataset, *, used: int | None = None):
        """Record a dataset the run scores (a SaliencyDataset or a box dataset); returns it.

        Args:
            dataset: an opened dataset with ``name``, ``__len__`` and a root or folders.
            used: how many of its images the run takes (None: all).
        """
        name = dataset.name or "folder"
        total = len(dataset)
        root = (getattr(getattr(dataset, "folders", None), "images_dir", None) or getattr(dataset, "base", None)
                or getattr(dataset, "images_dir", None) or getattr(dataset, "root", ""))
        folders = getattr(dataset, "folders", None)
        sample = folders is not None and find_sample_marker(folders) is not None   # paperlib data sample's marker
        kind = _kind(getattr(dataset, "is_synthetic", False), total, None if sample else _official(name))
        self._add(DataUse(name, str(root), kind, total, min(total, used) if used else total))
        return dataset

    def use_scores(self, path: str | Path) -> Path:
        """Record a ``paperlib eval --json`` file the run plots instead of computing scores."""
        path = Path(path).expanduser()
        require(path.is_file(), f"scores file {path} does not exist")
        saved = json.loads(path.read_text())
        name = str(saved.get("dataset", "folder"))
        scores = next(iter(saved.get("scores", {}).values()), {})
        total = int(scores.get("n_images", saved.get("n_images", 0)))
        self._add(DataUse(name, str(path), _kind(bool(saved.get("synthetic")), total, _official(name)), total, total,
                          sha256=file_sha256(path)))
        return path

    def _add(self, use: DataUse) -> None:
        self._check_tag(use)
        self.data.append(use)

    def _check_tag(self, use: DataUse) -> None:
        kind = "sample" if use.kind == "full" and use.used < use.images else use.kind   # part of a full set
        self._check_words(kind, f"{use.name} at {use.root} ({use.label})")

    def _check_words(self, kind: str, what: str) -> None:
        """A tag may hold one of the words smoke / sample / paper, and it must be the data's kind:
        the synthetic set is 'smoke', a sample 'sample', and 'paper' needs the full set."""
        words = [w for w in ("smoke", "sample", "paper") if w in self.tag]
        allowed = {"synthetic": ["smoke"], "sample": ["sample"], "full": [[], ["paper"]]}[kind]
        ok = words in allowed if kind == "full" else words == allowed
        require(ok, f"tag {self.tag!r} does not fit {what}: a run on {_KIND_WORDS[kind]}")

    def use_image(self, path: str | None) -> None:
        """Record the single image an explorer shows: a file of yours, or (None) the offline synthetic one."""
        if path is None:
            self._check_words("synthetic", "the offline synthetic image (no image_path)")
            self.images.append("offline synthetic sample")
        else:
            path = Path(path).expanduser()
            require(path.is_file(), f"image_path: {path.resolve()} does not exist")
            self.images.append(f"{path} (sha256:{file_sha256(path)})")

    def use_runs(self, runs, *, weights, device: str | None = None) -> None:
        """Record the heads a table scores: ``{(backbone, crop): checkpoint}``, each with its
        backbone (and that backbone's weights from ``weights``) and its checkpoint."""
        for (backbone, _), checkpoint in runs.items():
            self.use_backbone(backbone, weights.get(backbone), device)
            self.use_checkpoint(checkpoint)

    def use_checkpoint(self, path: str | Path) -> None:
        """Record a trained head the run shows: its file's SHA-256 and the step it was saved at."""
        path = Path(path).expanduser()
        saved = read_checkpoint(path)
        self.checkpoints[str(path)] = {"sha256": file_sha256(path), "step": saved.get("step"),
                                       "backbone": saved.get("config", {}).get("backbone")}

    def use_backbone(self, name: str, weights: str | None = None, device: str | None = None) -> None:
        """Record a backbone, the SHA-256 of its weights file (or where they come from) and the device."""
        check_choice("backbone", name, BACKBONES)
        if "paper" in self.tag:
            require(name not in OFFLINE_BACKBONES,
                    f"tag {self.tag!r} needs a pretrained backbone; {name} is the offline stand-in")
        self.backbones[name] = weights_identity(name, weights)
        self.device = describe_device(str(resolve_device(device)))

    # -- labels and outputs ------------------------------------------------------------------

    @property
    def label(self) -> str:
        """``[tag] data · backbone`` for titles, e.g. ``[smoke] synthetic DUTS-TE, 24 of 60 images · filterbank16``."""
        data = "; ".join(dict.fromkeys([d.label for d in self.data] + self.images[:1])) or "no dataset"
        return f"[{self.tag}] {data}" + (f" · {', '.join(self.backbones)}" if self.backbones else "")

    def title(self, text: str) -> str:
        """A figure title with the run's label on a second line."""
        return f"{text}\n{self.label}"

    def record(self) -> dict[str, Any]:
        """The provenance record of the run so far."""
        return {"notebook": self.notebook, "tag": self.tag, "parameters": self.parameters,
                "code": self.code, "data": [asdict(d) for d in self.data], "data_label": self.label,
                "synthetic": any(d.kind == "synthetic" for d in self.data) or "offline synthetic sample" in self.images,
                "backbones": self.backbones, "checkpoints": self.checkpoints, "images": self.images,
                "device": self.device or describe_device(None), "versions": self.versions,
                "started": self.started_at, "finished": _now(), "wall_s": round(time.time() - self.started, 2)}

    def wrote(self, *paths: str | Path) -> None:
        """Record files the notebook has just written: a sidecar each, the manifest, the run record."""
        paths = [Path(p) for p in paths]
        for path in paths:
            require(path.is_file(), f"{path} was not written")
        write_record(paths, self.record())
        self.outputs += [str(p) for p in paths]
        record_file = os.environ.get(RUN_RECORD_ENV)
        if record_file:
            Path(record_file).write_text(json.dumps(dict(self.record(), outputs=self.outputs), default=str))

    def save_figure(self, fig, path: str | Path, *, dpi: int = 110) -> None:
        """Save a figure atomically and record it."""
        self.wrote(save_figure(fig, path, dpi=dpi))

    def write_table(self, frame, path: str | Path, *, digits: int = 3) -> None:
        """Write a table as .csv and .md (captioned with the run's label) atomically, record both."""
        write_table(frame, path, digits=digits, caption=self.label)
        self.wrote(Path(path), Path(path).with_suffix(".md"))
        print(f"{path}: {self.label}")


def start(notebook: str, namespace: Mapping[str, Any]) -> NotebookSession:
    """Check the parameters in ``namespace`` (the notebook's ``globals()``) and open the run.

    Args:
        notebook: the notebook's name (its file stem in ``notebooks/``).
        namespace: ``globals()`` right after the parameters cell.

    Returns:
        The :class:`NotebookSession`.

    Raises:
        InputError: an unknown parameter name or a value of the wrong type, named.
    """
    parameters = check_parameters(namespace)
    root = repo_root_from(Path.cwd())
    if root is not None:
        os.chdir(root)   # outputs belong in the checkout's figures/ and results/, not notebooks/
        print(f"working directory: {root} (the repository root)")
    return NotebookSession(notebook, parameters)
