"""A tiny stand-in for relight_core.pipeline, for protocol tests only.

It has the pipeline's names: Settings, Layers and RelightError are the real ones (so they cannot
drift apart); Relighter is a fake doing trivially checkable arithmetic, so the worker's framing,
caching, cancel and pixel conversions can be tested in milliseconds. Real end-to-end tests use
the real pipeline.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

import numpy as np

from relight_core.pipeline import Layers, RelightError, Settings  # noqa: F401 - the engine's names


class Relighter:
    """alpha = portrait alpha (or 1) × selection (or 1), albedo = portrait,
    shading = 2 × strength (exceeds 1), specular = 0.1, relit = albedo × shading + specular,
    composite over the background."""

    prepare_seconds = 0.0  # tests raise it to make prepare long enough to cancel
    prepared_count = 0
    # every instance made (weakly) and, from index ``since`` on, the most alive at once: what
    # the worker's cache holds while it prepares
    made: list = []
    since = 0
    most_alive = 0

    def __init__(self, portrait_linear, settings, progress=None, selection=None):
        cls = type(self)
        cls.made.append(weakref.ref(self))
        cls.most_alive = max(cls.most_alive, cls.alive())
        self.portrait = np.asarray(portrait_linear, np.float32)
        self.selection = selection
        self.settings = settings
        self.progress = progress or (lambda stage, fraction: None)

    @classmethod
    def alive(cls) -> int:
        return sum(ref() is not None for ref in cls.made[cls.since:])

    def prepare(self) -> None:
        steps = 20
        for step in range(steps + 1):
            self.progress("matte", step / steps)
            time.sleep(self.prepare_seconds / steps)
        if float(self.portrait[..., :3].max()) == 0.0:
            raise RelightError("no_person", "no person found in the portrait")
        type(self).prepared_count += 1

    def relight(self, background_linear=None, hdri=None, settings=None, size=None) -> Layers:
        settings = settings or self.settings
        rgb = self.portrait[..., :3]
        alpha = self.portrait[..., 3] if self.portrait.shape[2] == 4 else np.ones(rgb.shape[:2])
        if self.selection is not None:
            alpha = alpha * self.selection
        if size is not None:
            step = max(1, int(np.ceil(max(rgb.shape[:2]) / size)))
            rgb, alpha = rgb[::step, ::step], alpha[::step, ::step]
        alpha = alpha.astype(np.float32)
        shading = np.full_like(rgb, 2.0 * settings.strength)
        specular = np.full_like(rgb, 0.1)
        relit = rgb * shading + specular
        back = np.zeros_like(rgb)
        if background_linear is not None:  # nearest-neighbour stretch, enough for a fake
            rows = np.arange(rgb.shape[0]) * background_linear.shape[0] // rgb.shape[0]
            cols = np.arange(rgb.shape[1]) * background_linear.shape[1] // rgb.shape[1]
            back = background_linear[rows][:, cols, :3]
        composite = relit * alpha[..., None] + back * (1 - alpha[..., None])
        normals = np.zeros_like(rgb)
        normals[..., 2] = 1.0
        return Layers(alpha=alpha, foreground=rgb, normals=normals, albedo=rgb, shading=shading,
                      specular=specular, relit=relit, composite=composite.astype(np.float32),
                      light={"sh": np.zeros((9, 3)).tolist()}, faces=1,
                      timings={"relight": 0.0}, warnings=[])


def engine() -> Any:
    import sys

    return sys.modules[__name__]
