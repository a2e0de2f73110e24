"""Metric functions on hand-made cases whose answers are worked out by hand."""

import math

import numpy as np
import pytest

from relight_core.evaluation import metrics


def test_sad_and_mse_count_every_pixel_of_the_region():
    alpha_true = np.zeros((4, 4))
    alpha = alpha_true.copy()
    alpha[0, 0] = 1.0  # one wrong pixel, off by 1
    alpha[3, 3] = 0.5  # one pixel off by 0.5
    assert metrics.sad(alpha, alpha_true) == pytest.approx(1.5)
    assert metrics.mse(alpha, alpha_true) == pytest.approx((1.0 + 0.25) / 16)
    region = np.zeros((4, 4), bool)
    region[3, 3] = True
    assert metrics.sad(alpha, alpha_true, region) == pytest.approx(0.5)
    assert metrics.mse(alpha, alpha_true, region) == pytest.approx(0.25)


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="shape"):
        metrics.sad(np.zeros((3, 3)), np.zeros((3, 4)))


def test_gradient_kernels_have_unit_norm_and_differentiate_along_x():
    kernel_x, kernel_y = metrics._gaussian_gradient_kernels(1.4)
    assert kernel_x.shape == (9, 9)  # half size ceil(1.4·√(−2 ln(√(2π)·1.4·0.01))) = ceil(3.62)
    assert np.sum(kernel_x ** 2) == pytest.approx(1.0)
    ramp = np.tile(np.arange(20, dtype=float), (20, 1))  # α grows along x only
    magnitude = metrics.gradient_magnitude(ramp / 20)
    centre = magnitude[8:12, 8:12]
    assert np.allclose(centre, centre[0, 0])  # constant slope → constant response
    assert centre[0, 0] > 0


def test_gradient_error_is_zero_for_equal_mattes_and_sees_a_blurred_edge():
    alpha_true = np.zeros((30, 30))
    alpha_true[:, 15:] = 1.0
    assert metrics.gradient_error(alpha_true, alpha_true) == 0.0
    blurred = alpha_true.copy()
    blurred[:, 13:17] = [0.2, 0.4, 0.6, 0.8]
    assert metrics.gradient_error(blurred, alpha_true) > 0
    # a constant offset changes SAD but not gradients: gradient error ignores it
    assert metrics.gradient_error(alpha_true * 0.5 + 0.25, alpha_true * 0.5) == pytest.approx(0.0)


def test_connectivity_error_counts_a_detached_blob_once():
    alpha_true = np.zeros((10, 10))
    alpha_true[2:5, 2:5] = 1.0
    alpha = alpha_true.copy()
    alpha[8, 8] = 1.0  # a speck the truth does not have, not connected to the subject
    # worked by hand: the speck leaves the source region at the first threshold (l = 0),
    # so φ(α) = 1 − 1 = 0 there while φ(α*) = 1 − 0 = 1; everywhere else both φ are 1.
    assert metrics.connectivity_error(alpha, alpha_true) == pytest.approx(1.0)
    assert metrics.connectivity_error(alpha_true, alpha_true) == 0.0


def test_connectivity_error_ignores_small_deviations_below_theta():
    alpha_true = np.zeros((10, 10))
    alpha_true[2:5, 2:5] = 1.0
    alpha = alpha_true.copy()
    alpha[8, 8] = 0.1  # d = 0.1 < θ = 0.15 → φ = 1, same as the truth
    assert metrics.connectivity_error(alpha, alpha_true) == 0.0


def test_matte_errors_divides_the_sums_by_a_thousand():
    alpha_true = np.zeros((10, 10))
    alpha = np.full((10, 10), 0.1)
    errors = metrics.matte_errors(alpha, alpha_true)
    assert errors["sad_k"] == pytest.approx(10.0 / 1000)
    assert errors["mse"] == pytest.approx(0.01)


def test_unknown_band_surrounds_the_edge_only():
    alpha_true = np.zeros((30, 30))
    alpha_true[10:20, 10:20] = 1.0
    band = metrics.unknown_band(alpha_true, width=2)
    assert band[10, 15] and band[9, 15]
    assert not band[15, 15] and not band[0, 0]


