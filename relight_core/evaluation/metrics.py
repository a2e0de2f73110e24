"""Error measures for every layer the pipeline produces, against ground truth.

Array contracts (all float inputs; nothing is modified in place):

* alpha mattes: H×W in [0, 1]; ``region`` is an optional H×W bool mask (the trimap's unknown
  band in the matting literature); without it the whole image counts.
* normals: H×W×3 unit vectors (camera space); ``mask`` H×W bool.
* colour images: H×W×3 float; the caller chooses the encoding (the quality bench compares
  sRGB-encoded values clipped to [0, 1], what an artist sees).

Matting errors follow the alphamatting.com benchmark (Rhemann et al., CVPR 2009, "A Perceptually
Motivated Online Benchmark for Image Matting") as implemented by the Deep Image Matting
evaluation code (Xu et al. 2017): SAD = Σ|α − α*|, MSE = mean (α − α*)², gradient error =
Σ (|∇α| − |∇α*|)² with first-order Gaussian derivative filters of σ = 1.4, connectivity error =
Σ |φ(α) − φ(α*)| with threshold step 0.1 and θ = 0.15. Following that literature, SAD, gradient
and connectivity are *sums*; tables usually print them divided by 1000.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from scipy import ndimage

_EPS = 1e-12


def _region(shape: tuple[int, ...], region: np.ndarray | None) -> np.ndarray:
    if region is None:
        return np.ones(shape[:2], bool)
    region = np.asarray(region, bool)
    if region.shape != tuple(shape[:2]):
        raise ValueError(f"region has shape {region.shape}, the images {shape[:2]}")
    return region


def _pair(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, np.float64)
    true = np.asarray(true, np.float64)
    if pred.shape != true.shape:
        raise ValueError(f"prediction has shape {pred.shape}, ground truth {true.shape}")
    return pred, true


# ------------------------------------------------------------------------------------- matting

def sad(alpha: np.ndarray, alpha_true: np.ndarray, region: np.ndarray | None = None) -> float:
    """Sum of absolute differences Σ|α − α*| over the region (not divided by 1000)."""
    alpha, alpha_true = _pair(alpha, alpha_true)
    return float(np.abs(alpha - alpha_true)[_region(alpha.shape, region)].sum())


def mse(pred: np.ndarray, true: np.ndarray, region: np.ndarray | None = None) -> float:
    """Mean squared error over the region (every channel of the region's pixels counts)."""
    pred, true = _pair(pred, true)
    selected = (pred - true)[_region(pred.shape, region)]
    return float(np.mean(selected ** 2)) if selected.size else 0.0


def _gaussian_gradient_kernels(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The benchmark's ``gaussgradient`` kernels: G(x)·G'(y) pairs, each scaled to unit L2 norm."""
    half = int(math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * 1e-2))))
    coords = np.arange(-half, half + 1, dtype=np.float64)
    gauss = np.exp(-coords ** 2 / (2 * sigma ** 2)) / (sigma * math.sqrt(2 * math.pi))
    dgauss = -coords / sigma ** 2 * gauss
    kernel_x = np.outer(gauss, dgauss)  # rows vary slowly (Gaussian), columns differentiate
    kernel_x /= math.sqrt(np.sum(kernel_x ** 2))
    return kernel_x, kernel_x.T.copy()


def gradient_magnitude(alpha: np.ndarray, sigma: float = 1.4) -> np.ndarray:
    """|∇α| with the benchmark's normalised first-order Gaussian derivative filters → H×W."""
    kernel_x, kernel_y = _gaussian_gradient_kernels(sigma)
    alpha = np.asarray(alpha, np.float64)
    grad_x = ndimage.correlate(alpha, kernel_x, mode="nearest")
    grad_y = ndimage.correlate(alpha, kernel_y, mode="nearest")
    return np.hypot(grad_x, grad_y)


def gradient_error(alpha: np.ndarray, alpha_true: np.ndarray,
                   region: np.ndarray | None = None, sigma: float = 1.4) -> float:
    """Σ (|∇α| − |∇α*|)² over the region (Rhemann et al. 2009, q = 2; not divided by 1000)."""
    alpha, alpha_true = _pair(alpha, alpha_true)
    diff = gradient_magnitude(alpha, sigma) - gradient_magnitude(alpha_true, sigma)
    return float((diff ** 2)[_region(alpha.shape, region)].sum())


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, count = ndimage.label(mask)  # 4-connectivity, as the benchmark
    if count == 0:
        return np.zeros_like(mask, bool)
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (int(np.argmax(sizes)) + 1)


def connectivity_error(alpha: np.ndarray, alpha_true: np.ndarray,
                       region: np.ndarray | None = None, step: float = 0.1,
                       theta: float = 0.15) -> float:
    """Σ |φ(α) − φ(α*)| over the region (Rhemann et al. 2009, p = 1; not divided by 1000).

    l_i is the highest threshold at which pixel i still belongs to the largest 4-connected
    component of {α ≥ t} ∩ {α* ≥ t}; φ(α)_i = 1 − d_i·[d_i ≥ θ] with d_i = α_i − l_i.
    """
    alpha, alpha_true = _pair(alpha, alpha_true)
    thresholds = np.arange(0.0, 1.0 + step / 2, step)
    level = np.full(alpha.shape, -1.0)
    for previous, threshold in zip(thresholds[:-1], thresholds[1:], strict=True):
        source = _largest_component((alpha >= threshold) & (alpha_true >= threshold))
        newly_disconnected = (level == -1) & ~source
        level[newly_disconnected] = previous
    level[level == -1] = 1.0

    def phi(values: np.ndarray) -> np.ndarray:
        distance = values - level
        return 1.0 - distance * (distance >= theta)

    error = np.abs(phi(alpha) - phi(alpha_true))
    return float(error[_region(alpha.shape, region)].sum())


def matte_errors(alpha: np.ndarray, alpha_true: np.ndarray,
                 region: np.ndarray | None = None) -> dict[str, float]:
    """All four matting errors; SAD, gradient and connectivity divided by 1000 as tables print."""
    return {
        "sad_k": sad(alpha, alpha_true, region) / 1000,
        "mse": mse(alpha, alpha_true, region),
        "grad_k": gradient_error(alpha, alpha_true, region) / 1000,
        "conn_k": connectivity_error(alpha, alpha_true, region) / 1000,
    }


def unknown_band(alpha_true: np.ndarray, width: int = 5) -> np.ndarray:
    """The trimap-style evaluation region: pixels within ``width`` px of a fractional alpha."""
    alpha_true = np.asarray(alpha_true)
    fractional = (alpha_true > 0.0) & (alpha_true < 1.0)
    edge = ndimage.binary_dilation(alpha_true >= 1.0) & ~ndimage.binary_erosion(alpha_true >= 1.0)
    return ndimage.binary_dilation(fractional | edge, iterations=max(1, width))


# ------------------------------------------------------------------------------------ geometry

def angular_error_deg(normals: np.ndarray, normals_true: np.ndarray,
                      mask: np.ndarray | None = None) -> float:
    """Mean angle (degrees) between predicted and true normals inside the mask."""
    normals, normals_true = _pair(normals, normals_true)
    unit = normals / np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), _EPS)
    unit_true = normals_true / np.maximum(np.linalg.norm(normals_true, axis=-1, keepdims=True),
                                          _EPS)
    cosine = np.clip(np.sum(unit * unit_true, axis=-1), -1.0, 1.0)
    angles = np.degrees(np.arccos(cosine))[_region(normals.shape, mask)]
    return float(angles.mean()) if angles.size else 0.0


