"""Test doubles of the node tests: a backend whose depth is an exact plane in base_link.

Legitimate for the geometric tests only: it knows the rig, so the expected cloud is known exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from fsmde_ros.backends.base import DepthBackend, InferenceResult
from fsmde_ros.geometry import pixel_rays
from fsmde_ros.rig import Rig, default_rig_path, load_rig

MODEL_H, MODEL_W = 64, 96


def model_rig(height: int = MODEL_H, width: int = MODEL_W) -> Rig:
    """The shipped nuScenes rig at the network input size."""
    return load_rig(default_rig_path()).resized(width, height)


def plane_depth(rig: Rig, normal: np.ndarray, offset: float) -> np.ndarray:
    """z-depth (N, H, W) of the plane {p in base_link: normal . p = offset}; NaN where not hit in front."""
    cams = rig.cameras
    out = np.empty((len(cams), cams[0].height, cams[0].width), dtype=np.float32)
    for i, cam in enumerate(cams):
        rays = pixel_rays(cam.K, cam.height, cam.width).astype(np.float64) @ cam.cam2ego[:3, :3].T
        with np.errstate(divide="ignore", invalid="ignore"):
            d = (offset - normal @ cam.cam2ego[:3, 3]) / (rays @ normal)
        out[i] = np.where(d > 0, d, np.nan)
    return out


class PlaneBackend(DepthBackend):
    """Returns a fixed depth for every batch (by default the ground plane z = 0 of the rig)."""

    name = "plane-double"

    def __init__(self, depth: np.ndarray, confidence: float = 0.9) -> None:
        self.depth = np.asarray(depth, dtype=np.float32)
        self.confidence = confidence
        self.calls = 0

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        n, h, w = self.depth.shape
        return n, h, w, 3

    def infer(self, images: np.ndarray, with_probabilities: bool = False) -> InferenceResult:
        assert images.shape == self.input_shape and images.dtype == np.uint8
        self.calls += 1
        return InferenceResult(self.depth.copy(), np.full(self.depth.shape, self.confidence, np.float32))


def test_plane_depth_of_the_ground_lies_on_the_ground():
    rig = model_rig()
    depth = plane_depth(rig, np.array([0.0, 0.0, 1.0]), 0.0)
    cam = rig.cameras[0]
    v, u = MODEL_H - 1, MODEL_W // 2  # bottom row looks down onto the road
    ray = pixel_rays(cam.K, MODEL_H, MODEL_W)[v, u].astype(np.float64)
    point = cam.cam2ego[:3, :3] @ (ray * depth[0, v, u]) + cam.cam2ego[:3, 3]
    assert point[2] == pytest.approx(0.0, abs=1e-4)
    assert np.isnan(depth[0, 0, u])  # the top row looks above the horizon
