"""Composite: the relit person over the new background, in linear light.

Contract
--------
``cover(background, height, width) -> (height, width, 3) float32``: the background scaled
(aspect kept) until it covers the canvas, then cropped at the centre.
``over(relit, alpha, background, out=None) -> (H, W, 3) float32``: relit × α + background ×
(1 − α), all linear, straight colour; exact where α is 0 or 1. ``out`` may be ``background``
itself (composited in place).
"""

from __future__ import annotations

import math

import numpy as np

from .io import resize_linear


def cover(background: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale ``background`` (h, w, 3) to cover a height×width canvas and crop its centre.

    The centre region of the canvas's aspect is cut from the source first and resized once,
    so no larger-than-canvas intermediate is made (12 MP canvases are 144 MB each).
    """
    bg_h, bg_w = background.shape[:2]
    scale = max(height / bg_h, width / bg_w)
    src_w = min(bg_w, width / scale)
    src_h = min(bg_h, height / scale)
    x0 = (bg_w - src_w) / 2
    y0 = (bg_h - src_h) / 2
    left, top = int(math.floor(x0)), int(math.floor(y0))
    right, bottom = int(math.ceil(x0 + src_w)), int(math.ceil(y0 + src_h))
    region = np.ascontiguousarray(background[top:bottom, left:right, :3], np.float32)
    return resize_linear(region, width, height)


def over(relit: np.ndarray, alpha: np.ndarray, background: np.ndarray,
         out: np.ndarray | None = None) -> np.ndarray:
    """relit (H, W, 3) × alpha (H, W) + background (H, W, 3) × (1 − alpha), linear float32.

    ``out``: an (H, W, 3) float32 array to write the result into, ``background`` included."""
    a = alpha[..., None].astype(np.float32, copy=False)
    if out is None:
        out = np.empty(relit.shape, np.float32)
    for top in range(0, out.shape[0], 256):  # in bands: no full-size temporary (48–144 MB)
        band = slice(top, top + 256)
        np.multiply(background[band], 1.0 - a[band], out=out[band])  # exact where α is 0 or 1
        out[band] += relit[band] * a[band]
    return out
