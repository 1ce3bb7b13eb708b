"""Gate training loss: scale-and-shift-invariant (SSI) plus multi-scale gradient matching (MiDaS).

The SSI term is the project's ``fsmde_ros.distill.losses.ssi_disparity_loss`` (prediction and
1 / target normalised per image by median and mean absolute deviation, then L1). The gradient term
matches the x/y gradients of the residual of those normalised maps over ``scales`` dyadic scales,
which sharpens depth edges that the SSI term alone averages away.
"""

from __future__ import annotations

import torch

from fsmde_ros.distill.losses import ssi_disparity_loss


def normalise_median_mad(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per image: (x - median) / mean|x - median| over the mask (as the SSI loss does); 0 outside it."""
    out = torch.zeros_like(values)
    for i in range(values.shape[0]):
        m = mask[i]
        if int(m.sum()) < 2:
            continue
        x = values[i][m]
        centred = x - x.median()
        out[i][m] = centred / centred.abs().mean().clamp_min(1e-6)
    return out


def gradient_matching_loss(residual: torch.Tensor, mask: torch.Tensor, scales: int = 4) -> torch.Tensor:
    """Sum over scales of the mean |grad_x R| + |grad_y R| where both pixels of a difference are valid."""
    total = residual.new_zeros(())
    m = mask.to(residual.dtype)
    for k in range(scales):
        step = 2**k
        r, mk = residual[:, ::step, ::step], m[:, ::step, ::step]
        gx = (r[:, :, 1:] - r[:, :, :-1]).abs() * (mk[:, :, 1:] * mk[:, :, :-1])
        gy = (r[:, 1:, :] - r[:, :-1, :]).abs() * (mk[:, 1:, :] * mk[:, :-1, :])
        total = total + (gx.sum() + gy.sum()) / mk.sum().clamp_min(1.0)
    return total


def briges_loss(
    pred_disparity: torch.Tensor,
    target_depth: torch.Tensor,
    mask: torch.Tensor,
    gradient_weight: float = 0.5,
    scales: int = 4,
) -> dict[str, torch.Tensor]:
    """``{"loss", "ssi", "gradient"}`` with loss = SSI + gradient_weight * gradient matching.

    ``pred_disparity``, ``target_depth`` (metres, NaN allowed outside the mask) and ``mask`` share
    one (B, H, W) shape.
    """
    if pred_disparity.shape != target_depth.shape or pred_disparity.shape != mask.shape or mask.ndim != 3:
        raise ValueError(
            f"BriGeS loss: prediction, target and mask must share one (B, H, W) shape, got "
            f"{tuple(pred_disparity.shape)}, {tuple(target_depth.shape)}, {tuple(mask.shape)}"
        )
    mask = mask & torch.isfinite(target_depth) & (target_depth > 0)
    ssi = ssi_disparity_loss(pred_disparity, target_depth, mask)
    target_disparity = 1.0 / torch.where(mask, target_depth, torch.ones_like(target_depth))
    residual = normalise_median_mad(pred_disparity, mask) - normalise_median_mad(target_disparity, mask)
    gradient = gradient_matching_loss(residual, mask, scales)
    return {"loss": ssi + gradient_weight * gradient, "ssi": ssi, "gradient": gradient}
