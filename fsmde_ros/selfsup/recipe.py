"""YAML recipes of self-supervised training (``config/recipes/selfsup_*.yaml``).

A recipe names a ``stage``: ``intrinsic`` (pretraining of the decomposition branch alone on images
paired with their diffuse layer), ``baseline`` (photometric self-supervision), ``decomposition`` (the
same plus the intrinsic decomposition branch and the reflection-masked depth loss) or ``distill``
(a student regresses the mask-fused pseudo depth of the two teachers). Relative paths are resolved
against the current directory. ``--set section.key=value`` overrides any field.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from fsmde_ros.selfsup.objective import LossWeights
from fsmde_ros.selfsup.pseudo_labels import CONTROL_MASKS
from fsmde_ros.yaml_io import apply_override, read_yaml_mapping

STAGES = ("intrinsic", "baseline", "decomposition", "distill")
POSE_SOURCES = ("ego", "network")
MASK_SOURCES = ("predicted", "dataset", "diffuse-layer", *CONTROL_MASKS)


class RecipeError(ValueError):
    """A recipe is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class DataSection:
    root: str = "data/synth"
    split: str = "student-train"
    height: int = 96
    width: int = 160
    max_clips: int | None = None
    diffuse_root: str = ""  # stage 'intrinsic' and mask 'diffuse-layer': the same dataset rendered with
    # fsmde-synth generate --no-reflections


@dataclass(frozen=True)
class ModelSection:
    profile: str = "cpu"  # architecture (channel widths, bins, depth range) of this student profile


@dataclass(frozen=True)
class TrainSection:
    steps: int = 1000
    lr: float = 2e-4
    log_every: int = 10
    checkpoint_every: int = 100
    threads: int = 1
    mask_warmup: int = 0  # decomposition: steps before the reflection mask is applied
    intrinsic_lr: float = 1.0  # decomposition: the branch's learning rate relative to lr (0 freezes it)


@dataclass(frozen=True)
class TeachersSection:
    baseline: str = ""  # run directory of the baseline stage
    decomposition: str = ""  # run directory of the decomposition stage


@dataclass(frozen=True)
class Recipe:
    name: str
    stage: str
    out: str
    seed: int = 0
    pose: str = "ego"
    init: str = ""  # run directory whose depth network (and branch, if it has one) initialises this one
    intrinsic_init: str = ""  # run directory whose decomposition branch initialises this one
    mask: str = "predicted"  # decomposition: the Mahalanobis mask of the branch's L, or of the renderer's
    # diffuse layer ('diffuse-layer', an ideal decomposition), or the dataset's true mask ('dataset');
    # distill: also the controls 'shuffled' and 'everywhere' of the branch's mask (pseudo_labels)
    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    loss: LossWeights = field(default_factory=LossWeights)
    train: TrainSection = field(default_factory=TrainSection)
    teachers: TeachersSection = field(default_factory=TeachersSection)


SECTIONS = {"data": DataSection, "model": ModelSection, "loss": LossWeights, "train": TrainSection,
            "teachers": TeachersSection}


def _typed(value: object, annotation: str, where: str) -> object:
    if annotation in ("int", "int | None"):
        if value is None and annotation == "int | None":
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecipeError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecipeError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation == "str":
        if not isinstance(value, str):
            raise RecipeError(f"{where}: expected a string, got {value!r}")
        return value
    raise RecipeError(f"{where}: unsupported field type {annotation}")


def _section(cls: type, data: object, where: str) -> object:
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise RecipeError(f"{where}: must be a mapping")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {unknown} (known: {sorted(known)})")
    return cls(**{k: _typed(v, str(known[k].type), f"{where}.{k}") for k, v in data.items()})


