"""The evaluation protocol of fsmde_ros: depth metrics per camera and the cross-view consistency metric.

One module, used by training (validation), ``fsmde-eval``, the benchmarks and the node's diagnostics.

Depth metrics (the monodepth2 / SurroundDepth protocol), computed per image over the pixels whose
ground truth is finite and within ``[min_depth, max_depth]`` (the depth cap of the dataset):

- ``abs_rel``  = mean(|d - g| / g)
- ``sq_rel``   = mean((d - g)^2 / g)
- ``rmse``     = sqrt(mean((d - g)^2))
- ``rmse_log`` = sqrt(mean((ln d - ln g)^2))
- ``a1, a2, a3`` = share of pixels with max(d / g, g / d) < 1.25, 1.25^2, 1.25^3

where g is the ground truth and d the prediction. In ``median_scaling`` mode each image's prediction
is first multiplied by median(g) / median(d) over the evaluated pixels (the protocol for
scale-ambiguous self-supervised models); in metric mode it is used as is. The prediction is then
clipped to ``[min_depth, max_depth]``. Pixels with a non-finite prediction are left out and counted:
``coverage`` is the share of evaluated ground-truth pixels that had a finite prediction, so a model
cannot hide its failures. Per-image metrics are averaged over the frames of each camera, and the
camera averages are averaged with equal weight into ``mean``.

Cross-view consistency (see ``CrossViewConsistency``): how much adjacent cameras disagree about the
depth of the scene where their views overlap, computed from the rig geometry alone (no ground truth).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fsmde_ros.geometry import invert_transform, pixel_rays

METRIC_NAMES: tuple[str, ...] = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
"""Depth metrics in report order; lower is better for the first four, higher for a1..a3."""

DEPTH_CAPS_M: dict[str, float] = {"ddad": 200.0, "nuscenes": 80.0, "synthsurround": 80.0}
"""Maximum evaluated ground-truth depth per dataset (SynthSurround's is configurable)."""

DEFAULT_MIN_DEPTH_M = 1e-3


@dataclass(frozen=True)
class EvalConfig:
    """Which ground-truth pixels count and how predictions are scaled."""

    max_depth: float = DEPTH_CAPS_M["nuscenes"]
    min_depth: float = DEFAULT_MIN_DEPTH_M
    median_scaling: bool = False

    def __post_init__(self) -> None:
        if not (0.0 < self.min_depth < self.max_depth) or not np.isfinite(self.max_depth):
            raise ValueError(f"EvalConfig: need 0 < min_depth < max_depth, got {self.min_depth}, "
                             f"{self.max_depth}")

    @classmethod
    def for_dataset(cls, dataset: str, median_scaling: bool = False, max_depth: float | None = None
                    ) -> EvalConfig:
        """The protocol of ``dataset`` (ddad, nuscenes, synthsurround); ``max_depth`` overrides the cap."""
        key = dataset.lower()
        if key not in DEPTH_CAPS_M:
            raise ValueError(f"EvalConfig: unknown dataset {dataset!r}; known: {sorted(DEPTH_CAPS_M)}")
        return cls(max_depth=DEPTH_CAPS_M[key] if max_depth is None else float(max_depth),
                   median_scaling=median_scaling)


@dataclass
class ImageMetrics:
    """Metrics of one image; ``values`` is empty when no ground-truth pixel was evaluated."""

    values: dict[str, float]
    num_pixels: int  # ground-truth pixels evaluated (finite prediction and ground truth within the cap)
    coverage: float  # num_pixels / ground-truth pixels within the cap (1.0 when there are none)
    scale: float  # median-scaling factor applied (1.0 in metric mode)


def image_metrics(pred: np.ndarray, gt: np.ndarray, config: EvalConfig) -> ImageMetrics:
    """Depth metrics of one (H, W) prediction against (H, W) ground truth (NaN = no ground truth)."""
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"image_metrics: prediction {pred.shape} and ground truth {gt.shape} must be "
                         "the same (H, W)")
    with np.errstate(invalid="ignore"):
        in_cap = np.isfinite(gt) & (gt > config.min_depth) & (gt < config.max_depth)
    total = int(np.count_nonzero(in_cap))
    mask = in_cap & np.isfinite(pred) & (pred > 0)
    g = gt[mask].astype(np.float64)
    d = pred[mask].astype(np.float64)
    coverage = 1.0 if total == 0 else g.size / total
    if g.size == 0:
        return ImageMetrics({}, 0, coverage, 1.0)
    scale = float(np.median(g) / np.median(d)) if config.median_scaling else 1.0
    d = np.clip(d * scale, config.min_depth, config.max_depth)
    return ImageMetrics(_metrics(d, g), int(g.size), coverage, scale)


