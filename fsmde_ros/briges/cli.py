"""fsmde-briges: train and evaluate the BriGeS teacher (a Bridging Gate between a frozen depth model
and a frozen segmentation model).

  train-seg    train the SynthSurround segmentation network on class maps
  train-gate   train the gate alone (depth and segmentation models frozen)
  evaluate     affine-invariant AbsRel / delta1 on all, boundary and thin-structure pixels for the
               teacher alone and gate checkpoints, at their own and at swept temperatures
  results      the results table (docs/results/briges.md) from a val and a test evaluation
  export-onnx  the gated teacher as an ONNX relative-disparity model (an ``onnx`` teacher of fsmde-train)

Example: fsmde-briges train-gate --recipe config/recipes/briges.yaml --out runs/briges/gate_tau1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import yaml

from fsmde_ros.briges.recipe import load_recipe


def _frames(recipe: dict, split: str, max_frames: int | None, cameras: int | None):
    from fsmde_ros.briges.build import open_split
    from fsmde_ros.briges.data import CameraFrames

    source = open_split(recipe, split, max_frames)
    height, width = recipe["size"]
    return source, CameraFrames(source, height, width, cameras=cameras, seed=int(recipe["seed"]))


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def cmd_train_seg(args: argparse.Namespace, recipe: dict) -> None:
    from fsmde_ros.briges.evaluate import evaluate_segmentation
    from fsmde_ros.briges.segnet import SegNet, save_segnet
    from fsmde_ros.briges.train import median_frequency_weights, train_segnet
    from fsmde_ros.synth.classes import CLASS_NAMES

    cfg = recipe["segnet"]
    out = Path(args.out or Path(recipe["segmentation_model"]["path"]).parent)
    torch.set_num_threads(int(recipe["train"]["threads"]))
    torch.manual_seed(int(recipe["seed"]))
    net = SegNet(len(CLASS_NAMES), int(cfg["width"]))
    _, frames = _frames(
        recipe, recipe["splits"]["train"], recipe["train"]["max_train_frames"], cfg["cameras"]
    )
    weights = median_frequency_weights(frames, len(CLASS_NAMES)) if cfg["class_balance"] else None
    if weights is not None:
        print(
            "segnet class weights: "
            + ", ".join(f"{n} {w:.2f}" for n, w in zip(CLASS_NAMES, weights.tolist(), strict=True))
        )
    train_segnet(
        net,
        frames,
        int(cfg["steps"]),
        float(cfg["lr"]),
        float(cfg["weight_decay"]),
        int(cfg["batch_frames"]),
        int(recipe["seed"]),
        out / "segnet_log.csv",
        progress=not args.quiet,
        class_weights=weights,
    )
    _, val = _frames(recipe, recipe["splits"]["val"], int(recipe["eval"]["val_frames"]), None)
    scores = evaluate_segmentation(net, val, CLASS_NAMES)
    save_segnet(net, out / "segnet.safetensors", {"val": scores, "seed": recipe["seed"]})
    _write_json(out / "segnet_val.json", scores)
    print(f"segnet: val mIoU {scores['miou']:.3f}, pixel accuracy {scores['pixel_accuracy']:.3f} -> {out}")


def cmd_train_gate(args: argparse.Namespace, recipe: dict) -> None:
    from fsmde_ros.briges.build import build_teacher
    from fsmde_ros.briges.train import train_gate

    train = recipe["train"]
    torch.set_num_threads(int(train["threads"]))
    torch.manual_seed(int(recipe["seed"]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    teacher = build_teacher(recipe)
    counts = teacher.parameter_counts()
    _write_json(out / "parameters.json", counts)
    print(
        f"gate: {counts['gate']} trainable parameters, {100 * counts['trainable_share_of_depth_model']:.2f}% "
        f"of the depth model's {counts['depth_model']}"
    )
    _, frames = _frames(recipe, recipe["splits"]["train"], train["max_train_frames"], train["cameras"])
    gate_path = out / "gate.safetensors"
    train_gate(
        teacher,
        frames,
        int(train["steps"]),
        float(train["lr"]),
        float(recipe["eval"]["max_depth"]),
        weight_decay=float(train["weight_decay"]),
        warmup_steps=int(train["warmup_steps"]),
        batch_frames=int(train["batch_frames"]),
        gradient_weight=float(train["gradient_weight"]),
        use_hflip=bool(train["hflip"]),
        seed=int(recipe["seed"]),
        log_path=out / "log.csv",
        log_every=int(train["log_every"]),
        checkpoint=lambda step: teacher.save_gate(gate_path, {"step": step, "seed": recipe["seed"]}),
        progress=not args.quiet,
    )
    print(f"gate -> {gate_path}")


def _parse_gates(items: list[str]) -> list[tuple[str, Path]]:
    gates = []
    for item in items:
        if "=" not in item:
            raise SystemExit(f"fsmde-briges: --gate {item!r} must be NAME=PATH")
        name, path = item.split("=", 1)
        gates.append((name, Path(path)))
    return gates


def cmd_evaluate(args: argparse.Namespace, recipe: dict) -> None:
    from fsmde_ros.briges.build import build_depth_adapter, build_seg_adapter
    from fsmde_ros.briges.evaluate import Variant, evaluate_variants
    from fsmde_ros.evaluation import EvalConfig

    torch.set_num_threads(int(recipe["train"]["threads"]))
    ev = recipe["eval"]
    variants = []
    for name, path in _parse_gates(args.gate):
        variants.append(Variant(name, path))
        if name in args.sweep:
            variants += [Variant(f"{name}@tau={float(t):g}", path, float(t)) for t in ev["taus"]]
    variants += [Variant(name, path, control=True) for name, path in _parse_gates(args.control)]
    max_frames = args.max_frames if args.max_frames is not None else ev["max_frames"]
    source, frames = _frames(recipe, args.split, max_frames, None)
    results = evaluate_variants(
        build_depth_adapter(recipe["depth_model"]),
        build_seg_adapter(recipe["segmentation_model"]),
        frames,
        tuple(source[0].camera_names),
        variants,
        EvalConfig.for_dataset("synthsurround", max_depth=float(ev["max_depth"])),
        float(ev["boundary_log_ratio"]),
        int(ev["thin_width"]),
        progress=not args.quiet,
    )
    summary = {
        "split": args.split,
        "frames": len(frames),
        "seed": recipe["seed"],
        "boundary_log_ratio": float(ev["boundary_log_ratio"]),
        "thin_width": int(ev["thin_width"]),
        "results": results,
    }
    _write_json(Path(args.json), summary)
    print(f"evaluation of {len(frames)} {args.split} frames -> {args.json}")


def cmd_results(args: argparse.Namespace, recipe: dict) -> None:
    from fsmde_ros.briges.report import results_markdown

    val = json.loads(Path(args.val).read_text())
    test = json.loads(Path(args.test).read_text())
    params = {name: json.loads(Path(p).read_text()) for name, p in _parse_gates(args.parameters)}
    command = args.command or " ".join(sys.argv)
    # a label may hold "=" (e.g. "tau = 1"); the path after the last one is the file
    metric = {
        label: json.loads(Path(p).read_text())
        for label, _, p in (m.rpartition("=") for m in args.metric_eval)
    }
    text = results_markdown(
        val, test, params, args.fixed, args.learnable, command, args.control, tuple(args.extra), metric
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


def cmd_export(args: argparse.Namespace, recipe: dict) -> None:
    from fsmde_ros.briges.build import build_teacher
    from fsmde_ros.briges.export import export_onnx
    from fsmde_ros.briges.teacher import read_gate_config

    teacher = build_teacher(recipe, read_gate_config(args.gate))
    teacher.load_gate(args.gate)
    height, width = recipe["size"]
    export_onnx(teacher, Path(args.out), height, width, args.tau)
    print(f"BriGeS teacher -> {args.out} (input 1 x 3 x {height} x {width}, ImageNet-normalised)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fsmde-briges", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--recipe", default=None, help="BriGeS recipe YAML (default: built-in defaults)")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a field")
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("train-seg", help="train the segmentation network")
    common(p)
    p.add_argument("--out", default=None, help="output folder (default: folder of segmentation_model.path)")
    p.set_defaults(func=cmd_train_seg)

    p = sub.add_parser("train-gate", help="train the gate alone")
    common(p)
    p.add_argument("--out", required=True, help="output folder for gate.safetensors, log.csv, recipe.yaml")
    p.set_defaults(func=cmd_train_gate)

    p = sub.add_parser("evaluate", help="evaluate the teacher alone and gate checkpoints")
    common(p)
    p.add_argument("--gate", action="append", default=[], metavar="NAME=PATH", help="a gate checkpoint")
    p.add_argument(
        "--sweep", action="append", default=[], metavar="NAME", help="also run gate NAME at each eval.taus"
    )
    p.add_argument(
        "--control",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a gate trained with segmentation_model.type=none (run without segmentation features)",
    )
    p.add_argument("--split", default="test")
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--json", required=True, help="where to write the results")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("results", help="write the results table")
    common(p)
    p.add_argument("--val", required=True, help="evaluate --sweep JSON on the val split (picks tau)")
    p.add_argument("--test", required=True, help="evaluate --sweep JSON on the test split")
    p.add_argument("--fixed", required=True, help="name of the gate trained with fixed tau = 1")
    p.add_argument("--learnable", required=True, help="name of the gate trained with learnable tau")
    p.add_argument("--control", default=None, help="name of the gate trained without segmentation features")
    p.add_argument(
        "--extra", action="append", default=[], metavar="NAME", help="a further gate row (e.g. a seed)"
    )
    p.add_argument("--parameters", action="append", default=[], metavar="NAME=parameters.json")
    p.add_argument(
        "--metric-eval", action="append", default=[], metavar="LABEL=JSON", help="an fsmde-eval --json result"
    )
    p.add_argument("--command", default=None, help="the reproducing command to print under the table")
    p.add_argument("--out", default="docs/results/briges.md")
    p.set_defaults(func=cmd_results)

    p = sub.add_parser("export-onnx", help="export the gated teacher to ONNX")
    common(p)
    p.add_argument("--gate", required=True, help="gate checkpoint")
    p.add_argument("--tau", type=float, default=None, help="inference temperature (default: the gate's own)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_export)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    recipe = load_recipe(args.recipe, args.set)
    args.func(args, recipe)


if __name__ == "__main__":
    main()
