"""fsmde-train, fsmde-eval and fsmde-results end to end on a tiny SynthSurround made by the generator.

Tiny student profile, a tiny teacher, a few steps each: this checks the plumbing (losses wired, cache,
checkpoints, resume, DDP on gloo, evaluation protocol, results table), not accuracy.
"""

import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

from fsmde_ros.distill import evaluate, results, train
from fsmde_ros.distill.recipe import RecipeError
from fsmde_ros.distill.ship import ShipError, ship_student
from fsmde_ros.distill.sources import SourceError, open_source
from fsmde_ros.model.checkpoint import load_student, read_metadata
from fsmde_ros.rig import default_rig_path, load_rig
from fsmde_ros.synth.dataset import generate_dataset

PLAN = {"teacher-train": (1, 2), "student-train": (1, 2), "test": (1, 2)}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    rig = load_rig(default_rig_path()).resized(128, 72)
    generate_dataset(root / "synth", rig, PLAN, "nuscenes", log=lambda line: None)
    common = {"train": {"steps": 2, "batch_frames": 2, "log_every": 1, "checkpoint_every": 1, "threads": 1}}
    teacher = {
        "kind": "teacher",
        "model": {"profile": "tiny", "widths": [4, 8, 8], "blocks": 1},
        "data": {"root": str(root / "synth"), "split": "teacher-train"},
        "train": {**common["train"], "crop": [32, 48]},
    }
    (root / "teacher.yaml").write_text(yaml.safe_dump(teacher))
    student = {
        "model": {"profile": "tiny"},
        "data": {"root": str(root / "synth"), "split": "student-train"},
        "teacher": {
            "type": "synth",
            "path": str(root / "runs/teacher/model.safetensors"),
            "cache": str(root / "cache"),
        },
        "loss": {"depth_kd": 1.0, "ci_kd": 1.0, "vr_kd": 2.0, "vr_points": 16},
        **common,
    }
    (root / "student.yaml").write_text(yaml.safe_dump(student))
    train.main([str(root / "teacher.yaml"), "--out", str(root / "runs/teacher"), "--no-progress"])
    train.main([str(root / "student.yaml"), "--out", str(root / "runs/full"), "--no-progress"])
    return root


def _log(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_teacher_trains_with_the_ssi_loss_only(work):
    rows = _log(work / "runs/teacher/log.csv")
    assert [r["step"] for r in rows] == ["1", "2"] and all(float(r["ssi"]) > 0 for r in rows)
    assert (work / "runs/teacher/state.safetensors").is_file()


def test_student_trains_with_every_loss_caches_the_teacher_and_resumes(work, tmp_path):
    out = work / "runs/full"
    rows = _log(out / "log.csv")
    for term in ("silog", "bins", "depth_kd", "ci_kd", "vr_kd"):
        assert all(np.isfinite(float(r[term])) for r in rows), term
    assert len(list((work / "cache").rglob("*.npy"))) == 2  # one entry per student-train frame
    model, meta = load_student(out / "model.safetensors")
    assert model.config.profile == "tiny" and meta["kind"] == "student" and meta["step"] == "2"
    resumed = tmp_path / "resumed"
    shutil.copytree(out, resumed)
    with (resumed / "log.csv").open("a") as f:
        f.write("9,0,0,0,0,0,0,0,0\n")  # a row logged after the checkpoint by a killed run
    argv = [str(work / "student.yaml"), "--out", str(resumed), "--resume", "--set", "train.steps=3"]
    train.main([*argv, "--no-progress"])
    assert [r["step"] for r in _log(resumed / "log.csv")] == ["1", "2", "3"]
    assert load_student(resumed / "model.safetensors")[1]["step"] == "3"


def test_cache_only_fills_the_teacher_cache_of_another_split(work, capsys):
    argv = [str(work / "student.yaml"), "--cache-only", "--set", "data.split=test", "--no-progress"]
    train.main(argv)
    assert "teacher cache filled" in capsys.readouterr().out
    assert len(list((work / "cache").rglob("*.npy"))) == 4  # 2 student-train + 2 test frames
    supervised = work / "supervised.yaml"
    supervised.write_text(yaml.safe_dump({"data": {"root": str(work / "synth")}}))
    with pytest.raises(RecipeError, match="needs a student recipe with a 'teacher'"):
        train.main([str(supervised), "--cache-only"])


def test_ddp_with_two_cpu_processes_on_gloo(work):
    out = work / "runs/ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "fsmde_ros.distill.train",
        str(work / "student.yaml"),
        "--out",
        str(out),
        "--no-progress",
        "--set",
        "train.batch_frames=1",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["step"] for r in _log(out / "log.csv")] == ["1", "2"]
    assert load_student(out / "model.safetensors")[1]["step"] == "2"


