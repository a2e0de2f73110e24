"""bench/lighting_oracle.py: each "replaced by the truth" variant removes exactly the error of
the part it replaces (else the decomposition would point at the wrong weakness)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_SPEC = importlib.util.spec_from_file_location(
    "lighting_oracle", Path(__file__).resolve().parents[1] / "bench" / "lighting_oracle.py")
oracle = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(oracle)


def _sunny_sh() -> np.ndarray:
    """A directional light: strong L1 up and toward the camera, some L2, warm."""
    sh = np.zeros((9, 3))
    sh[0] = (1.0, 0.95, 0.85)
    # the first band (rows x, y, z) one direction in every channel: turning its luminance
    # vector back then restores each channel exactly
    sh[oracle.L1] = np.outer(np.array([-0.2, 0.5, 0.3]), (1.0, 0.96, 0.8))
    sh[6] = (0.1, 0.1, 0.09)
    return sh


@pytest.mark.parametrize("a, b", [((1, 0, 0), (0, 1, 0)), ((0, 0.6, 0.8), (0.3, -0.2, 0.9)),
                                  ((0, 0, 1), (0, 0, -1))])
def test_rotation_between_takes_a_to_b(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    turn = oracle._rotation_between(a, b)
    assert np.allclose(turn @ turn.T, np.eye(3), atol=1e-9)
    assert np.allclose(turn @ (a / np.linalg.norm(a)), b / np.linalg.norm(b), atol=1e-9)


def test_each_variant_removes_the_error_of_its_own_part():
    truth = _sunny_sh()
    score = lambda est, true=truth: oracle.bench.scores(est, true)["scale_free_rmse"]  # noqa: E731
    # the light from another direction (the first band turned)
    turned = truth.copy()
    turned[oracle.L1] = oracle._rotation_between(np.array([0, 0.6, 0.8]),
                                                 np.array([0.6, 0.0, 0.8])) @ truth[oracle.L1]
    assert score(turned) > 0.05
    assert score(oracle.true_direction(turned, truth)) < 1e-6
    # the light's colour wrong in every band alike
    tinted = truth * np.array([0.8, 1.0, 1.3])
    assert score(tinted) > 0.05
    assert score(oracle.true_colour(tinted, truth)) < 1e-6
    # too weak a directional part, then a wrong second band as well
    flat = truth.copy()
    flat[oracle.L1] *= 0.4
    assert score(oracle.true_strength(flat, truth)) < 1e-6
    flat[4:9] = 0.0
    fixed = oracle.true_second_band(oracle.true_strength(oracle.true_direction(flat, truth),
                                                         truth), truth)
    assert score(flat) > 0.05 and score(fixed) < 1e-6


def test_regions_partition_the_sphere_and_the_frame_is_the_pinhole_view():
    directions = oracle.envmap.direction_grid(64)
    masks = oracle.region_masks(directions, hfov_deg=70.0, aspect=0.75)
    assert list(masks) == list(oracle.REGIONS)
    count = sum(mask.astype(int) for mask in masks.values())
    assert np.all(count == 1)  # every direction in exactly one region
    ahead = np.array([[[0.0, 0.0, -1.0]]])
    beyond_side = np.array([[[np.sin(np.radians(40)), 0.0, -np.cos(np.radians(40))]]])
    assert oracle.region_masks(ahead, 70.0, 0.75)["the frame"][0, 0]
    assert oracle.region_masks(beyond_side, 70.0, 0.75)["front, below the horizon"][0, 0]


def test_replacing_the_region_that_is_wrong_removes_the_error():
    height = 32
    directions = oracle.envmap.direction_grid(height)
    masks = oracle.region_masks(directions, 70.0, 0.75)
    truth_panorama = np.full((height, 2 * height, 3), 0.2, np.float32)
    truth_panorama[directions[..., 1] > 0.5] = (2.0, 1.9, 1.7)  # a bright sky overhead
    truth = oracle.envmap.project_sh(truth_panorama)
    estimate = truth_panorama.copy()
    wrong = masks["behind, above the horizon"]
    estimate[wrong] = 0.05  # the unseen sky far too dark
    errors = oracle.replaced_regions(estimate, truth_panorama, truth, masks)
    assert errors["estimate"] > 0.05
    assert errors["behind, above the horizon"] < 1e-5
    assert errors["the frame"] == pytest.approx(errors["estimate"], abs=1e-6)
