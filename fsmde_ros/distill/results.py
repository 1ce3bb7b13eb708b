"""``fsmde-results``: evaluate every row of the results table (where not yet done) and write docs/results.md.

The rows, the test data and the goals are in ``config/recipes/results.yaml``. Per row the
evaluation JSON and the size/speed profile are cached beside the trained model (``eval_*.json``,
``profile.json``); ``--reevaluate`` recomputes them. The markdown is regenerated from those files
alone, so the table always shows what the models on disk measure.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import yaml

from fsmde_ros.distill.evaluate import StudentPredictor, TeacherPredictor, evaluate
from fsmde_ros.distill.profile import profile_student, profile_teacher
from fsmde_ros.distill.ship import ship_student
from fsmde_ros.distill.sources import open_source
from fsmde_ros.distill.teachers import SynthTeacher
from fsmde_ros.evaluation import METRIC_NAMES

COLUMNS = (
    "AbsRel",
    "SqRel",
    "RMSE",
    "RMSElog",
    "δ<1.25",
    "δ<1.25²",
    "δ<1.25³",
    "Cross-view AbsRel",
    "Params (M)",
    "GFLOPs",
    "ORT CPU ms",
)


class ResultsError(ValueError):
    """The results specification is malformed or a row's model is missing; names the file and row."""


def load_spec(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"{path}: results specification not found")
    spec = yaml.safe_load(path.read_text())
    for key in ("data", "rows"):
        if key not in spec:
            raise ResultsError(f"{path}: missing key {key!r}")
    for i, row in enumerate([*spec["rows"], *spec.get("ablations", [])]):
        if "name" not in row or ("run" not in row) == ("teacher" not in row):
            raise ResultsError(f"{path}: row {i} needs a 'name' and exactly one of 'run' or 'teacher'")
    return spec


def _row_paths(row: dict, data: dict) -> tuple[Path, Path, Path]:
    """(model file, eval JSON, profile JSON) of a row."""
    tag = f"eval_{data['split']}_{data.get('gt', 'dense')}"
    if "run" in row:
        run = Path(row["run"])
        return run / "model.safetensors", run / f"{tag}.json", run / "profile.json"
    model = Path(row["teacher"])
    return model, model.parent / f"{tag}_{row.get('align', 'lstsq')}.json", model.parent / "profile.json"


def evaluate_row(row: dict, spec: dict, source, reevaluate: bool, threads: int) -> tuple[dict, dict]:
    data = spec["data"]
    model, eval_path, profile_path = _row_paths(row, data)
    if not model.is_file():
        raise ResultsError(f"row {row['name']!r}: model {model} not found (train it first, see the recipe)")
    if reevaluate or not eval_path.is_file():
        if "run" in row:
            predictor = StudentPredictor(model, source[0].num_cameras, threads)
        else:
            from fsmde_ros.model.config import load_profile

            p = load_profile(spec.get("profile", "cpu"))
            predictor = TeacherPredictor(
                SynthTeacher(model),
                row.get("align", "lstsq"),
                p.input_height,
                p.input_width,
                p.min_depth,
                p.max_depth,
                spec.get("teacher_cache"),
            )
        result = evaluate(predictor, source, data["dataset"], data.get("gt", "dense"), data.get("max_frames"))
        eval_path.write_text(json.dumps(result, indent=2) + "\n")
    if reevaluate or not profile_path.is_file():
        if "run" in row:
            prof = profile_student(model, threads)
        else:
            from fsmde_ros.model.config import load_profile

            prof = profile_teacher(model, load_profile(spec.get("profile", "cpu")).input_shape, threads)
        profile_path.write_text(json.dumps(prof, indent=2) + "\n")
    return json.loads(eval_path.read_text()), json.loads(profile_path.read_text())


