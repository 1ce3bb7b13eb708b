"""Training losses of the student and the teacher (equations and choices in docs/method.md).

Shapes: depth maps (B, H, W) metres; bin probabilities (B, H, W, K) with the bin axis last; bin
centres (B, K) metres, increasing. B = frames x cameras. Masks are boolean (B, H, W).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def depth_mask(depth: torch.Tensor, min_depth: float, max_depth: float) -> torch.Tensor:
    """Pixels with a finite depth inside (min_depth, max_depth]."""
    return torch.isfinite(depth) & (depth > min_depth) & (depth <= max_depth)


def silog_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, variance_focus: float = 0.85
) -> torch.Tensor:
    """Scale-invariant log loss (Eigen et al., weighted as in BTS/AdaBins), averaged over images.

    L = 10 * sqrt(mean(g^2) - lambda * mean(g)^2), g = log(pred) - log(target) over ``mask`` pixels
    of each image. Images without a valid pixel are skipped; the loss is 0 if none has one.
    """
    losses = []
    for b in range(pred.shape[0]):
        m = mask[b]
        if not bool(m.any()):
            continue
        g = torch.log(pred[b][m].clamp_min(1e-6)) - torch.log(target[b][m])
        d = (g**2).mean() - variance_focus * g.mean() ** 2
        losses.append(10.0 * torch.sqrt(d.clamp_min(1e-8)))
    if not losses:
        return pred.sum() * 0.0
    return torch.stack(losses).mean()


def bin_chamfer_loss(
    centres: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, max_points: int = 4096
) -> torch.Tensor:
    """Bidirectional 1-D Chamfer distance in log depth between each image's bin centres and its GT depths.

    Pulls every centre to some GT depth and covers every GT depth with a centre (AdaBins), measured
    in log depth so near and far bins weigh alike (the bins are log-spaced). At most ``max_points``
    GT depths per image are used (evenly strided, deterministic).
    """
    losses = []
    for b in range(centres.shape[0]):
        gt = target[b][mask[b]]
        if gt.numel() == 0:
            continue
        if gt.numel() > max_points:
            gt = gt[:: (gt.numel() + max_points - 1) // max_points]
        d2 = (torch.log(centres[b].clamp_min(1e-6))[:, None] - torch.log(gt)[None, :]) ** 2  # (K, M)
        losses.append(d2.min(dim=1).values.mean() + d2.min(dim=0).values.mean())
    if not losses:
        return centres.sum() * 0.0
    return torch.stack(losses).mean()


def teacher_bin_logits(teacher_depth: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Logits (..., K) that softly assign the teacher's metric depth (...) to the student's bins (..., K).

    A Gaussian kernel in log depth whose width is the mean log spacing of the bin centres:
    z_k = -(log t - log c_k)^2 / (2 sigma^2), sigma = mean_k(log c_{k+1} - log c_k). Centres are
    detached: the teacher shapes the distribution, never the centres (those come from ground truth).
    """
    logc = torch.log(centres.detach().clamp_min(1e-6))
    sigma = (logc[..., 1:] - logc[..., :-1]).mean(dim=-1, keepdim=True).clamp_min(1e-4)
    diff = torch.log(teacher_depth.clamp_min(1e-6))[..., None] - logc
    return -(diff**2) / (2.0 * sigma**2)


def ci_kd_loss(
    student_log_probs: torch.Tensor,
    teacher_depth: torch.Tensor,
    centres: torch.Tensor,
    temperature: float = 2.0,
) -> torch.Tensor:
    """Cross-interaction KD: T^2 * mean KL(q_T || p_T) over M pixels.

    ``student_log_probs`` (M, K), ``teacher_depth`` (M,) metric (already aligned, so q does not
    depend on the teacher's own scale and shift), ``centres`` (M, K) the student's centres of each
    pixel's image. q_T = softmax(z / T) with z from ``teacher_bin_logits``; p_T = softmax(log p / T)
    is the student's bin distribution at the same temperature.
    """
    if student_log_probs.shape[0] == 0:
        return student_log_probs.sum() * 0.0
    log_q_t = F.log_softmax(teacher_bin_logits(teacher_depth, centres) / temperature, dim=-1)
    log_p_t = F.log_softmax(student_log_probs / temperature, dim=-1)
    kl = (log_q_t.exp() * (log_q_t - log_p_t)).sum(dim=-1)
    return temperature**2 * kl.mean()


def depth_kd_loss(pred: torch.Tensor, teacher_depth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Plain depth-level KD: SILog against the aligned teacher depth used as dense pseudo ground truth."""
    return silog_loss(pred, teacher_depth, mask)


def view_relation_loss(
    student_log_a: torch.Tensor,
    student_log_b: torch.Tensor,
    teacher_log_a: torch.Tensor,
    teacher_log_b: torch.Tensor,
    valid_a: torch.Tensor,
    valid_b: torch.Tensor,
) -> torch.Tensor:
    """View-relational KD for one adjacent camera pair, over F frames.

    Inputs are log depths (F, Pa) at points of view a's overlap strip and (F, Pb) at view b's.
    Relation R_xy = log d(x) - log d(y) for every cross-view pair (x in a, y in b), computed for the
    student and the teacher; the loss is the mean Smooth-L1 of R_student - R_teacher over pairs where
    both teacher points are valid.
    """
    r_s = student_log_a[:, :, None] - student_log_b[:, None, :]
    r_t = teacher_log_a[:, :, None] - teacher_log_b[:, None, :]
    pair_mask = valid_a[:, :, None] & valid_b[:, None, :]
    if not bool(pair_mask.any()):
        return student_log_a.sum() * 0.0
    return F.smooth_l1_loss(r_s[pair_mask], r_t[pair_mask], beta=0.1)


def ssi_disparity_loss(
    pred_disparity: torch.Tensor, target_depth: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Scale-and-shift-invariant loss (MiDaS) in disparity space, the only loss of the SynthSurround teacher.

    Both the prediction and 1/target are normalised per image by their median t and mean absolute
    deviation s; the loss is the mean absolute difference of the normalised maps over ``mask``.
    """
    losses = []
    for b in range(pred_disparity.shape[0]):
        m = mask[b]
        if int(m.sum()) < 2:
            continue
        p = pred_disparity[b][m]
        g = 1.0 / target_depth[b][m]
        p_n = (p - p.median()) / (p - p.median()).abs().mean().clamp_min(1e-6)
        g_n = (g - g.median()) / (g - g.median()).abs().mean().clamp_min(1e-6)
        losses.append((p_n - g_n).abs().mean())
    if not losses:
        return pred_disparity.sum() * 0.0
    return torch.stack(losses).mean()
