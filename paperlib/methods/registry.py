"""Segmentation methods by name, so every command takes ``--method NAME``.

TokenCut (:mod:`paperlib.methods.tokencut`) needs only a backbone; the trained Sempart head joins as
``sempart`` with ``--checkpoint FILE`` (:mod:`paperlib.methods.sempart`), and any other
method's saved masks as ``masks`` with ``--masks DIR`` (:mod:`paperlib.methods.saved_masks`), and
the centre prior, the floor of every unsupervised segmenter, as ``centre``
(:mod:`paperlib.methods.centre`), and OpenCV's two static saliency baselines, spectral residual
and fine grained, as ``spectral`` and ``finegrained`` (:mod:`paperlib.methods.static_saliency`;
like ``centre``, no backbone). Each is a :class:`paperlib.methods.base.Method`.

    build_method(name, backbone=..., weights=..., device=...)   -> a method
"""

from __future__ import annotations

from dataclasses import replace

from ..backbones.cache import FeatureCache
from ..backbones.registry import load_backbone
from ..checks import check_choice, require
from ..devices import resolve_device
from ..model.sempart import load_sempart
from .base import Method
from .centre import CentrePrior
from .saved_masks import MaskFolder
from .sempart import PROTOCOLS, SempartMethod
from .static_saliency import FineGrained, SpectralResidual
from .tokencut import TokenCut

METHODS = ("tokencut", "sempart", "masks", "centre", "spectral", "finegrained")


def build_method(name: str, *, backbone: str = "dino_vits16", weights: str | None = None,
                 device: str | None = None, cache_dir: str | None = None,
                 checkpoint: str | None = None, protocol: str = "default",
                 protocol_options: dict | None = None, masks: str | None = None, **options) -> Method:
    """A method by name, with its backbone loaded (see :func:`paperlib.backbones.registry.load_backbone`).

    Args:
        name: one of :data:`METHODS`; 'masks', 'centre', 'spectral' and 'finegrained' load no
            backbone (the backbone options are ignored).
        backbone: backbone name; 'filterbank' needs no weights.
        weights: official checkpoint file of the backbone, or None (hub / $PAPERLIB_WEIGHTS_DIR).
        device: 'cpu', 'cuda', ... (default: CUDA when available, else CPU).
        cache_dir: folder of the on-disk feature cache (keys reused across runs), or None.
        checkpoint: 'sempart' only: the trained head (.pt). Its own backbone name is used and
            ``weights`` is that backbone's file.
        protocol: 'sempart' only: evaluation protocol, 'default' or 'official'
            (docs/paper_and_code.md#evaluation-protocol).
        protocol_options: 'sempart' only: fields of the protocol to change (bn_mode, polarity,
            resolution, batch_size); None values are ignored.
        masks: 'masks' only: the folder of another method's predicted masks, one per image
            stem (:class:`paperlib.methods.saved_masks.MaskFolder`); no backbone is loaded.
        options: method options (TokenCut: tau, eps, solver).
    """
    check_choice("method", name, METHODS)
    if name == "masks":
        require(masks is not None, "method 'masks' needs --masks DIR (a folder of predicted masks)")
        return MaskFolder(masks)
    if name == "centre":
        return CentrePrior()
    if name == "spectral":
        return SpectralResidual()
    if name == "finegrained":
        return FineGrained()
    if name == "sempart":
        require(checkpoint is not None, "method 'sempart' needs --checkpoint FILE (a trained head)")
        check_choice("protocol", protocol, PROTOCOLS)
        model = load_sempart(checkpoint, backbone_weights=weights, device=resolve_device(device))
        changes = {k: v for k, v in (protocol_options or {}).items() if v is not None}
        return SempartMethod(model, protocol=replace(PROTOCOLS[protocol], **changes))
    net = load_backbone(backbone, weights=weights, device=resolve_device(device))
    cache = FeatureCache(cache_dir) if cache_dir is not None else None
    return TokenCut(net, cache=cache, **options)
