"""fsmde_ros: real-time full surround monocular depth estimation for ROS 2."""

__version__ = "0.1.0"
