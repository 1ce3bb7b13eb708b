"""Self-supervised training stages: ``baseline``, ``decomposition`` and ``distill`` (see ``recipe``).

Run directory (``recipe.out``): ``depth.safetensors`` (the depth network, a student checkpoint
loadable with ``fsmde_ros.model.load_student``), ``intrinsic.safetensors`` (decomposition stage),
``posenet.safetensors`` (pose: network), ``log.csv`` (one row per logged step), ``recipe.json`` and
``summary.json``. ``--resume`` continues from the last checkpoint of the run directory (the
optimiser's moments restart).

    python -m fsmde_ros.selfsup.train config/recipes/selfsup_baseline.yaml [--set train.steps=200]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from fsmde_ros.model import CheckpointError, ModelConfig, StudentNet, load_profile, load_student, save_student
from fsmde_ros.selfsup.data import load_clips, load_diffuse_clips
from fsmde_ros.selfsup.networks import IntrinsicNet, RigPoseNet
from fsmde_ros.selfsup.objective import (
    LossWeights,
    baseline_loss,
    decomposition_loss,
    predict_reflection_mask,
    rendered_log_diffuse,
)
from fsmde_ros.selfsup.pseudo_labels import fuse_teachers, log_l1_loss
from fsmde_ros.selfsup.recipe import Recipe, load_recipe
from fsmde_ros.selfsup.views import NEXT, PREVIOUS, TARGET, SourceViews, SurroundClip, source_views

DEPTH_FILE, INTRINSIC_FILE, POSE_FILE = "depth.safetensors", "intrinsic.safetensors", "posenet.safetensors"


def depth_config(recipe: Recipe) -> ModelConfig:
    """The student architecture of ``recipe.model.profile`` at the recipe's training resolution."""
    base = load_profile(recipe.model.profile)
    h, w = recipe.data.height, recipe.data.width
    return ModelConfig(**{**asdict(base), "profile": f"{base.profile}@{h}x{w}", "input_height": h,
                          "input_width": w})


def predict_depth(model: StudentNet, images: torch.Tensor) -> torch.Tensor:
    """z-depth (N, 1, H, W) of images (N, 3, H, W) in [0, 1]."""
    return model(images).depth[:, None]


def load_depth(run: str | Path) -> StudentNet:
    """The depth network of a run directory, in eval mode."""
    model, _ = load_student(Path(run) / DEPTH_FILE)
    return model


def load_intrinsic(run: str | Path) -> IntrinsicNet:
    """The decomposition branch of a run directory, in eval mode."""
    path = Path(run) / INTRINSIC_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no decomposition branch in this run (is it a 'decomposition' run?)")
    net = IntrinsicNet()
    net.load_state_dict(load_file(str(path)))
    return net.eval()


def teacher_outputs(baseline: StudentNet, decomposition: StudentNet, intrinsic: IntrinsicNet,
                    clip: SurroundClip, weights: LossWeights,
                    diffuse: SurroundClip | None = None) -> tuple[torch.Tensor, ...]:
    """Baseline depth, decomposition depth and the reflection mask (N, 1, H, W) of a clip's target set;
    the mask tests the branch's L, or the rendered diffuse layer ``diffuse`` when given."""
    with torch.no_grad():
        depth_a = predict_depth(baseline, clip.images[TARGET])
        depth_b = predict_depth(decomposition, clip.images[TARGET])
        log_l = (intrinsic(clip.images.reshape(-1, *clip.images.shape[2:]))[0] if diffuse is None
                 else rendered_log_diffuse(diffuse))
        mask = predict_reflection_mask(depth_b, clip, source_views(clip), log_l, weights)
    return depth_a, depth_b, mask


