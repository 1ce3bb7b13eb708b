"""rosbag2 writing and reading with rosbags: images, camera infos, raw messages, errors."""

import numpy as np
import pytest

from fsmde_ros.bagio import (
    CAMERA_INFO,
    IMAGE,
    TYPESTORE,
    BagError,
    BagWriter,
    MessageError,
    bag_info,
    camera_info_msg,
    camera_topics,
    deserialize,
    image_array,
    image_msg,
    image_rgb,
    intrinsics_from_camera_info,
    ns_from_stamp,
    read_messages,
    write_surround_bag,
)
from fsmde_ros.datasets.sample import SurroundSample


def _samples(count=3, n=2, h=5, w=7):
    rng = np.random.default_rng(0)
    K = np.array([[20.0, 0, 3.0], [0, 20.0, 2.0], [0, 0, 1]])
    for f in range(count):
        base = 1_700_000_000_000_000_000 + f * 83_333_333
        yield SurroundSample(
            images=rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8),
            K=np.stack([K] * n),
            cam2ego=np.stack([np.eye(4)] * n),
            sparse_depth=np.full((n, h, w), np.nan, np.float32),
            camera_names=("CAM_B", "CAM_A")[:n],
            stamps_ns=np.array([base + 10_000_000, base][:n], np.int64),
            frame_index=f,
        )


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_surround_bag_roundtrip(tmp_path, storage):
    samples = list(_samples())
    info = write_surround_bag(tmp_path / "bag", samples, storage=storage, transport_delay_ns=2_000_000)
    assert info.message_count == 3 * 2 * 2
    assert info.topics[camera_topics("CAM_A")[0]] == (IMAGE, 3)
    assert info.topics["/cameras/CAM_B/camera_info"] == (CAMERA_INFO, 3)
    messages = list(read_messages(tmp_path / "bag"))
    stamps = [m.stamp_ns for m in messages]
    assert stamps == sorted(stamps)
    # Per frame the earlier camera (CAM_A) comes first, CameraInfo before its image.
    assert [m.topic for m in messages[:2]] == ["/cameras/CAM_A/camera_info", "/cameras/CAM_A/image_raw"]
    images = [m for m in messages if m.msgtype == IMAGE and m.topic.startswith("/cameras/CAM_B")]
    for sample, message in zip(samples, images, strict=True):
        msg = deserialize(message)
        assert msg.header.frame_id == "CAM_B" and msg.encoding == "rgb8"
        assert ns_from_stamp(msg.header.stamp) == sample.stamps_ns[0]
        assert message.stamp_ns == sample.stamps_ns[0] + 2_000_000
        np.testing.assert_array_equal(image_rgb(msg), sample.images[0])
    info_msg = deserialize(next(m for m in messages if m.msgtype == CAMERA_INFO))
    np.testing.assert_allclose(intrinsics_from_camera_info(info_msg), samples[0].K[1])
    assert (info_msg.width, info_msg.height) == (7, 5)


def test_read_selected_topics_and_time_window(tmp_path):
    write_surround_bag(tmp_path / "bag", _samples())
    t0 = bag_info(tmp_path / "bag").start_ns
    picked = list(read_messages(tmp_path / "bag", ["/cameras/CAM_A/image_raw"], start_ns=t0 + 1))
    assert [m.topic for m in picked] == ["/cameras/CAM_A/image_raw"] * 2
    with pytest.raises(BagError, match=r"no topic\(s\) \['/nope'\]"):
        list(read_messages(tmp_path / "bag", ["/nope"]))


def test_raw_write_and_typed_write(tmp_path):
    depth = np.arange(12, dtype=np.float32).reshape(3, 4)
    msg = image_msg(depth, 5, "cam")
    with BagWriter(tmp_path / "raw") as writer:
        writer.write_raw("/depth", IMAGE, 10, TYPESTORE.serialize_cdr(msg, IMAGE))
        writer.write("/depth", msg, 20)
        with pytest.raises(BagError, match="already carries sensor_msgs/msg/Image"):
            writer.write("/depth", camera_info_msg(np.eye(3), 4, 3, 0, "cam"), 30)
        with pytest.raises(BagError, match="not in the ROS 2 Kilted typestore"):
            writer.write_raw("/x", "my_pkg/msg/Nope", 30, b"")
    out = list(read_messages(tmp_path / "raw"))
    assert [m.stamp_ns for m in out] == [10, 20]
    np.testing.assert_array_equal(image_array(deserialize(out[1])), depth)


def test_image_encodings_and_padded_rows():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    bgr = image_msg(rgb[..., ::-1], 0, "c", "bgr8")
    np.testing.assert_array_equal(image_rgb(bgr), rgb)
    mono = image_msg(rgb[..., 0], 0, "c")
    assert mono.encoding == "mono8" and image_rgb(mono).shape == (2, 3, 3)
    padded = image_msg(rgb, 0, "c")
    padded.step = 12
    padded.data = np.concatenate([np.pad(r, (0, 3)) for r in rgb.reshape(2, 9)])
    np.testing.assert_array_equal(image_rgb(padded), rgb)
    big = image_msg(np.array([[1.5, -2.0]], np.float32), 0, "c")
    big.is_bigendian = 1
    big.data = np.array([[1.5, -2.0]], ">f4").view(np.uint8).reshape(-1)
    np.testing.assert_array_equal(image_array(big), [[1.5, -2.0]])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: image_msg(np.zeros((2, 2, 3), np.float32), 0, "c"), "no default encoding"),
        (lambda: image_msg(np.zeros((2, 2), np.uint8), 0, "c", "yuv422"), "unsupported encoding"),
        (lambda: image_msg(np.zeros((2, 2), np.uint8), 0, "c", "rgb8"), "needs uint8 with 3 channel"),
        (lambda: image_msg(np.zeros((2, 2), np.uint8), -1, "c"), "negative"),
        (lambda: camera_info_msg(np.zeros((3, 3)), 4, 3, 0, "c"), "pinhole"),
    ],
)
def test_bad_messages_are_rejected(make, message):
    with pytest.raises(MessageError, match=message):
        make()


def test_truncated_image_data_is_rejected():
    msg = image_msg(np.zeros((2, 3, 3), np.uint8), 0, "c")
    msg.data = msg.data[:-1]
    with pytest.raises(MessageError, match="does not match 17 data bytes"):
        image_array(msg)


def test_bad_bag_paths(tmp_path):
    with pytest.raises(BagError, match="bag not found"):
        bag_info(tmp_path / "missing")
    (tmp_path / "junk").mkdir()
    with pytest.raises(BagError, match="not a readable rosbag2"):
        list(read_messages(tmp_path / "junk"))
    write_surround_bag(tmp_path / "bag", _samples(1))
    with pytest.raises(BagError, match="already exists"):
        BagWriter(tmp_path / "bag")
    with pytest.raises(BagError, match="unknown storage 'rosbag1'"):
        BagWriter(tmp_path / "other", storage="rosbag1")
    with pytest.raises(BagError, match="no samples"):
        write_surround_bag(tmp_path / "empty", [])
