"""bench/bench_lighting.py: views rendered for the lighting benchmark are exposed as declared.

The highlight-exposed views (``--exposure-percentile``) check the estimate's independence from
how a photo was exposed; they are only a check if they are the same views, exposed otherwise,
with the truth scaled by the same exposure.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from relight_core import lighting

_SPEC = importlib.util.spec_from_file_location(
    "bench_lighting", Path(__file__).resolve().parents[1] / "bench" / "bench_lighting.py")
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def _sunny_panorama(path: Path) -> None:
    """A small equirectangular .hdr: a hazy sky brightening toward the horizon (pale, so no
    channel clips before the luminance reaches 0.85), a sun, a ground."""
    height, width = 64, 128
    rows = (np.arange(height) + 0.5) / height
    elevation = (0.5 - rows)[:, None] * math.pi * np.ones((1, width))
    sky = np.stack([0.8 + 0 * elevation, 0.9 + 0 * elevation, 1.0 + 0 * elevation], -1)
    sky *= (0.6 + 0.8 * np.exp(-np.maximum(elevation, 0) / 0.3))[..., None]
    pano = np.where((elevation > 0)[..., None], sky, 0.01).astype(np.float32)  # dark ground
    pano[20:22, 40:42] = 5000.0  # the sun
    cv2.imwrite(str(path), pano[..., ::-1])  # Radiance .hdr, BGR


def _linear_luminance(png: Path) -> np.ndarray:
    rgb = np.asarray(bench.Image.open(png).convert("RGB"))
    return bench.srgb8_to_linear(rgb) @ np.array([0.2126, 0.7152, 0.0722])


def test_views_exposed_for_highlights_are_the_same_views_scaled(tmp_path):
    _sunny_panorama(tmp_path / "sunny.hdr")
    panoramas = [("sunny", str(tmp_path / "sunny.hdr"))]
    metered, highlights = tmp_path / "metered", tmp_path / "highlights"
    bench.render_views(metered, per_panorama=2, seed=3, panoramas=panoramas)
    bench.render_views(highlights, per_panorama=2, seed=3, panoramas=panoramas,
                       exposure_percentile=99)
    for k in range(2):
        a = json.loads((metered / f"x_sunny_{k}.json").read_text())
        b = json.loads((highlights / f"x_sunny_{k}.json").read_text())
        assert a["camera"] == b["camera"]
        assert a["exposure_percentile"] is None and b["exposure_percentile"] == 99
        # 8-bit sRGB: the 99th percentile of the highlight-exposed view sits at 0.85
        lum_b = _linear_luminance(highlights / f"x_sunny_{k}.png")
        assert np.percentile(lum_b, 99) == pytest.approx(bench.HIGHLIGHT_LEVEL, abs=0.02)
        # the truth is the same panorama's light, only in the other exposure's units
        sh_a = np.array(a["sh_radiance_camera_frame_rgb_exposed"])
        sh_b = np.array(b["sh_radiance_camera_frame_rgb_exposed"])
        ratio = sh_b / sh_a
        assert np.allclose(ratio, ratio.flat[0], rtol=1e-6)
        assert ratio.flat[0] != pytest.approx(1.0, abs=0.05)


def test_views_exposed_stops_over_are_the_same_views_brighter(tmp_path):
    _sunny_panorama(tmp_path / "sunny.hdr")
    panoramas = [("sunny", str(tmp_path / "sunny.hdr"))]
    metered, over = tmp_path / "metered", tmp_path / "over"
    bench.render_views(metered, per_panorama=2, seed=3, panoramas=panoramas)
    bench.render_views(over, per_panorama=2, seed=3, panoramas=panoramas, exposure_stops=1.0)
    for k in range(2):
        a = json.loads((metered / f"x_sunny_{k}.json").read_text())
        b = json.loads((over / f"x_sunny_{k}.json").read_text())
        assert a["camera"] == b["camera"] and b["exposure_stops"] == 1.0
        sh_a = np.array(a["sh_radiance_camera_frame_rgb_exposed"])
        sh_b = np.array(b["sh_radiance_camera_frame_rgb_exposed"])
        assert np.allclose(sh_b, 2.0 * sh_a, rtol=1e-6)
        # unclipped pixels are twice as bright (8-bit sRGB: within its quantisation)
        lum_a = _linear_luminance(metered / f"x_sunny_{k}.png")
        lum_b = _linear_luminance(over / f"x_sunny_{k}.png")
        unclipped = (lum_a > 0.005) & (lum_b < 0.9)
        assert unclipped.mean() > 0.2
        assert np.median(lum_b[unclipped] / lum_a[unclipped]) == pytest.approx(2.0, rel=0.03)


@pytest.mark.skipif(not bench.DATA.exists(),
                    reason="needs ../shared/data beside the checkout")
def test_shared_backgrounds_keep_the_measured_level():
    """The estimate on the 13 shared backgrounds, scored as docs/lighting-eval.md scores it.
    The absolute (≤ 0.40) and direction (≤ 30°) targets are met and must stay met; the
    scale-free error is guarded at its measured level (0.216; the target, 0.20, is not yet
    reached), so that no change makes it worse unnoticed."""
    rows = [bench.scores(lighting.estimate_environment(bench.srgb8_to_linear(image)).sh, truth)
            for _, image, truth in (bench.load_case(path) for path in
                                    sorted(bench.DATA.glob("*.json")))]
    assert len(rows) == 13
    absolute = np.mean([row["relative_rmse"] for row in rows])
    scale_free = np.mean([row["scale_free_rmse"] for row in rows])
    direction = np.mean([row["direction_error_deg"] for row in rows if row["directional"]])
    assert absolute <= 0.40 and direction <= 30, (absolute, direction)
    assert scale_free <= 0.22, scale_free


def test_the_hdr_views_are_the_8_bit_photos_unclipped():
    """``--hdr`` must score the same views as the 8-bit photos, only unclipped: a shared
    background's view rendered again, clipped and encoded, is its photo."""
    meta_path = bench.DATA / "rooitou_park_towards_sun.json"  # a sun in view: peak ≫ 1
    name, image, truth = bench.load_case(meta_path)
    view = bench.hdr_view(json.loads(meta_path.read_text()), image.shape, truth, {})
    assert view.max() > 100.0
    recorded = bench.linear_to_srgb8(view).astype(np.int16)
    assert float(np.mean(np.abs(recorded - image))) < 1.0
