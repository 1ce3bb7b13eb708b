"""Multi-head attention with Attention Temperature Scaling: softmax(Q K^T / sqrt(d) / tau) V.

``tau`` comes from a :class:`Temperature`: fixed (a buffer), learnable (``tau = exp(theta)``, theta a
parameter), and in both cases overridable at inference for a temperature sweep.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

TEMPERATURE_MODES = ("fixed", "learnable")


class Temperature(nn.Module):
    """The attention temperature tau of one attention layer."""

    def __init__(self, mode: str = "fixed", tau: float = 1.0) -> None:
        super().__init__()
        if mode not in TEMPERATURE_MODES:
            raise ValueError(f"temperature mode must be one of {TEMPERATURE_MODES}, got {mode!r}")
        if not (math.isfinite(tau) and tau > 0.0):
            raise ValueError(f"temperature tau must be a finite positive number, got {tau}")
        self.mode = mode
        log_tau = torch.tensor(math.log(tau), dtype=torch.float32)
        if mode == "learnable":
            self.theta = nn.Parameter(log_tau)
        else:
            self.register_buffer("theta", log_tau)
        self.override: float | None = None

    def forward(self) -> torch.Tensor:
        """tau as a 0-d tensor: the inference override when set, else exp(theta)."""
        if self.override is not None:
            return torch.tensor(self.override, dtype=self.theta.dtype, device=self.theta.device)
        return torch.exp(self.theta)

    def set_override(self, tau: float | None) -> None:
        """Use ``tau`` instead of the trained/fixed value (a sweep at inference); None restores it."""
        if tau is not None and not (math.isfinite(tau) and tau > 0.0):
            raise ValueError(f"temperature override must be a finite positive number, got {tau}")
        self.override = tau

    def extra_repr(self) -> str:
        return f"mode={self.mode}, tau={float(torch.exp(self.theta)):.4g}"


class TemperatureAttention(nn.Module):
    """Multi-head attention of query tokens over key/value tokens with a temperature.

    Queries (B, Lq, query_dim) and context (B, Lk, context_dim) are projected to ``heads`` heads of
    ``dim // heads`` channels; the output is projected back to ``query_dim``. The output projection
    starts at zero so that a fresh residual block is the identity.
    """

    def __init__(
        self,
        query_dim: int,
        context_dim: int,
        dim: int,
        heads: int,
        temperature: Temperature,
    ) -> None:
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"attention dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.head_dim = dim // heads
        self.to_q = nn.Linear(query_dim, dim)
        self.to_k = nn.Linear(context_dim, dim)
        self.to_v = nn.Linear(context_dim, dim)
        self.to_out = nn.Linear(dim, query_dim)
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)
        self.temperature = temperature

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, length, _ = x.shape
        return x.view(b, length, self.heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        queries: torch.Tensor,
        context: torch.Tensor,
        query_pos: torch.Tensor | None = None,
        context_pos: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attend ``queries`` over ``context``; positional codes (L, dim), if given, go into q and k."""
        q, k = self.to_q(queries), self.to_k(context)
        if query_pos is not None:
            q = q + query_pos
        if context_pos is not None:
            k = k + context_pos
        q, k, v = self._split(q), self._split(k), self._split(self.to_v(context))
        # SDPA scales by 1/sqrt(head_dim); dividing q by tau gives softmax(QK^T/sqrt(d)/tau) and keeps
        # tau differentiable when it is learnt.
        out = F.scaled_dot_product_attention(q / self.temperature(), k, v)
        b, _, length, _ = out.shape
        return self.to_out(out.transpose(1, 2).reshape(b, length, self.heads * self.head_dim))
