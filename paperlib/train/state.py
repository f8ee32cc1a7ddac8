"""A training run's state on disk: checkpoints, RNG states and logs (docs/paper_and_code.md#training).

Everything :func:`paperlib.train.loop.train` needs to stop and continue to the same weights: the
checkpoint file (written atomically, read with ``weights_only=True``), the global RNG states it
carries, which config fields a resumed run may change, and the CSV / TensorBoard logs whose
crashed tail a resume drops.

Public API:

* :data:`CHECKPOINT_FORMAT`, :func:`save_checkpoint`, :func:`load_checkpoint`;
* :func:`rng_states` / :func:`set_rng_states` -- torch, NumPy, Python (and CUDA) generators as
  plain tensors and numbers;
* :data:`RESUMABLE_FIELDS`, :func:`check_resumable`;
* :func:`open_csv_log`, :func:`open_tensorboard`.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import os
import random
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from ..checks import InputError, require
from ..images import atomic_path
from ..refine.settings import PAPER_GF
from .config import TrainConfig

# The checkpoint contract of :func:`paperlib.model.sempart.read_checkpoint` ("paperlib-sempart-1"):
# format, config (plain dict with backbone / image_size / resize_short), model (the head's
# state dict); the trainer adds optimizer, step, epoch, position, best_iou, rng, world_size.
CHECKPOINT_FORMAT = "paperlib-sempart-1"

# Fields that may change when a run is resumed: they do not change the arithmetic of a step
# (moving a CPU run to CUDA does: with amp='auto' it continues under bf16 autocast).
RESUMABLE_FIELDS = ("data_root", "weights", "epochs", "max_steps", "checkpoint_every", "log_every",
                    "device", "num_workers")


def rng_states() -> dict[str, Any]:
    """The global generators' states, as tensors and plain values (``weights_only`` loadable)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    states = {"torch": torch.get_rng_state(),
              "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                        "has_gauss": int(has_gauss), "gauss": float(gauss)},
              "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what :func:`rng_states` returned (CUDA states only where CUDA is available)."""
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def content_digest(value: Any) -> str:
    """SHA-256 of a checkpoint's content: every tensor's dtype, shape and bytes, every plain value.

    Walks dicts (sorted keys), lists and tuples, so the digest is that of what ``torch.load``
    gives back, not of the file's container bytes.
    """
    h = hashlib.sha256()

    def walk(x: Any) -> None:
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(x, np.ndarray):
            h.update(f"A{x.dtype}{x.shape}".encode())
            h.update(np.ascontiguousarray(x).tobytes())
        elif isinstance(x, dict):
            h.update(b"{")
            for key in sorted(x, key=repr):
                h.update(repr(key).encode())
                walk(x[key])
            h.update(b"}")
        elif isinstance(x, (list, tuple)):
            h.update(b"[")
            for item in x:
                walk(item)
            h.update(b"]")
        else:
            h.update(repr(x).encode())

    walk(value)
    return h.hexdigest()


