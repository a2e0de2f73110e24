"""bench/bench_matting.py: it finds every shared composite, a JPEG round trip leaves chroma
blocks that it measures, and on such an image the shipped solve shows less of them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from relight_core import matting

_SPEC = importlib.util.spec_from_file_location(
    "bench_matting", Path(__file__).resolve().parents[1] / "bench" / "bench_matting.py")
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def test_bench_measures_the_blocks_a_jpeg_round_trip_leaves():
    found = bench.composites()
    assert [name for name, *_ in found][0] == "lemur" and len(found) >= 5
    assert all(path.exists() for _, *paths in found for path in paths)
    name, image_path, trimap_path, alpha_path = found[1]
    clean = bench.jpeg_round_trip(image_path, None)
    blocked = bench.jpeg_round_trip(image_path, 75)
    assert clean.shape == blocked.shape and clean.dtype == np.float32
    assert matting.chroma_blocking(matting.linear_to_srgb(clean)) < 1.1
    assert matting.chroma_blocking(matting.linear_to_srgb(blocked)) > 1.5
    trimap = bench.snapped_trimap(trimap_path)
    row = bench.measure(blocked, trimap, bench._data(alpha_path))
    assert row["grid raw"] > row["grid shipped"] + 0.1
    assert 0.0 < row["error shipped"] < 0.1