def _training_summary(row: dict) -> str:
    """Seed, steps and training wall time of a run, from its recipe and CSV log."""
    run = Path(row["run"]) if "run" in row else Path(row["teacher"]).parent
    recipe_path, log_path = run / "recipe.yaml", run / "log.csv"
    if not recipe_path.is_file():
        return ""
    recipe = yaml.safe_load(recipe_path.read_text())
    seconds, last_step = 0.0, 0
    if log_path.is_file():
        with log_path.open() as f:
            rows = list(csv.DictReader(f))
        if rows:
            last_step = int(rows[-1]["step"])
            every = int(recipe["train"]["log_every"])
            seconds = sum(float(r["sec_per_step"]) for r in rows) * every
    loss = recipe["loss"]
    weights = ", ".join(f"{k}={loss[k]}" for k in ("silog", "bins", "depth_kd", "ci_kd", "vr_kd") if loss[k])
    if recipe["kind"] == "teacher":
        weights = "SSI disparity loss only"
    return (
        f"seed {recipe['seed']}, {last_step} steps x {recipe['train']['batch_frames']} frame(s), "
        f"~{seconds / 60:.0f} min, {weights}"
    )


def _fmt(value: float, digits: int = 3) -> str:
    return (
        "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"
    )


def table_row(name: str, result: dict, prof: dict) -> str:
    mean = result["mean"]
    cells = [_fmt(mean[k], 2 if k in ("rmse",) else 3) for k in METRIC_NAMES]
    cells.append(_fmt(result["cross_view"]["abs_rel"]))
    cells += [
        f"{prof['parameters'] / 1e6:.2f}",
        f"{prof['gflops']:.1f}",
        f"{prof['ort_cpu']['median_ms']:.0f}",
    ]
    return f"| {name} | " + " | ".join(cells) + " |"


def per_camera_table(rows: list[dict], measured: dict[str, tuple[dict, dict]]) -> list[str]:
    """Markdown rows: AbsRel of every camera for every model."""
    cameras = list(next(iter(measured.values()))[0]["per_camera"])
    lines = ["| Model | " + " | ".join(cameras) + " |", "|" + "---|" * (len(cameras) + 1)]
    for row in rows:
        per = measured[row["key"]][0]["per_camera"]
        lines.append(f"| {row['name']} | " + " | ".join(_fmt(per[c].get("abs_rel")) for c in cameras) + " |")
    return lines


def goals(spec: dict, measured: dict[str, tuple[dict, dict]]) -> list[str]:
    """One line per goal of the spec, with the measured figure and whether it is met."""
    g = spec.get("goals", {})
    lines = []

    def absrel(key: str) -> float:
        return measured[key][0]["mean"]["abs_rel"]

    def cross(key: str) -> float:
        return measured[key][0]["cross_view"]["abs_rel"]

    if {"full", "supervised"} <= measured.keys():
        gain = 1 - absrel("full") / absrel("supervised")
        need = g.get("full_vs_supervised_absrel", 0.10)
        lines.append(
            f"- Full student vs supervised-only AbsRel: {gain:+.1%} better (goal >= {need:.0%}): "
            f"**{'met' if gain >= need else 'not met'}**"
        )
    if {"full", "depth_kd"} <= measured.keys():
        gain = 1 - absrel("full") / absrel("depth_kd")
        lines.append(
            f"- Full student vs plain depth KD AbsRel: {gain:+.1%} (goal: better): "
            f"**{'met' if gain > 0 else 'not met'}**"
        )
    need = g.get("vr_cross_view_cut", 0.20)
    for with_vr, without in (("vr_kd", "supervised"), ("full", "ci_kd")):
        if {with_vr, without} <= measured.keys():
            cut = 1 - cross(with_vr) / cross(without)
            lines.append(
                f"- VR-KD cross-view disagreement, {with_vr} vs {without}: {cut:+.1%} lower "
                f"(goal >= {need:.0%}): **{'met' if cut >= need else 'not met'}**"
            )
    if {"full", "teacher_lstsq"} <= measured.keys():
        speed = (
            measured["teacher_lstsq"][1]["ort_cpu"]["median_ms"] / measured["full"][1]["ort_cpu"]["median_ms"]
        )
        need = g.get("student_speedup", 5.0)
        lines.append(
            f"- Student vs teacher ORT CPU latency: {speed:.1f}x faster (goal >= {need:.0f}x): "
            f"**{'met' if speed >= need else 'not met'}**"
        )
    return lines


