"""Gaussian pixel noise, as the paper adds to its images."""

from __future__ import annotations

import numpy as np


def add_gaussian_noise(x: np.ndarray, sigma: float, seed: int, clip: bool = False) -> np.ndarray:
    """Return ``x + N(0, sigma^2)`` as float32, seeded; clipped to [0, 1] only when asked.

    The paper does not clip, so its noisy images leave [0, 1] slightly.
    """
    if sigma < 0:
        raise ValueError(f"noise sigma must be >= 0, got {sigma}")
    rng = np.random.default_rng(seed)
    noisy = x + rng.normal(0.0, sigma, size=x.shape).astype(np.float32)
    if clip:
        np.clip(noisy, 0.0, 1.0, out=noisy)
    return noisy.astype(np.float32, copy=False)
