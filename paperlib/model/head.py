"""Sempart's segmentation head: backbone keys -> coarse and fine mask logits (paper App. A).

The head reads the frozen backbone's last-block keys (B, D, h, w) and the image fed to the
backbone (B, 3, H, W), H = h * patch, and predicts two masks as logits (the losses and the
evaluation apply the sigmoid):

* coarse branch (App. A "Low-resolution Mask"): a 1x1 conv D -> 64, a 2-layer pre-LN
  transformer encoder over the N = h * w tokens (no positional embedding, no final LayerNorm)
  and a 1x1 conv 64 -> 1, giving coarse (B, 1, h, w);
* decoder (App. A "High-resolution Mask"): log2(patch) up-sampling stages, each a bilinear x2
  up-sampling of the previous stage's output (of the 64-channel encoder features for the first
  stage), the image resized to that scale concatenated (+3 channels) and conv blocks (3x3
  conv, BatchNorm, LeakyReLU 0.01); the last stage has two conv blocks. The full-resolution
  image is concatenated once more and a 1x1 conv gives fine (B, 1, H, W). Widths for patch 8:
  64+3 -> 192, 192+3 -> 128, 128+3 -> 128 -> 128, then 128+3 -> 1.

Choices that the paper leaves open, and what settled them. The released head has exactly
748,165 parameters (docs/paper_and_code.md#head). Of the 32 combinations of the ambiguous options (head width
32 or 64, qkv bias or not, conv bias before BatchNorm or not, a final LayerNorm or not, a bias in
the 1x1 projection or not) exactly one gives that count:

    projection 1x1 conv 384 -> 64, bias            384*64 + 64                   =  24,640
    encoder layer (x2), per layer:
        2 LayerNorms                               2 * (64 + 64)                 =     256
        qkv linear 64 -> 3 * 2 heads * 64, no bias 64*384                        =  24,576
        output linear 128 -> 64, bias              128*64 + 64                   =   8,256
        MLP 64 -> 64 -> 64, biases                 2 * (64*64 + 64)              =   8,320
                                                   per layer 41,408, two layers  =  82,816
    coarse 1x1 conv 64 -> 1, bias                  64 + 1                        =      65
    decoder conv blocks, 3x3 conv with bias + BatchNorm (weight, bias):
        67 -> 192                                  67*9*192 + 192 + 2*192        = 116,352
        195 -> 128                                 195*9*128 + 128 + 2*128       = 225,024
        131 -> 128                                 131*9*128 + 128 + 2*128       = 151,296
        128 -> 128                                 128*9*128 + 128 + 2*128       = 147,840
    fine 1x1 conv 131 -> 1, bias                   131 + 1                       =     132
                                                                           total = 748,165

* attention heads are 64 wide each (2 heads, inner width 128; docs/paper_and_code.md#head) and the qkv
  projection has no bias. PyTorch's ``nn.TransformerEncoderLayer`` (2 heads of 32, qkv bias)
  gives 715,781 instead; heads of 64 with a qkv bias give 748,933 (+768 = 2 layers x 384
  biases). So the encoder is written here rather than taken from ``torch.nn``.
* the 3x3 convs keep their bias although BatchNorm follows (PyTorch's default; without them
  the total would be 747,589, -576). The bias is redundant in train mode and harmless.
* the LayerNorms are standard (weight and bias, eps 1e-5), two per layer (pre-attention and
  pre-MLP), and there is no LayerNorm after the last layer (docs/paper_and_code.md#head; one would add 128).

Choices the count cannot decide, made here and exposed as keyword arguments where useful:

* ``dropout`` defaults to 0.0 (the released value is unknown; the paper mentions none, and it
  keeps train and eval mode equal outside BatchNorm). When > 0 it applies to the attention
  weights, the attention output, the MLP's hidden layer and the MLP's output.
* the image concatenated at every scale is the ImageNet-normalised image the backbone saw (the
  head receives nothing else), resized with ``F.interpolate`` bilinear, ``align_corners=False``,
  no antialias: the same resize as the SR loss's down-sampling (docs/paper_and_code.md#losses).
* the up-sampling is bilinear x2 with ``align_corners=False``.
* weights keep PyTorch's default initialisation.
* patch sizes must be powers of two (each stage doubles the resolution): 8 -> 3 stages,
  16 -> 4 stages. Other patch sizes (DINOv2's 14) raise :class:`InputError` rather than adding a
  final resize the paper never uses. Stage widths are 192 for the first stage and 128 for every
  later one; only the last stage has the second 128 -> 128 block. For patch 16 this adds one
  131 -> 128 block: 899,461 parameters; ViT-B (D = 768) adds 384*64 to the projection: 772,741.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones.features import resize_bilinear
from ..checks import InputError, check_int, check_tensor, require

# The parameter count of the released head for ViT-S/8 (D = 384, patch 8); docs/paper_and_code.md#head.
RELEASED_HEAD_PARAMETERS = 748_165

# App. A: "the feature dimensions are 64, 192, and 128" before each bilinear up-sampling.
FIRST_STAGE_WIDTH = 192
LATER_STAGE_WIDTH = 128


class HeadOutput(NamedTuple):
    """The two predictions of :class:`SempartHead`, as logits (apply a sigmoid for masks)."""

    fine: torch.Tensor    # (B, 1, H, W)
    coarse: torch.Tensor  # (B, 1, h, w)


class Attention(nn.Module):
    """Multi-head self-attention with per-head width ``head_dim`` and a bias-free qkv projection."""

    def __init__(self, dim: int, *, num_heads: int, head_dim: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.dropout = dropout
        inner = num_heads * head_dim
        self.qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.proj = nn.Linear(inner, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, E = x.shape
        # (B, N, E) -> (B, N, 3 * heads * head_dim) -> (3, B, heads, N, head_dim)
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        # softmax(q k^T / sqrt(head_dim)) v: (B, heads, N, N) @ (B, heads, N, head_dim)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        y = y.transpose(1, 2).reshape(B, N, self.num_heads * self.head_dim)  # heads concatenated
        return self.proj_drop(self.proj(y))


class EncoderLayer(nn.Module):
    """Pre-LN transformer layer: ``x + attn(LN(x))`` then ``x + mlp(LN(x))``, MLP with GELU."""

    def __init__(self, dim: int, *, num_heads: int, head_dim: int, mlp_dim: int,
                 dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads=num_heads, head_dim=head_dim, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(mlp_dim, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ConvBlock(nn.Sequential):
    """3x3 conv (padding 1, with bias), BatchNorm and LeakyReLU: App. A's "conv block"."""

    def __init__(self, in_channels: int, out_channels: int, *, negative_slope: float) -> None:
        super().__init__(nn.Conv2d(in_channels, out_channels, 3, padding=1),
                         nn.BatchNorm2d(out_channels),
                         nn.LeakyReLU(negative_slope))


