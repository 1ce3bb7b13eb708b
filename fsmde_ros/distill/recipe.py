"""YAML training recipes: defaults, ``base:`` inheritance, ``--set key.sub=value`` overrides, validation."""

from __future__ import annotations

import copy
from pathlib import Path

from fsmde_ros.yaml_io import apply_override, read_yaml_mapping


class RecipeError(ValueError):
    """A recipe is malformed; the message names the file and the field."""


DEFAULTS: dict = {
    "kind": "student",
    "seed": 0,
    "data": {"dataset": "synth", "root": "data/synth", "split": "student-train", "max_frames": None},
    "model": {"profile": "cpu"},
    "teacher": None,
    "loss": {
        "silog": 1.0,
        "bins": 0.5,
        "depth_kd": 0.0,
        "ci_kd": 0.0,
        "ci_temperature": 2.0,
        "vr_kd": 0.0,
        "vr_points": 96,
        "vr_reference_depth": 15.0,
        "align": "lstsq",
        "kd_pixels": 4096,
    },
    "train": {
        "steps": 1000,
        "batch_frames": 2,
        "lr": 1e-3,
        "weight_decay": 1e-4,
        "warmup_steps": 50,
        "log_every": 10,
        "checkpoint_every": 200,
        "threads": 2,
        "workers": 0,
        "photometric": True,
        "hflip": True,
        "crop": None,
    },
}

KINDS = ("student", "teacher")
KD_LOSSES = ("depth_kd", "ci_kd", "vr_kd")


def _merge(base: dict, override: dict, where: str) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key in out and isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = _merge(out[key], value, f"{where}.{key}")
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read(path: Path, seen: tuple[Path, ...]) -> dict:
    if path in seen:
        raise RecipeError(f"{path}: 'base' chain loops ({' -> '.join(map(str, seen))})")
    data = read_yaml_mapping(path, RecipeError, "recipe")
    base = data.pop("base", None)
    if base is None:
        return data
    return _merge(_read((path.parent / base).resolve(), (*seen, path)), data, str(path))


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> dict:
    """The recipe at ``path`` merged over the defaults and its ``base`` chain, with overrides applied."""
    path = Path(path).resolve()
    recipe = _merge(DEFAULTS, _read(path, ()), str(path))
    for text in overrides or []:
        apply_override(recipe, text, RecipeError)
    validate(recipe, str(path))
    recipe["name"] = recipe.get("name") or path.stem
    return recipe


def validate(recipe: dict, source: str) -> None:
    """Raise RecipeError naming ``source`` and the field at fault."""
    unknown = set(recipe) - set(DEFAULTS) - {"name"}
    if unknown:
        raise RecipeError(f"{source}: unknown top-level keys {sorted(unknown)}")
    for section in ("data", "loss", "train"):
        extra = set(recipe[section]) - set(DEFAULTS[section])
        if extra:
            raise RecipeError(f"{source}: unknown keys in '{section}': {sorted(extra)}")
    if recipe["kind"] not in KINDS:
        raise RecipeError(f"{source}: kind must be one of {KINDS}, got {recipe['kind']!r}")
    model_keys = {"profile"} if recipe["kind"] == "student" else {"profile", "widths", "blocks"}
    extra = set(recipe["model"]) - model_keys
    if extra:
        raise RecipeError(f"{source}: unknown keys in 'model' for a {recipe['kind']}: {sorted(extra)}")
    for key in ("silog", "bins", *KD_LOSSES):
        value = recipe["loss"][key]
        if not isinstance(value, (int, float)) or value < 0:
            raise RecipeError(f"{source}: loss.{key} must be a number >= 0, got {value!r}")
    if recipe["loss"]["align"] not in ("median", "lstsq"):
        raise RecipeError(
            f"{source}: loss.align must be 'median' or 'lstsq', got {recipe['loss']['align']!r}"
        )
    if recipe["loss"]["ci_temperature"] <= 0:
        raise RecipeError(f"{source}: loss.ci_temperature must be > 0")
    train = recipe["train"]
    for key in ("steps", "batch_frames", "log_every", "checkpoint_every", "threads"):
        if not isinstance(train[key], int) or train[key] < 1:
            raise RecipeError(f"{source}: train.{key} must be an integer >= 1, got {train[key]!r}")
    crop = train["crop"]
    if crop is not None:
        if recipe["kind"] != "teacher":
            raise RecipeError(f"{source}: train.crop is for the teacher only (VR-KD needs whole views)")
        valid = isinstance(crop, list) and len(crop) == 2 and all(isinstance(c, int) and c >= 8 for c in crop)
        if not valid:
            raise RecipeError(f"{source}: train.crop must be [height, width] >= 8 pixels, got {crop!r}")
    if not isinstance(train["lr"], (int, float)) or train["lr"] <= 0:
        raise RecipeError(f"{source}: train.lr must be > 0, got {train['lr']!r}")
    uses_teacher = recipe["kind"] == "student" and any(recipe["loss"][k] > 0 for k in KD_LOSSES)
    if uses_teacher and not isinstance(recipe["teacher"], dict):
        raise RecipeError(f"{source}: a KD loss is on but no 'teacher' {{type, path, cache}} is given")
