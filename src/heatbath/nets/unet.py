"""Compact U-Net for images: x (B, C, H, W), t (B,) -> (B, C, H, W).

Layout (DDPM-style, much smaller): a 3x3 stem, then per resolution level `num_res` residual blocks
and a stride-2 downsample; a middle of two residual blocks (optionally with self-attention between
them); and a mirrored up path whose blocks each consume one saved skip activation.

Only GroupNorm is used (never BatchNorm): it normalises each sample on its own, so an output never
depends on the rest of the batch - needed for exact likelihoods and for batch-size-free sampling.
Sizes not divisible by 2**(levels-1) are zero-padded at the bottom/right and cropped back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from heatbath.nets.embedding import TimeConditionEmbedding

MAX_GROUPS = 8  # small nets have few channels: 8 groups keeps >= 4 channels per group at width 32
MAX_HEADS = 4


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm whose group count divides `channels` (gcd with MAX_GROUPS, 1 for odd widths)."""
    return nn.GroupNorm(math.gcd(channels, MAX_GROUPS), channels)


class ResBlock(nn.Module):
    """x -> skip(x) + conv(silu(FiLM(GN(conv(silu(GN x))), emb))), FiLM as in improved DDPM."""

    def __init__(self, in_channels: int, out_channels: int, emb_dim: int):
        super().__init__()
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * out_channels)
        self.norm2 = group_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


class SelfAttention(nn.Module):
    """Multi-head self-attention over pixels with a residual connection."""

    def __init__(self, channels: int):
        super().__init__()
        self.heads = math.gcd(channels, MAX_HEADS)
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, ch, height, width = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, ch // self.heads, height * width)
        q, k, v = qkv.transpose(-1, -2).unbind(dim=1)  # each (B, heads, pixels, head_dim)
        out = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj(out.transpose(-1, -2).reshape(b, ch, height, width))


class Upsample(nn.Module):
    """Nearest-neighbour x2 then a 3x3 conv (avoids the checkerboard of transposed convs)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _pair(image_size: int | Sequence[int]) -> tuple[int, int]:
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"image_size must be a positive int or (H, W), got {image_size}")
    return size


class UNet(nn.Module):
    """Time- (and optionally condition-) dependent image-to-image network.

    forward(x, t, c=None, drop=None): x (B, channels, H, W) with (H, W) == image_size; t (B,) or
    scalar in [0, 1]; c / drop as for `MLP` (class labels or (B, cond_dim) properties).
    """

    def __init__(
        self,
        channels: int,
        image_size: int | Sequence[int],
        base: int = 32,
        mults: Sequence[int] = (1, 2),
        num_res: int = 1,
        time_dim: int = 128,
        num_classes: int | None = None,
        cond_dim: int | None = None,
        attention: bool = False,
    ):
        super().__init__()
        if channels < 1 or base < 1 or num_res < 1 or not mults or min(mults) < 1:
            raise ValueError(
                "need channels, base, num_res >= 1 and positive mults; "
                f"got {channels}, {base}, {num_res}, {mults}"
            )
        self.channels = channels
        self.image_size = _pair(image_size)
        self.event_shape = (channels, *self.image_size)
        self.levels = len(mults)
        emb_dim = time_dim
        self.embedding = TimeConditionEmbedding(time_dim, emb_dim, num_classes, cond_dim)
        widths = [base * m for m in mults]
        self.input = nn.Conv2d(channels, base, 3, padding=1)
        skip_widths = self._build_down(base, widths, num_res, emb_dim)
        lowest = widths[-1]
        self.mid1 = ResBlock(lowest, lowest, emb_dim)
        self.attention = SelfAttention(lowest) if attention else nn.Identity()
        self.mid2 = ResBlock(lowest, lowest, emb_dim)
        self._build_up(widths, num_res, emb_dim, skip_widths)
        self.output_norm = group_norm(base)
        self.output = nn.Conv2d(base, channels, 3, padding=1)

    def _build_down(self, base: int, widths: list[int], num_res: int, emb_dim: int) -> list[int]:
        """Create the down path; return the channel count of every saved skip, in push order."""
        self.down_blocks = nn.ModuleList()
        self.downsamples = nn.ModuleList()
        skip_widths, ch = [base], base
        for level, width in enumerate(widths):
            blocks = nn.ModuleList()
            for _ in range(num_res):
                blocks.append(ResBlock(ch, width, emb_dim))
                ch = width
                skip_widths.append(ch)
            self.down_blocks.append(blocks)
            if level < self.levels - 1:
                self.downsamples.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skip_widths.append(ch)
        return skip_widths

    def _build_up(self, widths: list[int], num_res: int, emb_dim: int, skip_widths: list[int]) -> None:
        """Mirror of the down path: num_res + 1 blocks per level, each eating one skip (LIFO)."""
        self.up_blocks = nn.ModuleList()
        self.upsamples = nn.ModuleList()
        skip_widths = list(skip_widths)
        ch = widths[-1]
        for level in reversed(range(self.levels)):
            blocks = nn.ModuleList()
            for _ in range(num_res + 1):
                blocks.append(ResBlock(ch + skip_widths.pop(), widths[level], emb_dim))
                ch = widths[level]
            self.up_blocks.append(blocks)
            if level > 0:
                self.upsamples.append(Upsample(ch))

    def forward(
        self, x: Tensor, t: Tensor | float, c: Tensor | None = None, drop: Tensor | None = None
    ) -> Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.event_shape:
            expected = ", ".join(map(str, self.event_shape))
            raise ValueError(f"x must have shape (B, {expected}), got {tuple(x.shape)}")
        emb = self.embedding(t, c, drop, like=x)
        height, width = self.image_size
        factor = 2 ** (self.levels - 1)
        h = F.pad(x, (0, -width % factor, 0, -height % factor))
        h = self._unet(h, emb)
        return h[:, :, :height, :width]

    def _unet(self, h: Tensor, emb: Tensor) -> Tensor:
        h = self.input(h)
        skips = [h]
        for level, blocks in enumerate(self.down_blocks):
            for block in blocks:
                h = block(h, emb)
                skips.append(h)
            if level < self.levels - 1:
                h = self.downsamples[level](h)
                skips.append(h)
        h = self.mid2(self.attention(self.mid1(h, emb)), emb)
        for step, blocks in enumerate(self.up_blocks):
            for block in blocks:
                h = block(torch.cat([h, skips.pop()], dim=1), emb)
            if step < self.levels - 1:
                h = self.upsamples[step](h)
        return self.output(F.silu(self.output_norm(h)))
