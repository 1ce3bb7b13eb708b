"""BriGeS YAML recipes: defaults, ``--set key.sub=value`` overrides and validation.

A recipe names the data (a SynthSurround root: BriGeS trains on its dense depth and class maps),
the frozen depth model (``synth``: a TeacherNet checkpoint; ``dav2``: a Depth Anything directory),
the frozen segmentation model (``segnet``: a checkpoint of ours; ``sam``: a SAM directory; ``none``:
the no-segmentation control), the gate, and the training and evaluation settings. See
``config/recipes/briges.yaml``.
"""

from __future__ import annotations

import copy
from pathlib import Path

from fsmde_ros.briges.attention import TEMPERATURE_MODES
from fsmde_ros.yaml_io import apply_override, read_yaml_mapping

DEFAULTS: dict = {
    "seed": 0,
    "data": {"root": "data/synth"},
    "size": [160, 288],
    "splits": {"train": "teacher-train", "val": "val", "test": "test"},
    "depth_model": {"type": "synth", "path": "runs/teacher_synth/model.safetensors", "input_size": None},
    "segmentation_model": {"type": "segnet", "path": "runs/briges/segnet/segnet.safetensors"},
    "segnet": {
        "width": 32,
        "steps": 1500,
        "lr": 2e-3,
        "weight_decay": 1e-4,
        "batch_frames": 1,
        "cameras": 3,
        "class_balance": True,
    },
    "gate": {"levels": [2, 3, 4], "dim": 64, "heads": 4, "temperature": "fixed", "tau": 1.0},
    "train": {
        "steps": 600,
        "lr": 1e-3,
        "weight_decay": 1e-4,
        "warmup_steps": 20,
        "batch_frames": 1,
        "cameras": 3,
        "gradient_weight": 0.5,
        "hflip": True,
        "threads": 2,
        "log_every": 10,
        "max_train_frames": None,
    },
    "eval": {
        "max_frames": 36,
        "val_frames": 30,
        "taus": [0.5, 0.7, 1.4, 2.0],
        "max_depth": 80.0,
        "boundary_log_ratio": 0.15,
        "thin_width": 5,
    },
}

DEPTH_TYPES = ("synth", "dav2")
SEG_TYPES = ("segnet", "sam", "none")


class BrigesRecipeError(ValueError):
    """A BriGeS recipe is malformed; the message names the file and the field."""


def _merge(base: dict, override: dict, where: str) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key not in base:
            raise BrigesRecipeError(f"{where}: unknown field {key!r} (known: {sorted(base)})")
        if isinstance(base[key], dict) and base[key] and not isinstance(value, dict):
            raise BrigesRecipeError(f"{where}: field {key!r} must be a mapping, got {value!r}")
        out[key] = (
            _merge(base[key], value, f"{where}.{key}") if isinstance(base[key], dict) and value else value
        )
    return out


def load_recipe(path: str | Path | None, overrides: list[str] | None = None) -> dict:
    """The recipe at ``path`` (None: the defaults) merged over the defaults, then ``overrides``."""
    recipe = copy.deepcopy(DEFAULTS)
    where = "defaults"
    if path is not None:
        where = str(path)
        recipe = _merge(recipe, read_yaml_mapping(path, BrigesRecipeError, "recipe"), where)
    for assignment in overrides or []:
        override: dict = {}
        apply_override(override, assignment, BrigesRecipeError)
        recipe = _merge(recipe, override, f"{where} --set")
    validate(recipe, where)
    return recipe


def validate(recipe: dict, where: str) -> None:
    """Raise BrigesRecipeError naming the field unless the recipe is usable."""
    if recipe["depth_model"]["type"] not in DEPTH_TYPES:
        raise BrigesRecipeError(f"{where}: depth_model.type must be one of {DEPTH_TYPES}")
    if recipe["segmentation_model"]["type"] not in SEG_TYPES:
        raise BrigesRecipeError(f"{where}: segmentation_model.type must be one of {SEG_TYPES}")
    if recipe["gate"]["temperature"] not in TEMPERATURE_MODES:
        raise BrigesRecipeError(f"{where}: gate.temperature must be one of {TEMPERATURE_MODES}")
    size = recipe["size"]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise BrigesRecipeError(f"{where}: size must be [height, width] positive integers, got {size!r}")
    for section, key in (("train", "steps"), ("segnet", "steps"), ("train", "batch_frames")):
        value = recipe[section][key]
        if not isinstance(value, int) or value < 1:
            raise BrigesRecipeError(f"{where}: {section}.{key} must be a positive integer, got {value!r}")
    taus = recipe["eval"]["taus"]
    if not taus or any(not isinstance(t, (int, float)) or t <= 0 for t in taus):
        raise BrigesRecipeError(
            f"{where}: eval.taus must be a non-empty list of positive numbers, got {taus!r}"
        )
    if not recipe["gate"]["levels"]:
        raise BrigesRecipeError(f"{where}: gate.levels must name at least one depth encoder level")
