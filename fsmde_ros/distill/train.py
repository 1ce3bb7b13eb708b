"""``fsmde-train RECIPE.yaml``: train the student (supervised, depth/CI/VR-KD) or the SynthSurround teacher.

One process on the CPU, or several with ``torchrun --nproc_per_node=G -m fsmde_ros.distill.train``
(DDP; gloo on CPU, NCCL on GPUs). Writes to ``--out`` (default ``runs/<recipe name>``):
``recipe.yaml`` (resolved), ``log.csv``, ``state.safetensors`` (resume with ``--resume``) and
``model.safetensors`` (the student in the format of ``fsmde_ros.model.save_student``, or the teacher).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from fsmde_ros.distill.alignment import align_disparity
from fsmde_ros.distill.checkpoint import load_training_state, save_training_state, save_weights
from fsmde_ros.distill.data import SurroundTrainSet, resize_sample, sample_key
from fsmde_ros.distill.losses import (
    bin_chamfer_loss,
    ci_kd_loss,
    depth_kd_loss,
    depth_mask,
    silog_loss,
    ssi_disparity_loss,
    view_relation_loss,
)
from fsmde_ros.distill.overlap import PairOverlap, overlap_pairs, rig_from_calibration, sample_at
from fsmde_ros.distill.recipe import KD_LOSSES, RecipeError, load_recipe
from fsmde_ros.distill.sources import open_source
from fsmde_ros.distill.teacher_net import TeacherConfig, TeacherNet
from fsmde_ros.distill.teachers import TeacherCache, build_teacher

STUDENT_TERMS = ("silog", "bins", "depth_kd", "ci_kd", "vr_kd")
TEACHER_TERMS = ("ssi",)
TEACHER_DEPTH_RANGE = (0.5, 200.0)
"""Ground-truth depths the teacher's SSI loss uses (metres)."""


@dataclass
class DistContext:
    """Rank and world size; a single process has rank 0 of 1 and no process group."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> DistContext:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
        return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _lr_at(step: int, recipe: dict) -> float:
    """Linear warm-up then cosine decay to 5% of the base rate."""
    train = recipe["train"]
    base, warmup, total = float(train["lr"]), int(train["warmup_steps"]), int(train["steps"])
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def build_model(recipe: dict) -> tuple[torch.nn.Module, int, int, float, float]:
    """(model, input height, input width, min depth, max depth) of the recipe's kind."""
    if recipe["kind"] == "teacher":
        from fsmde_ros.model.config import load_profile

        model_cfg = dict(recipe["model"])
        profile = load_profile(model_cfg.pop("profile", "cpu"))
        teacher = TeacherNet(TeacherConfig.from_dict(model_cfg))
        return teacher, profile.input_height, profile.input_width, *TEACHER_DEPTH_RANGE
    from fsmde_ros.model import build_student

    student = build_student(recipe["model"]["profile"], seed=int(recipe["seed"]))
    c = student.config
    return student, c.input_height, c.input_width, c.min_depth, c.max_depth


def fill_teacher_cache(
    recipe: dict, source, height: int, width: int, ctx: DistContext, progress: bool
) -> TeacherCache:
    """Run the recipe's teacher on every sample not yet cached (each rank takes its share)."""
    spec = recipe["teacher"]
    teacher = build_teacher(spec)
    cache = TeacherCache(spec.get("cache", "data/teacher_cache"), teacher.identity, height, width)
    todo = [i for i in range(len(source)) if i % ctx.world == ctx.rank]
    bar = tqdm(
        todo, desc=f"teacher cache {teacher.identity}", disable=not (progress and ctx.main), leave=False
    )
    for i in bar:
        sample = source[i]
        key = sample_key(sample)
        if not cache.has(key):
            cache.put(key, teacher.predict(resize_sample(sample, height, width).images))
    ctx.barrier()
    return cache


