"""Composite: the relit person over the new background, in linear light.

Contract
--------
``cover(background, height, width) -> (height, width, 3) float32``: the background scaled
(aspect kept) until it covers the canvas, then cropped at the centre.
``over(relit, alpha, background) -> (H, W, 3) float32``: relit × α + background × (1 − α),
all linear, straight colour; exact where α is 0 or 1.
"""

from __future__ import annotations

import math

import numpy as np

from .io import resize_linear


def cover(background: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale ``background`` (h, w, 3) to cover a height×width canvas and crop its centre."""
    bg_h, bg_w = background.shape[:2]
    scale = max(height / bg_h, width / bg_w)
    new_w = max(width, math.ceil(bg_w * scale - 1e-6))
    new_h = max(height, math.ceil(bg_h * scale - 1e-6))
    scaled = resize_linear(np.ascontiguousarray(background[..., :3], np.float32), new_w, new_h)
    y0 = (new_h - height) // 2
    x0 = (new_w - width) // 2
    return np.ascontiguousarray(scaled[y0:y0 + height, x0:x0 + width])


def over(relit: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """relit (H, W, 3) × alpha (H, W) + background (H, W, 3) × (1 − alpha), linear float32."""
    a = alpha[..., None].astype(np.float32)
    out = background - a * background  # background × (1 − α), exact for α ∈ {0, 1}
    out += a * relit
    return out.astype(np.float32, copy=False)