def test_angular_error_of_known_angles():
    true = np.zeros((2, 2, 3))
    true[..., 2] = 1.0
    pred = true.copy()
    pred[0, 0] = (1.0, 0.0, 1.0)  # 45°, not normalised on purpose
    pred[0, 1] = (0.0, -1.0, 0.0)  # 90°
    assert metrics.angular_error_deg(pred, true) == pytest.approx((45 + 90) / 4)
    mask = np.array([[True, False], [False, False]])
    assert metrics.angular_error_deg(pred, true, mask) == pytest.approx(45.0)


def test_scale_invariant_error_forgives_a_global_scale_only():
    rng = np.random.default_rng(0)
    true = rng.uniform(0.1, 0.9, (8, 8, 3))
    assert metrics.scale_invariant_mse(2.5 * true, true) == pytest.approx(0.0, abs=1e-20)
    assert metrics.best_scale(2.5 * true, true) == pytest.approx(0.4)
    tinted = true * np.array([1.0, 1.0, 0.5])  # a colour cast is not a global scale
    assert metrics.scale_invariant_relative_error(tinted, true) > 0.05
    # ... unless each channel gets its own scale (white balance forgiven too)
    assert metrics.scale_invariant_relative_error(tinted, true, per_channel=True) == \
        pytest.approx(0.0, abs=1e-9)
    # hand case: pred = (1, 1), true = (1, 3): s = 2, residual (1, 1) → si-MSE = 1
    assert metrics.scale_invariant_mse(np.array([1.0, 1.0]), np.array([1.0, 3.0])) == \
        pytest.approx(1.0)


def test_mae_psnr_and_relative_error_on_a_hand_case():
    true = np.zeros((2, 2, 3))
    pred = np.full((2, 2, 3), 0.1)
    assert metrics.mae(pred, true) == pytest.approx(0.1)
    assert metrics.psnr(pred, true) == pytest.approx(20.0)  # 10·log10(1 / 0.01)
    assert math.isinf(metrics.psnr(true, true))
    assert metrics.relative_error(np.full(3, 1.1), np.ones(3)) == pytest.approx(0.1)


def test_ssim_is_one_for_equal_images_and_drops_with_noise_and_contrast():
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 1, (32, 32, 3))
    assert metrics.ssim(image, image) == pytest.approx(1.0)
    noisy = np.clip(image + rng.normal(0, 0.2, image.shape), 0, 1)
    assert metrics.ssim(noisy, image) < 0.9
    flat = np.full_like(image, image.mean())
    # a flat image keeps the mean but has no structure: the contrast-structure term is ~0
    assert metrics.ssim(flat, image) < 0.1
    mask = np.zeros((32, 32), bool)
    mask[8:24, 8:24] = True
    assert metrics.ssim(image, image, mask) == pytest.approx(1.0)


def test_lab_round_trip_and_reinhard_moves_the_statistics():
    from relight_core.evaluation import baselines, synthetic

    rng = np.random.default_rng(2)
    colours = rng.uniform(0.05, 0.95, (50, 3))
    assert np.allclose(baselines.lab_to_rgb(baselines.rgb_to_lab(colours)), colours, atol=1e-9)
    foreground = rng.uniform(0.05, 0.3, (20, 20, 3)).astype(np.float32)
    background = rng.uniform(0.2, 0.6, (20, 20, 3)).astype(np.float32) * [1.0, 0.7, 0.4]
    alpha = np.ones((20, 20), np.float32)
    moved = baselines.reinhard_transfer(foreground, alpha, background.astype(np.float32))
    moved_lab = baselines.rgb_to_lab(synthetic.srgb_encode(moved)).reshape(-1, 3)
    scene_lab = baselines.rgb_to_lab(synthetic.srgb_encode(background)).reshape(-1, 3)
    # same mean and spread as the background (up to the clip to [0, 1], not reached here)
    assert np.allclose(moved_lab.mean(0), scene_lab.mean(0), atol=1e-3)
    assert np.allclose(moved_lab.std(0), scene_lab.std(0), rtol=1e-2)


def test_plain_paste_is_the_compositing_equation():
    from relight_core.evaluation import baselines

    foreground = np.full((2, 2, 3), 0.8, np.float32)
    background = np.full((2, 2, 3), 0.2, np.float32)
    alpha = np.array([[0.0, 0.25], [0.5, 1.0]], np.float32)
    pasted = baselines.over(foreground, alpha, background)
    assert np.allclose(pasted[..., 0], [[0.2, 0.35], [0.5, 0.8]])
