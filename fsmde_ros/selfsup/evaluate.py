"""Evaluation of self-supervised models split by the dataset's true reflective mask.

For each model (the self-supervised baseline, the decomposition-aware model, the distilled student)
the depth of every target set of the test clips is compared with the dense ground truth at the
training resolution (nearest-neighbour resized), in metric mode (known ego motion and rig baselines
fix the scale), with the shared protocol of ``fsmde_ros.evaluation``. Pixels are pooled over all
images, separately on reflective and non-reflective pixels, because reflective pixels are few per
image. The decomposition model's predicted reflection mask is scored against the true mask
(precision, recall; recall also over the pixels a source view sees, where the mask can be decided), at
the confidence of the decomposition run and, when it differs, at the one the distilled student's pseudo
labels were fused with.

    python -m fsmde_ros.selfsup.evaluate --baseline runs/selfsup_baseline \\
        --decomposition runs/selfsup_decomposition --student runs/selfsup_distill \\
        --root data/synth --split test --json docs/results/selfsup.json --markdown docs/results/selfsup.md
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from fsmde_ros.evaluation import EvalConfig, image_metrics
from fsmde_ros.model import CheckpointError
from fsmde_ros.selfsup.data import load_clips
from fsmde_ros.selfsup.objective import LossWeights, predict_reflection_mask, score_views
from fsmde_ros.selfsup.train import load_depth, load_intrinsic, predict_depth
from fsmde_ros.selfsup.views import TARGET, SurroundClip, source_views

SPLIT_REGIONS = ("reflective", "non_reflective")
"""The regions of the true reflective mask that the goal and the per-sequence figures compare."""
REGIONS = (*SPLIT_REGIONS, "all")


def pooled_metrics(pred: np.ndarray, gt: np.ndarray, config: EvalConfig) -> dict[str, float]:
    """Metrics of pooled pixels (1-D arrays), through the shared protocol; with the pixel count."""
    result = image_metrics(pred.reshape(1, -1), gt.reshape(1, -1), config)
    return {**result.values, "pixels": result.num_pixels, "coverage": result.coverage}


def _region_masks(clip: SurroundClip) -> dict[str, np.ndarray]:
    if clip.depth is None or clip.reflective is None:
        raise ValueError(f"clip {clip.name}: evaluation needs ground-truth depth and the reflective mask")
    truth = clip.reflective.numpy()
    return {"reflective": truth, "non_reflective": ~truth, "all": np.ones_like(truth)}


def evaluate_depth(models: dict[str, torch.nn.Module], clips: list[SurroundClip],
                   config: EvalConfig) -> tuple[dict, dict]:
    """Metrics over the target sets of ``clips``: ({model: {region: metrics}} pooled over all of them,
    {model: {region: {sequence: AbsRel}}} pooled within each sequence)."""
    preds: dict = {m: {r: defaultdict(list) for r in REGIONS} for m in models}
    gts: dict = {r: defaultdict(list) for r in REGIONS}
    for clip in clips:
        sequence = clip.name.rsplit("/", 1)[0]
        regions = _region_masks(clip)
        gt = clip.depth.numpy()
        for region, sel in regions.items():
            gts[region][sequence].append(gt[sel])
        with torch.no_grad():
            for name, model in models.items():
                depth = predict_depth(model, clip.images[TARGET]).numpy()
                for region, sel in regions.items():
                    preds[name][region][sequence].append(depth[sel])

    def pooled(name: str, region: str, sequences: list[str]) -> dict[str, float]:
        return pooled_metrics(np.concatenate([a for s in sequences for a in preds[name][region][s]]),
                              np.concatenate([a for s in sequences for a in gts[region][s]]), config)

    overall = {name: {region: pooled(name, region, list(gts[region])) for region in REGIONS}
               for name in models}
    per_sequence = {name: {region: {s: pooled(name, region, [s]).get("abs_rel", float("nan"))
                                    for s in gts[region]} for region in SPLIT_REGIONS}
                    for name in models}
    return overall, per_sequence


def sequence_changes(per_sequence: dict, name: str, region: str) -> list[float]:
    """AbsRel change (%) of model ``name`` vs the baseline in each sequence with pixels of ``region``."""
    base, model = per_sequence["baseline"][region], per_sequence[name][region]
    return [relative_change(model[s], base[s]) for s in base if np.isfinite(base[s]) and base[s] > 0]


def evaluate_mask(depth_model: torch.nn.Module, intrinsic: torch.nn.Module, clips: list[SurroundClip],
                  weights: LossWeights) -> dict[str, float]:
    """Precision, recall and lift (precision over the true share: 1 means chance) of the predicted
    reflection mask against the true reflective mask."""
    tp = predicted = true = true_seen = seen_total = total = 0
    for clip in clips:
        truth = torch.from_numpy(_region_masks(clip)["reflective"])
        with torch.no_grad():
            depth = predict_depth(depth_model, clip.images[TARGET])
            log_l, _ = intrinsic(clip.images.reshape(-1, *clip.images.shape[2:]))
            views = source_views(clip)
            mask = predict_reflection_mask(depth, clip, views, log_l, weights)
            frames = clip.images.reshape(-1, *clip.images.shape[2:])
            seen = score_views(frames, depth, clip, views, weights.ssim_alpha).seen
        tp += int((mask & truth).sum())
        predicted += int(mask.sum())
        true += int(truth.sum())
        true_seen += int((truth & seen).sum())
        seen_total += int(seen.sum())
        total += truth.numel()
    precision = tp / predicted if predicted else float("nan")
    return {
        "precision": precision,
        "recall": tp / true if true else float("nan"),
        "recall_seen": tp / true_seen if true_seen else float("nan"),
        "predicted_fraction": predicted / total,
        "true_fraction": true / total,
        "lift": precision * total / true if true else float("nan"),  # precision / true share: 1 = chance
        "seen_fraction": seen_total / total,
    }


def relative_change(value: float, reference: float) -> float:
    """(value - reference) / reference, in percent."""
    return 100.0 * (value - reference) / reference


def markdown(report: dict) -> str:
    """The results page (docs/results/selfsup.md) from a report of ``evaluate_runs``."""
    depth = report["depth"]
    base = depth["baseline"]
    seeds = ", ".join(f"{k} {v}" for k, v in report["seeds"].items())
    lines = [
        "# Self-supervised surround depth with intrinsic decomposition: results",
        "",
        f"SynthSurround split `{report['split']}` ({report['clips']} target sets x {report['cameras']} "
        f"cameras), at {report['height']} x {report['width']}, metric mode, ground truth capped at "
        f"{report['max_depth']} m; pixels pooled over all images. Seeds: {seeds}.",
        "Regenerate with the command in docs/selfsup.md.",
        "",
        "| model | AbsRel refl. | d1 refl. | AbsRel non-refl. | d1 non-refl. | AbsRel all | d1 all "
        "| AbsRel refl. vs baseline | AbsRel non-refl. vs baseline |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, res in depth.items():
        r, n, a = res["reflective"], res["non_reflective"], res["all"]
        lines.append(
            f"| {name} | {r['abs_rel']:.4f} | {r['a1']:.4f} | {n['abs_rel']:.4f} | {n['a1']:.4f} "
            f"| {a['abs_rel']:.4f} | {a['a1']:.4f} "
            f"| {relative_change(r['abs_rel'], base['reflective']['abs_rel']):+.1f}% "
            f"| {relative_change(n['abs_rel'], base['non_reflective']['abs_rel']):+.1f}% |")
    lines += [
        "",
        f"Pixels evaluated: reflective {base['reflective']['pixels']}, non-reflective "
        f"{base['non_reflective']['pixels']}.",
        "",
        "Predicted reflection mask (the decomposition model's depth and branch) vs the true reflective mask:",
        "",
        "| confidence | used by | precision | recall | recall on pixels seen by a source | predicted share "
        "| true share | lift (precision / true share; 1 = chance) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mask in report["masks"]:
        lines.append(
            f"| {mask['confidence']} | {mask['used_by']} | {mask['precision']:.3f} | {mask['recall']:.3f} "
            f"| {mask['recall_seen']:.3f} | {100 * mask['predicted_fraction']:.2f}% "
            f"| {100 * mask['true_fraction']:.2f}% | {mask['lift']:.2f} |")
    lines += [
        "",
        "Goal: AbsRel on reflective pixels improves by >= 10% over the baseline while non-reflective "
        "pixels stay within +-2%.",
    ]
    for name in depth:
        if name == "baseline":
            continue
        refl = relative_change(depth[name]["reflective"]["abs_rel"], base["reflective"]["abs_rel"])
        non = relative_change(depth[name]["non_reflective"]["abs_rel"], base["non_reflective"]["abs_rel"])
        verdict = "meets" if refl <= -10.0 else "misses"
        band = "inside" if abs(non) <= 2.0 else "outside"
        lines.append(f"- {name}: reflective AbsRel {refl:+.1f}% ({verdict} the -10% goal), non-reflective "
                     f"{non:+.1f}% ({band} +-2%{', better' if non < -2.0 else ''}).")
    lines += ["", "Per sequence (AbsRel pooled within each test sequence, change vs the baseline; the pooled "
              "figures above weigh sequences by their pixels and errors):", ""]
    for name in depth:
        if name == "baseline":
            continue
        parts = []
        for region in SPLIT_REGIONS:
            changes = sequence_changes(report["per_sequence"], name, region)
            worse = sum(c > 0 for c in changes)
            parts.append(f"{region.replace('_', '-')} median {np.median(changes):+.1f}%, worse in {worse} "
                         f"of {len(changes)}")
        lines.append(f"- {name}: {'; '.join(parts)}.")
    return "\n".join(lines) + "\n"


def run_loss_weights(run: str | Path) -> LossWeights:
    """The loss weights (mask confidence included) a run was trained with, from its recipe.json."""
    path = Path(run) / "recipe.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: run has no recipe.json")
    return LossWeights(**json.loads(path.read_text())["loss"])


def evaluate_runs(runs: dict[str, str], clips: list[SurroundClip], split: str,
                  max_depth: float = 80.0) -> dict:
    """Depth metrics of each run's depth network and mask metrics of the decomposition run."""
    models = {name: load_depth(path) for name, path in runs.items()}
    seeds = {}
    for name, path in runs.items():
        summary = Path(path) / "summary.json"
        seeds[name] = json.loads(summary.read_text())["seed"] if summary.is_file() else "unknown"
    weights = run_loss_weights(runs["decomposition"])
    intrinsic = load_intrinsic(runs["decomposition"])
    confidences = {weights.mask_confidence: "decomposition model's training"}
    if "distilled student" in runs:
        student = run_loss_weights(runs["distilled student"]).mask_confidence
        confidences.setdefault(student, "distilled student's pseudo labels")
    depth, per_sequence = evaluate_depth(models, clips, EvalConfig(max_depth=max_depth))
    report = {
        "split": split,
        "clips": len(clips),
        "cameras": clips[0].num_cameras,
        "height": int(clips[0].images.shape[-2]),
        "width": int(clips[0].images.shape[-1]),
        "max_depth": max_depth,
        "seeds": seeds,
        "runs": runs,
        "depth": depth,
        "per_sequence": per_sequence,
        "masks": [{"confidence": confidence, "used_by": used_by,
                   **evaluate_mask(models["decomposition"], intrinsic, clips,
                                   replace(weights, mask_confidence=confidence))}
                  for confidence, used_by in confidences.items()],
    }
    return report


