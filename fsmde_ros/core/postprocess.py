"""Backend output to publishable depth: invalid values become NaN and are counted."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class CleanDepth:
    """Depth (N, H, W) float32 metres (NaN = invalid), confidence in [0, 1], non-finite counts per camera."""

    depth: np.ndarray
    confidence: np.ndarray
    nonfinite: np.ndarray  # (N,) int, pixels the backend returned as NaN/inf or <= 0


def clean_depth(depth: np.ndarray, confidence: np.ndarray) -> CleanDepth:
    """Replace non-finite or non-positive depth by NaN (confidence 0 there); clip confidence to [0, 1]."""
    depth = np.asarray(depth, dtype=np.float32)
    confidence = np.asarray(confidence, dtype=np.float32)
    if depth.ndim != 3 or confidence.shape != depth.shape:
        raise ValueError(f"backend returned depth {depth.shape} and confidence {confidence.shape}; "
                         "expected two (N, H, W) arrays of one shape")
    with np.errstate(invalid="ignore"):
        bad = ~(depth > 0) | ~np.isfinite(depth)
    nonfinite = bad.reshape(bad.shape[0], -1).sum(axis=1)
    if nonfinite.any():
        depth = np.where(bad, np.float32(np.nan), depth)
        confidence = np.where(bad, np.float32(0.0), confidence)
    confidence = np.clip(np.nan_to_num(confidence, nan=0.0), 0.0, 1.0, dtype=np.float32)
    return CleanDepth(depth, confidence, nonfinite)
