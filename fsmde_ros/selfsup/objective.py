"""The self-supervised surround objective: view synthesis across time and rig cameras, and, for the
decomposition-aware model, the intrinsic decomposition losses and the reflection-masked depth loss."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fsmde_ros.selfsup.decomposition import contrastive_loss, reconstruction_loss, sparsity_loss
from fsmde_ros.selfsup.photometric import (
    edge_aware_smoothness,
    masked_mean,
    min_reprojection,
    photometric_error,
)
from fsmde_ros.selfsup.reflection_mask import reflection_mask
from fsmde_ros.selfsup.views import NUM_TEMPORAL, TARGET, SourceViews, SurroundClip
from fsmde_ros.selfsup.warping import inverse_warp


@dataclass(frozen=True)
class LossWeights:
    """Weights of the terms of the objective (see docs/selfsup.md)."""

    ssim_alpha: float = 0.85
    smoothness: float = 1e-3
    diffuse: float = 1.0
    reconstruction: float = 1.0
    contrastive: float = 0.1
    sparsity: float = 0.05
    mask_confidence: float = 0.99


@dataclass
class Reprojection:
    """Per-pixel minimum reprojection errors (N, 1, H, W) of the target cameras and where they count."""

    rgb: torch.Tensor
    rgb_keep: torch.Tensor  # seen by a source and not auto-masked: where the RGB depth loss counts
    seen: torch.Tensor  # seen by at least one source: where the reflection mask is decided
    diffuse: torch.Tensor | None = None
    diffuse_keep: torch.Tensor | None = None
    diffuse_target: torch.Tensor | None = None  # log L of the targets (N, 3, H, W)
    diffuse_positive: torch.Tensor | None = None  # log of the best warped source L (N, 3, H, W)


def reproject(depth: torch.Tensor, clip: SurroundClip, views: SourceViews, alpha: float,
              log_l: torch.Tensor | None = None) -> Reprojection:
    """Warp every source view into its target camera with ``depth`` (N, 1, H, W) and score it.

    ``log_l`` (3 * N, 3, H, W), the diffuse log images of all frames, is warped along with the RGB.
    """
    n, s = views.index.shape
    _, _, _, h, w = clip.images.shape
    flat = clip.images.reshape(-1, 3, h, w)
    if log_l is not None:
        flat = torch.cat([flat, torch.exp(log_l)], dim=1)
    channels = flat.shape[1]
    sources = flat[views.index.reshape(-1)]
    K_target = clip.K.repeat_interleave(s, dim=0)
    K_source = clip.K[views.camera.reshape(-1)]
    warped, valid = inverse_warp(sources, depth.repeat_interleave(s, dim=0), K_target, K_source,
                                 views.transforms.reshape(-1, 4, 4))
    warped = warped.reshape(n, s, channels, h, w)
    valid = valid.reshape(n, s, h, w) & views.exists[..., None, None]
    target = flat[TARGET * n:(TARGET + 1) * n]
    temporal_sources = flat[views.index[:, :NUM_TEMPORAL].reshape(-1)]
    temporal_sources = temporal_sources.reshape(n, NUM_TEMPORAL, channels, h, w)

    def score(c0: int, c1: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tgt = target[:, c0:c1]
        errors = photometric_error(warped[:, :, c0:c1].reshape(n * s, c1 - c0, h, w),
                                   tgt.repeat_interleave(s, dim=0), alpha).reshape(n, s, h, w)
        identity = photometric_error(temporal_sources[:, :, c0:c1].reshape(-1, c1 - c0, h, w),
                                     tgt.repeat_interleave(NUM_TEMPORAL, dim=0), alpha)
        best, keep = min_reprojection(errors, valid, identity.reshape(n, NUM_TEMPORAL, h, w))
        return best, keep, errors

    rgb, rgb_keep, _ = score(0, 3)
    seen = valid.any(dim=1, keepdim=True)
    if log_l is None:
        return Reprojection(rgb, rgb_keep, seen)
    diffuse, diffuse_keep, diffuse_errors = score(3, 6)
    choice = torch.where(valid, diffuse_errors, torch.full_like(diffuse_errors, float("inf"))).argmin(1)
    picked = torch.gather(warped[:, :, 3:6], 1, choice[:, None, None].expand(n, 1, 3, h, w))[:, 0]
    return Reprojection(rgb, rgb_keep, seen, diffuse, diffuse_keep, log_l[TARGET * n:(TARGET + 1) * n],
                        torch.log(picked.clamp(min=1e-6)))


@torch.no_grad()
def predict_reflection_mask(depth: torch.Tensor, clip: SurroundClip, views: SourceViews, log_l: torch.Tensor,
                            weights: LossWeights) -> torch.Tensor:
    """Reflection mask (N, 1, H, W) of the clip's target cameras from depth and the diffuse images."""
    rep = reproject(depth, clip, views, weights.ssim_alpha, log_l)
    return reflection_mask(rep.rgb, _diffuse(rep), rep.seen, weights.mask_confidence)


def _diffuse(rep: Reprojection) -> torch.Tensor:
    if rep.diffuse is None:
        raise ValueError("reprojection was computed without diffuse images")
    return rep.diffuse


def baseline_loss(depth: torch.Tensor, clip: SurroundClip, views: SourceViews,
                  weights: LossWeights) -> dict[str, torch.Tensor]:
    """Self-supervised baseline: min-reprojection SSIM + L1 with auto-masking, plus smoothness."""
    rep = reproject(depth, clip, views, weights.ssim_alpha)
    photometric = masked_mean(rep.rgb, rep.rgb_keep)
    smooth = edge_aware_smoothness(1.0 / depth, clip.images[TARGET])
    return {"loss": photometric + weights.smoothness * smooth, "photometric": photometric,
            "smoothness": smooth}


def decomposition_loss(depth: torch.Tensor, clip: SurroundClip, views: SourceViews, log_l: torch.Tensor,
                       log_r: torch.Tensor, weights: LossWeights, use_mask: bool = True,
                       generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Decomposition-aware objective: RGB photometric loss outside the reflection mask, diffuse
    cross-view loss everywhere, decomposition losses, smoothness. ``log_l``/``log_r`` cover all
    3 * N images of the clip (frame-major)."""
    rep = reproject(depth, clip, views, weights.ssim_alpha, log_l)
    if use_mask:
        mask = reflection_mask(rep.rgb.detach(), _diffuse(rep).detach(), rep.seen, weights.mask_confidence)
    else:
        mask = torch.zeros_like(rep.rgb_keep)
    photometric = masked_mean(rep.rgb, rep.rgb_keep & ~mask)
    diffuse = masked_mean(_diffuse(rep), rep.diffuse_keep)
    recon = reconstruction_loss(clip.images.reshape(-1, 3, *clip.images.shape[-2:]), log_l, log_r)
    contrast = contrastive_loss(rep.diffuse_target, rep.diffuse_positive, rep.diffuse_keep,
                                generator=generator)
    sparse = sparsity_loss(log_r)
    smooth = edge_aware_smoothness(1.0 / depth, clip.images[TARGET])
    total = (photometric + weights.diffuse * diffuse + weights.reconstruction * recon
             + weights.contrastive * contrast + weights.sparsity * sparse + weights.smoothness * smooth)
    return {"loss": total, "photometric": photometric, "diffuse": diffuse, "reconstruction": recon,
            "contrastive": contrast, "sparsity": sparse, "smoothness": smooth,
            "mask_fraction": mask.float().mean(), "mask": mask}
