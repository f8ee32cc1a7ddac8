"""segment / eval / corloc commands and the method layer, on the offline filterbank backbone."""

from __future__ import annotations

import json

import numpy as np
import pytest

from paperlib.checks import InputError
from paperlib.cli.main import main
from paperlib.data.synth import synthesize
from paperlib.eval.datasets import evaluate_dataset
from paperlib.images import read_image, read_mask, write_image
from paperlib.methods.refined import predict_refined
from paperlib.methods.registry import build_method
from paperlib.methods.segment import collect_images, overlay
from paperlib.methods.tokencut import TokenCut


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    synthesize(root, n=6, seed=3, progress=False)
    return root


class KeysBackbone:
    """A stand-in backbone whose keys encode one square object on the patch grid."""

    patch_size = 8

    def __init__(self, box):
        self.box = box          # (row0, row1, col0, col1) in patches

    def parameters(self):
        return iter(())

    def buffers(self):
        return iter(())

    def features(self, images):
        import torch

        from paperlib.backbones.features import Features

        _, _, height, width = images.shape
        h, w = height // 8, width // 8
        keys = torch.zeros(1, 2, h, w)
        keys[:, 0] = 1.0
        r0, r1, c0, c1 = self.box
        keys[:, :, r0:r1, c0:c1] = torch.tensor([0.0, 1.0])[:, None, None]
        return Features(keys=keys, tokens=keys.flatten(2).transpose(1, 2), grid=(h, w))


def test_tokencut_method_finds_the_encoded_object():
    method = TokenCut(KeysBackbone((2, 5, 3, 7)))
    image = np.zeros((64, 80, 3), np.uint8)
    pred = method.predict(image)
    expected = np.zeros((64, 80), np.float32)
    expected[16:40, 24:56] = 1
    np.testing.assert_array_equal(pred.mask, expected)
    np.testing.assert_array_equal(method.discover(image), [24, 16, 56, 40])
    # Refinement keeps the size and range; "none" returns the raw mask.
    raw, refined = predict_refined(method, image, refine="none")
    np.testing.assert_array_equal(refined, raw.mask)
    _, gf = predict_refined(method, np.full((64, 80, 3), 120, np.uint8), refine="gf")
    assert gf.shape == (64, 80) and 0 <= gf.min() and gf.max() <= 1
    with pytest.raises(InputError, match="refine"):
        predict_refined(method, image, refine="crf")


def test_discover_pads_odd_sizes():
    method = TokenCut(KeysBackbone((0, 2, 0, 2)))
    box = method.discover(np.zeros((30, 21, 3), np.uint8))    # padded to 32 x 24
    np.testing.assert_array_equal(box, [0, 0, 16, 16])


def test_overlay_and_collect(tmp_path, rng):
    image = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    mask = np.zeros((20, 30))
    mask[5:15, 5:25] = 1
    out = overlay(image, mask)
    assert out.shape == (20, 68, 3)
    np.testing.assert_array_equal(out[:, :30], image)        # left: the image untouched
    assert not np.array_equal(out[10, 48], image[10, 10])    # right: tinted inside the mask
    np.testing.assert_array_equal(out[0, 38:], image[0])     # outside the mask untouched
    write_image(tmp_path / "a.png", image)
    write_image(tmp_path / "b.jpg", image)
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in collect_images([tmp_path])] == ["a.png", "b.jpg"]
    with pytest.raises(InputError, match="no such file"):
        collect_images([tmp_path / "missing.jpg"])


def test_segment_command_on_any_image(tmp_path, rng):
    folder = tmp_path / "mine"
    write_image(folder / "photo.jpg", rng.integers(0, 256, (50, 70, 3), dtype=np.uint8))
    write_image(tmp_path / "single.png", rng.integers(0, 256, (33, 41, 3), dtype=np.uint8))
    out = tmp_path / "out"
    assert main(["-q", "segment", str(folder), str(tmp_path / "single.png"), "--out", str(out),
                 "--backbone", "filterbank", "--refine", "gf"]) == 0
    assert read_mask(out / "photo.png").shape == (50, 70)
    assert read_mask(out / "single.png").shape == (33, 41)
    assert read_image(out / "overlays" / "single.jpg").shape == (33, 41 * 2 + 8, 3)


def test_eval_scores_every_refinement_from_one_prediction(synth_root, tmp_path):
    from paperlib.data.saliency import open_dataset

    dataset = open_dataset("duts-te", synth_root)
    method = build_method("tokencut", backbone="filterbank", device="cpu")
    results = evaluate_dataset(dataset, method, refines=("none", "gf"), progress=False,
                               save_masks=tmp_path / "masks")
    assert set(results) == {"none", "gf"}
    for r in ("none", "gf"):
        assert results[r].scores.n_images == 6 and len(results[r].rows) == 6
        assert len(list((tmp_path / "masks" / r).glob("*.png"))) == 6
    # The raw TokenCut mask is binary: its MAE equals 1 - Acc (both at the 0.5 cut).
    none = results["none"].scores
    assert none.mae == pytest.approx(1 - none.acc, abs=1e-6)


