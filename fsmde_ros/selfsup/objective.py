"""The self-supervised surround objective: view synthesis across time and rig cameras, and, for the
decomposition-aware model, the intrinsic decomposition losses and the reflection-masked depth loss."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fsmde_ros.selfsup.decomposition import (
    contrastive_loss,
    diffuse_regression_loss,
    reconstruction_loss,
    sparsity_loss,
)
from fsmde_ros.selfsup.photometric import (
    edge_aware_smoothness,
    masked_mean,
    masked_planarity,
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
    planarity: float = 0.0


@dataclass
class ViewScores:
    """Per-pixel minimum reprojection errors (N, 1, H, W) of the target cameras and where they count."""

    best: torch.Tensor  # minimum photometric error over the source views
    keep: torch.Tensor  # seen by a source and not auto-masked: where a photometric loss counts
    seen: torch.Tensor  # seen by at least one source: where the reflection mask is decided
    picked: torch.Tensor  # (N, C, H, W) the warped source of minimum error at each pixel


def score_views(frames: torch.Tensor, depth: torch.Tensor, clip: SurroundClip, views: SourceViews,
                alpha: float) -> ViewScores:
    """Warp the source views of ``frames`` (3 * N, C, H, W: all images of the clip, frame-major, RGB
    or diffuse) into their target cameras with ``depth`` (N, 1, H, W) and score them."""
    n, s = views.index.shape
    c, h, w = frames.shape[1:]
    warped, valid = inverse_warp(frames[views.index.reshape(-1)], depth.repeat_interleave(s, dim=0),
                                 clip.K.repeat_interleave(s, dim=0), clip.K[views.camera.reshape(-1)],
                                 views.transforms.reshape(-1, 4, 4))
    warped = warped.reshape(n, s, c, h, w)
    valid = valid.reshape(n, s, h, w) & views.exists[..., None, None]
    target = frames[TARGET * n:(TARGET + 1) * n]
    errors = photometric_error(warped.reshape(n * s, c, h, w), target.repeat_interleave(s, dim=0),
                               alpha).reshape(n, s, h, w)
    identity = photometric_error(frames[views.index[:, :NUM_TEMPORAL].reshape(-1)],
                                 target.repeat_interleave(NUM_TEMPORAL, dim=0), alpha)
    best, keep = min_reprojection(errors, valid, identity.reshape(n, NUM_TEMPORAL, h, w))
    choice = torch.where(valid, errors, torch.full_like(errors, float("inf"))).argmin(1)
    picked = torch.gather(warped, 1, choice[:, None, None].expand(n, 1, c, h, w))[:, 0]
    return ViewScores(best, keep, valid.any(dim=1, keepdim=True), picked)


MIN_DIFFUSE = 1e-4
"""Floor of a rendered diffuse image before its log (black pixels stay finite)."""


def _frames(clip: SurroundClip) -> torch.Tensor:
    return clip.images.reshape(-1, *clip.images.shape[2:])


def rendered_log_diffuse(diffuse: SurroundClip) -> torch.Tensor:
    """log L (3 * N, 3, H, W) of a clip rendered without reflections: the ideal decomposition's."""
    return torch.log(_frames(diffuse).clamp(min=MIN_DIFFUSE))


@torch.no_grad()
def predict_reflection_mask(depth: torch.Tensor, clip: SurroundClip, views: SourceViews, log_l: torch.Tensor,
                            weights: LossWeights) -> torch.Tensor:
    """Reflection mask (N, 1, H, W) of the clip's target cameras from depth and the diffuse images."""
    rgb = score_views(_frames(clip), depth, clip, views, weights.ssim_alpha)
    diffuse = score_views(torch.exp(log_l), depth, clip, views, weights.ssim_alpha)
    return reflection_mask(rgb.best, diffuse.best, rgb.seen, weights.mask_confidence)


