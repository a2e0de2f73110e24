"""Per-model latency on onnxruntime (CPU), 1 and 2 threads, plus the detect.py pipelines.

Usage: python bench/bench_models.py [--runs 30] [--json bench/out/models.json]
Prints a table and writes JSON: {"device", "onnxruntime", "models": {name: {threads: median_ms}},
"pipelines": {function: {threads: median_ms}}}. Needs installed models
(`relight models install`).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image

from relight_core import detect
from relight_core.models import MODELS, get_session

PORTRAIT = (
    Path(__file__).resolve().parents[1].parent
    / "shared/data/portraits/08_woman_hard_dappled_side_sun_cc0.jpg"
)
THREADS = (1, 2)


def median_ms(function: Callable[[], object], runs: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def bench_models(runs: int) -> dict[str, dict[int, float]]:
    results = {}
    rng = np.random.default_rng(0)
    for name, spec in MODELS.items():
        tensor = rng.uniform(0, 1, (1, spec.input_size, spec.input_size, 3)).astype(np.float32)
        results[name] = {}
        for threads in THREADS:
            session = get_session(name, threads)
            feed = {session.get_inputs()[0].name: tensor}
            results[name][threads] = median_ms(lambda s=session, f=feed: s.run(None, f), runs)
    return results


def bench_pipelines(runs: int) -> dict[str, dict[int, float]]:
    image = np.asarray(Image.open(PORTRAIT).convert("RGB"))
    results: dict[str, dict[int, float]] = {}
    for threads in THREADS:
        face = detect.detect_faces(image, threads=threads)[0]
        calls = {
            "person_mask": lambda t=threads: detect.person_mask(image, threads=t),
            "detect_faces": lambda t=threads: detect.detect_faces(image, threads=t),
            "face_landmarks": lambda t=threads, f=face: detect.face_landmarks(image, f, threads=t),
            "pose": lambda t=threads: detect.pose(image, threads=t),
        }
        for name, call in calls.items():
            results.setdefault(name, {})[threads] = median_ms(call, max(5, runs // 3))
    return results


def print_table(title: str, rows: dict[str, dict[int, float]]) -> None:
    print(f"\n{title:30}" + "".join(f"{f'{t} thread(s)':>14}" for t in THREADS))
    for name, by_threads in rows.items():
        print(f"{name:30}" + "".join(f"{by_threads[t]:>11.2f} ms" for t in THREADS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", type=Path, default=Path("bench/out/models.json"))
    args = parser.parse_args()
    models = bench_models(args.runs)
    pipelines = bench_pipelines(args.runs)
    print_table("model (median)", models)
    print_table(f"detect.* on {PORTRAIT.name[:20]}… 1000²", pipelines)
    report = {
        "device": f"{platform.processor() or platform.machine()}, {platform.system()}",
        "onnxruntime": onnxruntime.__version__,
        "runs": args.runs,
        "models": models,
        "pipelines": pipelines,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
