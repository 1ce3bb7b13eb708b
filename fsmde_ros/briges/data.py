"""SynthSurround samples as per-camera training tensors for the segmentation network and the gate.

Each item is one surround sample at the network size: a seeded random subset of ``cameras`` of its
N camera images (all of them when ``cameras`` is None), as float RGB in [0, 1] with dense depth and
class maps. ``collate_cameras`` stacks the cameras of a batch of samples into one image batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from fsmde_ros.datasets.sample import SurroundSample
from fsmde_ros.distill.data import resize_sample


class CameraFrames(Dataset):
    """Items ``{"images" (C, 3, H, W) float, "depth" (C, H, W) float (NaN = none), "semantic" (C, H, W)
    int64}`` for C chosen cameras of each sample of ``source``."""

    def __init__(
        self,
        source: Sequence[SurroundSample],
        height: int,
        width: int,
        cameras: int | None = None,
        seed: int = 0,
    ) -> None:
        if len(source) == 0:
            raise ValueError("BriGeS data: the source holds no samples")
        if cameras is not None and cameras < 1:
            raise ValueError(f"BriGeS data: cameras per sample must be >= 1, got {cameras}")
        self.source, self.height, self.width = source, height, width
        self.cameras, self.seed = cameras, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.source[index]
        where = f"sample {index} ({sample.sequence!r} frame {sample.frame_index})"
        if sample.depth is None or sample.semantic is None:
            raise ValueError(f"BriGeS data: {where} has no dense depth or class map (synthetic data needed)")
        sample = resize_sample(sample, self.height, self.width)
        chosen = np.arange(sample.num_cameras)
        if self.cameras is not None and self.cameras < sample.num_cameras:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            chosen = np.sort(rng.choice(sample.num_cameras, self.cameras, replace=False))
        images = torch.from_numpy(np.ascontiguousarray(sample.images[chosen])).permute(0, 3, 1, 2)
        return {
            "images": images.float() / 255.0,
            "depth": torch.from_numpy(sample.depth[chosen].astype(np.float32)),
            "semantic": torch.from_numpy(sample.semantic[chosen].astype(np.int64)),
        }


def collate_cameras(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Concatenate the cameras of several items into one batch along the first axis."""
    return {key: torch.cat([item[key] for item in items]) for key in items[0]}


def hflip(batch: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Mirror each image of the batch (with its depth and classes) with probability 1/2."""
    flip = torch.rand(batch["images"].shape[0], generator=generator) < 0.5
    out = {}
    for key, value in batch.items():
        mirrored = value.flip(-1)
        shape = (-1,) + (1,) * (value.ndim - 1)
        out[key] = torch.where(flip.view(shape), mirrored, value)
    return out
