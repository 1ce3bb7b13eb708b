"""ament_python package definition of fsmde_ros (also a plain pip-installable package)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "fsmde_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml") + glob("config/*.rviz")),
        (f"share/{PACKAGE}/config/rigs", glob("config/rigs/*.yaml")),
        (f"share/{PACKAGE}/config/recipes", glob("config/recipes/*.yaml")),
        (f"share/{PACKAGE}/models", glob("models/*.onnx") + glob("models/*.json") + glob("models/*.md")
         + glob("models/*.safetensors")),
    ],
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.24",
        "opencv-python-headless>=4.8",
        "onnxruntime>=1.17",
        "pyyaml>=6.0",
        "rosbags>=0.10",
    ],
    extras_require={
        # Never installed on machines without an NVIDIA GPU.
        "gpu": ["onnxruntime-gpu>=1.17", "tensorrt>=10.0,<11", "pycuda>=2024.1"],
        # ROS 2 Kilted from PyPI, for machines without /opt/ros. On a robot rclpy comes from /opt/ros.
        "ros": [
            "ros-rclpy",
            "ros-rmw-fastrtps-cpp",
            "ros-std-msgs",
            "ros-sensor-msgs",
            "ros-geometry-msgs",
            "ros-diagnostic-msgs",
            "ros-rosgraph-msgs",
        ],
        # torch is pinned: this version installs as a CPU wheel without a multi-GB CUDA download.
        "train": ["torch==2.13.0", "onnx>=1.16", "safetensors>=0.4", "tqdm>=4.60", "transformers>=4.45"],
        "dev": ["pytest>=8", "ruff>=0.6"],
    },
    zip_safe=True,
    maintainer="fsmde_ros maintainers",
    maintainer_email="maintainers@fsmde-ros.invalid",
    description="Real-time full surround monocular depth estimation for ROS 2.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "surround_depth_node = fsmde_ros.node:main",
            "fsmde-demo = fsmde_ros.tools.demo:main",
            "fsmde-export = fsmde_ros.tools.export:main",
            "fsmde-build-engine = fsmde_ros.tools.build_engine:main",
            "fsmde-bench = fsmde_ros.tools.bench:main",
            "fsmde-synth = fsmde_ros.synth.cli:main",
            "fsmde-replay = fsmde_ros.tools.replay:main",
            "fsmde-record = fsmde_ros.tools.record:main",
            "fsmde-train = fsmde_ros.distill.train:main",
            "fsmde-eval = fsmde_ros.distill.evaluate:main",
            "fsmde-results = fsmde_ros.distill.results:main",
            "fsmde-briges = fsmde_ros.briges.cli:main",
            "fsmde-selfsup-train = fsmde_ros.selfsup.train:main",
            "fsmde-selfsup-eval = fsmde_ros.selfsup.evaluate:main",
        ],
    },
)
