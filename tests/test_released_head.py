"""Tests of paperlib.model.released: the authors' released heads read into SempartHead.

Without ../shared: a released-format file is made from a paperlib head through the inverse name
table, read back by read_checkpoint / load_sempart / the CLI, and every way it can be wrong
gives one InputError naming the file. With ../shared/golden/released_head (marked realdata,
skipped when absent): a head saved by the authors' own module, and its outputs on fixed inputs.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from doc_commands import documented
from sempart_heads import photo, randomised_head

from paperlib.backbones.registry import load_backbone
from paperlib.checks import InputError
from paperlib.cli.main import main
from paperlib.images import read_mask, write_image
from paperlib.model.head import RELEASED_HEAD_PARAMETERS, SempartHead, count_parameters
from paperlib.model.released import (
    RELEASED,
    RELEASED_ENTRY,
    RELEASED_NAMES,
    from_released,
    is_released,
    rename,
    to_released,
)
from paperlib.model.sempart import SEMPART_FORMAT, load_sempart, read_checkpoint


def released_head(seed: int = 0) -> SempartHead:
    """A float32 SempartHead(384, 8) in eval mode, every parameter and BatchNorm statistic random."""
    return randomised_head(384, 8, seed=seed, dtype=torch.float32).eval()


def released_file(tmp_path: Path, state: dict, name: str = "released.pth") -> Path:
    """``state`` saved the way the authors' training script saves a head."""
    path = tmp_path / name
    torch.save({RELEASED_ENTRY: state}, path)
    return path


def head_inputs(seed: int, h: int = 6, w: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 384, h, w, generator=g), torch.randn(2, 3, 8 * h, 8 * w, generator=g)


def run_head(state: dict, keys: torch.Tensor, image: torch.Tensor):
    head = SempartHead(384, 8).eval()
    head.load_state_dict(state, strict=True)
    with torch.no_grad():
        return head(keys, image)


# ----------------------------------------------------------------------------- the name table

def test_the_table_maps_every_head_tensor_to_one_released_name_and_back():
    ours = list(SempartHead(384, 8).state_dict())
    theirs = [rename(name, inverse=True) for name in ours]
    assert None not in theirs and len(set(theirs)) == len(ours) == 56
    assert [rename(name) for name in theirs] == ours
    for name in theirs:  # no released name is claimed by two rows
        rows = [r for r, _ in RELEASED_NAMES
                if re.fullmatch(re.escape(r).replace(r"\{i\}", r"\d+").replace(r"\{s\}", r"\d+")
                                .replace(r"\{t\}", r"\w+"), name)]
        assert len(rows) == 1, (name, rows)


def test_the_table_spells_out_the_released_module_names():
    # Names as segmenterNetRGB(384, 1, 64, patch_size=8) writes them (listed in
    # ../shared/golden/released_head/released_format_head_random.pth).
    assert rename("conv_input.weight") == "proj.weight"
    assert rename("inp_transformer.layers.1.0.fn.to_qkv.weight") == "encoder.1.attn.qkv.weight"
    assert rename("inp_transformer.layers.0.1.fn.net.3.bias") == "encoder.0.mlp.3.bias"
    assert rename("layers.2.4.num_batches_tracked") == "stages.2.blocks.1.1.num_batches_tracked"
    assert rename("conv_final.bias") == "fine_head.bias"
    assert rename("layers.2.2.weight") is None        # item 2 is a LeakyReLU: no tensors
    assert rename("module.conv_input.weight") is None  # no prefix is stripped silently


# ----------------------------------------------------------------------------- a file made here

