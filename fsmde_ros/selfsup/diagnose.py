"""Where the reflection mask fails, on SynthSurround: the test itself, or the decomposition branch.

The renderer can draw every frame a second time without what mirror-like surfaces reflect
(``FrameRenderer(reflections=False)``): the ideal diffuse layer L. The Mahalanobis test of
``reflection_mask`` is run with that ideal L and with the learned branch's L, each at the run's
predicted depth and at the ground-truth depth, and scored against the true reflective mask. An ideal
L that finds the reflections while the learned one does not puts the fault on the decomposition
branch, not on the test or the depth. The branch's L is also compared with the ideal L directly: how
much of the reflection it removes, and how much it changes the other pixels.

    python -m fsmde_ros.selfsup.diagnose --run runs/selfsup/decomposition --split val --sequences 6 \\
        --json docs/results/selfsup_diagnosis.json --markdown docs/results/selfsup_diagnosis.md
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from fsmde_ros.model import CheckpointError
from fsmde_ros.rig import Rig, load_rig
from fsmde_ros.selfsup.data import clips_from_samples
from fsmde_ros.selfsup.evaluate import publish, run_loss_weights
from fsmde_ros.selfsup.objective import LossWeights, predict_reflection_mask, rendered_log_diffuse
from fsmde_ros.selfsup.train import load_depth, load_intrinsic, predict_depth
from fsmde_ros.selfsup.views import TARGET, SurroundClip, source_views
from fsmde_ros.synth.cli import sample_of
from fsmde_ros.synth.dataset import Sequence, sequence_name, sequence_seed

SKY_DEPTH_M = 1000.0
"""Ground-truth depth given to sky pixels (NaN in the dataset) so that they warp as far points."""

DIFFUSE_SOURCES = ("renderer (ideal)", "learned branch")
DEPTH_SOURCES = ("predicted", "ground truth")


def paired_clips(rig: Rig, split: str, sequences: int, frames: int, height: int,
                 width: int) -> list[tuple[SurroundClip, SurroundClip]]:
    """(RGB clip, ideal diffuse clip) pairs of the first ``sequences`` sequences of a SynthSurround split,
    rendered for ``rig`` (the dataset's own rig reproduces its frames exactly)."""
    pairs = []
    for index in range(sequences):
        seed, name = sequence_seed(split, index), sequence_name(split, index)
        rendered = [[sample_of(f, seq, name) for f in seq.frames(frames)]
                    for seq in (Sequence(seed, rig), Sequence(seed, rig, reflections=False))]
        pairs += zip(*(clips_from_samples(samples, height, width) for samples in rendered), strict=True)
    return pairs


def ground_truth_depth(clip: SurroundClip) -> torch.Tensor:
    """The clip's target depth (N, 1, H, W) with sky at ``SKY_DEPTH_M``."""
    if clip.depth is None:
        raise ValueError(f"clip {clip.name}: no ground-truth depth")
    return torch.nan_to_num(clip.depth, nan=SKY_DEPTH_M)


def diagnose(depth_model: torch.nn.Module, intrinsic: torch.nn.Module,
             pairs: list[tuple[SurroundClip, SurroundClip]], weights: LossWeights) -> dict[str, dict]:
    """{diffuse source: {depth source: precision, recall, lift, predicted share}} over the pairs."""
    diffuse_of: dict[str, Callable[[SurroundClip, SurroundClip], torch.Tensor]] = {
        DIFFUSE_SOURCES[0]: lambda _, ideal: rendered_log_diffuse(ideal),
        DIFFUSE_SOURCES[1]: lambda clip, _: intrinsic(clip.images.flatten(0, 1))[0],
    }
    counts = {(d, z): [0, 0] for d in DIFFUSE_SOURCES for z in DEPTH_SOURCES}  # true positives, flagged
    true = total = 0
    with torch.no_grad():
        for clip, ideal in pairs:
            views = source_views(clip)
            depths = {DEPTH_SOURCES[0]: predict_depth(depth_model, clip.images[TARGET]),
                      DEPTH_SOURCES[1]: ground_truth_depth(clip)}
            truth = clip.reflective
            true += int(truth.sum())
            total += truth.numel()
            for d, log_l_of in diffuse_of.items():
                log_l = log_l_of(clip, ideal)
                for z, depth in depths.items():
                    mask = predict_reflection_mask(depth, clip, views, log_l, weights)
                    counts[d, z][0] += int((mask & truth).sum())
                    counts[d, z][1] += int(mask.sum())
    if not true:
        raise ValueError("diagnose: the clips have no reflective pixels")
    result: dict[str, dict] = {d: {} for d in DIFFUSE_SOURCES}
    for (d, z), (tp, flagged) in counts.items():
        precision = tp / flagged if flagged else float("nan")
        result[d][z] = {"precision": precision, "recall": tp / true, "lift": precision * total / true,
                        "predicted_fraction": flagged / total, "true_fraction": true / total}
    return result


def layer_error(intrinsic: torch.nn.Module,
                pairs: list[tuple[SurroundClip, SurroundClip]]) -> dict[str, dict]:
    """How close the branch's L is to the ideal diffuse layer D, against the input I itself:
    {region: {"input": mean |I - D|, "branch": mean |L - D|}} over the target images, for the true
    reflective and non-reflective pixels, and the share of the reflection the branch removed,
    1 - branch / input on reflective pixels."""
    sums = {region: {"input": 0.0, "branch": 0.0, "pixels": 0} for region in ("reflective", "non_reflective")}
    with torch.no_grad():
        for clip, ideal in pairs:
            image, diffuse = clip.images[TARGET], ideal.images[TARGET]
            layer = torch.exp(intrinsic(image)[0])
            truth = clip.reflective.expand_as(image)
            for region, sel in (("reflective", truth), ("non_reflective", ~truth)):
                sums[region]["input"] += float((image - diffuse).abs()[sel].sum())
                sums[region]["branch"] += float((layer - diffuse).abs()[sel].sum())
                sums[region]["pixels"] += int(sel.sum())
    result: dict[str, dict] = {region: {key: value / max(s["pixels"], 1) for key, value in s.items()
                                        if key != "pixels"} for region, s in sums.items()}
    refl = result["reflective"]
    result["removed_share"] = 1.0 - refl["branch"] / refl["input"] if refl["input"] else float("nan")
    return result


def markdown(report: dict) -> str:
    """The diagnosis page from a report of ``main``."""
    lines = [
        "# Reflection mask diagnosis: ideal vs learned diffuse layer",
        "",
        f"Run `{report['run']}`, SynthSurround split `{report['split']}`, first {report['sequences']} "
        f"sequences ({report['clips']} target sets) re-rendered at {report['height']} x {report['width']}, "
        f"mask confidence {report['mask_confidence']}. Regenerate with the command in docs/selfsup.md.",
        "",
        "| diffuse layer | depth | precision | recall | lift (1 = chance) | predicted share | true share |",
        "|---|---|---|---|---|---|---|",
    ]
    for d, by_depth in report["mask"].items():
        for z, m in by_depth.items():
            lines.append(f"| {d} | {z} | {m['precision']:.3f} | {m['recall']:.3f} | {m['lift']:.2f} "
                         f"| {100 * m['predicted_fraction']:.2f}% | {100 * m['true_fraction']:.2f}% |")
    layer = report["layer"]
    refl, rest = layer["reflective"], layer["non_reflective"]
    lines += [
        "",
        "The learned branch's L against the ideal diffuse layer D (mean absolute difference, images in "
        "[0, 1], target images):",
        "",
        "| pixels | input I vs D | branch L vs D |",
        "|---|---|---|",
        f"| reflective | {refl['input']:.4f} | {refl['branch']:.4f} |",
        f"| non-reflective | {rest['input']:.4f} | {rest['branch']:.4f} |",
        "",
        f"Share of the reflection removed by the branch: {100 * layer['removed_share']:.1f}%.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="run directory of a decomposition stage")
    parser.add_argument("--root", default="data/synth", help="SynthSurround dataset (for its rig.yaml)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--sequences", type=int, default=6)
    parser.add_argument("--frames", type=int, default=10, help="frames rendered per sequence")
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the report as JSON here")
    parser.add_argument("--markdown", type=Path, help="write the page here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        if args.sequences < 1 or args.frames < 3:
            raise ValueError(f"need --sequences >= 1 and --frames >= 3, got {args.sequences}, {args.frames}")
        weights = run_loss_weights(args.run)
        depth_model, intrinsic = load_depth(args.run), load_intrinsic(args.run)
        rig = load_rig(Path(args.root) / "rig.yaml")
        pairs = paired_clips(rig, args.split, args.sequences, args.frames, args.height, args.width)
        report = {"run": args.run, "split": args.split, "sequences": args.sequences, "clips": len(pairs),
                  "height": args.height, "width": args.width, "mask_confidence": weights.mask_confidence,
                  "mask": diagnose(depth_model, intrinsic, pairs, weights),
                  "layer": layer_error(intrinsic, pairs)}
    except (ValueError, FileNotFoundError, CheckpointError) as exc:  # rig, split, run and checkpoint errors
        print(f"selfsup diagnose: error: {exc}", file=sys.stderr)
        return 2
    publish(report, markdown(report), args.json, args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
