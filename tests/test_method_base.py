"""Tests of paperlib.methods.base: every method answers the same interface, batch and frame included."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paperlib.checks import InputError
from paperlib.data.saliency import open_dataset
from paperlib.images import write_mask_png
from paperlib.methods.base import EvalView, ImageByImage, Prediction
from paperlib.methods.registry import build_method


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    from paperlib.data.synth import synthesize

    root = tmp_path_factory.mktemp("data")
    synthesize(root, n=3, seed=1, split="te", progress=False)
    return root


def _methods(root, tmp_path):
    """tokencut (filterbank), masks (the ground truth saved as predictions) and an untrained sempart."""
    from paperlib.backbones.registry import load_backbone
    from paperlib.model.head import SempartHead
    from paperlib.model.sempart import save_sempart

    masks = tmp_path / "masks"
    for s in open_dataset("duts-te", root):
        write_mask_png(masks / f"{s.stem}.png", s.mask)
    torch.manual_seed(0)
    ckpt = tmp_path / "head.pt"
    save_sempart(ckpt, SempartHead(dim=load_backbone("filterbank").dim, patch_size=8),
                 backbone="filterbank", image_size=64, resize_short=72)
    return {"tokencut": build_method("tokencut", backbone="filterbank", device="cpu"),
            "masks": build_method("masks", masks=str(masks)),
            "sempart": build_method("sempart", checkpoint=str(ckpt), device="cpu")}


def test_every_method_answers_the_whole_interface(root, tmp_path):
    samples = list(open_dataset("duts-te", root))
    images, stems = [s.image for s in samples], [s.stem for s in samples]
    for name, method in _methods(root, tmp_path).items():
        assert method.name == name
        assert isinstance(method.batch_size, int) and method.batch_size >= 1
        batch = method.predict_batch(images, image_ids=stems)
        assert len(batch) == len(images) and all(isinstance(p, Prediction) for p in batch)
        for image, pred in zip(images, batch):
            assert pred.mask.shape == image.shape[:2] and pred.mask.dtype == np.float32
        view = method.view(images[0], samples[0].mask)
        assert isinstance(view, EvalView) and view.image.ndim == 3
        if method.batch_size == 1:  # each image alone: the batch is the images one by one
            for image, stem, pred in zip(images, stems, batch):
                np.testing.assert_array_equal(method.predict(image, image_id=stem).mask, pred.mask)


def test_sempart_batch_size_is_its_protocols(root, tmp_path):
    sempart = _methods(root, tmp_path)["sempart"]
    assert sempart.batch_size == sempart.protocol.batch_size == 8


def test_image_by_image_checks_the_ids():
    class Constant(ImageByImage):
        def predict(self, image, *, image_id=None):
            return Prediction(mask=np.full(image.shape[:2], float(image_id == "b"), np.float32),
                              patch_mask=None, box=None)

    images = [np.zeros((4, 5, 3), np.uint8)] * 2
    out = Constant().predict_batch(images, image_ids=["a", "b"])
    assert [float(p.mask.max()) for p in out] == [0.0, 1.0]   # each id reaches its image
    with pytest.raises(InputError, match="image_ids holds 1 ids for 2 images"):
        Constant().predict_batch(images, image_ids=["a"])
    image, mask = images[0], np.ones((4, 5), np.float32)
    assert Constant().view(image, mask).mask is mask   # scored at the image's own size