def test_a_released_file_loads_as_the_head_it_came_from(tmp_path):
    head = released_head()
    # Reversed order: the names, not the positions, decide where each tensor goes.
    state = dict(reversed(list(to_released(head.state_dict()).items())))
    path = released_file(tmp_path, state)
    assert is_released(torch.load(path, weights_only=True))

    ckpt = read_checkpoint(path)
    assert ckpt["format"] == SEMPART_FORMAT
    assert ckpt["config"] == RELEASED.config()
    assert ckpt["config"]["backbone"] == "dino_vits8"
    assert (ckpt["config"]["image_size"], ckpt["config"]["resize_short"]) == (320, 335)
    assert ckpt["config"]["head"] == {"dim": 384, "patch_size": 8}

    keys, image = head_inputs(1)
    with torch.no_grad():
        expected = head(keys, image)
    got = run_head(ckpt["model"], keys, image)
    torch.testing.assert_close(got.fine, expected.fine, rtol=0, atol=0)
    torch.testing.assert_close(got.coarse, expected.coarse, rtol=0, atol=0)


def test_other_entries_beside_the_released_state_are_ignored(tmp_path):
    head = released_head(seed=2)
    path = tmp_path / "with_epoch.pth"
    torch.save({RELEASED_ENTRY: to_released(head.state_dict()), "epoch": 29}, path)
    model_state = read_checkpoint(path)["model"]
    for name, tensor in head.state_dict().items():
        assert torch.equal(model_state[name], tensor), name


def bad_released_files(tmp_path):
    """(file, the tensor or entry its single-line error must name)."""
    good = to_released(released_head().state_dict())
    extra = {**good, "layers.3.0.weight": torch.zeros(128, 131, 3, 3)}    # a 4th stage (patch 16)
    unknown = {**good, "segmenter.conv_input.weight": torch.zeros(64, 384, 1, 1)}
    missing = {k: v for k, v in good.items() if k != "layers.2.4.running_var"}
    wrong_shape = {**good, "conv_input.weight": torch.zeros(64, 768, 1, 1)}  # a ViT-B head
    not_tensor = {**good, "conv_final.bias": [0.0]}
    return [
        (released_file(tmp_path, extra, "extra.pth"), "'layers.3.0.weight'"),
        (released_file(tmp_path, unknown, "unknown.pth"), "'segmenter.conv_input.weight'"),
        (released_file(tmp_path, missing, "missing.pth"), "'layers.2.4.running_var'"),
        (released_file(tmp_path, wrong_shape, "shape.pth"), "(64, 768, 1, 1)"),
        (released_file(tmp_path, not_tensor, "value.pth"), "'conv_final.bias'"),
        (released_file(tmp_path, torch.zeros(3), "notdict.pth"), f"{RELEASED_ENTRY!r} must be a state dict"),
    ]


def test_bad_released_files_raise_one_line_naming_file_and_tensor(tmp_path):
    for path, what in bad_released_files(tmp_path):
        for read in (read_checkpoint, load_sempart):
            with pytest.raises(InputError) as err:
                read(path)
            message = str(err.value)
            assert str(path) in message and what in message, (path, message)
            assert "\n" not in message, message


def test_a_wrong_shape_names_what_the_head_needs(tmp_path):
    state = {**to_released(released_head().state_dict()), "conv_input.weight": torch.zeros(64, 768, 1, 1)}
    path = released_file(tmp_path, state)
    with pytest.raises(InputError, match=r"'conv_input\.weight' has shape \(64, 768, 1, 1\), "
                                         r"SempartHead\(384, 8\) \(DINO ViT-S/8\) needs \(64, 384, 1, 1\)"):
        read_checkpoint(path)


def test_a_file_that_is_neither_format_says_so(tmp_path):
    path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), path)
    with pytest.raises(InputError, match=re.escape(str(path)) + r".*'segmenter_state_dict'"):
        read_checkpoint(path)


def test_to_released_refuses_a_name_outside_the_table():
    with pytest.raises(InputError, match="'extra.weight'"):
        to_released({"extra.weight": torch.zeros(1)})


def test_from_released_is_strict_without_a_file():
    good = to_released(released_head().state_dict())
    assert set(from_released(good, path="x.pth")) == set(SempartHead(384, 8).state_dict())
    with pytest.raises(InputError, match=r"x\.pth.*'conv_coarse\.bias'.*missing"):
        from_released({k: v for k, v in good.items() if k != "conv_coarse.bias"}, path="x.pth")