class RunLog:
    """CSV log and checkpoints of one run directory."""

    def __init__(self, out: Path, recipe: Recipe, resume: bool) -> None:
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        (out / "recipe.json").write_text(json.dumps(asdict(recipe), indent=2))
        self.path = out / "log.csv"
        self.writer: csv.DictWriter | None = None
        self.mode = "a" if resume and self.path.is_file() else "w"

    def row(self, values: dict[str, float]) -> None:
        new = self.writer is None
        with self.path.open(self.mode if new else "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(values))
            if new and self.mode == "w":
                writer.writeheader()
            writer.writerow(values)
        self.writer = writer


def given_mask(recipe: Recipe, clip: SurroundClip, diffuse: SurroundClip | None, depth: torch.Tensor,
                views: SourceViews) -> torch.Tensor | None:
    """The mask a decomposition run is given instead of its branch's: the dataset's true mask, or the
    Mahalanobis mask of the renderer's diffuse layer at the current depth; None for 'predicted'."""
    if recipe.mask == "dataset":
        if clip.reflective is None:
            raise ValueError(f"clip {clip.name}: recipe 'mask: dataset' needs the dataset's reflective mask")
        return clip.reflective
    if recipe.mask == "diffuse-layer":
        log_l = rendered_log_diffuse(diffuse)
        return predict_reflection_mask(depth.detach(), clip, views, log_l, recipe.loss)
    return None


def _cosine(step: int, total: int) -> float:
    """Learning-rate factor: cosine from 1 to 0.1 over the run."""
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))


def _save(out: Path, recipe: Recipe, step: int, depth: StudentNet, intrinsic: IntrinsicNet | None,
          posenet: RigPoseNet | None) -> None:
    meta = {"stage": recipe.stage, "recipe": recipe.name, "step": str(step), "seed": str(recipe.seed)}
    save_student(depth, out / DEPTH_FILE, meta)
    for net, name in ((intrinsic, INTRINSIC_FILE), (posenet, POSE_FILE)):
        if net is not None:
            tensors = {k: v.contiguous() for k, v in net.state_dict().items()}
            save_file(tensors, str(out / name), metadata=meta)


def _resume(out: Path, depth: StudentNet, intrinsic: IntrinsicNet | None, posenet: RigPoseNet | None) -> int:
    loaded, metadata = load_student(out / DEPTH_FILE, expected=depth.config)
    depth.load_state_dict(loaded.state_dict())
    for net, name in ((intrinsic, INTRINSIC_FILE), (posenet, POSE_FILE)):
        if net is not None:
            net.load_state_dict(load_file(str(out / name)))
    return int(metadata.get("step", "0"))


