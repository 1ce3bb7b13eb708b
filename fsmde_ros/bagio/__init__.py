"""rosbag2 reading and writing (mcap, sqlite3) with the ``rosbags`` library; no ROS install needed."""

from fsmde_ros.bagio.bag import BagError, BagInfo, BagMessage, BagWriter, bag_info, deserialize, read_messages
from fsmde_ros.bagio.messages import (
    CAMERA_INFO,
    IMAGE,
    TYPESTORE,
    MessageError,
    camera_info_msg,
    image_array,
    image_msg,
    image_rgb,
    intrinsics_from_camera_info,
    ns_from_stamp,
    stamp_from_ns,
)
from fsmde_ros.bagio.surround import (
    camera_topics,
    surround_topic_types,
    write_surround_bag,
    write_surround_frame,
)

__all__ = [
    "CAMERA_INFO", "IMAGE", "TYPESTORE", "BagError", "BagInfo", "BagMessage", "BagWriter", "MessageError",
    "bag_info", "camera_info_msg", "camera_topics", "deserialize", "image_array", "image_msg", "image_rgb",
    "intrinsics_from_camera_info", "ns_from_stamp", "read_messages", "stamp_from_ns",
    "surround_topic_types", "write_surround_bag", "write_surround_frame",
]
