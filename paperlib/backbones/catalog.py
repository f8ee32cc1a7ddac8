"""The backbone names and their facts, with no torch (the CLI and configs read them).

:data:`BACKBONES` names each backbone the paper compares (paper Sec. 3 / Table 4) and the offline
ones (``offline``, the filter banks), with its timm architecture, patch size, key dimension and official weight file;
:func:`paperlib.backbones.registry.load_backbone` builds one from its name.

Public API
----------
``BackboneInfo``
    how to build one named backbone and where its official weights live.
``BACKBONES``
    the registry: name -> :class:`BackboneInfo`.
``OFFLINE_BACKBONES``
    the names that need no weights (``offline``, ``filterbank``, ``filterbank16``).
``IMAGENET_MEAN``, ``IMAGENET_STD``
    the ImageNet input normalisation, in R, G, B order.
"""

from __future__ import annotations

from dataclasses import dataclass

# ImageNet statistics of torchvision's and DINO's input normalisation, in R, G, B order; the
# Sempart head sees images normalised with them whatever the backbone.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackboneInfo:
    """How to build one named backbone and where its official weights live.

    Attributes:
        timm_name: the timm model (architecture.tag); None for the filter bank.
        patch_size: pixels per token side.
        dim: D, channels of a key token (384 for ViT-S, 768 for ViT-B).
        weights_file: official checkpoint file name, looked up in $PAPERLIB_WEIGHTS_DIR.
        weights_url: where to download it.
        on_hub: whether timm can download the pretrained weights itself.
        mean, std: the input normalisation the weights were trained with (ImageNet for all of
            them; set here, not read from timm, whose default config for an untagged
            architecture such as iBOT's may carry other constants).
    """

    timm_name: str | None
    patch_size: int
    dim: int
    weights_file: str | None = None
    weights_url: str | None = None
    on_hub: bool = False
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


_DINO_URL = "https://dl.fbaipublicfiles.com/dino/{0}/{0}.pth"

BACKBONES: dict[str, BackboneInfo] = {
    # The paper's backbones (Table 4 compares them); ViT-S/8 is the default.
    "dino_vits8": BackboneInfo("vit_small_patch8_224.dino", 8, 384, "dino_deitsmall8_pretrain.pth",
                               _DINO_URL.format("dino_deitsmall8_pretrain"), on_hub=True),
    "dino_vits16": BackboneInfo("vit_small_patch16_224.dino", 16, 384, "dino_deitsmall16_pretrain.pth",
                                _DINO_URL.format("dino_deitsmall16_pretrain"), on_hub=True),
    "dino_vitb8": BackboneInfo("vit_base_patch8_224.dino", 8, 768, "dino_vitbase8_pretrain.pth",
                               _DINO_URL.format("dino_vitbase8_pretrain"), on_hub=True),
    "dino_vitb16": BackboneInfo("vit_base_patch16_224.dino", 16, 768, "dino_vitbase16_pretrain.pth",
                                _DINO_URL.format("dino_vitbase16_pretrain"), on_hub=True),
    # iBOT ViT-S/16 has the DINO ViT-S/16 architecture; timm has no iBOT weights, so local file only.
    "ibot_vits16": BackboneInfo(
        "vit_small_patch16_224", 16, 384, "ibot_vits16_checkpoint_teacher.pth",
        "https://lf3-nlp-opensource.bytetos.com/obj/nlp-opensource/archive/2022/ibot/vits_16/"
        "checkpoint_teacher.pth"),
    # Beyond the paper: DINOv2 ViT-S/14 (no register tokens, LayerScale in every block).
    "dinov2_vits14": BackboneInfo("vit_small_patch14_dinov2.lvd142m", 14, 384, "dinov2_vits14_pretrain.pth",
                                  "https://dl.fbaipublicfiles.com/dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth",
                                  on_hub=True),
    # Offline backbones, no weights. `offline` is the best of them on real photos (colour and a
    # border-contrast prior per patch); `filterbank` (colour and texture statistics) is kept for
    # the synthetic tests and demos that were built on it.
    "offline": BackboneInfo(None, 8, 10),
    "filterbank": BackboneInfo(None, 8, 16),
    "filterbank16": BackboneInfo(None, 16, 16),
}

# Backbones that need no weights file: computed from the image alone.
OFFLINE_BACKBONES = tuple(name for name, info in BACKBONES.items() if info.timm_name is None)
