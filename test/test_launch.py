"""Launch: the logic, the thin launch file (run against stand-ins of launch/launch_ros), the RViz config."""

import importlib.util
import sys
import types
from pathlib import Path

import pytest
import yaml

from fsmde_ros.launch_logic import ARGUMENTS, LaunchArgumentError, plan_launch
from fsmde_ros.params import default_config_path, load_config

ROOT = Path(__file__).resolve().parent.parent


def test_default_launch_starts_the_node_on_the_shipped_config():
    (node,) = plan_launch({})
    assert (node.package, node.executable, node.name, node.namespace) == (
        "fsmde_ros", "surround_depth_node", "surround_depth", "")
    assert node.parameters == [{"config": str(default_config_path()), "use_sim_time": False}]


def test_arguments_reach_the_node_and_rviz(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    node, rviz = plan_launch({"model": str(model), "backend": "ort-cpu", "namespace": "/car1",
                              "use_sim_time": "true", "rviz": "True"})
    assert node.parameters[0] | {"config": "-"} == {"config": "-", "model": str(model), "backend": "ort-cpu",
                                                    "use_sim_time": True}
    assert node.namespace == "/car1"
    assert rviz.executable == "rviz2" and rviz.arguments == ["-d", str(ROOT / "config/surround_depth.rviz")]
    assert rviz.parameters == [{"use_sim_time": True}]


@pytest.mark.parametrize(("values", "message"), [
    ({"use_sim_time": "maybe"}, "use_sim_time:='maybe' is not a boolean"),
    ({"config": "/nope.yaml"}, "config:='/nope.yaml': file .* not found"),
    ({"model": "missing.onnx"}, "model:='missing.onnx'"),
    ({"namespace": "car 1"}, "not a valid ROS namespace"),
    ({"backend": "gpu"}, "backend:='gpu' is not one of"),
    ({"modle": "x"}, r"unknown launch argument\(s\) \['modle'\]"),
])
def test_bad_launch_arguments_are_named(values, message):
    with pytest.raises(LaunchArgumentError, match=message):
        plan_launch(values)


def test_launch_file_declares_every_argument_and_starts_the_plan(monkeypatch, tmp_path):
    recorded = {}

    class Declare:
        def __init__(self, name, default_value, description):
            recorded.setdefault("declared", []).append((name, default_value, description))

    class Opaque:
        def __init__(self, function):
            recorded["function"] = function

    class Config:
        def __init__(self, name):
            self.name = name

        def perform(self, context):
            return context[self.name]

    def node(**kwargs):
        return kwargs

    modules = {
        "launch": types.SimpleNamespace(LaunchDescription=list),
        "launch.actions": types.SimpleNamespace(DeclareLaunchArgument=Declare, OpaqueFunction=Opaque),
        "launch.substitutions": types.SimpleNamespace(LaunchConfiguration=Config),
        "launch_ros": types.SimpleNamespace(),
        "launch_ros.actions": types.SimpleNamespace(Node=node),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    path = ROOT / "launch/surround_depth.launch.py"
    spec = importlib.util.spec_from_file_location("surround_depth_launch", path)
    launch_file = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch_file)
    description = launch_file.generate_launch_description()
    assert len(description) == len(ARGUMENTS) + 1
    assert [d[0] for d in recorded["declared"]] == [a.name for a in ARGUMENTS]
    context = {a.name: a.default for a in ARGUMENTS} | {"namespace": "car2", "rviz": "true"}
    node, rviz = recorded["function"](context)
    assert node["executable"] == "surround_depth_node" and node["namespace"] == "car2"
    assert node["parameters"][0]["config"] == str(default_config_path()) and node["output"] == "screen"
    assert rviz["package"] == "rviz2"


def test_rviz_config_shows_the_cloud_and_six_depth_images(tmp_path):
    rviz = yaml.safe_load((ROOT / "config/surround_depth.rviz").read_text())
    displays = rviz["Visualization Manager"]["Displays"]
    topics = {d["Topic"]["Value"]: d["Class"] for d in displays if "Topic" in d}
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    config = load_config(default_config_path(), model_path=str(model))
    assert topics["/" + config.output["cloud_topic"]] == "rviz_default_plugins/PointCloud2"
    for cam in config.cameras:
        assert topics[f"/{cam.name}/depth"] == "rviz_default_plugins/Image"
    assert rviz["Visualization Manager"]["Global Options"]["Fixed Frame"] == config.rig.frame_id
