"""Training loops: the segmentation network on class maps, then the gate alone on dense depth.

Both loops cycle a seeded, shuffled DataLoader over ``CameraFrames`` for a fixed number of steps,
log a CSV row every ``log_every`` steps and return the logged rows.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from fsmde_ros.briges.data import CameraFrames, collate_cameras, hflip
from fsmde_ros.briges.losses import briges_loss
from fsmde_ros.briges.segnet import SegNet
from fsmde_ros.briges.teacher import BrigesTeacher


def cosine_lr(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 5% of ``base``."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))


def _batches(dataset: CameraFrames, batch_frames: int, seed: int):
    """Endless batches: a reshuffled epoch after epoch, deterministic in ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        dataset, batch_size=batch_frames, shuffle=True, generator=generator, collate_fn=collate_cameras
    )
    epoch = 0
    while True:
        dataset.epoch = epoch
        yield from loader
        epoch += 1


class _CsvLog:
    def __init__(self, path: Path | None, columns: list[str]) -> None:
        self.columns = columns
        self.rows: list[dict] = []
        self.file = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.file = path.open("w", newline="")
            self.writer = csv.DictWriter(self.file, fieldnames=columns)
            self.writer.writeheader()

    def write(self, row: dict) -> None:
        self.rows.append(row)
        if self.file is not None:
            self.writer.writerow(row)
            self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def median_frequency_weights(
    dataset: CameraFrames, num_classes: int, max_items: int = 50, max_weight: float = 10.0
) -> torch.Tensor:
    """Median-frequency class weights median(f) / f_c from up to ``max_items`` evenly spaced items,
    capped at ``max_weight`` (absent classes get the cap), so thin, rare classes (poles, signs) count."""
    step = max(1, len(dataset) // max_items)
    counts = torch.zeros(num_classes, dtype=torch.float64)
    for i in range(0, len(dataset), step):
        counts += torch.bincount(dataset[i]["semantic"].flatten(), minlength=num_classes)[
            :num_classes
        ].double()
    freq = counts / counts.sum()
    present = freq > 0
    weights = torch.full((num_classes,), max_weight, dtype=torch.float64)
    weights[present] = (freq[present].median() / freq[present]).clamp(max=max_weight)
    return weights.float()


def train_segnet(
    net: SegNet,
    dataset: CameraFrames,
    steps: int,
    lr: float,
    weight_decay: float = 1e-4,
    batch_frames: int = 1,
    seed: int = 0,
    log_path: Path | None = None,
    log_every: int = 10,
    progress: bool = False,
    class_weights: torch.Tensor | None = None,
) -> list[dict]:
    """(Weighted) cross-entropy on the class maps, AdamW, cosine schedule; returns the logged rows."""
    optimiser = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    log = _CsvLog(log_path, ["step", "lr", "loss", "pixel_accuracy", "sec_per_step"])
    flips = torch.Generator().manual_seed(seed + 1)
    net.train()
    batches = _batches(dataset, batch_frames, seed)
    try:
        for step in tqdm(range(steps), desc="segnet", disable=not progress):
            t0 = time.perf_counter()
            batch = hflip(next(batches), flips)
            rate = cosine_lr(step, steps, lr, max(1, steps // 20))
            for group in optimiser.param_groups:
                group["lr"] = rate
            logits = net(batch["images"])
            loss = F.cross_entropy(logits, batch["semantic"], weight=class_weights)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            if (step + 1) % log_every == 0 or step + 1 == steps:
                accuracy = float((logits.argmax(1) == batch["semantic"]).float().mean())
                log.write(
                    {
                        "step": step + 1,
                        "lr": f"{rate:.6g}",
                        "loss": f"{loss.item():.6g}",
                        "pixel_accuracy": f"{accuracy:.4f}",
                        "sec_per_step": f"{time.perf_counter() - t0:.3f}",
                    }
                )
    finally:
        log.close()
    net.eval()
    return log.rows


def train_gate(
    teacher: BrigesTeacher,
    dataset: CameraFrames,
    steps: int,
    lr: float,
    max_depth: float,
    weight_decay: float = 1e-4,
    warmup_steps: int = 20,
    batch_frames: int = 1,
    gradient_weight: float = 0.5,
    use_hflip: bool = True,
    seed: int = 0,
    log_path: Path | None = None,
    log_every: int = 10,
    checkpoint: Callable[[int], None] | None = None,
    checkpoint_every: int = 50,
    progress: bool = False,
) -> list[dict]:
    """Train only the gate: SSI + gradient matching against dense depth within (0, max_depth)."""
    params = [p for p in teacher.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    log = _CsvLog(log_path, ["step", "lr", "loss", "ssi", "gradient", "tau_mean", "sec_per_step"])
    flips = torch.Generator().manual_seed(seed + 1)
    teacher.train()
    batches = _batches(dataset, batch_frames, seed)
    try:
        for step in tqdm(range(steps), desc="gate", disable=not progress):
            t0 = time.perf_counter()
            batch = next(batches)
            if use_hflip:
                batch = hflip(batch, flips)
            rate = cosine_lr(step, steps, lr, warmup_steps)
            for group in optimiser.param_groups:
                group["lr"] = rate
            depth = batch["depth"]
            mask = torch.isfinite(depth) & (depth > 0) & (depth < max_depth)
            terms = briges_loss(teacher(batch["images"]), depth, mask, gradient_weight)
            if not torch.isfinite(terms["loss"]):
                raise FloatingPointError(f"BriGeS gate: non-finite loss at step {step}")
            optimiser.zero_grad(set_to_none=True)
            terms["loss"].backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimiser.step()
            if (step + 1) % log_every == 0 or step + 1 == steps:
                taus = [t().item() for t in teacher.gate.temperatures()]
                log.write(
                    {
                        "step": step + 1,
                        "lr": f"{rate:.6g}",
                        **{k: f"{v.item():.6g}" for k, v in terms.items()},
                        "tau_mean": f"{sum(taus) / len(taus):.4f}",
                        "sec_per_step": f"{time.perf_counter() - t0:.3f}",
                    }
                )
            if checkpoint is not None and ((step + 1) % checkpoint_every == 0 or step + 1 == steps):
                checkpoint(step + 1)
    finally:
        log.close()
    teacher.eval()
    return log.rows
