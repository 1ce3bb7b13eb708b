"""Training and evaluation data: samples resized to the network input, with teacher outputs attached.

``resize_sample`` maps a ``SurroundSample`` to the network's H x W: images by area averaging,
sparse LiDAR depth by a nearest-return scatter (the closest return wins a pixel, so no depth is
invented), dense depth by nearest neighbour, intrinsics by ``geometry.scale_intrinsics``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from fsmde_ros.datasets.sample import SurroundSample
from fsmde_ros.distill.teachers import TeacherCache
from fsmde_ros.geometry import scale_intrinsics


def resize_sparse_depth(sparse: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, h, w) sparse depth (NaN = none) to (N, height, width), keeping the nearest return per pixel."""
    N, h, w = sparse.shape
    out = np.full((N, height, width), np.inf, dtype=np.float32)
    n, v, u = np.nonzero(np.isfinite(sparse))
    d = sparse[n, v, u].astype(np.float32)
    u2 = np.clip(np.rint((u + 0.5) * width / w - 0.5), 0, width - 1).astype(np.int64)
    v2 = np.clip(np.rint((v + 0.5) * height / h - 0.5), 0, height - 1).astype(np.int64)
    np.minimum.at(out, (n, v2, u2), d)
    out[np.isinf(out)] = np.nan
    return out


def resize_sample(sample: SurroundSample, height: int, width: int) -> SurroundSample:
    """The sample at ``height`` x ``width`` (returned unchanged when already that size)."""
    h, w = sample.image_size
    if (h, w) == (height, width):
        return sample
    sx, sy = width / w, height / h
    images = np.stack([cv2.resize(im, (width, height), interpolation=cv2.INTER_AREA) for im in sample.images])
    K = np.stack([scale_intrinsics(k, sx, sy) for k in sample.K])

    def nearest(maps: np.ndarray | None) -> np.ndarray | None:
        if maps is None:
            return None
        return np.stack([cv2.resize(m, (width, height), interpolation=cv2.INTER_NEAREST) for m in maps])

    reflective = sample.reflective
    return replace(
        sample,
        images=images,
        K=K,
        sparse_depth=resize_sparse_depth(sample.sparse_depth, height, width),
        depth=nearest(sample.depth),
        semantic=nearest(sample.semantic),
        reflective=None if reflective is None else nearest(reflective.astype(np.uint8)).astype(bool),
    )


def sample_key(sample: SurroundSample) -> str:
    return TeacherCache.key(sample.sequence, sample.frame_index)


class SurroundTrainSet(Dataset):
    """Samples of a source as tensors at the network input size, optionally with cached teacher disparity.

    Items: ``images`` uint8 (N, H, W, 3), ``sparse`` float32 (N, H, W), ``dense`` float32 (N, H, W)
    (NaN where the source has none), ``K`` (N, 3, 3), ``cam2ego`` (N, 4, 4) and, with a cache,
    ``teacher`` float32 (N, H, W) relative disparity.
    """

    def __init__(
        self,
        source: Sequence[SurroundSample],
        height: int,
        width: int,
        cache: TeacherCache | None = None,
        photometric: bool = False,
        seed: int = 0,
    ) -> None:
        if len(source) == 0:
            raise ValueError("training data source is empty")
        self.source, self.height, self.width = source, height, width
        self.cache, self.photometric, self.seed = cache, photometric, seed
        self._epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self._epoch = epoch

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = resize_sample(self.source[index], self.height, self.width)
        images = sample.images
        if self.photometric:
            images = self._jitter(images, index)
        dense = (
            sample.depth
            if sample.depth is not None
            else np.full(sample.sparse_depth.shape, np.nan, np.float32)
        )
        item = {
            "images": torch.from_numpy(np.ascontiguousarray(images)),
            "sparse": torch.from_numpy(sample.sparse_depth.astype(np.float32)),
            "dense": torch.from_numpy(dense.astype(np.float32)),
            "K": torch.from_numpy(sample.K.astype(np.float32)),
            "cam2ego": torch.from_numpy(sample.cam2ego.astype(np.float32)),
        }
        if self.cache is not None:
            item["teacher"] = torch.from_numpy(self.cache.get(sample_key(sample)))
        return item

    def _jitter(self, images: np.ndarray, index: int) -> np.ndarray:
        """Per-camera brightness, contrast and colour gains, deterministic in (seed, epoch, index)."""
        rng = np.random.default_rng([self.seed, self._epoch, index])
        N = images.shape[0]
        gain = rng.uniform(0.8, 1.2, (N, 1, 1, 1)) * rng.uniform(0.9, 1.1, (N, 1, 1, 3))
        contrast = rng.uniform(0.8, 1.2, (N, 1, 1, 1))
        x = images.astype(np.float32)
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        x = (x - mean) * contrast + mean
        return np.clip(x * gain, 0, 255).astype(np.uint8)
