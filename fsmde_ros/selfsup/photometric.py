"""Photometric losses of self-supervised depth: SSIM + L1, per-pixel minimum reprojection with
auto-masking of static pixels, edge-aware smoothness (Monodepth2 formulation), and the planarity
prior of reflective regions."""

from __future__ import annotations

import torch
import torch.nn.functional as F

SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2
INVALID_ERROR = 1e4
"""Error given to a source pixel that falls outside the source image, so the minimum never picks it."""


def ssim_dissimilarity(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(1 - SSIM) / 2 per pixel and channel (B, C, H, W), 3x3 windows with reflection padding, in [0, 1]."""
    x, y = F.pad(x, (1, 1, 1, 1), mode="reflect"), F.pad(y, (1, 1, 1, 1), mode="reflect")
    mu_x, mu_y = F.avg_pool2d(x, 3, 1), F.avg_pool2d(y, 3, 1)
    sigma_x = F.avg_pool2d(x * x, 3, 1) - mu_x**2
    sigma_y = F.avg_pool2d(y * y, 3, 1) - mu_y**2
    sigma_xy = F.avg_pool2d(x * y, 3, 1) - mu_x * mu_y
    num = (2 * mu_x * mu_y + SSIM_C1) * (2 * sigma_xy + SSIM_C2)
    den = (mu_x**2 + mu_y**2 + SSIM_C1) * (sigma_x + sigma_y + SSIM_C2)
    return ((1 - num / den) / 2).clamp(0, 1)


def photometric_error(pred: torch.Tensor, target: torch.Tensor, alpha: float = 0.85) -> torch.Tensor:
    """alpha * (1 - SSIM) / 2 + (1 - alpha) * L1, averaged over channels: (B, 1, H, W)."""
    l1 = (pred - target).abs().mean(1, keepdim=True)
    return alpha * ssim_dissimilarity(pred, target).mean(1, keepdim=True) + (1 - alpha) * l1


def min_reprojection(errors: torch.Tensor, valid: torch.Tensor,
                     identity_errors: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel minimum over S sources of reprojection errors (B, S, H, W) with validity (B, S, H, W).

    Returns the minimum (B, 1, H, W) and the mask (B, 1, H, W) of pixels that count: at least one
    source sees the pixel and, when ``identity_errors`` (B, S', H, W) of the *unwarped* temporal
    sources are given, warping explains the pixel better than not moving at all (auto-masking of
    static scenes, objects moving with the ego vehicle and textureless regions).
    """
    masked = torch.where(valid, errors, torch.full_like(errors, INVALID_ERROR))
    best, _ = masked.min(dim=1, keepdim=True)
    keep = valid.any(dim=1, keepdim=True)
    if identity_errors is not None:
        keep = keep & (best < identity_errors.min(dim=1, keepdim=True).values)
    return best, keep


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is true; zero (with gradient) when the mask is empty."""
    weight = mask.to(values.dtype)
    return (values * weight).sum() / weight.sum().clamp(min=1.0)


def edge_aware_smoothness(disparity: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Mean |grad d*| exp(-|grad I|) over x and y, d* = disparity / its per-image mean (B, 1, H, W)."""
    d = disparity / disparity.mean(dim=(2, 3), keepdim=True).clamp(min=1e-7)
    dx = (d[..., :, 1:] - d[..., :, :-1]).abs()
    dy = (d[..., 1:, :] - d[..., :-1, :]).abs()
    ix = (image[..., :, 1:] - image[..., :, :-1]).abs().mean(1, keepdim=True)
    iy = (image[..., 1:, :] - image[..., :-1, :]).abs().mean(1, keepdim=True)
    return (dx * torch.exp(-ix)).mean() + (dy * torch.exp(-iy)).mean()


def masked_planarity(disparity: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |second difference| of d* = disparity / its per-image mean (B, 1, H, W) where ``mask`` holds.

    Inverse depth is affine in pixel coordinates exactly on a plane, so the second differences d_xx,
    d_yy and d_xy vanish there: a prior that mirror-like surfaces (glass panes, car windows, wet road)
    are planar. It is *not* edge-aware: the image edges inside a reflection belong to the mirrored
    scene, not to the surface. d_xx and d_yy count where the mask holds at their centre pixel, d_xy
    where it holds at its top-left one.
    """
    d = disparity / disparity.mean(dim=(2, 3), keepdim=True).clamp(min=1e-7)
    dxx = (d[..., :, 2:] - 2 * d[..., :, 1:-1] + d[..., :, :-2]).abs()
    dyy = (d[..., 2:, :] - 2 * d[..., 1:-1, :] + d[..., :-2, :]).abs()
    dxy = (d[..., 1:, 1:] - d[..., 1:, :-1] - d[..., :-1, 1:] + d[..., :-1, :-1]).abs()
    return (masked_mean(dxx, mask[..., :, 1:-1]) + masked_mean(dyy, mask[..., 1:-1, :])
            + masked_mean(dxy, mask[..., :-1, :-1]))
