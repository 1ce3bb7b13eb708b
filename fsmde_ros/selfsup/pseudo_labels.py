"""Pseudo-depth distillation: per pixel, the reflection mask picks which teacher's depth is the label.

Teacher A is the self-supervised baseline (best where the Lambertian assumption holds), teacher B the
decomposition-aware model (best on reflective pixels, whose RGB photometric loss it ignored). The
label is B's depth on masked (reflective) pixels and A's elsewhere; a student regresses it with an
L1 loss on log depth, which weighs relative errors equally at every range.

Two control masks test whether the mask's placement matters (``ablate_mask``): ``shuffled`` moves the
mask's pixels to random places of the same image (same count), ``everywhere`` takes B's depth at every
pixel.
"""

from __future__ import annotations

import torch


def fuse_teachers(baseline_depth: torch.Tensor, decomposition_depth: torch.Tensor,
                  mask: torch.Tensor) -> torch.Tensor:
    """Pseudo label (N, 1, H, W): decomposition teacher where ``mask`` is true, baseline elsewhere."""
    if baseline_depth.shape != decomposition_depth.shape or baseline_depth.shape != mask.shape:
        raise ValueError(f"pseudo labels: shapes differ: baseline {tuple(baseline_depth.shape)}, "
                         f"decomposition {tuple(decomposition_depth.shape)}, mask {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        raise ValueError(f"pseudo labels: mask must be bool, got {mask.dtype}")
    return torch.where(mask, decomposition_depth, baseline_depth)


CONTROL_MASKS = ("shuffled", "everywhere")


def ablate_mask(mask: torch.Tensor, control: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """A control mask (N, 1, H, W) from ``mask``: its pixels shuffled within each image, or all true."""
    if control == "everywhere":
        return torch.ones_like(mask)
    if control != "shuffled":
        raise ValueError(f"pseudo labels: control mask must be one of {CONTROL_MASKS}, got {control!r}")
    flat = mask.reshape(mask.shape[0], -1)
    order = torch.stack([torch.randperm(flat.shape[1], generator=generator) for _ in range(flat.shape[0])])
    return torch.gather(flat, 1, order).reshape(mask.shape)


def log_l1_loss(pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Mean |log pred - log label| over pixels where the label is finite and positive."""
    valid = torch.isfinite(label) & (label > 0)
    if not bool(valid.any()):
        return pred.sum() * 0.0
    return (torch.log(pred[valid]) - torch.log(label[valid])).abs().mean()
