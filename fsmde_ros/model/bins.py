"""Hybrid depth-bin head math (AdaBins / LocalBins style), bin axis last.

Per image, K metric bin centres come from global features: K positive widths (a softmax with a
floor) partition [log(min_depth), log(max_depth)]; the centres are the exponentiated midpoints, so
they are strictly increasing and strictly inside [min_depth, max_depth]. Per pixel, a softmax over
K logits gives bin probabilities p_k; depth = sum_k p_k * c_k.

Confidence is one minus the normalised entropy of the bin distribution:

    confidence = 1 - H(p) / log(K),   H(p) = -sum_k p_k log p_k

1 for a one-hot distribution, 0 for a uniform one. The bin axis is the last axis of every per-pixel
tensor: ONNX Runtime's CPU Softmax over the last axis is several times faster than over the channel
axis of an NCHW tensor.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

WIDTH_FLOOR = 1e-3
"""Each bin keeps at least this share of the uniform width, so centres stay strictly increasing."""


def bin_centres_from_logits(width_logits: torch.Tensor, min_depth: float, max_depth: float) -> torch.Tensor:
    """(B, K) width logits -> (B, K) metric centres, strictly increasing, inside (min_depth, max_depth)."""
    num_bins = width_logits.shape[-1]
    shares = F.softmax(width_logits, dim=-1)
    shares = (shares + WIDTH_FLOOR / num_bins) / (1.0 + WIDTH_FLOOR)
    log_min, log_max = math.log(min_depth), math.log(max_depth)
    widths = shares * (log_max - log_min)
    edges_hi = log_min + torch.cumsum(widths, dim=-1)
    midpoints = edges_hi - 0.5 * widths
    return torch.exp(midpoints)


def depth_from_probabilities(probabilities: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """(B, H, W, K) probabilities and (B, K) centres -> (B, H, W) depth = sum_k p_k c_k."""
    return torch.matmul(probabilities, centres[:, None, :, None]).squeeze(-1)


def confidence_from_log_probabilities(log_probabilities: torch.Tensor) -> torch.Tensor:
    """(B, H, W, K) log-probabilities -> (B, H, W) confidence = 1 - H(p) / log K, in [0, 1]."""
    num_bins = log_probabilities.shape[-1]
    entropy = -(log_probabilities.exp() * log_probabilities).sum(dim=-1)
    return (1.0 - entropy / math.log(num_bins)).clamp(0.0, 1.0)