def save_checkpoint(path: str | Path, payload: dict) -> None:
    """``torch.save`` to a temporary file renamed over ``path``: never a half-written checkpoint.

    The payload gets ``content_sha256`` (:func:`content_digest` of everything else), which
    :func:`load_checkpoint` checks: a bit flipped on disk is refused, not resumed.
    """
    payload = {**payload, "content_sha256": content_digest(payload)}
    with atomic_path(Path(path)) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a training checkpoint with ``torch.load(weights_only=True)``.

    Returns:
        The dictionary: format, config (dict), model (the head's state dict), optimizer, step,
        epoch, position, best_iou, rng, world_size, data, content_sha256 (checked here;
        checkpoints written before it existed have none).
    """
    path = Path(path).expanduser()
    require(path.is_file(), f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, empty, garbage or a refused pickle: pickle, zip and torch errors
        first = str(err).splitlines()[0] if str(err) else ""
        raise InputError(f"{path}: cannot be read as a training checkpoint ({type(err).__name__}: {first[:160]}); "
                         f"it is damaged or not paperlib's: restart without --resume, or restore a copy") from None
    require(isinstance(ckpt, dict) and ckpt.get("format") == CHECKPOINT_FORMAT,
            f"{path}: not a paperlib training checkpoint of format {CHECKPOINT_FORMAT}")
    recorded = ckpt.get("content_sha256")
    if recorded is not None:
        body = {k: v for k, v in ckpt.items() if k != "content_sha256"}
        require(content_digest(body) == recorded,
                f"{path}: its content does not match the digest written with it: the file was damaged "
                f"after it was saved; restore a copy or restart without --resume")
    return ckpt


def check_resumable(config: "TrainConfig", saved: dict[str, Any], path: str | Path) -> None:
    """Refuse to resume ``saved`` (a checkpoint's config dict) with a config that changes the weights.

    Args:
        config: the new run's :class:`~paperlib.train.config.TrainConfig`.
        saved: the checkpoint's ``config``.
        path: the checkpoint, named in the error.
    """
    saved = dict(saved)
    if isinstance(saved.get("amp"), bool):  # checkpoints of paperlib 0.1 before amp became a mode
        saved["amp"] = "auto" if saved["amp"] else "off"
    weights = {k[2:]: saved.pop(k) for k in list(saved) if k.startswith("w_")}
    if weights and "loss_weights" not in saved:   # checkpoints from before loss_weights was nested
        saved["loss_weights"] = weights
    saved.setdefault("teacher_gf", dataclasses.asdict(PAPER_GF))   # ... and before teacher_gf existed
    changed = [k for k, v in config.to_dict().items()
               if k not in RESUMABLE_FIELDS and k in saved and _plain(saved[k]) != _plain(v)]
    require(not changed, f"resume: {', '.join(changed)} {'differs' if len(changed) == 1 else 'differ'} from the "
                         f"checkpoint's config in "
                         f"{path}; only {', '.join(RESUMABLE_FIELDS)} may change")


def _plain(value):
    # A config read back from a checkpoint holds lists where the dataclass holds tuples.
    return list(value) if isinstance(value, (tuple, list)) else value


def _whole_row(row: list[str], width: int) -> bool:
    """A complete log row: as many fields as the header, an integer step first, numbers or words after."""
    return len(row) == width and row[0].isdigit() and all(field.strip() for field in row)


def open_csv_log(path: Path, header: Sequence[str], *, keep_through_step: int | None):
    """Open a CSV log for appending; rows after ``keep_through_step`` (a crashed tail) are dropped.

    So are rows a crash tore (fewer fields than the header) and lines that are not log rows at
    all: what is kept reads as the log of the run up to its checkpoint.

    Returns:
        (file handle, ``csv.writer``); the caller closes the handle.
    """
    rows: list[list[str]] = []
    if keep_through_step is not None and path.exists():
        with open(path, newline="", errors="replace") as fh:
            reader = csv.reader(fh)
            next(reader, None)
            rows = [r for r in reader if _whole_row(r, len(header)) and int(r[0]) <= keep_through_step]
    # The kept rows go to a new file that replaces the old one whole: a crash while rewriting
    # never loses the log. Later rows are appended to it.
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    fh = open(path, "a", newline="")
    return fh, csv.writer(fh)


def open_tensorboard(out_dir: Path):
    """A TensorBoard ``SummaryWriter`` under ``out_dir/tensorboard``, or None when not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard is optional
        return None
    return SummaryWriter(str(out_dir / "tensorboard"))


LOCK_NAME = ".train.lock"


@contextlib.contextmanager
def run_lock(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir/.train.lock`` for the whole run: a second trainer on the folder is refused.

    The lock is the operating system's (``flock``) on that file, so a run killed by any signal
    releases it with its process: a lock file left behind by a dead run is not a lock, and the
    next run takes it over, removing the run's half-written temporary files (``.*.part*``, which
    :func:`paperlib.images.atomic_path` leaves when a kill comes mid-write). The file holds the
    owner's pid, named in the refusal.

    Raises:
        InputError: another live process holds the folder.
    """
    import fcntl

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / LOCK_NAME
    fh = open(path, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        owner = fh.read().strip() or "unknown"
        fh.close()
        raise InputError(f"{out_dir}: another training run (pid {owner}) is writing this folder; wait for it "
                         f"to finish or choose another --out") from None
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        for stale in out_dir.glob(".*.part*"):   # half-written files of a killed run: ours to remove now
            if stale.is_file():
                stale.unlink()
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()
