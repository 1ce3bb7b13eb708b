"""Live cross-view consistency: how much adjacent cameras disagree in their overlap, per pair.

A health signal for calibration drift or model failure, computed with the project's one metric
(``fsmde_ros.evaluation.CrossViewConsistency``, geometry precomputed once) on the published depth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fsmde_ros.evaluation import CrossViewConsistency


@dataclass
class PairHealth:
    """Disagreement of one adjacent pair: median |z_ij - d_j| / d_j over both directions."""

    names: tuple[str, str]
    median_abs_rel: float  # NaN when the overlap held no valid pixel
    count: int
    level: int  # 0 OK, 1 WARN, 2 ERROR (diagnostic_msgs levels)


class ConsistencyMonitor:
    """Per-pair disagreement of a rig's depth images, graded against WARN and ERROR thresholds."""

    def __init__(self, names: list[str], K: np.ndarray, cam2ego: np.ndarray,
                 pairs: tuple[tuple[int, int], ...], height: int, width: int, min_depth: float,
                 max_depth: float, warn: float = 0.15, error: float = 0.3) -> None:
        if not 0 < warn <= error:
            raise ValueError(f"consistency thresholds need 0 < warn <= error, got {warn}, {error}")
        self.names, self.pairs, self.warn, self.error = list(names), tuple(pairs), warn, error
        self._metric = CrossViewConsistency(K, cam2ego, list(pairs), height, width, min_depth, max_depth)

    def __call__(self, depth: np.ndarray) -> list[PairHealth]:
        """Health of every adjacent pair for one set of depth images (N, H, W)."""
        result = self._metric(depth)
        out = []
        for i, j in self.pairs:
            a, b = result.pairs[(i, j)], result.pairs[(j, i)]
            count = a.count + b.count
            values = [p.median_abs_rel for p in (a, b) if p.count]
            median = float(np.mean(values)) if values else math.nan
            level = 1 if math.isnan(median) else 2 if median > self.error else 1 if median > self.warn else 0
            out.append(PairHealth((self.names[i], self.names[j]), median, count, level))
        return out