def train(recipe: Recipe, clips: list[SurroundClip], resume: bool = False, progress: bool = True,
          diffuse_clips: list[SurroundClip] | None = None) -> Path:
    """Run one stage of ``recipe`` on ``clips``; returns the run directory. ``diffuse_clips`` (the
    renderer's diffuse layer of each clip) are needed by 'mask: diffuse-layer' runs."""
    if not clips:
        raise ValueError(f"{recipe.name}: no training clips (need sequences of >= 3 consecutive frames)")
    if recipe.mask == "diffuse-layer" and (diffuse_clips is None or len(diffuse_clips) != len(clips)):
        raise ValueError(f"{recipe.name}: mask 'diffuse-layer' needs the diffuse layer of every clip")
    torch.manual_seed(recipe.seed)
    torch.set_num_threads(recipe.train.threads)
    out = Path(recipe.out)
    depth = StudentNet(depth_config(recipe))
    if recipe.init:
        init = load_depth(recipe.init)
        if init.config != depth.config:
            raise ValueError(f"{recipe.name}: init {recipe.init} has config {init.config}, "
                             f"expected {depth.config}")
        depth.load_state_dict(init.state_dict())
    intrinsic = IntrinsicNet() if recipe.stage == "decomposition" else None
    if recipe.init and intrinsic is not None and (Path(recipe.init) / INTRINSIC_FILE).is_file():
        intrinsic.load_state_dict(load_intrinsic(recipe.init).state_dict())
    posenet = RigPoseNet() if recipe.pose == "network" and recipe.stage != "distill" else None
    start = _resume(out, depth, intrinsic, posenet) if resume and (out / DEPTH_FILE).is_file() else 0
    labels: list[torch.Tensor] = []
    if recipe.stage == "distill":
        teachers = (load_depth(recipe.teachers.baseline), load_depth(recipe.teachers.decomposition),
                    load_intrinsic(recipe.teachers.decomposition))
        for i, clip in enumerate(clips):
            diffuse = diffuse_clips[i] if recipe.mask == "diffuse-layer" else None
            depth_a, depth_b, mask = teacher_outputs(*teachers, clip, recipe.loss, diffuse)
            labels.append(fuse_teachers(depth_a, depth_b, mask))
    params = [p for net in (depth, intrinsic, posenet) if net is not None for p in net.parameters()]
    optimiser = torch.optim.Adam(params, lr=recipe.train.lr)
    log = RunLog(out, recipe, resume)
    views_cache: dict[int, SourceViews] = {}
    generator = torch.Generator().manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    order = np.concatenate([rng.permutation(len(clips)) for _ in range(recipe.train.steps // len(clips) + 1)])
    for net in (depth, intrinsic, posenet):
        if net is not None:
            net.train()
    started = time.monotonic()
    sums: dict[str, float] = {}
    for step in range(start, recipe.train.steps):
        for group in optimiser.param_groups:
            group["lr"] = recipe.train.lr * _cosine(step, recipe.train.steps)
        index = int(order[step])
        clip = clips[index]
        pred = predict_depth(depth, clip.images[TARGET])
        if recipe.stage == "distill":
            losses = {"loss": log_l1_loss(pred, labels[index])}
        else:
            if posenet is not None:
                motion = {f: posenet(clip.images[TARGET], clip.images[f], clip.cam2ego)
                          for f in (PREVIOUS, NEXT)}
                views = source_views(clip, motion)
            else:
                if index not in views_cache:
                    views_cache[index] = source_views(clip)
                views = views_cache[index]
            if intrinsic is None:
                losses = baseline_loss(pred, clip, views, recipe.loss)
            else:
                log_l, log_r = intrinsic(clip.images.reshape(-1, *clip.images.shape[2:]))
                diffuse = diffuse_clips[index] if recipe.mask == "diffuse-layer" else None
                losses = decomposition_loss(pred, clip, views, log_l, log_r, recipe.loss,
                                            use_mask=step >= recipe.train.mask_warmup,
                                            mask=given_mask(recipe, clip, diffuse, pred, views),
                                            generator=generator)
        optimiser.zero_grad(set_to_none=True)
        losses["loss"].backward()
        optimiser.step()
        for key, value in losses.items():
            if value.ndim == 0:
                sums[key] = sums.get(key, 0.0) + float(value.detach())
        done = step + 1
        if done % recipe.train.log_every == 0 or done == recipe.train.steps:
            count = (done - start) % recipe.train.log_every or recipe.train.log_every
            row = {"step": done, "seconds": round(time.monotonic() - started, 2),
                   "lr": optimiser.param_groups[0]["lr"], **{k: v / count for k, v in sums.items()}}
            log.row(row)
            sums = {}
            if progress:
                print(f"[{recipe.name}] " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                     for k, v in row.items()), flush=True)
        if done % recipe.train.checkpoint_every == 0 or done == recipe.train.steps:
            _save(out, recipe, done, depth, intrinsic, posenet)
    (out / "summary.json").write_text(json.dumps({
        "recipe": recipe.name, "stage": recipe.stage, "seed": recipe.seed, "steps": recipe.train.steps,
        "clips": len(clips), "seconds": round(time.monotonic() - started, 1)}, indent=2))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", help="YAML recipe (config/recipes/selfsup_*.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe field, e.g. train.steps=200 (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue from the run directory's checkpoint")
    args = parser.parse_args(argv)
    try:
        recipe = load_recipe(args.recipe, args.overrides)
        clips = load_clips(recipe.data.root, recipe.data.split, recipe.data.height, recipe.data.width,
                           recipe.data.max_clips)
        data = recipe.data
        diffuse = (load_diffuse_clips(data.diffuse_root, data.split, clips, data.max_clips)
                   if recipe.mask == "diffuse-layer" else None)
        out = train(recipe, clips, resume=args.resume, diffuse_clips=diffuse)
    except (ValueError, FileNotFoundError, CheckpointError) as exc:  # recipe, data and checkpoint errors
        print(f"selfsup train: error: {exc}", file=sys.stderr)
        return 2
    print(f"[{recipe.name}] done: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