def _metrics(d: np.ndarray, g: np.ndarray) -> dict[str, float]:
    err = d - g
    ratio = np.maximum(d / g, g / d)
    log_err = np.log(d) - np.log(g)
    return {
        "abs_rel": float(np.mean(np.abs(err) / g)),
        "sq_rel": float(np.mean(err**2 / g)),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "rmse_log": float(np.sqrt(np.mean(log_err**2))),
        "a1": float(np.mean(ratio < 1.25)),
        "a2": float(np.mean(ratio < 1.25**2)),
        "a3": float(np.mean(ratio < 1.25**3)),
    }


@dataclass
class _CameraTotals:
    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(METRIC_NAMES, 0.0))
    frames: int = 0
    pixels: int = 0
    coverage_sum: float = 0.0
    coverage_frames: int = 0
    scales: list[float] = field(default_factory=list)


class MetricAccumulator:
    """Accumulates per-image metrics of (N, H, W) frames into per-camera and camera-averaged results."""

    def __init__(self, camera_names: list[str] | tuple[str, ...], config: EvalConfig) -> None:
        if not camera_names:
            raise ValueError("MetricAccumulator: need at least one camera name")
        self.camera_names = tuple(camera_names)
        self.config = config
        self._totals = {name: _CameraTotals() for name in self.camera_names}

    def add(self, pred: np.ndarray, gt: np.ndarray) -> list[ImageMetrics]:
        """Add one frame: prediction and ground truth (N, H, W) in camera order; returns per-image metrics."""
        pred = np.asarray(pred)
        gt = np.asarray(gt)
        n = len(self.camera_names)
        if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[0] != n:
            raise ValueError(f"MetricAccumulator.add: prediction {pred.shape} and ground truth {gt.shape} "
                             f"must both be ({n}, H, W)")
        out = []
        for name, p, g in zip(self.camera_names, pred, gt, strict=True):
            m = image_metrics(p, g, self.config)
            totals = self._totals[name]
            if m.values:
                for key in METRIC_NAMES:
                    totals.sums[key] += m.values[key]
                totals.frames += 1
                totals.pixels += m.num_pixels
                totals.scales.append(m.scale)
            if m.coverage < 1.0 or m.values:
                totals.coverage_sum += m.coverage
                totals.coverage_frames += 1
            out.append(m)
        return out

    def result(self) -> dict:
        """JSON-ready results: ``per_camera`` {name: metrics}, ``mean`` over cameras, protocol and counts.

        Each camera entry holds the metrics averaged over its frames plus ``frames``, ``pixels``,
        ``coverage`` and, in median-scaling mode, ``scale_median`` and ``scale_std``. Cameras that
        never had ground truth are reported with ``frames`` 0 and left out of ``mean``.
        """
        per_camera = {}
        for name, t in self._totals.items():
            entry: dict[str, float | int] = {"frames": t.frames, "pixels": t.pixels}
            if t.frames:
                entry.update({k: t.sums[k] / t.frames for k in METRIC_NAMES})
            entry["coverage"] = t.coverage_sum / t.coverage_frames if t.coverage_frames else 1.0
            if self.config.median_scaling and t.scales:
                entry["scale_median"] = float(np.median(t.scales))
                entry["scale_std"] = float(np.std(np.asarray(t.scales) / np.median(t.scales)))
            per_camera[name] = entry
        evaluated = [e for e in per_camera.values() if e["frames"]]
        mean = {k: float(np.mean([e[k] for e in evaluated])) for k in METRIC_NAMES} if evaluated else {}
        return {
            "protocol": {"min_depth": self.config.min_depth, "max_depth": self.config.max_depth,
                         "median_scaling": self.config.median_scaling},
            "per_camera": per_camera,
            "mean": mean,
        }


@dataclass
class PairConsistency:
    """Disagreement of camera ``i``'s depth with camera ``j``'s where i's pixels land in j's view."""

    abs_rel: float  # mean |z_ij - d_j| / d_j over the overlap (NaN when there is none)
    median_abs_rel: float
    count: int  # overlap pixels compared


