"""Losses of the intrinsic decomposition branch, log I = log L + log R.

- reconstruction: L1 between log I and log L + log R;
- cross-view: the diffuse image L of a source view, warped into the target with the predicted depth
  and pose, must reproduce the target's L (L is view-invariant), computed with the same photometric
  error and per-pixel minimum as the RGB loss (``SelfSupObjective``);
- contrastive: at each pixel, the target's diffuse colour must be closer to the warped source diffuse
  colour at that pixel (positive) than to the diffuse colours of other pixels of the target
  (negatives), InfoNCE over squared distances; this forbids the trivial split L = constant,
  R = I that would make the cross-view term vanish;
- sparsity: mean |log R|, so that R explains only what L cannot.

Before that, the branch is pretrained (stage ``intrinsic``) on an intrinsic-image dataset: images
paired with their diffuse layer (SynthSurround's intrinsic-train split rendered with and without
reflections), by ``diffuse_regression_loss``.
"""

from __future__ import annotations

import torch

LOG_EPS = 1e-3
"""log I uses I + LOG_EPS so black pixels stay finite."""


def log_image(image: torch.Tensor) -> torch.Tensor:
    return torch.log(image + LOG_EPS)


def reconstruction_loss(image: torch.Tensor, log_l: torch.Tensor, log_r: torch.Tensor) -> torch.Tensor:
    """Mean |log I - (log L + log R)|."""
    return (log_image(image) - log_l - log_r).abs().mean()


def diffuse_regression_loss(log_l: torch.Tensor, diffuse: torch.Tensor) -> torch.Tensor:
    """Mean squared error between log L and the log of the true diffuse image ``diffuse`` in [0, 1].

    Squared, not absolute: reflective pixels are a minority and look like ordinary texture, so the
    conditional median of their correction is zero (an L1 fit stays at the identity split on unseen
    images), while the conditional mean removes part of the reflection wherever it is likely.
    """
    return (log_l - log_image(diffuse)).pow(2).mean()


def sparsity_loss(log_r: torch.Tensor) -> torch.Tensor:
    """Mean |log R|."""
    return log_r.abs().mean()


def contrastive_loss(anchor: torch.Tensor, positive: torch.Tensor, valid: torch.Tensor,
                     num_negatives: int = 8, temperature: float = 0.1,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """InfoNCE over pixels: anchors (B, C, H, W), positives (B, C, H, W) at the same pixels, negatives
    drawn from other valid pixels of the same image; averaged over valid pixels (B, 1, H, W)."""
    losses = []
    for b in range(anchor.shape[0]):
        sel = valid[b, 0].reshape(-1)
        count = int(sel.sum())
        if count < 2:
            continue
        a = anchor[b].reshape(anchor.shape[1], -1)[:, sel].T  # (M, C)
        p = positive[b].reshape(positive.shape[1], -1)[:, sel].T
        idx = torch.randint(0, count, (count, num_negatives), generator=generator, device=a.device)
        n = a[idx]  # (M, K, C)
        pos = -((a - p) ** 2).sum(-1, keepdim=True) / temperature  # (M, 1)
        neg = -((a[:, None] - n) ** 2).sum(-1) / temperature  # (M, K)
        logits = torch.cat([pos, neg], dim=1)
        losses.append(-(pos[:, 0] - torch.logsumexp(logits, dim=1)).mean())
    if not losses:
        return anchor.sum() * 0.0
    return torch.stack(losses).mean()