def test_eval_and_corloc_commands(synth_root, tmp_path, capsys):
    out = tmp_path / "e.json"
    per = tmp_path / "e.csv"
    assert main(["-q", "eval", "--dataset", "duts-te", "--root", str(synth_root), "--backbone",
                 "filterbank", "--refine", "none,bf", "--json", str(out), "--per-image", str(per)]) == 0
    scores = json.loads(out.read_text())
    assert scores["synthetic"] is True and set(scores["scores"]) == {"none", "bf"}
    assert per.read_text().count("\n") == 1 + 2 * 6
    assert "smoke numbers" in capsys.readouterr().out
    cl = tmp_path / "c.json"
    assert main(["-q", "corloc", "--dataset", "synth", "--root", str(synth_root), "--backbone",
                 "filterbank", "--json", str(cl)]) == 0
    result = json.loads(cl.read_text())
    assert result["n_images"] == 6 and 0.0 <= result["corloc"] <= 1.0


def test_dino_without_weights_offline_is_one_clear_error(tmp_path, monkeypatch, capsys, rng):
    monkeypatch.setattr("paperlib.backbones.registry._hub_reachable", lambda timeout=3.0: False)
    monkeypatch.delenv("PAPERLIB_WEIGHTS_DIR", raising=False)
    write_image(tmp_path / "x.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    assert main(["-q", "segment", str(tmp_path / "x.png"), "--out", str(tmp_path / "o"),
                 "--backbone", "dino_vits16"]) == 2
    err = capsys.readouterr().err
    assert "dino_deitsmall16_pretrain.pth" in err and "--weights" in err and err.count("\n") == 1


