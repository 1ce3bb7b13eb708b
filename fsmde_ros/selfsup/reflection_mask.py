"""Reflection mask: pixels whose RGB reprojection error is anomalous given their diffuse error.

For a Lambertian pixel the photometric error of the RGB pair and of the diffuse (L) pair move
together; on a reflective pixel the view-dependent residual R makes the RGB error large while the
diffuse error stays small. Per image, each valid pixel gets the feature
x = (log e_rgb, log e_diffuse); mean and covariance of x are estimated robustly (re-estimated
without the outliers) and a pixel is flagged when

1. its squared Mahalanobis distance exceeds the chi-square quantile with 2 degrees of freedom,
   -2 ln(1 - confidence) (it does not belong to the joint distribution), and
2. its diffuse error lies below the one its RGB error predicts (the conditional mean
   E[log e_diffuse | log e_rgb] of the inlier Gaussian) by more than the one-sided normal quantile of
   ``confidence`` conditional standard deviations: the outlier is on the reflective side, not a
   pixel that both pairs fail to explain (occlusion, moving object).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

LOG_EPS = 1e-3
"""Added to errors before the log: differences between near-perfect matches carry no information."""

LOG_NOISE_STD = 0.1
"""Noise floor of the log errors, added to the variances: errors within ~10% are indistinguishable."""


def chi2_quantile_2dof(confidence: float) -> float:
    """Quantile of the chi-square distribution with 2 degrees of freedom (closed form)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"reflection mask: confidence must be in (0, 1), got {confidence}")
    return -2.0 * math.log(1.0 - confidence)


@dataclass
class GaussianFit:
    """Robust 2-D Gaussian of the features and each point's squared Mahalanobis distance to it."""

    mean: torch.Tensor  # (2,)
    cov: torch.Tensor  # (2, 2)
    d2: torch.Tensor  # (M,)
    outlier: torch.Tensor  # (M,) bool, d2 above the chi-square quantile


def mahalanobis_outliers(features: torch.Tensor, confidence: float = 0.99, iterations: int = 5,
                         noise_var: float = 0.0) -> GaussianFit:
    """Fit a Gaussian to 2-D ``features`` (M, 2) robustly and flag the points outside its quantile.

    The fit starts from the coordinate-wise median and MAD (so a large cluster of outliers cannot
    mask itself by inflating the covariance), then re-estimates mean and covariance from the
    inliers, corrected for the truncation at the quantile, until the inliers stop changing.
    ``noise_var`` is added to both variances (a measurement-noise floor).
    """
    if features.ndim != 2 or features.shape[1] != 2:
        raise ValueError(f"reflection mask: features must be (M, 2), got {tuple(features.shape)}")
    threshold = chi2_quantile_2dof(confidence)
    # E[r^2 | r^2 <= q] / 2 for a 2-D standard normal: the variance shrink of a truncated sample
    truncation = (1.0 - math.exp(-threshold / 2) * (1 + threshold / 2)) / (1.0 - math.exp(-threshold / 2))
    x = features.double()
    eye = torch.eye(2, dtype=x.dtype, device=x.device)
    mean = x.median(dim=0).values
    mad = (x - mean).abs().median(dim=0).values * 1.4826
    cov = torch.diag(mad**2) + noise_var * eye
    inlier = torch.ones(len(x), dtype=torch.bool, device=x.device)
    for _ in range(iterations + 1):
        diff = x - mean
        d2 = (diff @ torch.linalg.inv(cov) * diff).sum(1)
        new_inlier = d2 <= threshold
        if torch.equal(new_inlier, inlier) or int(new_inlier.sum()) < 3:
            break
        inlier = new_inlier
        sample = x[inlier]
        mean = sample.mean(0)
        centred = sample - mean
        cov = centred.T @ centred / (len(sample) - 1) / truncation + noise_var * eye
    return GaussianFit(mean, cov, d2, d2 > threshold)


@torch.no_grad()
def reflection_mask(rgb_error: torch.Tensor, diffuse_error: torch.Tensor, valid: torch.Tensor,
                    confidence: float = 0.99) -> torch.Tensor:
    """Boolean mask (B, 1, H, W) of reflective pixels from per-pixel errors (B, 1, H, W) and validity."""
    if rgb_error.shape != diffuse_error.shape or rgb_error.shape != valid.shape:
        raise ValueError(f"reflection mask: shapes differ: rgb {tuple(rgb_error.shape)}, diffuse "
                         f"{tuple(diffuse_error.shape)}, valid {tuple(valid.shape)}")
    mask = torch.zeros_like(valid)
    z = float(torch.special.ndtri(torch.tensor(confidence, dtype=torch.float64)))
    for b in range(rgb_error.shape[0]):
        sel = valid[b, 0]
        if int(sel.sum()) < 3:
            continue
        e_rgb = torch.log(rgb_error[b, 0][sel] + LOG_EPS)
        e_dif = torch.log(diffuse_error[b, 0][sel] + LOG_EPS)
        fit = mahalanobis_outliers(torch.stack([e_rgb, e_dif], dim=1), confidence,
                                   noise_var=LOG_NOISE_STD**2)
        (s_rr, s_rd), (_, s_dd) = fit.cov.tolist()
        predicted = fit.mean[1] + s_rd / s_rr * (e_rgb.double() - fit.mean[0])
        conditional_std = math.sqrt(s_dd - s_rd * s_rd / s_rr)
        residual = (e_dif.double() - predicted) / conditional_std
        flagged = torch.zeros_like(sel)
        flagged[sel] = fit.outlier & (residual < -z)
        mask[b, 0] = flagged
    return mask
