"""Aligning a relative-depth teacher (affine-invariant disparity) to metric depth, per image.

Every teacher outputs *relative disparity*: proportional to inverse depth up to an unknown positive
scale and shift per image (as Depth Anything V2 and MiDaS do). ``align_disparity`` fits that scale
(``median``) or scale and shift (``lstsq``) to reference depths (sparse LiDAR, or any metric depth)
and returns metric depth clamped to the model's range.
"""

from __future__ import annotations

import torch

ALIGN_MODES = ("median", "lstsq")


def fit_scale_shift(
    disparity: torch.Tensor, reference_depth: torch.Tensor, mask: torch.Tensor, mode: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image (scale, shift), each (B,), so that ``scale * disparity + shift`` ~ ``1 / reference``.

    ``disparity``, ``reference_depth`` and ``mask`` are (B, H, W); only pixels where ``mask`` is true
    count. ``median``: shift 0 and scale = median(1/ref) / median(disparity). ``lstsq``: ordinary
    least squares in disparity space. Images with fewer than 2 valid pixels get scale 1, shift 0.
    """
    if mode not in ALIGN_MODES:
        raise ValueError(f"alignment mode must be one of {ALIGN_MODES}, got {mode!r}")
    if disparity.shape != reference_depth.shape or disparity.shape != mask.shape:
        raise ValueError(
            f"alignment shapes differ: disparity {tuple(disparity.shape)}, reference "
            f"{tuple(reference_depth.shape)}, mask {tuple(mask.shape)}"
        )
    B = disparity.shape[0]
    scale = torch.ones(B, dtype=disparity.dtype, device=disparity.device)
    shift = torch.zeros(B, dtype=disparity.dtype, device=disparity.device)
    for b in range(B):
        m = (
            mask[b]
            & torch.isfinite(reference_depth[b])
            & (reference_depth[b] > 0)
            & torch.isfinite(disparity[b])
        )
        if int(m.sum()) < 2:
            continue
        x = disparity[b][m].double()
        y = 1.0 / reference_depth[b][m].double()
        if mode == "median":
            mx = x.median()
            if mx > 0:
                scale[b] = (y.median() / mx).to(scale.dtype)
            continue
        xm, ym = x.mean(), y.mean()
        var = ((x - xm) ** 2).mean()
        if var <= 1e-12:
            continue
        s = ((x - xm) * (y - ym)).mean() / var
        if s <= 0:
            # a negative fit means the reference contradicts the teacher's ordering; fall back to median
            mx = x.median()
            if mx > 0:
                scale[b] = (y.median() / mx).to(scale.dtype)
            continue
        scale[b] = s.to(scale.dtype)
        shift[b] = (ym - s * xm).to(shift.dtype)
    return scale, shift


def align_disparity(
    disparity: torch.Tensor,
    reference_depth: torch.Tensor,
    mask: torch.Tensor,
    mode: str,
    min_depth: float,
    max_depth: float,
) -> torch.Tensor:
    """Metric depth (B, H, W) from relative disparity aligned per image to ``reference_depth``.

    The aligned disparity is clamped to [1/max_depth, 1/min_depth], so sky and any pixel the fit
    pushes to zero or below land on ``max_depth``.
    """
    scale, shift = fit_scale_shift(disparity, reference_depth, mask, mode)
    metric_disp = scale[:, None, None] * disparity + shift[:, None, None]
    metric_disp = metric_disp.clamp(min=1.0 / max_depth, max=1.0 / min_depth)
    return 1.0 / metric_disp