@pytest.mark.realdata
def test_eval_on_real_duts_sample_offline(real_data_root, tmp_path):
    """`paperlib eval` reads the official layout of the real sample and scores it offline."""
    out = tmp_path / "real.json"
    assert main(["-q", "eval", "--dataset", "duts-te", "--root", str(real_data_root), "--backbone",
                 "filterbank16", "--limit", "4", "--refine", "none,gf", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["synthetic"] is False
    for r in ("none", "gf"):
        s = result["scores"][r]
        assert s["n_images"] == 4 and 0.0 <= s["iou"] <= 1.0 and 0.0 <= s["max_fbeta"] <= 1.0


@pytest.mark.parametrize("protocol", ["default", "official"])
def test_sempart_checkpoint_through_every_command(synth_root, tmp_path, protocol):
    """A saved head (random here: the plumbing, not the quality) runs in eval, segment and corloc."""
    import torch

    from paperlib.backbones.registry import load_backbone
    from paperlib.model.head import SempartHead
    from paperlib.model.sempart import save_sempart

    torch.manual_seed(0)
    backbone = load_backbone("filterbank")
    ckpt = tmp_path / "head.pt"
    save_sempart(ckpt, SempartHead(dim=backbone.dim, patch_size=8), backbone="filterbank",
                 image_size=64, resize_short=72)
    common = ["--method", "sempart", "--checkpoint", str(ckpt), "--protocol", protocol]
    out = tmp_path / "e.json"
    assert main(["-q", "eval", "--dataset", "duts-te", "--root", str(synth_root), "--refine",
                 "none,gf", "--json", str(out), *common]) == 0
    scores = json.loads(out.read_text())["scores"]
    assert scores["none"]["n_images"] == 6 and 0 <= scores["gf"]["iou"] <= 1
    assert main(["-q", "corloc", "--dataset", "synth", "--root", str(synth_root), *common]) == 0
    images = synth_root / "DUTS-TE" / "DUTS-TE-Image"
    assert main(["-q", "segment", str(images), "--out", str(tmp_path / "seg"), *common]) == 0
    first = sorted(images.iterdir())[0]
    assert read_mask(tmp_path / "seg" / f"{first.stem}.png").shape == read_image(first).shape[:2]


def test_sempart_without_checkpoint_is_a_clear_error(capsys, tmp_path, rng):
    write_image(tmp_path / "x.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    assert main(["-q", "segment", str(tmp_path), "--out", str(tmp_path / "o"), "--method",
                 "sempart"]) == 2
    assert "--checkpoint" in capsys.readouterr().err


def test_protocol_flags_override_the_named_protocol(synth_root, tmp_path, capsys):
    import torch

    from paperlib.backbones.registry import load_backbone
    from paperlib.model.head import SempartHead
    from paperlib.model.sempart import save_sempart

    torch.manual_seed(0)
    ckpt = tmp_path / "head.pt"
    save_sempart(ckpt, SempartHead(dim=load_backbone("filterbank").dim, patch_size=8),
                 backbone="filterbank", image_size=64, resize_short=72)
    out = tmp_path / "e.json"
    assert main(["-q", "eval", "--dataset", "duts-te", "--root", str(synth_root), "--method", "sempart",
                 "--checkpoint", str(ckpt), "--protocol", "official", "--polarity", "image",
                 "--json", str(out)]) == 0
    protocol = json.loads(out.read_text())["protocol"]
    assert protocol["bn_mode"] == "train" and protocol["resolution"] == "center320"
    assert protocol["polarity"] == "image"                      # the flag wins over the preset
    assert "flip per image" in capsys.readouterr().out          # and the output says so


def test_polarity_flip_comes_before_the_guided_filter(synth_root, tmp_path):
    """Invert before the GF (docs/paper_and_code.md#evaluation-protocol): a head that marks
    everything is flipped to ~0, then filtered."""
    import torch

    from paperlib.backbones.registry import load_backbone
    from paperlib.data.saliency import open_dataset
    from paperlib.model.head import SempartHead
    from paperlib.model.sempart import save_sempart

    head = SempartHead(dim=load_backbone("filterbank").dim, patch_size=8)
    with torch.no_grad():
        last_conv = [m for m in head.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        last_conv.bias.fill_(50.0)                     # sigmoid(fine) ~ 1 everywhere
    ckpt = tmp_path / "all.pt"
    save_sempart(ckpt, head, backbone="filterbank", image_size=64, resize_short=72)
    method = build_method("sempart", checkpoint=str(ckpt), device="cpu")
    results = evaluate_dataset(open_dataset("duts-te", synth_root), method, refines=("none", "gf"),
                               progress=False, save_masks=tmp_path / "m")
    for r in ("none", "gf"):
        # Flipped to ~0 before the filter: the filtered mask stays ~0 (a filter applied before the
        # flip would give ~1 and MAE ~ 1 - fg).
        masks = [read_mask(p) for p in sorted((tmp_path / "m" / r).glob("*.png"))]
        assert max(m.max() for m in masks) < 0.01


def test_segment_checks_paths_before_loading_weights(tmp_path, capsys):
    assert main(["-q", "segment", str(tmp_path / "missing.jpg"), "--out", str(tmp_path / "o"),
                 "--backbone", "dino_vits16"]) == 2
    assert "missing.jpg: no such file or folder" in capsys.readouterr().err


def test_large_images_are_shrunk_before_the_cut_and_answered_at_full_size():
    seen = []

    class Recording(KeysBackbone):
        def features(self, images):
            seen.append(tuple(images.shape[-2:]))
            return super().features(images)

    method = TokenCut(Recording((1, 3, 1, 3)), max_side=64)
    image = np.zeros((128, 256, 3), np.uint8)               # long side 256 -> shrunk to 64
    pred = method.predict(image)
    assert seen[-1] == (32, 64) and pred.mask.shape == (128, 256)
    expected = np.zeros((128, 256), np.float32)
    expected[32:96, 32:96] = 1                                  # patches (1:3, 1:3) of 16 px, x4
    np.testing.assert_array_equal(pred.mask, expected)
    np.testing.assert_array_equal(method.discover(image), [32, 32, 96, 96])
    assert TokenCut(Recording((0, 1, 0, 1)), max_side=None).predict(image).mask.shape == (128, 256)
    assert seen[-1] == (128, 256)
    with pytest.raises(InputError, match="max_side"):
        TokenCut(Recording((0, 1, 0, 1)), max_side=4)


def test_sempart_corloc_and_segment_use_the_batch_rule(synth_root, tmp_path, monkeypatch):
    """corloc and segment hand a Sempart method its images in batches of the protocol's size."""
    import torch

    from paperlib.backbones.registry import load_backbone
    from paperlib.methods.sempart import SempartMethod
    from paperlib.model.head import SempartHead
    from paperlib.model.sempart import save_sempart

    torch.manual_seed(0)
    ckpt = tmp_path / "head.pt"
    save_sempart(ckpt, SempartHead(dim=load_backbone("filterbank").dim, patch_size=8),
                 backbone="filterbank", image_size=64, resize_short=72)
    sizes = []
    real = SempartMethod.predict_batch

    def spy(self, images, *, image_ids=None):
        sizes.append(len(images))
        return real(self, images, image_ids=image_ids)

    monkeypatch.setattr(SempartMethod, "predict_batch", spy)
    common = ["--method", "sempart", "--checkpoint", str(ckpt)]
    assert main(["-q", "corloc", "--dataset", "synth", "--root", str(synth_root), *common]) == 0
    assert sizes == [6]                                     # 6 images, batch 8: one batch
    sizes.clear()
    images = synth_root / "DUTS-TE" / "DUTS-TE-Image"
    assert main(["-q", "segment", str(images), "--out", str(tmp_path / "s"), *common]) == 0
    assert sizes == [6]
