"""The Bridging Gate: per encoder level, cross-attention from depth tokens to segmentation features
followed by self-attention, both with residual connections and Attention Temperature Scaling.

Every attention output projection starts at zero, so a fresh gate returns the depth features
unchanged and the gated teacher starts exactly at the frozen depth model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fsmde_ros.briges.attention import Temperature, TemperatureAttention


@dataclass(frozen=True)
class GateConfig:
    """Shape and temperature of a Bridging Gate.

    ``levels`` are indices into the depth adapter's feature list that get a gate block; ``dim`` and
    ``heads`` size each attention; ``temperature`` is ``fixed`` or ``learnable`` with initial ``tau``.
    """

    levels: tuple[int, ...]
    dim: int = 64
    heads: int = 4
    temperature: str = "fixed"
    tau: float = 1.0

    def __post_init__(self) -> None:
        if not self.levels:
            raise ValueError("gate levels must name at least one depth encoder level")
        if len(set(self.levels)) != len(self.levels):
            raise ValueError(f"gate levels must be distinct, got {self.levels}")
        if self.dim <= 0 or self.heads <= 0:
            raise ValueError(f"gate dim and heads must be positive, got dim={self.dim} heads={self.heads}")


def sincos_position_code(height: int, width: int, dim: int, device: torch.device) -> torch.Tensor:
    """Fixed 2D sine-cosine positional code (height * width, dim) in row-major token order.

    Half the channels encode the row, half the column, each with sin/cos pairs over geometric
    frequencies; positions are normalised to [0, 1] so grids of any size share one code range.
    """
    if dim % 4 != 0:
        raise ValueError(f"positional code dim must be divisible by 4, got {dim}")
    quarter = dim // 4
    freqs = 2.0 * math.pi * (2.0 ** torch.arange(quarter, device=device, dtype=torch.float32))
    ys = torch.linspace(0.0, 1.0, height, device=device)
    xs = torch.linspace(0.0, 1.0, width, device=device)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    ang_y = yy.reshape(-1, 1) * freqs
    ang_x = xx.reshape(-1, 1) * freqs
    return torch.cat([ang_y.sin(), ang_y.cos(), ang_x.sin(), ang_x.cos()], dim=1)


def resize_features(features: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, C, H, W) features to (B, C, height, width): box-average by the integer part of the
    downsampling factor (against aliasing), then bilinear to the exact grid (ONNX-exportable)."""
    kh, kw = max(1, int(features.shape[2]) // height), max(1, int(features.shape[3]) // width)
    if kh > 1 or kw > 1:
        features = F.avg_pool2d(features, (kh, kw), stride=(kh, kw))
    if tuple(features.shape[2:]) == (height, width):
        return features
    return F.interpolate(features, size=(height, width), mode="bilinear", align_corners=False)


class GateBlock(nn.Module):
    """One level of the gate: x + CrossAttn(LN x, LN s), then x + SelfAttn(LN x)."""

    def __init__(self, depth_channels: int, seg_channels: int, config: GateConfig) -> None:
        super().__init__()
        self.dim = config.dim
        self.norm_depth = nn.LayerNorm(depth_channels)
        self.norm_seg = nn.LayerNorm(seg_channels)
        self.norm_self = nn.LayerNorm(depth_channels)
        self.cross = TemperatureAttention(
            depth_channels,
            seg_channels,
            config.dim,
            config.heads,
            Temperature(config.temperature, config.tau),
        )
        self.self_attn = TemperatureAttention(
            depth_channels,
            depth_channels,
            config.dim,
            config.heads,
            Temperature(config.temperature, config.tau),
        )

    def forward(self, depth: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        """Gate depth features (B, Cd, h, w) with segmentation features (B, Cs, h', w')."""
        cd, h, w = (int(v) for v in depth.shape[1:])  # a static grid, a dynamic batch
        seg = resize_features(seg, h, w)
        x = depth.flatten(2).transpose(1, 2)
        s = seg.flatten(2).transpose(1, 2)
        pos = sincos_position_code(h, w, self.dim, depth.device)
        x = x + self.cross(self.norm_depth(x), self.norm_seg(s), pos, pos)
        y = self.norm_self(x)
        x = x + self.self_attn(y, y, pos, pos)
        return x.transpose(1, 2).reshape(-1, cd, h, w)


class BridgingGate(nn.Module):
    """Gate blocks on the chosen levels of a depth encoder's feature list."""

    def __init__(self, depth_channels: Sequence[int], seg_channels: int, config: GateConfig) -> None:
        super().__init__()
        bad = [lv for lv in config.levels if not 0 <= lv < len(depth_channels)]
        if bad:
            raise ValueError(
                f"gate levels {bad} out of range: the depth encoder has {len(depth_channels)} levels"
            )
        self.config = config
        self.blocks = nn.ModuleDict(
            {str(lv): GateBlock(depth_channels[lv], seg_channels, config) for lv in config.levels}
        )

    def forward(self, features: Sequence[torch.Tensor], seg: torch.Tensor) -> list[torch.Tensor]:
        """The depth feature list with the gated levels replaced."""
        out = list(features)
        for key, block in self.blocks.items():
            out[int(key)] = block(out[int(key)], seg)
        return out

    def temperatures(self) -> list[Temperature]:
        """Every Temperature of the gate, cross- then self-attention, level by level."""
        return [m for m in self.modules() if isinstance(m, Temperature)]

    def set_temperature_override(self, tau: float | None) -> None:
        """Run every attention at ``tau`` (an inference sweep); None restores fixed/learnt values."""
        for t in self.temperatures():
            t.set_override(tau)
