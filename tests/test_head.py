"""Tests of paperlib.model.head: parameter counts, shapes, a functional reference, properties, errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from sempart_heads import randomised_head

from paperlib.checks import InputError
from paperlib.model.head import RELEASED_HEAD_PARAMETERS, HeadOutput, SempartHead, count_parameters


def make_inputs(grid: tuple[int, int], *, batch: int = 2, dim: int = 384, patch: int = 8,
                dtype: torch.dtype = torch.float32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    h, w = grid
    keys = torch.randn(batch, dim, h, w, generator=g, dtype=dtype)
    image = torch.randn(batch, 3, h * patch, w * patch, generator=g, dtype=dtype)
    return keys, image


def reference_forward(head: SempartHead, keys: torch.Tensor, image: torch.Tensor):
    """App. A written out with functional ops and per-head softmax attention (eval mode)."""
    sd = head.state_dict()
    heads, head_dim = 2, 64
    x = F.conv2d(keys, sd["proj.weight"], sd["proj.bias"])          # (B, 64, h, w)
    B, E, h, w = x.shape
    t = x.reshape(B, E, h * w).permute(0, 2, 1)                      # (B, N, 64)
    for i in range(len(head.encoder)):
        pre = f"encoder.{i}."
        y = F.layer_norm(t, (E,), sd[pre + "norm1.weight"], sd[pre + "norm1.bias"])
        q, k, v = (y @ sd[pre + "attn.qkv.weight"].T).chunk(3, dim=-1)  # 3 x (B, N, 128)
        outs = []
        for j in range(heads):
            cols = slice(j * head_dim, (j + 1) * head_dim)
            a = torch.softmax(q[..., cols] @ k[..., cols].transpose(1, 2) / math.sqrt(head_dim), -1)
            outs.append(a @ v[..., cols])                            # (B, N, 64)
        t = t + torch.cat(outs, -1) @ sd[pre + "attn.proj.weight"].T + sd[pre + "attn.proj.bias"]
        y = F.layer_norm(t, (E,), sd[pre + "norm2.weight"], sd[pre + "norm2.bias"])
        y = F.gelu(y @ sd[pre + "mlp.0.weight"].T + sd[pre + "mlp.0.bias"])
        t = t + y @ sd[pre + "mlp.3.weight"].T + sd[pre + "mlp.3.bias"]
    features = t.permute(0, 2, 1).reshape(B, E, h, w)
    coarse = F.conv2d(features, sd["coarse_head.weight"], sd["coarse_head.bias"])
    x = features
    for s, stage in enumerate(head.stages):
        size = (2 * x.shape[-2], 2 * x.shape[-1])
        img = F.interpolate(image, size=size, mode="bilinear", align_corners=False)
        x = torch.cat([F.interpolate(x, size=size, mode="bilinear", align_corners=False), img], 1)
        for b in range(len(stage.blocks)):
            pre = f"stages.{s}.blocks.{b}."
            x = F.conv2d(x, sd[pre + "0.weight"], sd[pre + "0.bias"], padding=1)
            x = F.batch_norm(x, sd[pre + "1.running_mean"], sd[pre + "1.running_var"],
                             sd[pre + "1.weight"], sd[pre + "1.bias"], training=False, eps=1e-5)
            x = F.leaky_relu(x, 0.01)
    fine = F.conv2d(torch.cat([x, image], 1), sd["fine_head.weight"], sd["fine_head.bias"])
    return fine, coarse


# ---------------------------------------------------------------- parameter counts

def test_released_parameter_count_is_exact():
    # Arithmetic (paperlib/model/head.py docstring): projection 384*64+64 = 24,640; per encoder layer
    # LN 256 + qkv 64*384 + out 128*64+64 + MLP 2*(64*64+64) = 41,408, two layers 82,816;
    # coarse 65; conv blocks (3x3 conv with bias + BN) 116,352 + 225,024 + 151,296 + 147,840;
    # fine 132.
    expected = 24_640 + 2 * 41_408 + 65 + 116_352 + 225_024 + 151_296 + 147_840 + 132
    assert expected == RELEASED_HEAD_PARAMETERS == 748_165
    head = SempartHead(384, 8)
    assert count_parameters(head) == 748_165
    parts = {name: count_parameters(getattr(head, name))
             for name in ("proj", "encoder", "coarse_head", "stages", "fine_head")}
    assert parts == {"proj": 24_640, "encoder": 82_816, "coarse_head": 65,
                     "stages": 116_352 + 225_024 + 151_296 + 147_840, "fine_head": 132}


@pytest.mark.parametrize("dim, patch, expected", [
    (768, 8, 748_165 + 384 * 64),                        # wider 1x1 projection only: 772,741
    (384, 16, 748_165 + 131 * 9 * 128 + 128 + 2 * 128),  # one more 131 -> 128 block: 899,461
])
def test_documented_parameter_counts(dim, patch, expected):
    assert count_parameters(SempartHead(dim, patch)) == expected


def test_stage_widths_follow_the_appendix():
    head = SempartHead(384, 8)
    convs = [[(blk[0].in_channels, blk[0].out_channels) for blk in stage.blocks]
             for stage in head.stages]
    assert convs == [[(67, 192)], [(195, 128)], [(131, 128), (128, 128)]]
    assert head.fine_head.in_channels == 131
    convs16 = [[(blk[0].in_channels, blk[0].out_channels) for blk in stage.blocks]
               for stage in SempartHead(384, 16).stages]
    assert convs16 == [[(67, 192)], [(195, 128)], [(131, 128)], [(131, 128), (128, 128)]]


# ---------------------------------------------------------------- shapes

def test_shapes_at_320():
    head = SempartHead().eval()
    keys, image = make_inputs((40, 40), batch=1)
    with torch.no_grad():
        out = head(keys, image)
    assert isinstance(out, HeadOutput)
    assert out.fine.shape == (1, 1, 320, 320) and out.coarse.shape == (1, 1, 40, 40)
    assert torch.isfinite(out.fine).all() and torch.isfinite(out.coarse).all()


@pytest.mark.parametrize("patch, grid", [(8, (3, 5)), (8, (6, 4)), (16, (2, 3)), (2, (3, 2))])
def test_shapes_non_square_and_patch_sizes(patch, grid):
    head = SempartHead(384, patch).eval()
    keys, image = make_inputs(grid, patch=patch)
    with torch.no_grad():
        fine, coarse = head(keys, image)
    h, w = grid
    assert fine.shape == (2, 1, h * patch, w * patch)  # full resolution, whatever the patch
    assert coarse.shape == (2, 1, h, w)


def test_named_stages_compose_to_forward():
    head = randomised_head(dtype=torch.float32).eval()
    keys, image = make_inputs((2, 3))
    with torch.no_grad():
        out = head(keys, image)
        features = head.forward_features(keys)
        assert features.shape == (2, 64, 2, 3)
        torch.testing.assert_close(head.forward_coarse(features), out.coarse, rtol=0, atol=0)
        torch.testing.assert_close(head.forward_decoder(features, image), out.fine, rtol=0, atol=0)


# ---------------------------------------------------------------- against a functional reference

def test_matches_functional_reference_float64():
    head = randomised_head().eval()
    keys, image = make_inputs((3, 5), dtype=torch.float64)
    with torch.no_grad():
        fine, coarse = head(keys, image)
        ref_fine, ref_coarse = reference_forward(head, keys, image)
    torch.testing.assert_close(coarse, ref_coarse, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(fine, ref_fine, rtol=1e-10, atol=1e-10)


def test_gradcheck_coarse_branch():
    # A smaller head (the count is irrelevant here) keeps the float64 gradcheck quick.
    head = randomised_head(16, 2, embed_dim=8, head_dim=4, mlp_dim=8).eval()
    keys = torch.randn(1, 16, 2, 3, dtype=torch.float64, requires_grad=True)
    coarse = lambda k: head.forward_coarse(head.forward_features(k))  # noqa: E731
    assert torch.autograd.gradcheck(coarse, (keys,), fast_mode=True)


# ---------------------------------------------------------------- training behaviour

def test_gradient_reaches_every_parameter():
    head = SempartHead().train()
    keys, image = make_inputs((2, 3))
    out = head(keys, image)
    g = torch.Generator().manual_seed(1)  # random weights: a plain sum can cancel through BN
    loss = (out.fine * torch.randn(out.fine.shape, generator=g)).sum() \
        + (out.coarse * torch.randn(out.coarse.shape, generator=g)).sum()
    loss.backward()
    for name, p in head.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().max() > 0, name


def test_eval_is_deterministic_and_batchnorm_differs_in_train_mode():
    head = SempartHead(dropout=0.3)
    keys, image = make_inputs((2, 3))
    head.eval()
    with torch.no_grad():
        a, b = head(keys, image), head(keys, image)
    assert torch.equal(a.fine, b.fine) and torch.equal(a.coarse, b.coarse)

    head_nodrop = SempartHead()
    with torch.no_grad():
        evaluated = head_nodrop.eval()(keys, image)
        trained = head_nodrop.train()(keys, image)
    # BatchNorm uses batch statistics in train mode, running ones (0, 1 at init) in eval mode ...
    assert (trained.fine - evaluated.fine).abs().max() > 1e-3
    # ... and the coarse branch has no BatchNorm: with dropout 0 both modes agree.
    torch.testing.assert_close(trained.coarse, evaluated.coarse)


def test_dropout_acts_only_in_train_mode():
    head = SempartHead(dropout=0.5).train()
    keys, image = make_inputs((2, 3))
    with torch.no_grad():
        torch.manual_seed(0)
        a = head.forward_coarse(head.forward_features(keys))
        torch.manual_seed(1)
        b = head.forward_coarse(head.forward_features(keys))
    assert not torch.allclose(a, b)


# ---------------------------------------------------------------- properties

def test_no_positional_embedding_coarse_is_permutation_equivariant():
    head = randomised_head(dtype=torch.float32).eval()
    keys, _ = make_inputs((4, 5), batch=1)
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(3))
    shuffled = keys.flatten(2)[:, :, perm].reshape(keys.shape)  # tokens moved to other cells
    with torch.no_grad():
        coarse = head.forward_coarse(head.forward_features(keys))
        coarse_shuffled = head.forward_coarse(head.forward_features(shuffled))
    torch.testing.assert_close(coarse_shuffled.flatten(2), coarse.flatten(2)[:, :, perm])
    assert not torch.allclose(coarse_shuffled, coarse)  # the permutation did move the outputs


def test_image_drives_fine_only():
    head = randomised_head(dtype=torch.float32).eval()
    keys, image = make_inputs((2, 3))
    with torch.no_grad():
        a = head(keys, image)
        b = head(keys, image.flip(-1))
    torch.testing.assert_close(a.coarse, b.coarse, rtol=0, atol=0)
    assert (a.fine - b.fine).abs().max() > 1e-3


def test_batch_items_are_independent_in_eval_mode():
    # float64: in float32 the conv kernels picked for batch 3 and batch 1 differ by ~1e-4.
    head = randomised_head().eval()
    keys, image = make_inputs((2, 3), batch=3, dtype=torch.float64)
    with torch.no_grad():
        full = head(keys, image)
        single = head(keys[1:2], image[1:2])
    torch.testing.assert_close(full.fine[1:2], single.fine, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(full.coarse[1:2], single.coarse, rtol=1e-10, atol=1e-10)


def test_channels_last_matches_contiguous():
    # float64 so that the two memory layouts' different conv kernels agree to 1e-10.
    head = randomised_head().eval()
    keys, image = make_inputs((2, 3), dtype=torch.float64)
    with torch.no_grad():
        ref = head(keys, image)
        head_cl = head.to(memory_format=torch.channels_last)
        out = head_cl(keys.to(memory_format=torch.channels_last),
                      image.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out.fine, ref.fine, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(out.coarse, ref.coarse, rtol=1e-10, atol=1e-10)


def test_dtype_follows_the_module():
    head = randomised_head().eval()
    keys, image = make_inputs((2, 3), dtype=torch.float64)
    with torch.no_grad():
        out64 = head(keys, image)
        out32 = head.float()(keys.float(), image.float())
    assert out64.fine.dtype == out64.coarse.dtype == torch.float64
    assert out32.fine.dtype == out32.coarse.dtype == torch.float32
    scale = out64.fine.abs().max()
    torch.testing.assert_close(out32.fine.double(), out64.fine, rtol=0, atol=1e-3 * scale)
    torch.testing.assert_close(out32.coarse.double(), out64.coarse, rtol=0, atol=1e-3 * scale)


# ---------------------------------------------------------------- errors

def test_input_errors():
    head = SempartHead()
    keys, image = make_inputs((2, 3))
    with pytest.raises(InputError, match=r"image must be 16x24 pixels"):
        head(keys, image[..., :-8])
    with pytest.raises(InputError, match=r"D = 384"):
        head(keys[:, :100], image)
    with pytest.raises(InputError, match=r"image must have 3 channels"):
        head(keys, image[:, :1])
    with pytest.raises(InputError, match=r"batch size 1 but the keys have 2"):
        head(keys, image[:1])
    with pytest.raises(InputError, match=r"keys must have 4 dimensions"):
        head(keys[0], image)
    with pytest.raises(InputError, match=r"floating-point"):
        head(keys.long(), image)
    with pytest.raises(InputError, match=r"head\.to\(torch\.float64\)"):
        head(keys.double(), image.double())
    with pytest.raises(InputError, match=r"features must have 64 channels"):
        head.forward_coarse(keys)
    with pytest.raises(InputError, match=r"must be a torch.Tensor"):
        head(keys.numpy(), image)


@pytest.mark.parametrize("kwargs, message", [
    ({"patch_size": 14}, r"power of two"),
    ({"patch_size": 1}, r"power of two"),
    ({"dim": 0}, r"dim must be an integer >= 1"),
    ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    ({"num_heads": 2.0}, r"num_heads must be an integer >= 1"),
])
def test_constructor_errors(kwargs, message):
    with pytest.raises(InputError, match=message):
        SempartHead(**kwargs)


def test_count_parameters_rejects_non_modules():
    with pytest.raises(InputError, match="nn.Module"):
        count_parameters([torch.zeros(3)])