def publish(report: dict, text: str, json_path: Path | None, markdown_path: Path | None) -> None:
    """Print the page ``text``; write the report as JSON and the page where paths are given."""
    print(text)
    for path, content in ((json_path, json.dumps(report, indent=2)), (markdown_path, text)):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)


def named_runs(baseline: str, decomposition: str, diffuse_layer: str | None = None, oracle: str | None = None,
               student: str | None = None, student_diffuse_layer: str | None = None) -> dict[str, str]:
    """The rows of the results table, in order: {row name: run directory}; absent runs are left out."""
    optional = {"diffuse-layer mask (ablation)": diffuse_layer, "oracle mask (ablation)": oracle,
                "distilled student": student,
                "distilled student, diffuse-layer mask (ablation)": student_diffuse_layer}
    return {"baseline": baseline, "decomposition": decomposition,
            **{name: run for name, run in optional.items() if run}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="run directory of the baseline stage")
    parser.add_argument("--decomposition", required=True, help="run directory of the decomposition stage")
    parser.add_argument("--student", help="run directory of the distill stage")
    parser.add_argument("--student-diffuse-layer", help="run directory of a distill run whose teacher and "
                        "mask came from the renderer's diffuse layer")
    parser.add_argument("--oracle", help="run directory of a decomposition run trained with the true mask")
    parser.add_argument("--diffuse-layer", help="run directory of a decomposition run whose mask came "
                        "from the renderer's diffuse layer (recipe 'mask: diffuse-layer')")
    parser.add_argument("--root", default="data/synth", help="SynthSurround dataset directory")
    parser.add_argument("--split", default="test")
    parser.add_argument("--height", type=int, default=96)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--max-clips", type=int, default=None)
    parser.add_argument("--max-depth", type=float, default=80.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the report as JSON here")
    parser.add_argument("--markdown", type=Path, help="write the results page here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    runs = named_runs(args.baseline, args.decomposition, diffuse_layer=args.diffuse_layer, oracle=args.oracle,
                      student=args.student, student_diffuse_layer=args.student_diffuse_layer)
    try:
        clips = load_clips(args.root, args.split, args.height, args.width, args.max_clips)
        report = evaluate_runs(runs, clips, args.split, args.max_depth)
    except (ValueError, FileNotFoundError, CheckpointError) as exc:  # data, run and checkpoint errors
        print(f"selfsup evaluate: error: {exc}", file=sys.stderr)
        return 2
    publish(report, markdown(report), args.json, args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
