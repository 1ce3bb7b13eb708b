"""Affine-invariant evaluation on all pixels and on the hardest ones (occlusion boundaries, thin
structures), with the project's evaluation protocol (``fsmde_ros.evaluation``).

A relative disparity is aligned per image to the ground-truth depth by least squares
(``fsmde_ros.distill.alignment.align_disparity``, mode ``lstsq``: the affine-invariant protocol of
MiDaS / Depth Anything), then scored like any metric prediction. A pixel subset is scored by
hiding the ground truth outside it, so every subset uses the same per-camera averaging.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from fsmde_ros.distill.alignment import align_disparity
from fsmde_ros.evaluation import EvalConfig, MetricAccumulator

SUBSETS = ("all", "boundary", "thin")
"""Pixel subsets every evaluation reports."""


def occlusion_boundary_mask(depth: torch.Tensor, log_ratio: float = 0.15, radius: int = 1) -> torch.Tensor:
    """Pixels within ``radius`` of a depth discontinuity: a 3x3 neighbour differing by more than
    ``log_ratio`` in log depth; invalid (NaN, e.g. sky) neighbours count as infinitely far."""
    log_d = torch.log(torch.nan_to_num(depth.float(), nan=1e6).clamp_min(1e-3))[:, None]
    pad = F.pad(log_d, (1, 1, 1, 1), mode="replicate")
    h, w = depth.shape[1], depth.shape[2]
    jump = torch.zeros_like(log_d, dtype=torch.bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            jump |= (pad[:, :, dy : dy + h, dx : dx + w] - log_d).abs() > log_ratio
    if radius > 0:
        jump = F.max_pool2d(jump.float(), 2 * radius + 1, stride=1, padding=radius) > 0
    return jump[:, 0]


def thin_structure_mask(semantic: torch.Tensor, width: int = 5) -> torch.Tensor:
    """Pixels of class regions narrower than ``width`` pixels: a class mask minus its morphological
    opening with a ``width`` x ``width`` square (poles, limbs, sign posts, ...)."""
    if width < 2:
        raise ValueError(f"thin-structure width must be at least 2 pixels, got {width}")
    thin = torch.zeros(semantic.shape, dtype=torch.bool, device=semantic.device)
    lo, hi = (width - 1) // 2, width // 2
    for cls in torch.unique(semantic).tolist():
        m = (semantic == cls).float()[:, None]
        eroded = -F.max_pool2d(F.pad(-m, (lo, hi, lo, hi), value=-1.0), width, stride=1)
        opened = F.max_pool2d(F.pad(eroded, (hi, lo, hi, lo), value=0.0), width, stride=1)
        thin |= (m - opened)[:, 0] > 0.5
    return thin


class AffineInvariantEvaluator:
    """Accumulates aligned-depth metrics of (N, H, W) frames over the ``SUBSETS`` of pixels."""

    def __init__(
        self,
        camera_names: tuple[str, ...],
        config: EvalConfig,
        boundary_log_ratio: float = 0.15,
        thin_width: int = 5,
    ) -> None:
        self.config = config
        self.boundary_log_ratio = boundary_log_ratio
        self.thin_width = thin_width
        self.accumulators = {name: MetricAccumulator(camera_names, config) for name in SUBSETS}

    def add(self, disparity: torch.Tensor, depth: torch.Tensor, semantic: torch.Tensor) -> None:
        """One frame: relative disparity, ground-truth depth (NaN = none) and class ids, all (N, H, W)."""
        if disparity.shape != depth.shape or depth.shape != semantic.shape:
            raise ValueError(
                f"evaluation: disparity {tuple(disparity.shape)}, depth {tuple(depth.shape)} and semantic "
                f"{tuple(semantic.shape)} must share one (N, H, W) shape"
            )
        valid = torch.isfinite(depth) & (depth > self.config.min_depth) & (depth < self.config.max_depth)
        aligned = align_disparity(
            disparity.double(), depth.double(), valid, "lstsq", self.config.min_depth, self.config.max_depth
        )
        masks = {
            "all": valid,
            "boundary": valid & occlusion_boundary_mask(depth, self.boundary_log_ratio),
            "thin": valid & thin_structure_mask(semantic, self.thin_width),
        }
        pred = aligned.float().numpy()
        for name, mask in masks.items():
            gt = torch.where(mask, depth, torch.full_like(depth, float("nan"))).numpy()
            self.accumulators[name].add(pred, gt)

    def result(self) -> dict[str, dict]:
        """``{subset: fsmde_ros.evaluation.MetricAccumulator result}``; subsets never seen are empty."""
        return {name: acc.result() for name, acc in self.accumulators.items()}


def headline(result: dict[str, dict]) -> dict[str, float]:
    """Camera-averaged AbsRel and delta1 of each subset: ``{"all_abs_rel": ..., "thin_a1": ...}``."""
    out = {}
    for name in SUBSETS:
        mean = result[name]["mean"]
        out[f"{name}_abs_rel"] = float(mean.get("abs_rel", np.nan))
        out[f"{name}_a1"] = float(mean.get("a1", np.nan))
    return out
