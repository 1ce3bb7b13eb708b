"""Gate training loss: scale-and-shift-invariant (SSI) L1 plus multi-scale gradient matching (MiDaS).

Per image, the target is normalised to zero median and unit mean absolute deviation and the
prediction is aligned to it by least squares (scale s, shift t, differentiable); the SSI term is the
mean |s * pred + t - target| and the gradient term matches the x/y gradients of that residual over
``scales`` dyadic scales. All means run over the valid ``mask`` only.
"""

from __future__ import annotations

import torch


def _check(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> None:
    if pred.shape != target.shape or pred.shape != mask.shape or pred.ndim != 3:
        raise ValueError(
            f"SSI loss: pred, target and mask must share one (B, H, W) shape, got "
            f"{tuple(pred.shape)}, {tuple(target.shape)}, {tuple(mask.shape)}"
        )


def normalise_target(target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per image: (target - median) / mean|target - median| over the mask; 0 outside it."""
    out = torch.zeros_like(target)
    for i in range(target.shape[0]):
        values = target[i][mask[i]]
        if values.numel() == 0:
            continue
        median = values.median()
        spread = (values - median).abs().mean().clamp_min(1e-6)
        out[i][mask[i]] = (values - median) / spread
    return out


def align_least_squares(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """s * pred + t with (s, t) minimising the masked squared error to ``target``, per image.

    Solved on mean-centred values (stable in float32); a constant prediction gets s = 0, t = mean.
    """
    m = mask.to(pred.dtype)
    n = m.sum(dim=(1, 2), keepdim=True).clamp_min(1.0)
    p = torch.where(mask, pred, torch.zeros_like(pred))
    y = torch.where(mask, target, torch.zeros_like(target))
    p_mean, y_mean = p.sum(dim=(1, 2), keepdim=True) / n, y.sum(dim=(1, 2), keepdim=True) / n
    pc, yc = (p - p_mean) * m, (y - y_mean) * m
    var = (pc * pc).sum(dim=(1, 2), keepdim=True)
    ok = var > 1e-12 * n
    scale = torch.where(ok, (pc * yc).sum(dim=(1, 2), keepdim=True) / torch.where(ok, var, 1.0), 0.0)
    return scale * (pred - p_mean) + y_mean


def gradient_matching_loss(residual: torch.Tensor, mask: torch.Tensor, scales: int = 4) -> torch.Tensor:
    """Sum over scales of the mean |grad_x R| + |grad_y R| where both pixels of a difference are valid."""
    total = residual.new_zeros(())
    m = mask.to(residual.dtype)
    for k in range(scales):
        step = 2**k
        r, mk = residual[:, ::step, ::step], m[:, ::step, ::step]
        mx = mk[:, :, 1:] * mk[:, :, :-1]
        my = mk[:, 1:, :] * mk[:, :-1, :]
        gx = (r[:, :, 1:] - r[:, :, :-1]).abs() * mx
        gy = (r[:, 1:, :] - r[:, :-1, :]).abs() * my
        total = total + (gx.sum() + gy.sum()) / mk.sum().clamp_min(1.0)
    return total


def ssi_gradient_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    gradient_weight: float = 0.5,
    scales: int = 4,
) -> dict[str, torch.Tensor]:
    """``{"loss", "ssi", "gradient"}``: SSI + gradient_weight * gradient matching."""
    _check(pred, target, mask)
    mask = mask & torch.isfinite(target)
    target = normalise_target(torch.nan_to_num(target), mask)
    residual = (align_least_squares(pred, target, mask) - target) * mask
    ssi = residual.abs().sum() / mask.sum().clamp_min(1)
    gradient = gradient_matching_loss(residual, mask, scales)
    return {"loss": ssi + gradient_weight * gradient, "ssi": ssi, "gradient": gradient}
