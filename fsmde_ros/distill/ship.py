"""Ship a trained student as the node's default model: safetensors + ONNX (via fsmde-export) + model card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from fsmde_ros.backends.tensorrt_engine import file_sha256
from fsmde_ros.evaluation import METRIC_NAMES
from fsmde_ros.model.checkpoint import read_metadata


class ShipError(RuntimeError):
    """The run to ship is incomplete or the export failed; the message names the file."""


def ship_student(
    run: str | Path,
    evaluation: dict,
    profile: dict,
    models_dir: str | Path = "models",
    name: str = "student_cpu",
    results_doc: str = "docs/results.md",
) -> Path:
    """Copy ``run``/model.safetensors to ``models_dir``, export it to ONNX and write MODEL_CARD.md."""
    from fsmde_ros.tools.export import main as export_main

    run, models_dir = Path(run), Path(models_dir)
    checkpoint, recipe_path = run / "model.safetensors", run / "recipe.yaml"
    for path in (checkpoint, recipe_path):
        if not path.is_file():
            raise ShipError(f"{path}: missing, cannot ship {run}")
    models_dir.mkdir(parents=True, exist_ok=True)
    weights, onnx = models_dir / f"{name}.safetensors", models_dir / f"{name}.onnx"
    shutil.copyfile(checkpoint, weights)
    if export_main(["--checkpoint", str(weights), "--output", str(onnx)]) != 0:
        raise ShipError(f"{weights}: fsmde-export failed")
    recipe = yaml.safe_load(recipe_path.read_text())
    card = model_card(recipe, evaluation, profile, weights, onnx, results_doc)
    (models_dir / "MODEL_CARD.md").write_text(card)
    return onnx


def model_card(
    recipe: dict, evaluation: dict, profile: dict, weights: Path, onnx: Path, results_doc: str
) -> str:
    mean, cv = evaluation["mean"], evaluation["cross_view"]
    metrics = " | ".join(f"{mean[k]:.3f}" for k in METRIC_NAMES)
    loss = recipe["loss"]
    terms = ", ".join(f"{k} {loss[k]}" for k in ("silog", "bins", "depth_kd", "ci_kd", "vr_kd") if loss[k])
    teacher = recipe.get("teacher") or {}
    data = recipe["data"]
    n, h, w, _ = profile["input"]
    train, params_m = recipe["train"], profile["parameters"] / 1e6
    frames, caps = evaluation["frames"], evaluation["protocol"]["max_depth"]
    config = json.loads(read_metadata(weights)["fsmde_model_config"])
    bins = f"{config['num_bins']} log-spaced adaptive bins, {config['min_depth']:g}-{config['max_depth']:g} m"
    return f"""# Model card: `{weights.stem}` (fsmde_ros default student)

**What it is.** The `{recipe["model"]["profile"]}` profile student of fsmde_ros: a {params_m:.2f} M
parameter encoder-decoder with a depth-bin head ({bins}), run on
{n} cameras x {h} x {w} uint8 RGB per call; outputs metric z-depth, confidence, bin probabilities and
bin centres. {profile["gflops"]:.1f} GFLOPs per {n}-camera set; ONNX Runtime CPU (2 threads, this
2-core machine under load from other jobs) {profile["ort_cpu"]["median_ms"]:.0f} ms median per set.

**How it was trained.** Recipe `{recipe["name"]}` (config/recipes/{recipe["name"]}.yaml): cross-interaction
KD + view-relational KD (docs/method.md), loss weights {terms}; teacher alignment `{loss["align"]}`,
CI-KD temperature {loss["ci_temperature"]}. Seed {recipe["seed"]}, {train["steps"]} steps of
{train["batch_frames"]} frame(s) ({train["batch_frames"] * n} images), AdamW lr {train["lr"]}.
Teacher: `{teacher.get("type", "none")}` from `{teacher.get("path", "-")}` (the SynthSurround teacher of
config/recipes/teacher_synth.yaml, trained with a scale-and-shift-invariant loss only, so it
contributes structure, not scale).

**Data.** SynthSurround only (procedural streets rendered for the nuScenes rig by `fsmde-synth`),
split `{data["split"]}`, first {data.get("max_frames") or "all"} frames; metric scale from the simulated
32-beam LiDAR. No real images were used: expect a domain gap on real cameras; fine-tune on real
data (nuScenes/DDAD loaders) before relying on it.

**Metrics** ({evaluation["dataset"]} `test`, {frames} frames, {evaluation["ground_truth"]} ground truth
capped at {caps:.0f} m, metric depth, no scaling):

| AbsRel | SqRel | RMSE | RMSElog | δ1 | δ2 | δ3 | cross-view AbsRel |
|---|---|---|---|---|---|---|---|
| {metrics} | {cv["abs_rel"]:.3f} |

The full comparison (supervised-only, depth KD, CI-KD, VR-KD, teacher) is in {results_doc}.

**Files.** `{weights.name}` (sha256 `{file_sha256(weights)[:16]}...`), `{onnx.name}` (sha256
`{file_sha256(onnx)[:16]}...`, exported by `fsmde-export` with its torch parity check).

**Reproduce.**

```bash
fsmde-synth generate --out data/synth
fsmde-train config/recipes/teacher_synth.yaml         # -> runs/teacher_synth/
fsmde-train config/recipes/{recipe["name"]}.yaml        # -> runs/{recipe["name"]}/
fsmde-results --ship full                              # evaluates, writes docs/results.md, ships to models/
```

Training here ran on a shared 2-core CPU; `torchrun --nproc_per_node=G -m fsmde_ros.distill.train
<recipe>` runs the same recipe with DDP on G GPUs.

Evaluation JSON: {json.dumps({k: round(v, 4) for k, v in mean.items()})}
"""
