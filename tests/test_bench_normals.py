"""bench/bench_normals.py: the smoothness measure sees bands and leaves smooth normals at 0, and
switching a rule off for a column leaves the geometry module as it was."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from relight_core import geometry

_SPEC = importlib.util.spec_from_file_location(
    "bench_normals", Path(__file__).resolve().parents[1] / "bench" / "bench_normals.py")
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def test_fine_variation_is_zero_for_smooth_normals_and_sees_bands():
    rows, cols = np.mgrid[0:200, 0:200].astype(np.float32)
    tilt = 0.3 * (cols - 100) / 100  # a gentle, smooth turn across the image
    smooth = geometry.normalize(np.dstack([tilt, np.zeros_like(tilt), np.ones_like(tilt)]))
    banded = geometry.normalize(np.dstack([tilt, 0.3 * np.sign(np.sin(rows / 4)),
                                           np.ones_like(tilt)]))
    where = np.zeros((200, 200), bool)
    where[40:160, 40:160] = True
    assert bench.fine_variation_deg(smooth, where, 6.0) < 0.05
    assert bench.fine_variation_deg(banded, where, 6.0) > 5.0


def test_measure_restores_the_rules_it_switches_off():
    alpha = np.zeros((240, 240), np.float32)
    cv2.circle(alpha, (120, 130), 90, 1.0, -1)
    alpha[20:60, 118:122] = 0.0
    before = (geometry.ENVELOPE_SIGMA, geometry.FRAME_CUT_RUN)
    row = bench.measure(alpha, [])
    assert (geometry.ENVELOPE_SIGMA, geometry.FRAME_CUT_RUN) == before
    assert set(row) == {column for column, _, _ in bench.VARIANTS}
    assert all(np.isfinite(value) and value >= 0 for value in row.values())
