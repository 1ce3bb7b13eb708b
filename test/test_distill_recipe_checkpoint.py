"""Recipes (defaults, base chains, overrides, validation) and resumable safetensors training state."""

import pytest
import torch

from fsmde_ros.distill.checkpoint import (
    TrainCheckpointError,
    load_training_state,
    load_weights,
    save_training_state,
    save_weights,
)
from fsmde_ros.distill.recipe import RecipeError, load_recipe


def _write(path, text):
    path.write_text(text)
    return path


def test_recipe_inherits_its_base_and_applies_overrides(tmp_path):
    _write(tmp_path / "base.yaml", "seed: 3\nloss: {ci_kd: 1.0}\nteacher: {type: synth, path: t}\n")
    child = _write(tmp_path / "child.yaml", "base: base.yaml\nloss: {vr_kd: 2.0}\n")
    recipe = load_recipe(child, ["train.steps=7", "loss.align=median"])
    assert recipe["name"] == "child" and recipe["seed"] == 3
    assert recipe["loss"]["ci_kd"] == 1.0 and recipe["loss"]["vr_kd"] == 2.0
    assert recipe["loss"]["silog"] == 1.0  # from the defaults
    assert recipe["train"]["steps"] == 7 and recipe["loss"]["align"] == "median"


def test_the_shipped_recipes_load():
    for name in (
        "teacher_synth",
        "student_supervised",
        "student_depth_kd",
        "student_ci_kd",
        "student_vr_kd",
        "student_full",
    ):
        recipe = load_recipe(f"config/recipes/{name}.yaml")
        assert recipe["name"] == name
    assert load_recipe("config/recipes/student_supervised.yaml")["teacher"] is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("epochs: 3\n", "unknown top-level keys"),
        ("loss: {kd: 1}\n", "unknown keys in 'loss'"),
        ("kind: critic\n", "kind must be one of"),
        ("loss: {ci_kd: -1}\n", "loss.ci_kd must be a number >= 0"),
        ("loss: {ci_kd: 1}\n", "no 'teacher'"),
        ("loss: {align: mean}\n", "loss.align"),
        ("train: {steps: 0}\n", "train.steps must be an integer >= 1"),
        ("train: {lr: -1}\n", "train.lr must be > 0"),
        ("model: {widths: [1, 2]}\n", "unknown keys in 'model' for a student"),
        ("- a list\n", "must be a mapping"),
        ("base: missing.yaml\n", "recipe file not found"),
    ],
)
def test_bad_recipes_name_file_and_field(tmp_path, text, message):
    path = _write(tmp_path / "bad.yaml", text)
    with pytest.raises(RecipeError, match=message) as info:
        load_recipe(path)
    if "missing" not in text:
        assert "bad.yaml" in str(info.value)


def test_recipe_base_loops_and_bad_overrides_are_reported(tmp_path):
    _write(tmp_path / "a.yaml", "base: b.yaml\n")
    _write(tmp_path / "b.yaml", "base: a.yaml\n")
    with pytest.raises(RecipeError, match="loops"):
        load_recipe(tmp_path / "a.yaml")
    ok = _write(tmp_path / "ok.yaml", "seed: 1\n")
    with pytest.raises(RecipeError, match=r"expected key\.sub=value"):
        load_recipe(ok, ["train.steps"])
    with pytest.raises(RecipeError, match="not a section"):
        load_recipe(ok, ["seed.x=1"])


def _model_and_optimizer(seed):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))
    return model, torch.optim.AdamW(model.parameters(), lr=1e-2)


def _steps(model, optimizer, count):
    g = torch.Generator().manual_seed(5)
    for _ in range(count):
        loss = model(torch.randn(8, 3, generator=g)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_training_state_resumes_exactly(tmp_path):
    model, opt = _model_and_optimizer(0)
    _steps(model, opt, 3)
    save_training_state(tmp_path / "state.safetensors", model, opt, 3, {"recipe_name": "x"})
    _steps(model, opt, 2)
    expected = [p.detach().clone() for p in model.parameters()]

    model2, opt2 = _model_and_optimizer(1)
    step, meta = load_training_state(tmp_path / "state.safetensors", model2, opt2)
    assert step == 3 and meta["recipe_name"] == "x"
    _steps(model2, opt2, 2)
    for a, b in zip(expected, model2.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_training_state_errors_name_the_file(tmp_path):
    model, opt = _model_and_optimizer(0)
    with pytest.raises(TrainCheckpointError, match="not found"):
        load_training_state(tmp_path / "none.safetensors", model, opt)
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 32)
    with pytest.raises(TrainCheckpointError, match=r"bad\.safetensors: not a readable safetensors"):
        load_weights(tmp_path / "bad.safetensors")
    save_weights(tmp_path / "w.safetensors", {"a": torch.zeros(2)}, {"kind": "teacher"})
    with pytest.raises(TrainCheckpointError, match="not a training state"):
        load_training_state(tmp_path / "w.safetensors", model, opt)
    save_training_state(tmp_path / "s.safetensors", model, opt, 1, {})
    other = torch.nn.Linear(3, 1)
    with pytest.raises(TrainCheckpointError, match="do not fit"):
        load_training_state(tmp_path / "s.safetensors", other, torch.optim.AdamW(other.parameters()))
