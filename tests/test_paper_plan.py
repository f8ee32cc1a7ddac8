"""The paper's plan: its commands, its cost arithmetic, and the checks before any work starts."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from paperlib.checks import InputError
from paperlib.notebook.run import notebook_parameters, parse_cli_parameters
from paperlib.reproduce.cost import CostEstimate, predictions, training_steps
from paperlib.reproduce.plan import PaperPlan, command_line, eval_steps, notebook_steps, weights_files
from paperlib.reproduce.run import check_weights


@pytest.fixture
def plan(tmp_path):
    return PaperPlan(data_root=tmp_path / "data", weights_dir=tmp_path / "weights")


def test_every_step_is_a_command_a_reader_can_type_back(plan):
    """Printed, parsed back as `paperlib notebook run` parses it: the same notebook and parameters."""
    for step in notebook_steps(plan):
        argv = shlex.split(command_line(step, plan.tag))
        assert argv[:6] == ["paperlib", "notebook", "run", step.notebook, "--tag", "paper"]
        pairs = [(argv[i + 1], argv[i + 2]) for i in range(6, len(argv)) if argv[i] == "-p"]
        yamls = [argv[i + 1] for i in range(6, len(argv)) if argv[i] == "-y"]
        assert parse_cli_parameters(pairs, yamls) == step.parameters
        assert set(step.parameters) <= {s.name for s in notebook_parameters(step.notebook)}


def test_the_plan_uses_the_papers_data_and_backbones(plan):
    steps = {s.notebook: s.parameters for s in notebook_steps(plan)}
    assert steps["tables_1_3_saliency"]["backbones"] == ["dino_vits8", "dino_vits16", "ibot_vits16"]
    assert steps["tables_1_3_saliency"]["datasets"] == ["dut-omron", "duts-te", "ecssd"]
    assert steps["tables_2_4_corloc"]["datasets"] == ["voc07", "voc12", "coco20k"]
    assert steps["table5_gf_vs_bf"]["backbone"] == "dino_vits16" and steps["table5_gf_vs_bf"]["max_images"] is None
    assert steps["tables_1_3_saliency"]["max_steps"] is None and steps["tables_1_3_saliency"]["limit"] is None
    # The train page and the crop-zoom explorer show the Ours head that Tables 1 and 3 trained.
    assert steps["train"]["out_dir"] == "results/notebooks/paper/ablation/dino_vits8-crop_paper"
    assert steps["crop_zoom_explorer"]["checkpoint"] == f"{steps['train']['out_dir']}/last.pt"
    assert [Path(p).name for p in weights_files(plan).values()] == [
        "dino_deitsmall8_pretrain.pth", "dino_deitsmall16_pretrain.pth", "ibot_vits16_checkpoint_teacher.pth"]


def test_eval_steps_are_valid_commands_for_figs_6_8(plan):
    from paperlib.cli.main import build_parser

    steps = eval_steps(plan)
    assert [(e.dataset, e.label) for e in steps] == [(d, label) for d in ("dut-omron", "duts-te", "ecssd")
                                                     for label in ("baseline", "ours")]
    for e in steps:
        args = build_parser().parse_args(list(e.argv))
        assert args.command == "eval" and str(args.json) == e.json
        assert args.refine == ("none" if e.label == "baseline" else "gf")
        assert str(args.checkpoint).endswith("crop_none/last.pt" if e.label == "baseline" else "crop_paper/last.pt")
    figs = {s.notebook: s.parameters for s in notebook_steps(plan)}["figs_6_8_iou_by_size"]["results"]
    assert {f for by_name in figs.values() for f in by_name.values()} == {e.json for e in steps}


def test_cost_arithmetic(plan):
    # The paper: 30 epochs of DUTS-TR less the 5 % held out (10,025 images), batches of 8.
    assert training_steps(plan, 10553) == 30 * (10025 // 8) == 37_590      # the README's figure
    counts = {"dut-omron": 5168, "duts-te": 5019, "ecssd": 1000, "voc07": 5011, "voc12": 11540, "coco20k": 19817}
    saliency, corloc = 5168 + 5019 + 1000, 5011 + 11540 + 19817
    assert predictions(plan, counts) == 6 * saliency + 2 * corloc + saliency + 2 * saliency
    small = PaperPlan(plan.data_root, plan.weights_dir, max_steps=2, limit=3)
    assert training_steps(small, 10553) == 2 and predictions(small, counts) == 6 * 9 + 2 * 9 + 9 + 2 * 9
    cost = CostEstimate("cuda:0", step_s=0.05, image_s=0.02, runs=6, steps_per_run=37590, images=100_000)
    assert cost.total_s == pytest.approx(6 * 37590 * 0.05 + 100_000 * 0.02)
    assert "6 runs x 37,590 steps x 0.050 s = 3.1 h" in "\n".join(cost.lines())


def test_missing_weights_are_listed_in_one_error_with_where_to_get_them(plan):
    plan.weights_dir.mkdir()
    (plan.weights_dir / "dino_deitsmall8_pretrain.pth").write_bytes(b"x")
    with pytest.raises(InputError, match=r"^--weights-dir: missing .*dino_deitsmall16_pretrain\.pth \(from https://"
                                         r"dl\.fbaipublicfiles\.com/.*ibot_vits16_checkpoint_teacher\.pth"):
        check_weights(plan)


def test_dino_vits8_must_come_first(tmp_path):
    with pytest.raises(InputError, match="dino_vits8"):
        PaperPlan(tmp_path, tmp_path, backbones=("dino_vits16",))
