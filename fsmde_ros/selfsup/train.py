"""Self-supervised training stages: ``intrinsic``, ``baseline``, ``decomposition`` and ``distill`` (see
``recipe``).

Run directory (``recipe.out``): ``depth.safetensors`` (the depth network, a student checkpoint
loadable with ``fsmde_ros.model.load_student``; all stages but intrinsic), ``intrinsic.safetensors``
(intrinsic and decomposition stages),
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
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from fsmde_ros.model import CheckpointError, ModelConfig, StudentNet, load_profile, load_student, save_student
from fsmde_ros.selfsup.data import load_clips, load_diffuse_clips
from fsmde_ros.selfsup.networks import INTRINSIC_FORMAT, IntrinsicNet, RigPoseNet
from fsmde_ros.selfsup.objective import (
    LossWeights,
    baseline_loss,
    decomposition_loss,
    intrinsic_pretrain_loss,
    predict_reflection_mask,
    rendered_log_diffuse,
)
from fsmde_ros.selfsup.pseudo_labels import CONTROL_MASKS, ablate_mask, fuse_teachers, log_l1_loss
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
        raise FileNotFoundError(f"{path}: no decomposition branch in this run (is it an 'intrinsic' or "
                                "'decomposition' run?)")
    with safe_open(str(path), framework="pt") as handle:
        found = (handle.metadata() or {}).get("intrinsic_format", "1")
    if found != INTRINSIC_FORMAT:
        raise ValueError(f"{path}: decomposition branch of format {found}, this IntrinsicNet reads format "
                         f"{INTRINSIC_FORMAT} (log L as a correction of log I); retrain the run")
    net = IntrinsicNet()
    net.load_state_dict(load_file(str(path)))
    return net.eval()


def save_intrinsic(net: IntrinsicNet, run: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Write the decomposition branch into a run directory, with its ``INTRINSIC_FORMAT``."""
    tensors = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(tensors, str(Path(run) / INTRINSIC_FILE),
              metadata={**(metadata or {}), "intrinsic_format": INTRINSIC_FORMAT})


def teacher_outputs(baseline: StudentNet, decomposition: StudentNet, intrinsic: IntrinsicNet | None,
                    clip: SurroundClip, weights: LossWeights,
                    diffuse: SurroundClip | None = None) -> tuple[torch.Tensor, ...]:
    """Baseline depth, decomposition depth and the reflection mask (N, 1, H, W) of a clip's target set;
    the mask tests the branch's L, or the rendered diffuse layer ``diffuse`` when given."""
    if intrinsic is None and diffuse is None:
        raise ValueError(f"clip {clip.name}: the reflection mask needs the decomposition branch or the "
                         "rendered diffuse layer")
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


def _save(out: Path, recipe: Recipe, step: int, depth: StudentNet | None, intrinsic: IntrinsicNet | None,
          posenet: RigPoseNet | None) -> None:
    meta = {"stage": recipe.stage, "recipe": recipe.name, "step": str(step), "seed": str(recipe.seed)}
    if depth is not None:
        save_student(depth, out / DEPTH_FILE, meta)
    if intrinsic is not None:
        save_intrinsic(intrinsic, out, meta)
    if posenet is not None:
        save_file({k: v.contiguous() for k, v in posenet.state_dict().items()}, str(out / POSE_FILE), meta)


def _resume(out: Path, depth: StudentNet | None, intrinsic: IntrinsicNet | None,
            posenet: RigPoseNet | None) -> int:
    if depth is not None:
        loaded, _ = load_student(out / DEPTH_FILE, expected=depth.config)
        depth.load_state_dict(loaded.state_dict())
    for net, name in ((intrinsic, INTRINSIC_FILE), (posenet, POSE_FILE)):
        if net is not None:
            net.load_state_dict(load_file(str(out / name)))
    checkpoint = out / (DEPTH_FILE if depth is not None else INTRINSIC_FILE)
    with safe_open(str(checkpoint), framework="pt") as handle:
        return int((handle.metadata() or {}).get("step", "0"))


def needs_diffuse_layer(recipe: Recipe) -> bool:
    """Whether a run reads the renderer's diffuse layer of its clips (``data.diffuse_root``)."""
    return recipe.stage == "intrinsic" or recipe.mask == "diffuse-layer"


def _branch(recipe: Recipe) -> IntrinsicNet | None:
    """The decomposition branch of an intrinsic or decomposition run, from intrinsic_init, else from
    init's branch when it has one, else fresh (the identity split)."""
    if recipe.stage not in ("intrinsic", "decomposition"):
        return None
    source = recipe.intrinsic_init
    if not source and recipe.init and (Path(recipe.init) / INTRINSIC_FILE).is_file():
        source = recipe.init
    return load_intrinsic(source) if source else IntrinsicNet()


