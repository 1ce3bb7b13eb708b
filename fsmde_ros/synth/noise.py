"""Vectorised value noise for procedural textures (integer hashing, no tables)."""

from __future__ import annotations

import numpy as np


def hash01(ix: np.ndarray, iy: np.ndarray, seed: int | np.ndarray) -> np.ndarray:
    """Uniform pseudo-random float32 in [0, 1) per integer lattice point (ix, iy) and seed."""
    h = (
        np.asarray(ix).astype(np.int64) * 374761393
        + np.asarray(iy).astype(np.int64) * 668265263
        + np.asarray(seed).astype(np.int64) * 1442695041
    ) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * 1274126177) & 0xFFFFFFFF
    h ^= h >> 16
    return (h.astype(np.float32) * np.float32(1.0 / 4294967296.0)).astype(np.float32)


def value_noise(u: np.ndarray, v: np.ndarray, seed: int | np.ndarray) -> np.ndarray:
    """Smooth value noise in [0, 1) with one lattice cell per unit of (u, v)."""
    fu = np.floor(u)
    fv = np.floor(v)
    iu = fu.astype(np.int64)
    iv = fv.astype(np.int64)
    su = (u - fu).astype(np.float32)
    sv = (v - fv).astype(np.float32)
    su = su * su * (3.0 - 2.0 * su)
    sv = sv * sv * (3.0 - 2.0 * sv)
    a = hash01(iu, iv, seed)
    b = hash01(iu + 1, iv, seed)
    c = hash01(iu, iv + 1, seed)
    d = hash01(iu + 1, iv + 1, seed)
    top = a + (b - a) * su
    bottom = c + (d - c) * su
    return top + (bottom - top) * sv


def fractal_noise(u: np.ndarray, v: np.ndarray, seed: int | np.ndarray, octaves: int = 3) -> np.ndarray:
    """Sum of ``octaves`` value-noise layers, each twice as fine and half as strong, in [0, 1)."""
    total = np.zeros(np.shape(u), np.float32)
    amplitude, norm, scale = 1.0, 0.0, 1.0
    for octave in range(octaves):
        total += amplitude * value_noise(u * scale, v * scale, np.asarray(seed) + 7919 * octave)
        norm += amplitude
        amplitude *= 0.5
        scale *= 2.0
    return total / norm