# ----------------------------------------------------------------------------- on DINO ViT-S/8

@pytest.fixture(scope="module")
def vits8_weights(tmp_path_factory) -> Path:
    """A random ViT-S/8 under DINO's official file name (timm key names, as the official file)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "dino_deitsmall8_pretrain.pth"
    torch.save(load_backbone("dino_vits8", _random_init=True).model.state_dict(), path)
    return path


@pytest.mark.slow
def test_load_sempart_and_the_readme_commands_run_a_released_head_on_vits8(tmp_path, vits8_weights):
    """The README's released-head commands as printed, with the reader's paths swapped for a
    random ViT-S/8, a random released-format head, one photo and a synthetic DUTS-TE of 2 images."""
    head = released_head(seed=4)
    path = released_file(tmp_path, to_released(head.state_dict()))
    model = load_sempart(path, backbone_weights=vits8_weights, device="cpu")
    assert model.backbone.name == "dino_vits8" and (model.image_size, model.resize_short) == (320, 335)
    x = torch.rand(1, 3, 320, 320, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        out = model(x)
    assert out.fine.shape == (1, 1, 320, 320) and out.coarse.shape == (1, 1, 40, 40)

    printed = [c for _, c in documented(("paperlib segment", "paperlib eval")) if "released.pth" in c]
    assert len(printed) == 2, printed
    photos, datasets = tmp_path / "my_photos", tmp_path / "datasets"
    photos.mkdir()
    write_image(photos / "a.jpg", photo(90, 120))
    assert main(["-q", "data", "synth", "--out", str(datasets), "--n", "2"]) == 0
    swaps = {"released.pth": str(path), "~/weights/dino_deitsmall8_pretrain.pth": str(vits8_weights),
             "my_photos": str(photos), "~/datasets": str(datasets), "released_duts.json": str(tmp_path / "r.json"),
             "masks": str(tmp_path / "masks")}
    for command in printed:
        argv = shlex.split(command)[1:]
        argv = [swaps.get(a, a) for a in argv]
        assert main(["-q"] + argv) == 0, command
    mask = read_mask(tmp_path / "masks" / "a.png")
    assert mask.shape == (90, 120) and np.isfinite(mask).all()
    scores = json.loads((tmp_path / "r.json").read_text())
    assert "gf" in json.dumps(scores)


# ----------------------------------------------------------------------------- the authors' own file

@pytest.fixture(scope="module")
def golden(golden_root) -> Path:
    folder = golden_root / "released_head"
    if not folder.is_dir():
        pytest.skip(f"golden reference not found at {folder}")
    return folder


@pytest.mark.realdata
def test_the_authors_format_file_loads_and_has_the_released_size(golden):
    raw = torch.load(golden / "released_format_head_random.pth", map_location="cpu", weights_only=True)
    assert is_released(raw) and len(raw[RELEASED_ENTRY]) == 56
    head = SempartHead(384, 8)
    head.load_state_dict(read_checkpoint(golden / "released_format_head_random.pth")["model"], strict=True)
    assert count_parameters(head) == RELEASED_HEAD_PARAMETERS == 748_165


@pytest.mark.realdata
def test_the_port_reproduces_the_released_head_outputs(golden):
    ckpt = read_checkpoint(golden / "released_format_head_random.pth")
    ref = torch.load(golden / "inputs_and_outputs_eval.pt", map_location="cpu", weights_only=True)
    out = run_head(ckpt["model"], ref["keys"], ref["image"])
    # Measured on CPU, float32: max |error| 3.0e-7 (fine, |logits| <= 0.55) and 1.1e-6 (coarse,
    # |logits| <= 2.75), a few float32 ulps; the port run in float64 is as far (2.7e-7, 1.1e-6),
    # so what is left is the reference's own float32 rounding.
    torch.testing.assert_close(out.fine, ref["fine_logits"], rtol=0, atol=3e-6)
    torch.testing.assert_close(out.coarse, ref["coarse_logits"], rtol=0, atol=3e-6)