class StudentObjective:
    """The student's weighted loss terms for one batch (see docs/method.md)."""

    def __init__(self, recipe: dict, min_depth: float, max_depth: float, seed: int) -> None:
        self.loss = recipe["loss"]
        self.min_depth, self.max_depth = min_depth, max_depth
        self.generator = torch.Generator().manual_seed(seed)
        self._overlaps: dict[bytes, list[PairOverlap]] = {}

    def overlaps(self, K: torch.Tensor, cam2ego: torch.Tensor, height: int, width: int) -> list[PairOverlap]:
        key = K.numpy().tobytes() + cam2ego.numpy().tobytes()
        if key not in self._overlaps:
            rig = rig_from_calibration(K.double().numpy(), cam2ego.double().numpy(), height, width)
            self._overlaps[key] = overlap_pairs(
                rig, int(self.loss["vr_points"]), float(self.loss["vr_reference_depth"])
            )
        return self._overlaps[key]

    def __call__(self, out, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        F_, N, H, W = batch["sparse"].shape
        B = F_ * N
        sparse = batch["sparse"].reshape(B, H, W)
        mask = depth_mask(sparse, self.min_depth, self.max_depth)
        terms = {
            "silog": silog_loss(out.depth, sparse, mask),
            "bins": bin_chamfer_loss(out.bin_centres, sparse, mask),
        }
        w = self.loss
        if any(w[k] > 0 for k in KD_LOSSES):
            disparity = batch["teacher"].reshape(B, H, W)
            teacher_depth = align_disparity(
                disparity, sparse, mask, w["align"], self.min_depth, self.max_depth
            )
            if w["depth_kd"] > 0:
                terms["depth_kd"] = depth_kd_loss(out.depth, teacher_depth, torch.isfinite(teacher_depth))
            if w["ci_kd"] > 0:
                terms["ci_kd"] = self._ci_kd(out, teacher_depth)
            if w["vr_kd"] > 0:
                terms["vr_kd"] = self._vr_kd(
                    out.depth.reshape(F_, N, H, W),
                    teacher_depth.reshape(F_, N, H, W),
                    batch["K"][0],
                    batch["cam2ego"][0],
                )
        return terms

    def _ci_kd(self, out, teacher_depth: torch.Tensor) -> torch.Tensor:
        B, H, W, K = out.log_probabilities.shape
        count = min(B * H * W, int(self.loss["kd_pixels"]) * B)
        index = torch.randint(0, B * H * W, (count,), generator=self.generator)
        centres = out.bin_centres[index // (H * W)]
        return ci_kd_loss(
            out.log_probabilities.reshape(-1, K)[index],
            teacher_depth.reshape(-1)[index],
            centres,
            float(self.loss["ci_temperature"]),
        )

    def _vr_kd(
        self, depth: torch.Tensor, teacher_depth: torch.Tensor, K: torch.Tensor, cam2ego: torch.Tensor
    ) -> torch.Tensor:
        H, W = depth.shape[-2:]
        log_s = torch.log(depth.clamp_min(1e-6))
        log_t = torch.log(teacher_depth)
        saturated = (teacher_depth >= self.max_depth * 0.999) | (teacher_depth <= self.min_depth * 1.001)
        losses = []
        for pair in self.overlaps(K, cam2ego, H, W):
            ta, tb = sample_at(log_t[:, pair.a], pair.points_a), sample_at(log_t[:, pair.b], pair.points_b)
            va = sample_at((~saturated[:, pair.a]).float(), pair.points_a) > 0.999
            vb = sample_at((~saturated[:, pair.b]).float(), pair.points_b) > 0.999
            sa, sb = sample_at(log_s[:, pair.a], pair.points_a), sample_at(log_s[:, pair.b], pair.points_b)
            losses.append(view_relation_loss(sa, sb, ta, tb, va, vb))
        if not losses:
            return depth.sum() * 0.0
        return torch.stack(losses).mean()


class TeacherObjective:
    """Scale-and-shift-invariant disparity loss on dense depth (sparse where a source has no dense depth)."""

    def __call__(self, pred: torch.Tensor, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        F_, N, H, W = batch["dense"].shape
        target = batch["dense"].reshape(F_ * N, H, W)
        sparse = batch["sparse"].reshape(F_ * N, H, W)
        target = torch.where(torch.isfinite(target), target, sparse)
        return {"ssi": ssi_disparity_loss(pred, target, depth_mask(target, *TEACHER_DEPTH_RANGE))}


def _hflip(batch: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Flip a random half of the images and their depth left-right (teacher only: it breaks the rig)."""
    F_, N = batch["images"].shape[:2]
    flip = torch.rand(F_, N, generator=generator) < 0.5
    out = dict(batch)
    for key, dim in (("images", 3), ("sparse", 3), ("dense", 3)):
        x = batch[key].clone()
        x[flip] = torch.flip(x[flip], dims=[dim - 1])
        out[key] = x
    return out


def _random_crop(batch: dict[str, torch.Tensor], size: list[int], generator: torch.Generator) -> dict:
    """The same random ``size`` = [h, w] window of every image of a frame (teacher training only)."""
    H, W = batch["images"].shape[2:4]
    h, w = min(size[0], H), min(size[1], W)
    top = int(torch.randint(0, H - h + 1, (1,), generator=generator))
    left = int(torch.randint(0, W - w + 1, (1,), generator=generator))
    out = dict(batch)
    for key in ("images", "sparse", "dense"):
        out[key] = batch[key][:, :, top : top + h, left : left + w].contiguous()
    return out


def _save_model(recipe: dict, model: torch.nn.Module, path: Path, step: int) -> None:
    meta = {"recipe": json.dumps(recipe, sort_keys=True), "step": str(step), "seed": str(recipe["seed"])}
    if recipe["kind"] == "teacher":
        meta.update({"kind": "teacher", "model_config": json.dumps(model.config.to_dict())})
        save_weights(path, model.state_dict(), meta)
    else:
        from fsmde_ros.model import save_student

        tmp = path.with_name(f".{path.name}.tmp")
        save_student(model, tmp, extra_metadata={**meta, "kind": "student", "recipe_name": recipe["name"]})
        tmp.replace(path)


def _truncate_log(path: Path, step: int) -> None:
    """Drop log rows past ``step`` (written after the checkpoint a resumed run starts from)."""
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    kept = rows[:1] + [r for r in rows[1:] if r and int(r[0]) <= step]
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(kept)


def run(recipe: dict, out_dir: str | Path, resume: bool = False, progress: bool = True) -> Path:
    """Train as the recipe says; returns the path of ``model.safetensors``."""
    ctx = DistContext.from_env()
    try:
        return _train(recipe, Path(out_dir), resume, progress, ctx)
    finally:
        if ctx.enabled:
            dist.destroy_process_group()


def cache_only(recipe: dict, progress: bool = True) -> Path:
    """Fill the teacher cache of a student recipe's data and train nothing (shards over torchrun ranks)."""
    if recipe["kind"] != "student" or not isinstance(recipe["teacher"], dict):
        raise RecipeError(f"{recipe['name']}: --cache-only needs a student recipe with a 'teacher'")
    ctx = DistContext.from_env()
    try:
        torch.set_num_threads(int(recipe["train"]["threads"]))
        _, H, W, _, _ = build_model(recipe)
        return fill_teacher_cache(recipe, open_source(recipe["data"]), H, W, ctx, progress).dir
    finally:
        if ctx.enabled:
            dist.destroy_process_group()


def _train(recipe: dict, out: Path, resume: bool, progress: bool, ctx: DistContext) -> Path:
    train = recipe["train"]
    torch.set_num_threads(int(train["threads"]))
    seed = int(recipe["seed"])
    _seed_everything(seed)
    model, H, W, min_depth, max_depth = build_model(recipe)
    source = open_source(recipe["data"])
    is_student = recipe["kind"] == "student"
    cache = None
    if is_student and any(recipe["loss"][k] > 0 for k in KD_LOSSES):
        cache = fill_teacher_cache(recipe, source, H, W, ctx, progress)
    dataset = SurroundTrainSet(source, H, W, cache, photometric=bool(train["photometric"]), seed=seed)
    sampler = DistributedSampler(
        dataset,
        num_replicas=ctx.world,
        rank=ctx.rank,
        shuffle=True,
        seed=seed,
        drop_last=len(dataset) >= ctx.world * train["batch_frames"],
    )
    loader = DataLoader(
        dataset,
        batch_size=int(train["batch_frames"]),
        sampler=sampler,
        num_workers=int(train["workers"]),
        drop_last=False,
    )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=float(train["lr"]), weight_decay=float(train["weight_decay"])
    )
    out.mkdir(parents=True, exist_ok=True)
    state_path, model_path, log_path = out / "state.safetensors", out / "model.safetensors", out / "log.csv"
    step = 0
    if resume and state_path.is_file():
        step, _ = load_training_state(state_path, model, optimizer)
        if ctx.main and log_path.is_file():
            _truncate_log(log_path, step)
    elif ctx.main:
        log_path.unlink(missing_ok=True)
    if ctx.main:
        (out / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    ctx.barrier()
    net = DistributedDataParallel(model) if ctx.enabled else model
    objective = (
        StudentObjective(recipe, min_depth, max_depth, seed + 1000 * ctx.rank)
        if is_student
        else TeacherObjective()
    )
    terms_order = STUDENT_TERMS if is_student else TEACHER_TERMS
    weights = recipe["loss"] if is_student else {"ssi": 1.0}
    flip_gen = torch.Generator().manual_seed(seed + 7 + 1000 * ctx.rank)
    total = int(train["steps"])
    bar = tqdm(total=total, initial=step, desc=recipe["name"], disable=not (progress and ctx.main))
    log_file = log_path.open("a", newline="") if ctx.main else None
    writer = csv.writer(log_file) if log_file else None
    if writer and log_path.stat().st_size == 0:
        writer.writerow(["step", "lr", "loss", *terms_order, "sec_per_step"])
    epoch = step // max(1, len(loader))
    net.train()
    t_log, step_log = time.perf_counter(), step
    try:
        while step < total:
            sampler.set_epoch(epoch)
            dataset.set_epoch(epoch)
            for batch in loader:
                if step >= total:
                    break
                lr = _lr_at(step, recipe)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                if not is_student and train["hflip"]:
                    batch = _hflip(batch, flip_gen)
                if not is_student and train["crop"]:
                    batch = _random_crop(batch, train["crop"], flip_gen)
                images = batch["images"].reshape(-1, *batch["images"].shape[2:])
                if is_student:
                    from fsmde_ros.model import images_to_tensor

                    terms = objective(net(images_to_tensor(images)), batch)
                else:
                    terms = objective(net(images), batch)
                loss = sum(float(weights[k]) * v for k, v in terms.items() if float(weights[k]) > 0)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"{recipe['name']}: non-finite loss at step {step}: "
                        f"{ {k: float(v) for k, v in terms.items()} }"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                optimizer.step()
                step += 1
                bar.update(1)
                if writer and (step % int(train["log_every"]) == 0 or step == total):
                    row = [step, f"{lr:.6g}", f"{loss.item():.6g}"]
                    row += [f"{terms[k].item():.6g}" if k in terms else "" for k in terms_order]
                    now = time.perf_counter()
                    writer.writerow([*row, f"{(now - t_log) / max(1, step - step_log):.4f}"])
                    t_log, step_log = now, step
                    log_file.flush()
                    bar.set_postfix(loss=f"{loss.item():.4f}")
                if ctx.main and (step % int(train["checkpoint_every"]) == 0 or step == total):
                    save_training_state(state_path, model, optimizer, step, {"recipe_name": recipe["name"]})
                    _save_model(recipe, model, model_path, step)
            epoch += 1
    finally:
        bar.close()
        if log_file:
            log_file.close()
    ctx.barrier()
    return model_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="fsmde-train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("recipe", help="YAML recipe (see config/recipes/)")
    parser.add_argument("--out", help="output directory (default runs/<recipe name>)")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/state.safetensors")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe field, e.g. --set train.steps=200 (repeatable)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--cache-only",
        action="store_true",
        help="only run the teacher over the recipe's data into its cache, then exit",
    )
    args = parser.parse_args(argv)
    recipe = load_recipe(args.recipe, args.overrides)
    if args.cache_only:
        where = cache_only(recipe, progress=not args.no_progress and sys.stderr.isatty())
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"{recipe['name']}: teacher cache filled in {where}")
        return
    out = Path(args.out) if args.out else Path("runs") / recipe["name"]
    path = run(recipe, out, resume=args.resume, progress=not args.no_progress and sys.stderr.isatty())
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"{recipe['name']}: model written to {path}")


if __name__ == "__main__":
    main()