class UpStage(nn.Module):
    """One decoder stage: bilinear x2 up-sampling, concat the image at that scale, conv blocks."""

    def __init__(self, in_channels: int, widths: tuple[int, ...], *, negative_slope: float) -> None:
        super().__init__()
        channels = (in_channels + 3,) + widths  # + 3: the RGB image is concatenated
        self.blocks = nn.Sequential(*(ConvBlock(c_in, c_out, negative_slope=negative_slope)
                                      for c_in, c_out in zip(channels[:-1], channels[1:])))

    def forward(self, x: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        size = (2 * x.shape[-2], 2 * x.shape[-1])
        x = torch.cat([resize_bilinear(x, size, antialias=False),
                       resize_bilinear(image, size, antialias=False)], dim=1)  # (B, C + 3, 2h', 2w')
        return self.blocks(x)


class SempartHead(nn.Module):
    """Sempart's segmentation head on frozen backbone keys (paper App. A; docs/paper_and_code.md#head).

    Stages, as named methods: :meth:`forward_features` (projection + transformer encoder),
    :meth:`forward_coarse` (coarse logits) and :meth:`forward_decoder` (fine logits).

    Args:
        dim: D, the channels of the keys (384 for ViT-S, 768 for ViT-B).
        patch_size: the backbone's patch size; a power of two >= 2 (log2 of it decoder stages).
        embed_dim: token width of the coarse branch (64, App. A).
        depth: transformer layers (2, App. A).
        num_heads: attention heads (2, App. A).
        head_dim: width of each attention head (64, fixed by the parameter count;
            docs/paper_and_code.md#head).
        mlp_dim: hidden width of the transformer MLP (64, fixed by the parameter count;
            docs/paper_and_code.md#head).
        dropout: dropout probability in the transformer (0.0; the released value is unknown).
        negative_slope: LeakyReLU slope of the decoder conv blocks (0.01, App. A).
    """

    def __init__(self, dim: int = 384, patch_size: int = 8, *, embed_dim: int = 64, depth: int = 2,
                 num_heads: int = 2, head_dim: int = 64, mlp_dim: int = 64, dropout: float = 0.0,
                 negative_slope: float = 0.01) -> None:
        super().__init__()
        for name, value in (("dim", dim), ("patch_size", patch_size), ("embed_dim", embed_dim),
                            ("depth", depth), ("num_heads", num_heads), ("head_dim", head_dim),
                            ("mlp_dim", mlp_dim)):
            check_int(name, value, low=1)
        require(patch_size >= 2 and patch_size & (patch_size - 1) == 0,
                f"patch_size must be a power of two >= 2 (each decoder stage up-samples x2), got "
                f"{patch_size}; patch 14 backbones (DINOv2) are not supported by this head")
        require(0.0 <= dropout < 1.0, f"dropout must be in [0, 1), got {dropout!r}")
        require(negative_slope >= 0.0, f"negative_slope must be >= 0, got {negative_slope!r}")
        self.dim = dim
        self.patch_size = patch_size
        self.embed_dim = embed_dim

        self.proj = nn.Conv2d(dim, embed_dim, 1)
        self.encoder = nn.ModuleList(
            EncoderLayer(embed_dim, num_heads=num_heads, head_dim=head_dim, mlp_dim=mlp_dim,
                         dropout=dropout) for _ in range(depth))
        self.coarse_head = nn.Conv2d(embed_dim, 1, 1)

        num_stages = patch_size.bit_length() - 1  # log2(patch_size)
        stage_widths = [FIRST_STAGE_WIDTH] + [LATER_STAGE_WIDTH] * (num_stages - 1)
        self.stages = nn.ModuleList()
        in_channels = embed_dim
        for i, width in enumerate(stage_widths):
            # App. A: "The final upsampling block comprises two convolutional blocks."
            widths = (width, width) if i == num_stages - 1 else (width,)
            self.stages.append(UpStage(in_channels, widths, negative_slope=negative_slope))
            in_channels = width
        self.fine_head = nn.Conv2d(in_channels + 3, 1, 1)

    def _check_keys(self, keys: torch.Tensor) -> None:
        check_tensor("keys", keys, ndim=4, floating=True)
        require(keys.shape[1] == self.dim,
                f"keys must have D = {self.dim} channels in dim 1 (this head was built with "
                f"dim={self.dim}), got shape {tuple(keys.shape)}")
        self._check_like_parameters("keys", keys)

    def _check_like_parameters(self, name: str, x: torch.Tensor) -> None:
        weight = self.proj.weight
        require(x.device == weight.device,
                f"{name} is on {x.device} but the head is on {weight.device}: "
                f"move one to the other")
        if not torch.is_autocast_enabled(x.device.type):
            require(x.dtype == weight.dtype,
                    f"{name} has dtype {x.dtype} but the head's parameters are {weight.dtype}: "
                    f"call head.to({x.dtype}) or convert {name}")

    def forward_features(self, keys: torch.Tensor) -> torch.Tensor:
        """Project the keys to ``embed_dim`` and run the transformer encoder (App. A).

        Args:
            keys: (B, D, h, w) backbone keys.

        Returns:
            features: (B, E, h, w), E = ``embed_dim`` (64), the input of both output branches.
        """
        self._check_keys(keys)
        B, _, h, w = keys.shape
        x = self.proj(keys)                  # (B, E, h, w)
        x = x.flatten(2).transpose(1, 2)     # (B, N, E), tokens in row-major order
        for layer in self.encoder:
            x = layer(x)
        return x.transpose(1, 2).reshape(B, self.embed_dim, h, w)  # (B, E, h, w)

    def _check_features(self, features: torch.Tensor) -> None:
        check_tensor("features", features, ndim=4, channels=self.embed_dim, floating=True)
        self._check_like_parameters("features", features)

    def _check_image(self, image: torch.Tensor, grid_shape: torch.Size) -> None:
        check_tensor("image", image, ndim=4, channels=3, floating=True)
        self._check_like_parameters("image", image)
        B, _, h, w = grid_shape
        p = self.patch_size
        require(image.shape[0] == B,
                f"image has batch size {image.shape[0]} but the keys have {B}")
        require(tuple(image.shape[-2:]) == (h * p, w * p),
                f"image must be {h * p}x{w * p} pixels (the {h}x{w} patch grid times patch size "
                f"{p}), got {image.shape[-2]}x{image.shape[-1]}")

    def forward_coarse(self, features: torch.Tensor) -> torch.Tensor:
        """Coarse mask logits from the encoder features: a 1x1 conv (App. A).

        Args:
            features: (B, E, h, w) from :meth:`forward_features`.

        Returns:
            coarse: (B, 1, h, w) logits.
        """
        self._check_features(features)
        return self.coarse_head(features)

    def forward_decoder(self, features: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Fine mask logits: up-sampling stages guided by the image, then a 1x1 conv (App. A).

        Args:
            features: (B, E, h, w) from :meth:`forward_features`.
            image: (B, 3, H, W) the ImageNet-normalised image the backbone saw,
                H = h * patch_size, W = w * patch_size.

        Returns:
            fine: (B, 1, H, W) logits.
        """
        self._check_features(features)
        self._check_image(image, features.shape)
        x = features
        for stage in self.stages:
            x = stage(x, image)                                # (B, C', 2h', 2w')
        return self.fine_head(torch.cat([x, image], dim=1))    # (B, C' + 3, H, W) -> (B, 1, H, W)

    def forward(self, keys: torch.Tensor, image: torch.Tensor) -> HeadOutput:
        """Coarse and fine mask logits for a batch of keys and its images (App. A).

        Args:
            keys: (B, D, h, w) backbone keys.
            image: (B, 3, H, W) ImageNet-normalised image, H = h * patch_size, W = w * patch_size.

        Returns:
            HeadOutput(fine (B, 1, H, W), coarse (B, 1, h, w)), both logits.
        """
        self._check_keys(keys)
        self._check_image(image, keys.shape)
        features = self.forward_features(keys)
        return HeadOutput(fine=self.forward_decoder(features, image),
                          coarse=self.forward_coarse(features))


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters of ``module`` (748,165 for ``SempartHead(384, 8)``).

    Args:
        module: any ``nn.Module``.

    Returns:
        The total number of elements of its parameters with ``requires_grad``.
    """
    if not isinstance(module, nn.Module):
        raise InputError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
