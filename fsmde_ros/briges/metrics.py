"""Affine-invariant depth metrics and the hard-pixel masks (occlusion boundaries, thin structures).

A relative prediction is aligned to ground truth by least squares in its own output space
(disparity: to 1/depth, the MiDaS / Depth Anything protocol; depth: to depth), converted to depth,
clipped to [min_depth, max_depth], and scored on pixels whose ground-truth depth lies in that range.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from fsmde_ros.briges.adapters import OUTPUT_SPACES
from fsmde_ros.briges.losses import align_least_squares


def affine_aligned_depth(
    pred: torch.Tensor,
    gt_depth: torch.Tensor,
    space: str,
    min_depth: float,
    max_depth: float,
) -> torch.Tensor:
    """Metric depth (B, H, W) from a relative prediction aligned per image to ``gt_depth``."""
    if space not in OUTPUT_SPACES:
        raise ValueError(f"output space must be one of {OUTPUT_SPACES}, got {space!r}")
    pred, gt = pred.double(), gt_depth.double()
    valid = torch.isfinite(gt) & (gt >= min_depth) & (gt <= max_depth)
    if space == "disparity":
        target = torch.where(valid, 1.0 / gt.clamp_min(1e-6), torch.zeros_like(gt))
        disparity = align_least_squares(pred, target, valid)
        depth = 1.0 / disparity.clamp_min(1.0 / max_depth)
    else:
        depth = align_least_squares(pred, torch.nan_to_num(gt), valid)
    return depth.clamp(min_depth, max_depth)


def occlusion_boundary_mask(depth: torch.Tensor, log_ratio: float = 0.15, radius: int = 1) -> torch.Tensor:
    """Pixels within ``radius`` of a depth discontinuity: neighbours differing by more than
    ``log_ratio`` in log depth; invalid (NaN, e.g. sky) neighbours count as infinitely far."""
    log_d = torch.log(torch.nan_to_num(depth, nan=1e6).clamp_min(1e-3))[:, None]
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
    opening with a ``width`` x ``width`` square (poles, limbs, wires, sign posts, ...)."""
    if width < 2:
        raise ValueError(f"thin-structure width must be at least 2 pixels, got {width}")
    thin = torch.zeros(semantic.shape, dtype=torch.bool, device=semantic.device)
    pad_lo, pad_hi = (width - 1) // 2, width // 2
    for cls in torch.unique(semantic).tolist():
        m = (semantic == cls).float()[:, None]
        eroded = -F.max_pool2d(F.pad(-m, (pad_lo, pad_hi, pad_lo, pad_hi), value=-1.0), width, stride=1)
        opened = F.max_pool2d(F.pad(eroded, (pad_hi, pad_lo, pad_hi, pad_lo), value=0.0), width, stride=1)
        thin |= (m - opened)[:, 0] > 0.5
    return thin


@dataclass
class MetricAccumulator:
    """Pixel-pooled AbsRel and delta1 over named pixel subsets (``all``, ``boundary``, ``thin``, ...)."""

    sums: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, depth: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> None:
        d, g = depth[mask].double(), gt[mask].double()
        entry = self.sums.setdefault(name, [0.0, 0.0, 0.0])
        entry[0] += float(((d - g).abs() / g).sum())
        entry[1] += float((torch.maximum(d / g, g / d) < 1.25).sum())
        entry[2] += float(d.numel())

    def result(self) -> dict[str, dict[str, float]]:
        """``{subset: {"abs_rel", "delta1", "pixels"}}``."""
        return {
            name: {"abs_rel": s[0] / s[2], "delta1": s[1] / s[2], "pixels": int(s[2])}
            for name, s in self.sums.items()
            if s[2] > 0
        }