# -------------------------------------------------------------------------------------- albedo

def best_scale(pred: np.ndarray, true: np.ndarray, mask: np.ndarray | None = None) -> float:
    """The scalar s minimising Σ (s·pred − true)² inside the mask (0 when pred is all zero)."""
    pred, true = _pair(pred, true)
    region = _region(pred.shape, mask)
    p, t = pred[region], true[region]
    denominator = float(np.sum(p * p))
    return float(np.sum(p * t) / denominator) if denominator > _EPS else 0.0


def scale_invariant_mse(pred: np.ndarray, true: np.ndarray, mask: np.ndarray | None = None,
                        per_channel: bool = False) -> float:
    """MSE after the best single scale of the prediction (Grosse et al. 2009's si-MSE).

    Albedo is only defined up to a global scale (light intensity and reflectance trade off),
    so a prediction that is exactly k·true scores 0. ``per_channel`` fits one scale per colour
    channel (last axis), forgiving a colour cast too (the white-balance ambiguity).
    """
    pred, true = _pair(pred, true)
    if per_channel:
        region = _region(pred.shape, mask)
        errors = [scale_invariant_mse(pred[..., c], true[..., c], region)
                  for c in range(pred.shape[-1])]
        return float(np.mean(errors))
    scale = best_scale(pred, true, mask)
    return mse(scale * pred, true, mask)


