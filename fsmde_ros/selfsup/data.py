"""Training clips for self-supervision: three consecutive surround sets of one sequence, at training size.

Frame t of a sequence becomes the target of a clip when frames t-1 and t+1 exist. Every image gets
the cam2world pose at its own capture stamp, interpolated from the sets' ego poses (``ego_pose`` of a
``SurroundSample`` is base_link -> world at the set's reference stamp, see ``reference_stamp``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import cv2
import numpy as np
import torch

from fsmde_ros.datasets.sample import SurroundSample
from fsmde_ros.geometry import scale_intrinsics
from fsmde_ros.rig import Camera, ring_neighbours
from fsmde_ros.selfsup.views import SurroundClip, camera_poses


class ClipError(ValueError):
    """Samples cannot form training clips; the message names the sequence and frame."""


def reference_stamp(sample: SurroundSample) -> int:
    """The stamp at which ``sample.ego_pose`` holds: the earliest camera stamp of the set."""
    return int(np.min(sample.stamps_ns))


def _resize_images(images: np.ndarray, height: int, width: int) -> torch.Tensor:
    """uint8 (N, h, w, 3) -> float (N, 3, height, width) in [0, 1], area averaging."""
    out = np.stack([cv2.resize(im, (width, height), interpolation=cv2.INTER_AREA) for im in images])
    return torch.from_numpy(out).permute(0, 3, 1, 2).float() / 255.0


def _resize_nearest(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.stack([cv2.resize(m, (width, height), interpolation=cv2.INTER_NEAREST) for m in maps])


def _check(sample: SurroundSample, where: str) -> None:
    if sample.ego_pose is None:
        raise ClipError(f"{where}: sample has no ego_pose; self-supervision across time needs it")
    n = sample.num_cameras
    if sample.images.dtype != np.uint8 or sample.images.ndim != 4 or sample.images.shape[-1] != 3:
        raise ClipError(f"{where}: images must be uint8 (N, H, W, 3), got {sample.images.dtype} "
                        f"{sample.images.shape}")
    if sample.K.shape != (n, 3, 3) or sample.cam2ego.shape != (n, 4, 4) or np.shape(sample.stamps_ns) != (n,):
        raise ClipError(f"{where}: K, cam2ego or stamps_ns do not match {n} cameras")


def make_clip(target: SurroundSample, previous: SurroundSample, following: SurroundSample,
              height: int, width: int) -> SurroundClip:
    """A clip of three consecutive sets of one sequence, resized to ``height`` x ``width``."""
    sets = (target, previous, following)
    where = f"sequence {target.sequence!r} frame {target.frame_index}"
    for s in sets:
        _check(s, where)
        if s.camera_names != target.camera_names:
            raise ClipError(f"{where}: camera names differ between frames")
    h, w = target.image_size
    sx, sy = width / w, height / h
    order = np.argsort([reference_stamp(s) for s in sets])
    ref = np.array([reference_stamp(s) for s in sets])[order]
    if np.any(np.diff(ref) <= 0):
        raise ClipError(f"{where}: the three frames do not have increasing stamps")
    ego = np.stack([s.ego_pose for s in sets])[order]
    stamps = np.stack([np.asarray(s.stamps_ns, dtype=np.int64) for s in sets])
    cam2world = camera_poses(ego, ref, target.cam2ego, stamps)
    depth = reflective = None
    if target.depth is not None:
        depth = torch.from_numpy(_resize_nearest(target.depth.astype(np.float32), height, width))[:, None]
    if target.reflective is not None:
        ref_mask = _resize_nearest(target.reflective.astype(np.uint8), height, width)
        reflective = torch.from_numpy(ref_mask.astype(bool))[:, None]
    K = np.stack([scale_intrinsics(k, sx, sy) for k in target.K])
    adjacent = ring_neighbours([Camera(name, K[i], target.cam2ego[i], width, height)
                                for i, name in enumerate(target.camera_names)])
    return SurroundClip(
        images=torch.stack([_resize_images(s.images, height, width) for s in sets]),
        K=torch.from_numpy(K).float(),
        cam2ego=torch.from_numpy(target.cam2ego).float(),
        cam2world=cam2world,
        adjacent=adjacent,
        depth=depth,
        reflective=reflective,
        name=f"{target.sequence}/{target.frame_index}",
    )


def clips_from_samples(samples: Iterable[SurroundSample], height: int, width: int,
                       max_clips: int | None = None) -> list[SurroundClip]:
    """All clips of consecutive frames (t-1, t, t+1) in ``samples``, grouped by ``sequence``."""
    by_sequence: dict[str, dict[int, SurroundSample]] = defaultdict(dict)
    for sample in samples:
        by_sequence[sample.sequence][sample.frame_index] = sample
    clips = []
    for sequence in sorted(by_sequence):
        frames = by_sequence[sequence]
        for t in sorted(frames):
            if t - 1 in frames and t + 1 in frames:
                clips.append(make_clip(frames[t], frames[t - 1], frames[t + 1], height, width))
                if max_clips is not None and len(clips) >= max_clips:
                    return clips
    return clips
