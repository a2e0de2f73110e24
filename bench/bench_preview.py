"""Krita docker live preview: time of one re-light after a rotation change, through the worker.

Does what the docker does: start the worker (``python -m relight_core.worker``), ``prepare`` a
real portrait once (the slow pass, timed separately), then send ``relight`` requests with the
docker's ``preview_size`` (256 px), only the composite, u8 RGBA sRGB, and a new rotation each
time, and time request → result at the host side (what the artist waits for), including
reading the result file the way the docker does. Target: ≤ 100 ms after the first pass.

    .venv/bin/python bench/bench_preview.py [--portrait P] [--background B] [--repeats N]
        [--json out.json]

Prints a table and writes JSON (default bench/results/preview.json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from relight_core import client

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
PREVIEW_SIZE = 256  # plugin_krita/relight/docker.py PREVIEW_SIZE
TARGET_MS = 100.0


def save_layer_like_krita(path: Path, folder: str, name: str) -> dict:
    """An 8-bit Krita layer as the docker sends it: B, G, R, A bytes, sRGB."""
    rgba = np.asarray(Image.open(path).convert("RGBA"))
    bgra = np.ascontiguousarray(rgba[..., [2, 1, 0, 3]])
    descriptor = client.pixel_descriptor(os.path.join(folder, f"{name}.raw"), rgba.shape[1],
                                         rgba.shape[0], "u8", "srgb", "BGRA")
    client.write_pixels(descriptor, bgra.tobytes())
    return descriptor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portrait", type=Path,
                        default=DATA / "portraits" / "08_woman_hard_dappled_side_sun_cc0.jpg")
    parser.add_argument("--background", type=Path,
                        default=DATA / "backgrounds" / "rooitou_park_towards_sun.png")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "preview.json")
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="relight-bench-")
    portrait = save_layer_like_krita(args.portrait, folder, "portrait")
    background = save_layer_like_krita(args.background, folder, "background")
    settings = {"rotate_deg": 0.0, "strength": 1.0, "shininess": 0.3, "keep_original": 0.0}
    output = {"dir": folder, "dtype": "u8", "encoding": "srgb", "channel_order": "RGBA",
              "alpha": "opaque"}
    with client.WorkerClient(python=sys.executable) as worker:
        started = time.perf_counter()
        prepared = worker.request("prepare", {"portrait": portrait, "settings": settings})
        prepare_s = time.perf_counter() - started
        times_ms = []
        for index in range(args.repeats + 1):
            rotation = -180.0 + (index * 37.0) % 360.0
            started = time.perf_counter()
            result = worker.request("relight", {
                "key": prepared["key"], "settings": {**settings, "rotate_deg": rotation},
                "preview_size": PREVIEW_SIZE, "layers": ["composite"], "output": output,
                "background": background})
            client.read_pixels(result["layers"]["composite"])
            elapsed = (time.perf_counter() - started) * 1000
            if index > 0:  # the first relight also estimates the environment once
                times_ms.append(elapsed)
            else:
                first_relight_ms = elapsed
        preview = result["layers"]["composite"]
    report = {
        "portrait": args.portrait.name, "portrait_size": [portrait["width"], portrait["height"]],
        "background": args.background.name, "preview_size": [preview["width"],
                                                              preview["height"]],
        "prepare_s": round(prepare_s, 3), "first_relight_ms": round(first_relight_ms, 1),
        "rotation_relight_ms": {
            "median": round(statistics.median(times_ms), 1),
            "p90": round(sorted(times_ms)[int(0.9 * (len(times_ms) - 1))], 1),
            "min": round(min(times_ms), 1), "max": round(max(times_ms), 1),
            "n": len(times_ms)},
        "target_ms": TARGET_MS,
        "meets_target": statistics.median(times_ms) <= TARGET_MS,
        "omp_threads": os.environ.get("OMP_NUM_THREADS", "default"),
    }
    rows = [("first pass (prepare)", f"{report['prepare_s'] * 1000:.0f} ms"),
            ("first preview relight", f"{report['first_relight_ms']:.0f} ms"),
            ("rotation re-light, median", f"{report['rotation_relight_ms']['median']:.1f} ms"),
            ("rotation re-light, p90", f"{report['rotation_relight_ms']['p90']:.1f} ms"),
            ("target", f"≤ {TARGET_MS:.0f} ms ({'met' if report['meets_target'] else 'MISSED'})")]
    print(f"Krita preview ({report['portrait']} {portrait['width']}×{portrait['height']} → "
          f"{preview['width']}×{preview['height']})")
    for label, value in rows:
        print(f"  {label:<28} {value:>14}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
