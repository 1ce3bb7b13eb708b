"""ros2 launch fsmde_ros surround_depth.launch.py [config:=...] [model:=...] [backend:=...]
[namespace:=...] [use_sim_time:=true] [rviz:=true]. The logic lives in fsmde_ros.launch_logic."""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from fsmde_ros.launch_logic import ARGUMENTS, plan_launch


def _processes(context):
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in ARGUMENTS}
    return [Node(package=p.package, executable=p.executable, name=p.name, namespace=p.namespace,
                 parameters=p.parameters, arguments=p.arguments, output="screen")
            for p in plan_launch(values)]


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description) for a in ARGUMENTS]
        + [OpaqueFunction(function=_processes)])
