"""What ``launch/surround_depth.launch.py`` starts, as plain data (the launch file only wires it up).

Launch arguments: ``config``, ``model``, ``backend``, ``namespace``, ``use_sim_time``, ``rviz``.
``plan_launch`` validates them (clear errors naming the argument) and returns the processes to
start: the node with its parameters and, with ``rviz:=true``, RViz 2 on ``config/surround_depth.rviz``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from fsmde_ros.backends.factory import BACKEND_KINDS
from fsmde_ros.params import default_config_path

PACKAGE = "fsmde_ros"
NODE_EXECUTABLE = "surround_depth_node"
NODE_NAME = "surround_depth"


class LaunchArgumentError(ValueError):
    """A launch argument has a value the launch cannot use; the message names the argument."""


@dataclass(frozen=True)
class Argument:
    name: str
    default: str
    description: str


ARGUMENTS: tuple[Argument, ...] = (
    Argument("config", "", "node configuration YAML ('' = the shipped config/surround_depth.yaml)"),
    Argument("model", "", "model file overriding model.path of the config ('' = keep the config's)"),
    Argument("backend", "", f"backend overriding model.backend: {', '.join(BACKEND_KINDS)} ('' = keep)"),
    Argument("namespace", "", "namespace of the node and its topics"),
    Argument("use_sim_time", "false", "use /clock (true when playing bags with fsmde-replay --clock)"),
    Argument("rviz", "false", "also start RViz 2 with config/surround_depth.rviz"),
)


@dataclass(frozen=True)
class ProcessPlan:
    """One process for launch_ros.actions.Node."""

    package: str
    executable: str
    name: str
    namespace: str
    parameters: list[dict] = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)


def parse_bool(value: str, name: str) -> bool:
    text = value.strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise LaunchArgumentError(f"launch argument {name}:={value!r} is not a boolean (true/false)")


def _existing_file(value: str, name: str) -> str:
    path = Path(value).expanduser().resolve()
    if not path.is_file():
        raise LaunchArgumentError(f"launch argument {name}:={value!r}: file {path} not found")
    return str(path)


def plan_launch(values: dict[str, str], rviz_config: Path | None = None) -> list[ProcessPlan]:
    """Processes to start for the launch argument ``values`` (missing ones take their defaults)."""
    unknown = sorted(set(values) - {a.name for a in ARGUMENTS})
    if unknown:
        known = [a.name for a in ARGUMENTS]
        raise LaunchArgumentError(f"unknown launch argument(s) {unknown}; known: {known}")
    v = {a.name: values.get(a.name, a.default) for a in ARGUMENTS}
    config = _existing_file(v["config"], "config") if v["config"] else str(default_config_path())
    namespace = v["namespace"].strip()
    if namespace and not re.fullmatch(r"/?[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*", namespace):
        raise LaunchArgumentError(f"launch argument namespace:={namespace!r} is not a valid ROS namespace")
    if v["backend"] and v["backend"] not in BACKEND_KINDS:
        raise LaunchArgumentError(f"launch argument backend:={v['backend']!r} is not one of {BACKEND_KINDS}")
    parameters = {"config": config, "use_sim_time": parse_bool(v["use_sim_time"], "use_sim_time")}
    if v["model"]:
        parameters["model"] = _existing_file(v["model"], "model")
    if v["backend"]:
        parameters["backend"] = v["backend"]
    plans = [ProcessPlan(PACKAGE, NODE_EXECUTABLE, NODE_NAME, namespace, [parameters])]
    if parse_bool(v["rviz"], "rviz"):
        rviz = rviz_config or default_config_path().parent / "surround_depth.rviz"
        plans.append(ProcessPlan("rviz2", "rviz2", "rviz2", namespace,
                                 [{"use_sim_time": parameters["use_sim_time"]}], ["-d", str(rviz)]))
    return plans
