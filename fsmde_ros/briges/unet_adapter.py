"""The project's SynthSurround teacher (``fsmde_ros.distill.teacher_net.TeacherNet``) as a gate depth model.

Encoder levels are the outputs of the U-Net's strided stages (strides 2, 4, 8, ...); decoding runs
the U-Net's own fusion decoder and disparity head on the (possibly gated) levels. A parity test pins
``decode(encode(x))`` to ``TeacherNet.forward`` so the split cannot drift from the network.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from fsmde_ros.briges.adapters import DepthAdapter, check_images, imagenet_normalise
from fsmde_ros.distill.teacher_net import TeacherNet


class TeacherNetAdapter(DepthAdapter):
    """A trained ``TeacherNet`` split at its encoder/decoder boundary."""

    def __init__(self, net: TeacherNet) -> None:
        super().__init__()
        self.net = net

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> TeacherNetAdapter:
        """Load a teacher checkpoint written by ``fsmde-train`` (kind: teacher)."""
        from fsmde_ros.distill.teachers import SynthTeacher

        return cls(SynthTeacher(path).model.eval())

    @property
    def feature_channels(self) -> tuple[int, ...]:
        return tuple(self.net.config.widths)

    def encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        check_images(images, "TeacherNetAdapter")
        x = imagenet_normalise(images)
        levels = []
        for stage in self.net.stages:
            x = stage(x)
            levels.append(x)
        return levels

    def decode(self, features: list[torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        x = features[-1]
        for fuse, skip in zip(self.net.fuse, reversed(features[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = fuse(torch.cat([x, skip], dim=1))
        x = F.interpolate(self.net.head(x), size=image_size, mode="bilinear", align_corners=False)
        return F.softplus(x[:, 0]) + 1e-4
