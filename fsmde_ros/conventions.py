"""Units, frames and image conventions of fsmde_ros, stated once.

Every module follows these; none restates them.

- Depth is z-depth along the camera's optical axis, float32, in metres (REP 117/118). Invalid or
  unknown depth is NaN, never 0 or inf, in every depth image the project publishes or stores.
  Sparse ground-truth depth (LiDAR projected into a camera) uses NaN where there is no return.
- Camera optical frame (REP 103 ``_optical``): x right, y down, z forward. Pixel (u, v) has its
  centre at integer coordinates; u along image columns, v along rows.
- Vehicle frame ``base_link`` (REP 103): x forward, y left, z up. ``cam2ego`` is the 4x4 transform
  of points from a camera's optical frame into ``base_link``.
- Intrinsics K are 3x3 pinhole matrices of undistorted images; resizing an image by (sx, sy) scales
  fx, cx by sx and fy, cy by sy (see ``geometry.scale_intrinsics``).
- Images entering the network are uint8 RGB, shape (N, H, W, 3), N cameras in rig order.
- Stamps are integer nanoseconds since the epoch of the clock in use.
"""

DEPTH_ENCODING = "32FC1"
"""sensor_msgs/Image encoding of every published depth and confidence image."""

VEHICLE_FRAME = "base_link"
"""Frame of the fused point cloud and of every camera extrinsic."""

NS_PER_S = 1_000_000_000
