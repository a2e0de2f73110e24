"""What a user does today without relighting, scored the same way as the pipeline.

Array contracts: foreground and background H×W×3 float32 linear, alpha H×W [0, 1]; results
are linear H×W×3 float32.
"""

from __future__ import annotations

import math

import numpy as np

from .synthetic import srgb_decode, srgb_encode

# Reinhard et al. 2001 (after Ruderman et al. 1998): RGB → LMS cone space, then log10 and a
# decorrelating rotation into lαβ.
_RGB_TO_LMS = np.array([[0.3811, 0.5783, 0.0402], [0.1967, 0.7244, 0.0782],
                        [0.0241, 0.1288, 0.8444]])
_LMS_TO_LAB = np.diag([1 / math.sqrt(3), 1 / math.sqrt(6), 1 / math.sqrt(2)]) @ np.array(
    [[1, 1, 1], [1, 1, -2], [1, -1, 0]], dtype=np.float64)
_LMS_FLOOR = 1e-4  # log of black: clamp, as every implementation must


def over(foreground: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Plain paste: foreground · α + background · (1 − α), linear."""
    weight = alpha[..., None]
    return (foreground * weight + background * (1 - weight)).astype(np.float32)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """Display-encoded RGB (..., 3) → Ruderman lαβ (..., 3) float64."""
    lms = np.clip(np.asarray(rgb, np.float64) @ _RGB_TO_LMS.T, _LMS_FLOOR, None)
    return np.log10(lms) @ _LMS_TO_LAB.T


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_lab` (..., 3) float64."""
    lms = 10 ** (np.asarray(lab, np.float64) @ np.linalg.inv(_LMS_TO_LAB).T)
    return lms @ np.linalg.inv(_RGB_TO_LMS).T


def reinhard_transfer(foreground: np.ndarray, alpha: np.ndarray, background: np.ndarray
                      ) -> np.ndarray:
    """Colour statistics of the background moved onto the subject (Reinhard et al. 2001).

    On display-encoded values (as the paper and photo editors work), in lαβ: the subject's
    per-channel mean and standard deviation (inside α ≥ 0.5) become the whole background's.
    Fewer than 16 subject pixels: the foreground is returned unchanged.
    """
    inside = np.asarray(alpha) >= 0.5
    if inside.sum() < 16:
        return np.asarray(foreground, np.float32).copy()
    subject = rgb_to_lab(srgb_encode(foreground))
    scene = rgb_to_lab(srgb_encode(background)).reshape(-1, 3)
    mean_s, std_s = subject[inside].mean(0), subject[inside].std(0) + 1e-6
    moved = (subject - mean_s) * (scene.std(0) / std_s) + scene.mean(0)
    return srgb_decode(np.clip(lab_to_rgb(moved), 0, 1))
