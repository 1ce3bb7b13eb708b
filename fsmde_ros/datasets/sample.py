"""The one sample structure that SynthSurround, nuScenes and DDAD loaders all yield."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SurroundSample:
    """One synchronized set of N camera images with calibration and ground truth.

    Shapes use N cameras in rig order, images of H x W pixels. Units and NaN conventions are those
    of ``fsmde_ros.conventions``. Fields a source cannot provide are None.
    """

    images: np.ndarray  # (N, H, W, 3) uint8 RGB
    K: np.ndarray  # (N, 3, 3) float64, for H x W images
    cam2ego: np.ndarray  # (N, 4, 4) float64, optical frame -> base_link
    sparse_depth: np.ndarray  # (N, H, W) float32 metres, LiDAR returns; NaN where none
    camera_names: tuple[str, ...]
    stamps_ns: np.ndarray  # (N,) int64 capture time of each image
    ego_pose: np.ndarray | None = None  # (4, 4) base_link -> world at the set's reference time
    depth: np.ndarray | None = None  # (N, H, W) float32 dense z-depth, NaN for sky (synthetic only)
    semantic: np.ndarray | None = None  # (N, H, W) uint8 class ids (synthetic only)
    reflective: np.ndarray | None = None  # (N, H, W) bool, non-Lambertian pixels (synthetic only)
    sequence: str = ""
    frame_index: int = 0
    camera_ego_poses: np.ndarray | None = None  # (N, 4, 4) base_link -> world at each image's stamp

    @property
    def num_cameras(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the images."""
        return int(self.images.shape[1]), int(self.images.shape[2])