def scale_invariant_relative_error(pred: np.ndarray, true: np.ndarray,
                                   mask: np.ndarray | None = None,
                                   per_channel: bool = False) -> float:
    """√(si-MSE) / RMS(true): the scale-invariant error as a fraction of the true values."""
    pred, true = _pair(pred, true)
    region = _region(pred.shape, mask)
    rms_true = math.sqrt(float(np.mean(true[region] ** 2))) if region.any() else 0.0
    error = scale_invariant_mse(pred, true, mask, per_channel)
    return math.sqrt(error) / max(rms_true, _EPS)


# -------------------------------------------------------------------------------------- images

def mae(pred: np.ndarray, true: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean absolute error over the mask's pixels and all channels."""
    pred, true = _pair(pred, true)
    selected = np.abs(pred - true)[_region(pred.shape, mask)]
    return float(selected.mean()) if selected.size else 0.0


def relative_error(pred: np.ndarray, true: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Σ|pred − true| / Σ|true| inside the mask (scale-aware, for linear HDR values)."""
    pred, true = _pair(pred, true)
    region = _region(pred.shape, mask)
    return float(np.abs(pred - true)[region].sum() / max(np.abs(true[region]).sum(), _EPS))


def psnr(pred: np.ndarray, true: np.ndarray, mask: np.ndarray | None = None,
         peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB inside the mask (∞ for identical images)."""
    error = mse(pred, true, mask)
    return math.inf if error <= 0 else 10.0 * math.log10(peak * peak / error)


def ssim_map(pred: np.ndarray, true: np.ndarray, peak: float = 1.0,
             sigma: float = 1.5) -> np.ndarray:
    """Per-pixel SSIM (Wang et al. 2004: Gaussian window σ = 1.5, K1 = 0.01, K2 = 0.03).

    Colour images are scored per channel and averaged → H×W float64.
    """
    pred, true = _pair(pred, true)
    if pred.ndim == 3:
        return np.mean([ssim_map(pred[..., c], true[..., c], peak, sigma)
                        for c in range(pred.shape[2])], axis=0)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2

    def blur(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(image, (11, 11), sigma, borderType=cv2.BORDER_REFLECT)

    mu_p, mu_t = blur(pred), blur(true)
    var_p = blur(pred * pred) - mu_p ** 2
    var_t = blur(true * true) - mu_t ** 2
    covariance = blur(pred * true) - mu_p * mu_t
    numerator = (2 * mu_p * mu_t + c1) * (2 * covariance + c2)
    denominator = (mu_p ** 2 + mu_t ** 2 + c1) * (var_p + var_t + c2)
    return numerator / denominator


def ssim(pred: np.ndarray, true: np.ndarray, mask: np.ndarray | None = None,
         peak: float = 1.0) -> float:
    """Mean SSIM inside the mask (windows straddling its edge see both sides, as usual)."""
    values = ssim_map(pred, true, peak)[_region(np.shape(pred), mask)]
    return float(values.mean()) if values.size else 1.0


def image_errors(pred: np.ndarray, true: np.ndarray, mask: np.ndarray | None = None
                 ) -> dict[str, float]:
    """MAE, PSNR (dB) and SSIM of two images with values in [0, 1], inside the mask."""
    return {"mae": mae(pred, true, mask), "psnr": psnr(pred, true, mask),
            "ssim": ssim(pred, true, mask)}
