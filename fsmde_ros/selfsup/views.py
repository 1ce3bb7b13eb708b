"""Source views of each target camera: the same camera at t-1 and t+1, and its rig neighbours at t.

A ``SurroundClip`` holds three synchronized surround sets (frame 0 = target time t, 1 = t-1,
2 = t+1) with every camera image's own ``cam2world`` pose at its own capture stamp, so shutter
offsets between cameras and ego motion during a set are accounted for exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fsmde_ros.selfsup.poses import ego_motion_to_camera, relative_transform

TARGET, PREVIOUS, NEXT = 0, 1, 2
NUM_TEMPORAL = 2


@dataclass
class SurroundClip:
    """Three surround sets around a target time, as float tensors at training resolution."""

    images: torch.Tensor  # (3, N, 3, H, W) float32 RGB in [0, 1]; frames target, previous, next
    K: torch.Tensor  # (N, 3, 3) float32 for H x W
    cam2ego: torch.Tensor  # (N, 4, 4) float32
    cam2world: np.ndarray  # (3, N, 4, 4) float64 pose of every image at its own stamp
    adjacent: tuple[tuple[int, int], ...]
    depth: torch.Tensor | None = None  # (N, 1, H, W) ground-truth z-depth of the target frame, NaN invalid
    reflective: torch.Tensor | None = None  # (N, 1, H, W) bool true reflective mask of the target frame
    name: str = ""

    @property
    def num_cameras(self) -> int:
        return int(self.images.shape[1])


@dataclass
class SourceViews:
    """For each of N target cameras, S source views (2 temporal, then up to S-2 rig neighbours)."""

    index: torch.Tensor  # (N, S) long, into images.reshape(3 * N, ...), i.e. frame * N + camera
    camera: torch.Tensor  # (N, S) long, camera of each source (for its intrinsics)
    exists: torch.Tensor  # (N, S) bool, false for padding where a camera has fewer neighbours
    transforms: torch.Tensor  # (N, S, 4, 4) float32, target optical frame -> source optical frame


def neighbours(adjacent: tuple[tuple[int, int], ...], num_cameras: int) -> list[list[int]]:
    """Rig neighbours of every camera, from the adjacency pairs."""
    out: list[list[int]] = [[] for _ in range(num_cameras)]
    for i, j in adjacent:
        out[i].append(j)
        out[j].append(i)
    return out


def source_views(clip: SurroundClip, ego_motion: dict[int, torch.Tensor] | None = None) -> SourceViews:
    """Source views and their transforms for every target camera of ``clip``.

    Temporal transforms come from the known camera poses, or, when ``ego_motion`` maps frame
    (PREVIOUS / NEXT) to a predicted vehicle motion (4, 4) from a pose network, from that motion and
    the extrinsics. Spatial transforms always come from the known poses (metric scale).
    """
    n = clip.num_cameras
    nbrs = neighbours(clip.adjacent, n)
    s = NUM_TEMPORAL + max((len(x) for x in nbrs), default=0)
    index = torch.zeros((n, s), dtype=torch.long)
    camera = torch.zeros((n, s), dtype=torch.long)
    exists = torch.zeros((n, s), dtype=torch.bool)
    transforms = torch.eye(4).repeat(n, s, 1, 1)
    for i in range(n):
        for k, frame in enumerate((PREVIOUS, NEXT)):
            index[i, k], camera[i, k], exists[i, k] = frame * n + i, i, True
            if ego_motion is None:
                T = relative_transform(clip.cam2world[TARGET, i], clip.cam2world[frame, i])
                transforms[i, k] = torch.from_numpy(T).float()
        for k, j in enumerate(nbrs[i], start=NUM_TEMPORAL):
            index[i, k], camera[i, k], exists[i, k] = TARGET * n + j, j, True
            T = relative_transform(clip.cam2world[TARGET, i], clip.cam2world[TARGET, j])
            transforms[i, k] = torch.from_numpy(T).float()
    if ego_motion is not None:
        transforms = transforms.clone()
        for k, frame in enumerate((PREVIOUS, NEXT)):
            transforms[:, k] = ego_motion_to_camera(ego_motion[frame], clip.cam2ego)
    return SourceViews(index, camera, exists, transforms)
