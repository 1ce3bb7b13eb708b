"""The SynthSurround teacher: a wide U-Net that predicts relative disparity (scale and shift unknown).

Trained by ``fsmde-train`` on the teacher-train split with the scale-and-shift-invariant loss only,
so it learns scene structure but not metric scale: the project's stand-in for a depth foundation
model where none can be downloaded. Plain torch, images in as uint8 (B, H, W, 3) like the student.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class TeacherConfig:
    """Widths of the encoder stages (each halves the resolution) and blocks per stage."""

    widths: tuple[int, ...] = (24, 48, 96, 160, 224)
    blocks: int = 2

    def to_dict(self) -> dict:
        return {"widths": list(self.widths), "blocks": self.blocks}

    @classmethod
    def from_dict(cls, data: dict) -> TeacherConfig:
        known = set(asdict(cls()).keys())
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"teacher config: unknown keys {sorted(unknown)}")
        widths = tuple(int(w) for w in data.get("widths", cls.widths))
        if len(widths) < 2 or min(widths) < 1:
            raise ValueError(f"teacher config: widths must be >= 2 positive ints, got {widths}")
        blocks = int(data.get("blocks", cls.blocks))
        if blocks < 1:
            raise ValueError(f"teacher config: blocks must be >= 1, got {blocks}")
        return cls(widths, blocks)


class _ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(y)))


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()
    )


class TeacherNet(nn.Module):
    """U-Net: stem + strided stages of residual blocks, a decoder with skip connections, disparity head."""

    def __init__(self, config: TeacherConfig | None = None) -> None:
        super().__init__()
        self.config = config or TeacherConfig()
        w, n = self.config.widths, self.config.blocks
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.stages = nn.ModuleList()
        cin = 3
        for cout in w:
            self.stages.append(nn.Sequential(_down(cin, cout), *[_ResBlock(cout) for _ in range(n)]))
            cin = cout
        self.fuse = nn.ModuleList()
        for i in range(len(w) - 1, 0, -1):
            self.fuse.append(
                nn.Sequential(
                    nn.Conv2d(w[i] + w[i - 1], w[i - 1], 3, padding=1, bias=False),
                    nn.BatchNorm2d(w[i - 1]),
                    nn.ReLU(),
                    _ResBlock(w[i - 1]),
                )
            )
        self.head = nn.Sequential(nn.Conv2d(w[0], w[0], 3, padding=1), nn.ReLU(), nn.Conv2d(w[0], 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Relative disparity (B, H, W) > 0 from uint8 or float RGB images (B, H, W, 3) in 0..255."""
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"teacher input must be (B, H, W, 3) RGB, got {tuple(images.shape)}")
        H, W = images.shape[1:3]
        x = (images.permute(0, 3, 1, 2).float() - self.mean) / self.std
        skips = []
        for stage in self.stages:
            x = stage(x)
            skips.append(x)
        x = skips[-1]
        for fuse, skip in zip(self.fuse, reversed(skips[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = fuse(torch.cat([x, skip], dim=1))
        x = F.interpolate(self.head(x), size=(H, W), mode="bilinear", align_corners=False)
        return F.softplus(x[:, 0]) + 1e-4