def render(
    spec: dict, measured: dict[str, tuple[dict, dict]], rows: list[dict], ablations: list[dict]
) -> str:
    data = spec["data"]
    header = "| Model | " + " | ".join(COLUMNS) + " |\n|" + "---|" * (len(COLUMNS) + 1)
    any_result = next(iter(measured.values()))[0]
    lines = [
        "# Results: cross-interaction and view-relational distillation",
        "",
        "Generated by `fsmde-results` (spec: `config/recipes/results.yaml`); do not edit by hand.",
        f"Test data: {data['dataset']} split `{data['split']}`, {any_result['frames']} frames, ground truth "
        f"`{data.get('gt', 'dense')}` depth capped at {any_result['protocol']['max_depth']:.0f} m, metric "
        "depth (no scaling) for students. Teachers predict relative disparity and are aligned per image "
        "to that image's sparse LiDAR depth (median scaling or least squares, scale and shift). "
        "Cross-view AbsRel is the disagreement of adjacent cameras where their views overlap "
        "(`fsmde_ros.evaluation.CrossViewConsistency`, lower is better). GFLOPs per 6-camera set; "
        "ORT CPU latency is the median of one batched 6-camera call with 2 threads on this machine "
        "(2 shared cores, other jobs running: compare rows, not absolute figures).",
        "",
        header,
    ]
    for row in rows:
        lines.append(table_row(row["name"], *measured[row["key"]]))
    floor = any_result.get("cross_view_ground_truth")
    if floor:
        lines += [
            "",
            f"Cross-view AbsRel of the ground truth itself (nearest-pixel lookup, occlusions): "
            f"{floor['abs_rel']:.3f} (the floor of the column).",
        ]
    lines += ["", "## Goals", "", *goals(spec, measured), "", "## AbsRel per camera", ""]
    lines += per_camera_table([*rows, *ablations], measured)
    lines += ["", "## Training runs", ""]
    for row in [*rows, *ablations]:
        summary = _training_summary(row)
        if summary:
            lines.append(f"- {row['name']}: {summary}")
    if ablations:
        lines += ["", "## Ablations", "", header]
        for row in ablations:
            lines.append(table_row(row["name"], *measured[row["key"]]))
        lines += [""] + [f"- {row['name']}: {row['note']}" for row in ablations if row.get("note")]
    lines += [
        "",
        "## Other methods",
        "",
        "- BriGeS teacher (Bridging Gate between depth and segmentation foundation models): "
        "[results/briges.md](results/briges.md)",
        "- Self-supervised MDE with intrinsic decomposition and pseudo-depth distillation: "
        "[results/selfsup.md](results/selfsup.md)",
        "",
    ]
    if spec.get("notes"):
        lines += ["## Notes", "", spec["notes"].strip(), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fsmde-results", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spec", default="config/recipes/results.yaml")
    parser.add_argument("--out", default="docs/results.md")
    parser.add_argument("--json", default="docs/results/distill.json", help="all measured figures")
    parser.add_argument("--reevaluate", action="store_true", help="recompute evaluations and profiles")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ship", metavar="KEY", help="also ship this row's student to --models (e.g. full)")
    parser.add_argument("--models", default="models", help="where --ship writes (default models/)")
    args = parser.parse_args(argv)
    try:
        spec = load_spec(args.spec)
        data = spec["data"]
        source = open_source({"dataset": data["dataset"], "root": data["root"], "split": data["split"]})
        rows = [dict(r, key=r.get("key", f"row{i}")) for i, r in enumerate(spec["rows"])]
        ablations = [
            dict(r, key=r.get("key", f"ablation{i}")) for i, r in enumerate(spec.get("ablations", []))
        ]
        measured = {}
        for row in [*rows, *ablations]:
            print(f"fsmde-results: {row['name']}", file=sys.stderr)
            measured[row["key"]] = evaluate_row(row, spec, source, args.reevaluate, args.threads)
    except ResultsError as exc:
        print(f"fsmde-results: error: {exc}", file=sys.stderr)
        return 1
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(render(spec, measured, rows, ablations))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(
        json.dumps({k: {"eval": v[0], "profile": v[1]} for k, v in measured.items()}, indent=2) + "\n"
    )
    print(f"fsmde-results: wrote {args.out} and {args.json}")
    if args.ship:
        row = next((r for r in rows if r["key"] == args.ship and "run" in r), None)
        if row is None:
            print(
                f"fsmde-results: error: --ship {args.ship!r} is not a student row of {args.spec}",
                file=sys.stderr,
            )
            return 1
        onnx = ship_student(row["run"], *measured[args.ship], models_dir=args.models, results_doc=args.out)
        print(f"fsmde-results: shipped {row['run']} as {onnx}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
