"""bench/bench_shadows.py: the near-camera measure sees a face in the shadow of its own cliff
and not a smooth one, and switching the rule off for a column leaves geometry as it was."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from relight_core import geometry

_SPEC = importlib.util.spec_from_file_location(
    "bench_shadows", Path(__file__).resolve().parents[1] / "bench" / "bench_shadows.py")
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def _frontal(height: np.ndarray) -> geometry.Geometry:
    normals = np.zeros((*height.shape, 3), np.float32)
    normals[..., 2] = 1.0
    return geometry.Geometry(normals=normals, height=height.astype(np.float32),
                             face_weight=np.ones(height.shape, np.float32),
                             skin=np.ones(height.shape, bool))


def test_near_camera_share_sees_a_cliff_the_normals_do_not_show():
    alpha = np.ones((120, 120), np.float32)
    smooth = np.full((120, 120), 80.0)
    cliff = smooth.copy()
    cliff[60:] = 30.0  # a step the frontal normals do not show
    assert bench.shadow_shares(_frontal(smooth), alpha)[0] == 0.0
    near, side = bench.shadow_shares(_frontal(cliff), alpha)
    assert near > 0.05 and side > 0.0


def test_measure_restores_the_rule_it_switches_off():
    alpha = np.zeros((240, 240), np.float32)
    cv2.circle(alpha, (120, 130), 90, 1.0, -1)
    before = geometry.SLOPE_LENGTH_FRACTION
    row = bench.measure(alpha, [])
    assert geometry.SLOPE_LENGTH_FRACTION == before
    assert set(row) == {column for column, _, _ in bench.VARIANTS}
    assert all(0.0 <= value <= 1.0 for cells in row.values() for value in cells.values())
