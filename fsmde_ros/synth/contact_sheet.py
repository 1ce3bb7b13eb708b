"""Contact sheet of SynthSurround samples: RGB, dense depth, classes, LiDAR and reflective mask per camera."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from fsmde_ros.datasets.sample import SurroundSample
from fsmde_ros.synth.classes import CLASS_COLOURS

TILE = (112, 200)  # H, W of one camera tile


def colourise_depth(depth: np.ndarray, max_depth: float = 80.0) -> np.ndarray:
    """RGB (H, W, 3) uint8 of a depth image: inverse depth in the turbo colour map, black where NaN."""
    valid = np.isfinite(depth)
    inv = np.clip(1.0 / np.maximum(np.where(valid, depth, max_depth), 1e-3), 1.0 / max_depth, 1.0)
    scaled = (np.log(inv * max_depth) / np.log(max_depth) * 255).astype(np.uint8)
    rgb = cv2.applyColorMap(scaled, cv2.COLORMAP_TURBO)[..., ::-1].copy()
    rgb[~valid] = 0
    return rgb


def _tile(img: np.ndarray, nearest: bool = False) -> np.ndarray:
    return cv2.resize(img, (TILE[1], TILE[0]), interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)


def _lidar_overlay(image: np.ndarray, sparse: np.ndarray, reflective: np.ndarray) -> np.ndarray:
    out = image.astype(np.float32)
    out[reflective] = 0.45 * out[reflective] + 0.55 * np.array([255, 0, 255])
    small = _tile(out.astype(np.uint8))
    sy, sx = TILE[0] / image.shape[0], TILE[1] / image.shape[1]
    v, u = np.nonzero(np.isfinite(sparse))
    colours = colourise_depth(sparse[v, u][None, :])[0]
    small[np.minimum((v * sy).astype(int), TILE[0] - 1), np.minimum((u * sx).astype(int), TILE[1] - 1)] = (
        colours
    )
    return small


def contact_sheet(samples: Sequence[SurroundSample], out: str | Path) -> Path:
    """Write a PNG with, per sample, four rows over its cameras: RGB, depth, classes, LiDAR + reflective."""
    palette = np.asarray(CLASS_COLOURS, np.uint8)
    blocks = []
    for sample in samples:
        n = sample.num_cameras
        rows = [
            [_tile(sample.images[i]) for i in range(n)],
            [_tile(colourise_depth(sample.depth[i]), nearest=True) for i in range(n)],
            [_tile(palette[sample.semantic[i]], nearest=True) for i in range(n)],
            [
                _lidar_overlay(sample.images[i], sample.sparse_depth[i], sample.reflective[i])
                for i in range(n)
            ],
        ]
        block = np.concatenate([np.concatenate(r, axis=1) for r in rows], axis=0)
        for i, name in enumerate(sample.camera_names):
            cv2.putText(
                block,
                name,
                (i * TILE[1] + 4, 12),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.35,
                (255, 255, 255),
                1,
                cv2.LINE_AA,
            )
        cv2.putText(
            block,
            sample.sequence,
            (4, TILE[0] - 6),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.35,
            (255, 255, 0),
            1,
            cv2.LINE_AA,
        )
        blocks.append(block)
        blocks.append(np.full((4, block.shape[1], 3), 255, np.uint8))
    sheet = np.concatenate(blocks[:-1], axis=0)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), np.ascontiguousarray(sheet[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f"{out}: could not write the contact sheet")
    return out