def intrinsic_pretrain_loss(clip: SurroundClip, diffuse: SurroundClip, log_l: torch.Tensor,
                            log_r: torch.Tensor, weights: LossWeights) -> dict[str, torch.Tensor]:
    """Intrinsic pretraining of the decomposition branch on all 3 * N images of a clip: log L regresses
    the clip's true diffuse layer ``diffuse``, plus the reconstruction term (log L + log R = log I)."""
    regression = diffuse_regression_loss(log_l, _frames(diffuse))
    recon = reconstruction_loss(_frames(clip), log_l, log_r)
    return {"loss": regression + weights.reconstruction * recon, "diffuse_regression": regression,
            "reconstruction": recon}


def baseline_loss(depth: torch.Tensor, clip: SurroundClip, views: SourceViews,
                  weights: LossWeights) -> dict[str, torch.Tensor]:
    """Self-supervised baseline: min-reprojection SSIM + L1 with auto-masking, plus smoothness."""
    rgb = score_views(_frames(clip), depth, clip, views, weights.ssim_alpha)
    photometric = masked_mean(rgb.best, rgb.keep)
    smooth = edge_aware_smoothness(1.0 / depth, clip.images[TARGET])
    return {"loss": photometric + weights.smoothness * smooth, "photometric": photometric,
            "smoothness": smooth}


def decomposition_loss(depth: torch.Tensor, clip: SurroundClip, views: SourceViews, log_l: torch.Tensor,
                       log_r: torch.Tensor, weights: LossWeights, use_mask: bool = True,
                       mask: torch.Tensor | None = None,
                       generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Decomposition-aware objective; ``log_l``/``log_r`` cover all 3 * N images of the clip.

    - the decomposition branch learns from reconstruction, sparsity, the contrastive term and the
      cross-view diffuse loss, with the depth held fixed (the depth aligns the views for it);
    - the depth learns from the RGB photometric loss outside the reflection mask: reflective pixels
      give it no photometric gradient (their appearance breaks the Lambertian assumption); inside
      the mask it gets the planarity prior instead (mirror-like surfaces are planar), which pulls
      the virtual depth of a reflection onto the surface that carries it.

    The mask is the Mahalanobis reflection mask of the RGB and diffuse errors, or ``mask``
    (N, 1, H, W) when given (e.g. the dataset's true mask, for an oracle ablation); ``use_mask``
    False trains the branch without masking the depth loss.
    """
    rgb = score_views(_frames(clip), depth, clip, views, weights.ssim_alpha)
    diffuse = score_views(torch.exp(log_l), depth.detach(), clip, views, weights.ssim_alpha)
    if not use_mask:
        mask = torch.zeros_like(rgb.keep)
    elif mask is None:
        mask = reflection_mask(rgb.best.detach(), diffuse.best.detach(), rgb.seen, weights.mask_confidence)
    photometric = masked_mean(rgb.best, rgb.keep & ~mask)
    cross_view = masked_mean(diffuse.best, diffuse.keep)
    n = clip.num_cameras
    recon = reconstruction_loss(_frames(clip), log_l, log_r)
    contrast = contrastive_loss(log_l[TARGET * n:(TARGET + 1) * n], torch.log(diffuse.picked.clamp(min=1e-6)),
                                diffuse.keep, generator=generator)
    sparse = sparsity_loss(log_r)
    smooth = edge_aware_smoothness(1.0 / depth, clip.images[TARGET])
    planar = masked_planarity(1.0 / depth, mask)
    total = (photometric + weights.diffuse * cross_view + weights.reconstruction * recon
             + weights.contrastive * contrast + weights.sparsity * sparse + weights.smoothness * smooth
             + weights.planarity * planar)
    return {"loss": total, "photometric": photometric, "diffuse": cross_view, "reconstruction": recon,
            "contrastive": contrast, "sparsity": sparse, "smoothness": smooth, "planarity": planar,
            "mask_fraction": mask.float().mean(), "mask": mask}
