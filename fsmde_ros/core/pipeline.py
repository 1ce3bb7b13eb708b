"""The ROS-free surround pipeline: camera frames -> network input -> backend -> clean depth -> cloud.

``SurroundPipeline.process`` takes one synchronized set (one ``CameraFrame`` per camera, None for a
camera missing from a partial set) and returns depth, confidence and intrinsics at the network's
input size, the fused cloud in base_link and the time each stage took. The node only adds ROS.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from fsmde_ros.backends.base import DepthBackend
from fsmde_ros.core.cloud import CloudBuilder
from fsmde_ros.core.decode import InputError
from fsmde_ros.core.postprocess import clean_depth
from fsmde_ros.core.preprocess import Plan, Preprocessor


@dataclass
class CameraFrame:
    """One decoded camera image (source size) with the intrinsics of its CameraInfo."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    K: np.ndarray  # 3x3 for this image size
    stamp_ns: int
    frame_id: str


@dataclass
class CloudSettings:
    """Fused cloud options (see ``fsmde_ros.core.cloud``)."""

    stride: int = 2
    min_range: float = 0.5
    max_range: float = 80.0
    min_confidence: float = 0.0
    overlap: str = "split"
    voxel_size: float = 0.0


@dataclass
class PipelineOutput:
    """Outputs of one set at network input size (N cameras, h x w)."""

    frames: list[CameraFrame | None]
    images: np.ndarray  # (N, h, w, 3) uint8 network input
    depth: np.ndarray  # (N, h, w) float32 metres, NaN = invalid (all NaN for a missing camera)
    confidence: np.ndarray  # (N, h, w) float32 in [0, 1]
    K: np.ndarray  # (N, 3, 3) intrinsics of the depth images
    cloud: np.ndarray | None  # (M,) CLOUD_DTYPE in base_link, None when the cloud is off
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    nonfinite: np.ndarray | None = None  # (N,) pixels the backend returned invalid

    @property
    def present(self) -> list[bool]:
        return [f is not None for f in self.frames]


class SurroundPipeline:
    """Runs one backend on synchronized sets of a fixed rig (``cam2ego`` in rig order)."""

    def __init__(self, backend: DepthBackend, cam2ego: np.ndarray, default_K: np.ndarray,
                 default_size: tuple[int, int], preprocess_mode: str = "resize",
                 cloud: CloudSettings | None = None, max_invalid_fraction: float = 0.5) -> None:
        n, h, w, _ = backend.input_shape
        cam2ego = np.asarray(cam2ego, dtype=np.float64)
        if cam2ego.shape != (n, 4, 4):
            raise ValueError(f"backend {backend.name} takes {n} cameras, the rig has {cam2ego.shape[0]}")
        if not 0 <= max_invalid_fraction <= 1:
            raise ValueError(f"max_invalid_fraction must be in [0, 1], got {max_invalid_fraction}")
        self.backend = backend
        self.num_cameras, self.height, self.width = n, h, w
        self.cam2ego = cam2ego
        self.preprocessor = Preprocessor(h, w, preprocess_mode)
        self.cloud_settings = cloud
        self.max_invalid_fraction = max_invalid_fraction
        self._plans: dict[tuple, Plan] = {}
        src_w, src_h = default_size
        self.K = np.stack([self._plan(src_w, src_h, K).K for K in np.asarray(default_K)])
        self._batch = np.zeros((n, h, w, 3), dtype=np.uint8)
        self._cloud_builder: CloudBuilder | None = None
        self._cloud_key: bytes = b""

    def _plan(self, width: int, height: int, K: np.ndarray) -> Plan:
        key = (width, height, np.asarray(K, dtype=np.float64).tobytes())
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) > 64:
                self._plans.clear()
            plan = self._plans[key] = self.preprocessor.plan(width, height, K)
        return plan

    def cloud_builder(self) -> CloudBuilder | None:
        """The cloud builder for the current intrinsics (rebuilt only when they change)."""
        if self.cloud_settings is None:
            return None
        key = self.K.tobytes()
        if self._cloud_builder is None or key != self._cloud_key:
            s = self.cloud_settings
            self._cloud_builder = CloudBuilder(self.K, self.cam2ego, self.height, self.width, s.stride,
                                               s.min_range, s.max_range, s.min_confidence, s.overlap,
                                               s.voxel_size)
            self._cloud_key = key
        return self._cloud_builder

    def process(self, frames: list[CameraFrame | None]) -> PipelineOutput:
        """Depth, confidence and cloud of one set; raises ``InputError`` for an unusable set."""
        if len(frames) != self.num_cameras:
            raise ValueError(f"got {len(frames)} frames for {self.num_cameras} cameras")
        if all(f is None for f in frames):
            raise InputError("empty_set", "a set without any camera image")
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        batch = self._batch
        for i, frame in enumerate(frames):
            if frame is None:
                batch[i] = 0
                continue
            plan = self._plan(frame.image.shape[1], frame.image.shape[0], frame.K)
            self.preprocessor.apply(frame.image, plan, out=batch[i])
            self.K[i] = plan.K
        t1 = time.perf_counter()
        result = self.backend.infer(batch)
        t2 = time.perf_counter()
        clean = clean_depth(result.depth, result.confidence)
        depth, confidence = clean.depth, clean.confidence
        present = np.array([f is not None for f in frames])
        invalid = clean.nonfinite[present].sum() / (present.sum() * self.height * self.width)
        if invalid > self.max_invalid_fraction:
            raise InputError("backend_nan", f"backend {self.backend.name} returned {invalid:.0%} invalid "
                                            f"depth pixels (limit {self.max_invalid_fraction:.0%})")
        if not present.all():
            depth = depth.copy()
            depth[~present] = np.nan
            confidence[~present] = 0.0
        t3 = time.perf_counter()
        builder = self.cloud_builder()
        cloud = None if builder is None else builder.build(depth, confidence, batch)
        t4 = time.perf_counter()
        timings.update(preprocess=t1 - t0, inference=t2 - t1, postprocess=t3 - t2, fusion=t4 - t3)
        return PipelineOutput(list(frames), batch.copy(), depth, confidence, self.K.copy(), cloud, timings,
                              clean.nonfinite)