@dataclass
class ConsistencyResult:
    """Cross-view consistency of one frame: per directed pair and pooled over all pairs."""

    pairs: dict[tuple[int, int], PairConsistency]
    abs_rel: float  # mean over all compared pixels of all directed pairs (NaN when none)
    median_abs_rel: float
    count: int

    def as_dict(self, camera_names: list[str] | tuple[str, ...] | None = None) -> dict:
        """JSON-ready form; pairs are keyed 'i->j' or by camera names when given."""
        def key(i: int, j: int) -> str:
            return f"{camera_names[i]}->{camera_names[j]}" if camera_names else f"{i}->{j}"

        return {
            "abs_rel": self.abs_rel, "median_abs_rel": self.median_abs_rel, "count": self.count,
            "pairs": {key(i, j): vars(p) for (i, j), p in self.pairs.items()},
        }


class CrossViewConsistency:
    """Cross-view consistency of N depth images of one rig, with the geometry precomputed once.

    Definition. For every adjacent pair (i, j) and in both directions: each pixel p of camera i with
    a depth d_i(p) in ``[min_depth, max_depth]`` is back-projected to X_i = d_i(p) K_i^-1 [p, 1],
    moved into camera j's optical frame, X_j = cam2ego_j^-1 cam2ego_i X_i, and projected to the
    pixel q = round(K_j X_j / z_ij) with z_ij the z of X_j. Where z_ij > 0, q lies inside camera
    j's image and d_j(q) is in ``[min_depth, max_depth]``, the pixel is in the overlap and its
    disagreement is r = |z_ij - d_j(q)| / d_j(q). ``abs_rel`` is the mean of r over the overlap,
    ``median_abs_rel`` its median, per directed pair and pooled over all directed pairs.

    Perfect, occlusion-free depth gives 0; the nearest-pixel lookup, depth edges and surfaces seen by
    i but hidden from j raise the floor a little even for ground truth, so compare models against the
    figure of the ground truth of the same data. The median is robust to those occlusions.

    Speed. Only pixels of i whose ray can reach j's image for some depth in ``[min_depth, max_depth]``
    are kept (the ray's segment between the two depths projects to a segment in j's image plane,
    which is exactly tested against the image's left and right edges), so a call costs a few
    vectorised operations on the overlap bands, not on whole images.
    """

    def __init__(self, K: np.ndarray, cam2ego: np.ndarray, pairs: list[tuple[int, int]] | tuple,
                 height: int, width: int, min_depth: float = 0.5, max_depth: float = 80.0) -> None:
        K = np.asarray(K, dtype=np.float64)
        cam2ego = np.asarray(cam2ego, dtype=np.float64)
        n = K.shape[0]
        if K.shape != (n, 3, 3) or cam2ego.shape != (n, 4, 4):
            raise ValueError(f"CrossViewConsistency: K {K.shape} and cam2ego {cam2ego.shape} must be "
                             "(N, 3, 3) and (N, 4, 4) for the same N")
        if not 0 < min_depth < max_depth:
            raise ValueError(f"CrossViewConsistency: need 0 < min_depth < max_depth, got {min_depth}, "
                             f"{max_depth}")
        for i, j in pairs:
            if not (0 <= i < n and 0 <= j < n) or i == j:
                raise ValueError(f"CrossViewConsistency: pair ({i}, {j}) is not two cameras of {n}")
        self.num_cameras, self.height, self.width = n, int(height), int(width)
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        self.K = K
        self._directed: list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        for a, b in pairs:
            for i, j in ((a, b), (b, a)):
                T = (invert_transform(cam2ego[j]) @ cam2ego[i]).astype(np.float32)
                rays = pixel_rays(K[i], self.height, self.width).reshape(-1, 3)
                index = self._reachable(rays, T, K[j])
                self._directed.append((i, j, index, rays[index] @ T[:3, :3].T, T[:3, 3].copy(),
                                       K[j].astype(np.float32)))

    def _reachable(self, rays: np.ndarray, T: np.ndarray, Kj: np.ndarray) -> np.ndarray:
        """Flat indices of pixels whose ray segment [min_depth, max_depth] can land in camera j's image."""
        near = rays.astype(np.float64) * self.min_depth @ T[:3, :3].T.astype(np.float64) + T[:3, 3]
        far = rays.astype(np.float64) * self.max_depth @ T[:3, :3].T.astype(np.float64) + T[:3, 3]
        zn, zf = near[:, 2], far[:, 2]
        both_front = (zn > 0) & (zf > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            un = Kj[0, 0] * near[:, 0] / zn + Kj[0, 2]
            uf = Kj[0, 0] * far[:, 0] / zf + Kj[0, 2]
            vn = Kj[1, 1] * near[:, 1] / zn + Kj[1, 2]
            vf = Kj[1, 1] * far[:, 1] / zf + Kj[1, 2]
        lo, hi_u, hi_v = -0.5, self.width - 0.5, self.height - 0.5
        outside = ((un < lo) & (uf < lo)) | ((un >= hi_u) & (uf >= hi_u)) | \
                  ((vn < lo) & (vf < lo)) | ((vn >= hi_v) & (vf >= hi_v))
        # A segment crossing z = 0 may wrap around in the image plane: keep it (the per-call test decides).
        return np.flatnonzero(~(both_front & outside) & ((zn > 0) | (zf > 0)))

    def overlap_indices(self) -> dict[tuple[int, int], np.ndarray]:
        """Flat pixel indices (into H*W) of camera i that can overlap camera j, per directed pair (i, j)."""
        return {(i, j): index for i, j, index, *_ in self._directed}

    def __call__(self, depth: np.ndarray) -> ConsistencyResult:
        """Consistency of one frame of depth images (N, H, W) in metres, NaN = invalid."""
        depth = np.asarray(depth)
        if depth.shape != (self.num_cameras, self.height, self.width):
            raise ValueError(f"CrossViewConsistency: depth {depth.shape} must be "
                             f"({self.num_cameras}, {self.height}, {self.width})")
        flat = depth.reshape(self.num_cameras, -1).astype(np.float32, copy=False)
        pairs: dict[tuple[int, int], PairConsistency] = {}
        pooled = []
        for i, j, index, rotated_rays, t, Kj in self._directed:
            r = self._pair_errors(flat[i][index], rotated_rays, t, Kj, flat[j])
            pooled.append(r)
            pairs[(i, j)] = _summary(r)
        total = _summary(np.concatenate(pooled) if pooled else np.empty(0, np.float32))
        return ConsistencyResult(pairs, total.abs_rel, total.median_abs_rel, total.count)

    def _pair_errors(self, di: np.ndarray, rotated_rays: np.ndarray, t: np.ndarray, Kj: np.ndarray,
                     depth_j: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            ok = (di >= self.min_depth) & (di <= self.max_depth)
        points = rotated_rays[ok] * di[ok, None] + t
        z = points[:, 2]
        front = z > 1e-6
        points, z = points[front], z[front]
        u = np.rint(Kj[0, 0] * points[:, 0] / z + Kj[0, 2])
        v = np.rint(Kj[1, 1] * points[:, 1] / z + Kj[1, 2])
        inside = (u >= 0) & (u < self.width) & (v >= 0) & (v < self.height)
        dj = depth_j[v[inside].astype(np.int64) * self.width + u[inside].astype(np.int64)]
        z = z[inside]
        with np.errstate(invalid="ignore"):
            valid = (dj >= self.min_depth) & (dj <= self.max_depth)
        return np.abs(z[valid] - dj[valid]) / dj[valid]


def _summary(r: np.ndarray) -> PairConsistency:
    if r.size == 0:
        return PairConsistency(float("nan"), float("nan"), 0)
    return PairConsistency(float(np.mean(r)), float(np.median(r)), int(r.size))


def cross_view_consistency(depth: np.ndarray, K: np.ndarray, cam2ego: np.ndarray,
                           pairs: list[tuple[int, int]] | tuple, min_depth: float = 0.5,
                           max_depth: float = 80.0) -> ConsistencyResult:
    """One-shot ``CrossViewConsistency`` of (N, H, W) depth; build the class once to call it per frame."""
    depth = np.asarray(depth)
    if depth.ndim != 3:
        raise ValueError(f"cross_view_consistency: depth must be (N, H, W), got {depth.shape}")
    checker = CrossViewConsistency(K, cam2ego, pairs, depth.shape[1], depth.shape[2], min_depth, max_depth)
    return checker(depth)