def pseudo_labels(recipe: Recipe, clips: list[SurroundClip],
                  diffuse_clips: list[SurroundClip] | None = None) -> list[torch.Tensor]:
    """The distill stage's label (N, 1, H, W) of each clip: the teachers' depths fused by the reflection
    mask of ``recipe.mask`` (the branch's, the rendered diffuse layer's, or a control of the branch's)."""
    branch = None if recipe.mask == "diffuse-layer" else load_intrinsic(recipe.teachers.decomposition)
    teachers = (load_depth(recipe.teachers.baseline), load_depth(recipe.teachers.decomposition), branch)
    shuffle = torch.Generator().manual_seed(recipe.seed)
    labels = []
    for i, clip in enumerate(clips):
        diffuse = diffuse_clips[i] if recipe.mask == "diffuse-layer" else None
        depth_a, depth_b, mask = teacher_outputs(*teachers, clip, recipe.loss, diffuse)
        if recipe.mask in CONTROL_MASKS:
            mask = ablate_mask(mask, recipe.mask, shuffle)
        labels.append(fuse_teachers(depth_a, depth_b, mask))
    return labels


def train(recipe: Recipe, clips: list[SurroundClip], resume: bool = False, progress: bool = True,
          diffuse_clips: list[SurroundClip] | None = None) -> Path:
    """Run one stage of ``recipe`` on ``clips``; returns the run directory. ``diffuse_clips`` (the
    renderer's diffuse layer of each clip) are needed by intrinsic and 'mask: diffuse-layer' runs."""
    if not clips:
        raise ValueError(f"{recipe.name}: no training clips (need sequences of >= 3 consecutive frames)")
    if needs_diffuse_layer(recipe) and (diffuse_clips is None or len(diffuse_clips) != len(clips)):
        raise ValueError(f"{recipe.name}: stage {recipe.stage!r} with mask {recipe.mask!r} needs the diffuse "
                         "layer of every clip")
    torch.manual_seed(recipe.seed)
    torch.set_num_threads(recipe.train.threads)
    out = Path(recipe.out)
    depth = None if recipe.stage == "intrinsic" else StudentNet(depth_config(recipe))
    if recipe.init and depth is not None:
        init = load_depth(recipe.init)
        if init.config != depth.config:
            raise ValueError(f"{recipe.name}: init {recipe.init} has config {init.config}, "
                             f"expected {depth.config}")
        depth.load_state_dict(init.state_dict())
    intrinsic = _branch(recipe)
    photometric = recipe.stage in ("baseline", "decomposition")
    posenet = RigPoseNet() if recipe.pose == "network" and photometric else None
    start = 0
    if resume and (out / (INTRINSIC_FILE if depth is None else DEPTH_FILE)).is_file():
        start = _resume(out, depth, intrinsic, posenet)
    labels = pseudo_labels(recipe, clips, diffuse_clips) if recipe.stage == "distill" else []
    branch_scale = recipe.train.intrinsic_lr if recipe.stage == "decomposition" else 1.0
    frozen = intrinsic is not None and branch_scale == 0
    groups = [{"params": [p for net in (depth, posenet) if net is not None for p in net.parameters()],
               "scale": 1.0},
              {"params": [] if intrinsic is None or frozen else list(intrinsic.parameters()),
               "scale": branch_scale}]
    optimiser = torch.optim.Adam([g for g in groups if g["params"]], lr=recipe.train.lr)
    log = RunLog(out, recipe, resume)
    views_cache: dict[int, SourceViews] = {}
    generator = torch.Generator().manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    order = np.concatenate([rng.permutation(len(clips)) for _ in range(recipe.train.steps // len(clips) + 1)])
    for net in (depth, intrinsic, posenet):
        if net is not None:
            net.train()
    if frozen:
        intrinsic.eval().requires_grad_(False)
    started = time.monotonic()
    sums: dict[str, float] = {}
    for step in range(start, recipe.train.steps):
        for group in optimiser.param_groups:
            group["lr"] = recipe.train.lr * group["scale"] * _cosine(step, recipe.train.steps)
        index = int(order[step])
        clip = clips[index]
        diffuse = diffuse_clips[index] if needs_diffuse_layer(recipe) else None
        if recipe.stage == "intrinsic":
            log_l, log_r = intrinsic(clip.images.reshape(-1, *clip.images.shape[2:]))
            losses = intrinsic_pretrain_loss(clip, diffuse, log_l, log_r, recipe.loss)
        elif recipe.stage == "distill":
            losses = {"loss": log_l1_loss(predict_depth(depth, clip.images[TARGET]), labels[index])}
        else:
            pred = predict_depth(depth, clip.images[TARGET])
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
                   if needs_diffuse_layer(recipe) else None)
        out = train(recipe, clips, resume=args.resume, diffuse_clips=diffuse)
    except (ValueError, FileNotFoundError, CheckpointError) as exc:  # recipe, data and checkpoint errors
        print(f"selfsup train: error: {exc}", file=sys.stderr)
        return 2
    print(f"[{recipe.name}] done: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
