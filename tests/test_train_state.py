"""Tests of paperlib.train.state: checkpoint files, RNG states, the resume check and the CSV logs."""

from __future__ import annotations

import csv
import random

import numpy as np
import pytest
import torch

from paperlib.checks import InputError
from paperlib.train.config import config_from
from paperlib.train.state import (
    CHECKPOINT_FORMAT,
    check_resumable,
    load_checkpoint,
    open_csv_log,
    rng_states,
    save_checkpoint,
    set_rng_states,
)


def test_rng_states_round_trip_through_a_checkpoint(tmp_path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    save_checkpoint(tmp_path / "c.pt", {"format": CHECKPOINT_FORMAT, "rng": rng_states()})
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    set_rng_states(load_checkpoint(tmp_path / "c.pt")["rng"])  # weights_only load
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]) and got[2] == expected[2]
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left behind


def test_load_refuses_other_files(tmp_path):
    torch.save({"format": "something-else"}, tmp_path / "x.pt")
    with pytest.raises(InputError, match="x.pt"):
        load_checkpoint(tmp_path / "x.pt")
    with pytest.raises(InputError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_resume_check_names_the_changed_fields():
    cfg = config_from("smoke", data_root="d")
    saved = cfg.to_dict()
    check_resumable(config_from("smoke", data_root="elsewhere", max_steps=99), saved, "last.pt")  # resumable
    with pytest.raises(InputError, match="lr.*last.pt"):
        check_resumable(config_from("smoke", data_root="d", lr=0.5), saved, "last.pt")
    # betas come back from a checkpoint as a list: not a change.
    check_resumable(cfg, {**saved, "betas": list(cfg.betas)}, "last.pt")


def test_checkpoints_from_before_amp_was_a_mode_still_resume():
    cfg = config_from("smoke", data_root="d")                    # amp='auto'
    check_resumable(cfg, {**cfg.to_dict(), "amp": True}, "old.pt")
    with pytest.raises(InputError, match="amp"):
        check_resumable(cfg, {**cfg.to_dict(), "amp": False}, "old.pt")
    check_resumable(config_from("smoke", data_root="d", amp="off"), {**cfg.to_dict(), "amp": False}, "old.pt")


def test_csv_log_drops_the_rows_after_the_checkpoint(tmp_path):
    path = tmp_path / "log.csv"
    fh, writer = open_csv_log(path, ("step", "loss"), keep_through_step=None)
    writer.writerows([[1, 0.5], [2, 0.4], [3, 0.3]])
    fh.close()
    fh, writer = open_csv_log(path, ("step", "loss"), keep_through_step=2)  # crashed after step 3's log
    writer.writerow([3, 0.25])
    fh.close()
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [["step", "loss"], ["1", "0.5"], ["2", "0.4"], ["3", "0.25"]]


def test_csv_log_drops_torn_and_garbage_rows_on_resume(tmp_path):
    """A row a kill cut short, or a line that is no log row, is dropped, not kept or a traceback."""
    path = tmp_path / "log.csv"
    path.write_text("step,epoch,loss\n1,0,0.5\nthis is not a row\n2,0,0.4\n3,0\n\x00\x00garbage,,\n")
    fh, writer = open_csv_log(path, ("step", "epoch", "loss"), keep_through_step=3)
    writer.writerow([3, 0, 0.25])
    fh.close()
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [["step", "epoch", "loss"], ["1", "0", "0.5"], ["2", "0", "0.4"], ["3", "0", "0.25"]]


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated zip", b"garbage" * 100])
def test_a_damaged_checkpoint_is_one_line(tmp_path, content):
    from paperlib.train.state import load_checkpoint

    path = tmp_path / "last.pt"
    path.write_bytes(content)
    with pytest.raises(InputError, match="last.pt: cannot be read as a training checkpoint"):
        load_checkpoint(path)