def _eval(model, root, out):
    argv = ["--model", str(model), "--root", str(root), "--json", str(out), "--threads", "1"]
    assert evaluate.main(argv) == 0
    return json.loads(out.read_text())


def test_eval_of_student_and_teacher_the_results_table_and_shipping(work, tmp_path):
    teacher = str(work / "runs/teacher/model.safetensors")
    spec = {
        "data": {"dataset": "synth", "root": str(work / "synth"), "split": "test", "gt": "dense"},
        "profile": "tiny",
        "rows": [
            {"key": "full", "name": "full", "run": str(work / "runs/full")},
            {"key": "supervised", "name": "sup", "run": str(work / "runs/full")},
            {"key": "teacher_lstsq", "name": "teacher", "teacher": teacher},
        ],
    }
    (tmp_path / "results.yaml").write_text(yaml.safe_dump(spec))
    out, js, models = tmp_path / "results.md", tmp_path / "results.json", tmp_path / "models"
    argv = ["--spec", str(tmp_path / "results.yaml"), "--out", str(out), "--json", str(js), "--threads", "1"]
    assert results.main([*argv, "--ship", "full", "--models", str(models)]) == 0
    text = out.read_text()
    assert "| full |" in text and "| teacher |" in text and "Full student vs supervised-only" in text
    data = json.loads(js.read_text())
    assert set(data) == {"full", "supervised", "teacher_lstsq"}
    full = data["full"]["eval"]
    assert full["frames"] == 2 and 0 < full["mean"]["abs_rel"] < 10 and full["cross_view"]["pixels"] > 0
    assert data["teacher_lstsq"]["profile"]["gflops"] > 0
    assert data["full"]["profile"]["ort_cpu"]["median_ms"] > 0
    # fsmde-eval of the checkpoint (torch backend) gives the table's figures
    again = _eval(work / "runs/full/model.safetensors", work / "synth", tmp_path / "e.json")
    assert again["mean"]["abs_rel"] == pytest.approx(full["mean"]["abs_rel"], rel=1e-5)
    # the shipped ONNX, exported by fsmde-export, evaluates the same through ONNX Runtime
    card = (models / "MODEL_CARD.md").read_text()
    assert "Reproduce" in card and f"{full['mean']['abs_rel']:.3f}" in card
    bins = json.loads(read_metadata(models / "student_cpu.safetensors")["fsmde_model_config"])["num_bins"]
    assert f"({bins} log-spaced adaptive bins, 0.5-80 m)" in card
    onnx = _eval(models / "student_cpu.onnx", work / "synth", tmp_path / "o.json")
    assert onnx["mean"]["abs_rel"] == pytest.approx(full["mean"]["abs_rel"], rel=1e-3)
    assert results.main([*argv, "--ship", "teacher_lstsq"]) == 1


def test_sources_and_results_spec_errors(work, tmp_path):
    with pytest.raises(SourceError, match="must be 'synth'"):
        open_source({"dataset": "kitti", "root": "x", "split": "test"})
    with pytest.raises(SourceError, match="manifest not found"):
        open_source({"dataset": "synth", "root": str(tmp_path), "split": "test"})
    with pytest.raises(SourceError, match="no frames yet"):
        open_source({"dataset": "synth", "root": str(work / "synth"), "split": "val"})
    assert (
        len(open_source({"dataset": "synth", "root": str(work / "synth"), "split": "test", "max_frames": 1}))
        == 1
    )
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({"data": {}, "rows": [{"name": "x"}]}))
    with pytest.raises(results.ResultsError, match="exactly one of 'run' or 'teacher'"):
        results.load_spec(tmp_path / "r.yaml")


def test_ship_refuses_an_incomplete_run(tmp_path):
    with pytest.raises(ShipError, match=r"model\.safetensors: missing"):
        ship_student(tmp_path, {}, {}, models_dir=tmp_path / "models")