def recipe_from_dict(data: dict, source: str) -> Recipe:
    """Build and validate a recipe; every error names ``source`` and the field."""
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: a recipe must be a mapping")
    top = {"name", "stage", "out", "seed", "pose", "init", "intrinsic_init", "mask", *SECTIONS}
    unknown = sorted(set(data) - top)
    if unknown:
        raise RecipeError(f"{source}: unknown top-level key(s) {unknown}")
    for key in ("name", "stage", "out"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise RecipeError(f"{source}: '{key}' must be a non-empty string")
    recipe = Recipe(
        name=data["name"], stage=data["stage"], out=data["out"],
        seed=_typed(data.get("seed", 0), "int", f"{source}: seed"),
        pose=_typed(data.get("pose", "ego"), "str", f"{source}: pose"),
        init=_typed(data.get("init", ""), "str", f"{source}: init"),
        intrinsic_init=_typed(data.get("intrinsic_init", ""), "str", f"{source}: intrinsic_init"),
        mask=_typed(data.get("mask", "predicted"), "str", f"{source}: mask"),
        **{name: _section(cls, data.get(name), f"{source}: {name}") for name, cls in SECTIONS.items()},
    )
    validate(recipe, source)
    return recipe


def validate(recipe: Recipe, source: str) -> None:
    if recipe.stage not in STAGES:
        raise RecipeError(f"{source}: stage must be one of {STAGES}, got {recipe.stage!r}")
    if recipe.pose not in POSE_SOURCES:
        raise RecipeError(f"{source}: pose must be one of {POSE_SOURCES}, got {recipe.pose!r}")
    if recipe.mask not in MASK_SOURCES:
        raise RecipeError(f"{source}: mask must be one of {MASK_SOURCES}, got {recipe.mask!r}")
    d, t = recipe.data, recipe.train
    if recipe.mask in CONTROL_MASKS and recipe.stage != "distill":
        raise RecipeError(f"{source}: mask {recipe.mask!r} (a control of the pseudo labels) applies to "
                          "distill runs only")
    if recipe.mask == "dataset" and recipe.stage != "decomposition":
        raise RecipeError(f"{source}: mask 'dataset' applies to decomposition runs only")
    if recipe.stage == "intrinsic" and (recipe.mask != "predicted" or recipe.init or not d.diffuse_root):
        raise RecipeError(f"{source}: stage 'intrinsic' needs data.diffuse_root (the same dataset rendered "
                          "with fsmde-synth generate --no-reflections) and takes no mask or init "
                          "(intrinsic_init starts the branch from another run)")
    if recipe.intrinsic_init and recipe.stage not in ("intrinsic", "decomposition"):
        raise RecipeError(f"{source}: intrinsic_init applies to intrinsic and decomposition runs only")
    if recipe.mask == "diffuse-layer" and not d.diffuse_root:
        raise RecipeError(f"{source}: mask 'diffuse-layer' needs data.diffuse_root (the same dataset "
                          "rendered with fsmde-synth generate --no-reflections)")
    if d.height <= 0 or d.width <= 0 or d.height % 32 or d.width % 32:
        raise RecipeError(f"{source}: data.height and data.width must be positive multiples of 32 (the "
                          f"student's five stride-2 stages), got {d.height}x{d.width}")
    if d.max_clips is not None and d.max_clips < 1:
        raise RecipeError(f"{source}: data.max_clips must be >= 1 or null, got {d.max_clips}")
    for key in ("steps", "log_every", "checkpoint_every", "threads"):
        if getattr(t, key) < 1:
            raise RecipeError(f"{source}: train.{key} must be >= 1, got {getattr(t, key)}")
    if t.lr <= 0:
        raise RecipeError(f"{source}: train.lr must be > 0, got {t.lr}")
    if t.intrinsic_lr < 0:
        raise RecipeError(f"{source}: train.intrinsic_lr must be >= 0, got {t.intrinsic_lr}")
    if t.mask_warmup < 0:
        raise RecipeError(f"{source}: train.mask_warmup must be >= 0, got {t.mask_warmup}")
    if not 0 < recipe.loss.mask_confidence < 1:
        raise RecipeError(f"{source}: loss.mask_confidence must be in (0, 1), "
                          f"got {recipe.loss.mask_confidence}")
    for f in fields(LossWeights):
        if getattr(recipe.loss, f.name) < 0:
            raise RecipeError(f"{source}: loss.{f.name} must be >= 0")
    if recipe.stage == "distill" and not (recipe.teachers.baseline and recipe.teachers.decomposition):
        raise RecipeError(f"{source}: stage 'distill' needs teachers.baseline and teachers.decomposition")


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read, override and validate the recipe at ``path``."""
    data = read_yaml_mapping(path, RecipeError, "recipe")
    for text in overrides or []:
        apply_override(data, text, RecipeError)
    return recipe_from_dict(data, str(path))

