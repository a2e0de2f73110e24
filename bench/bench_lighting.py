"""Lighting-estimate quality on the shared ground-truth backgrounds.

For every ``../shared/data/backgrounds/<name>.json`` the background photo is decoded to linear
light, the estimator runs on it, and its SH is compared with the true SH of the full panorama
(camera frame, photo units: ``sh_radiance_camera_frame_rgb_exposed``):

* irradiance E(n) = Σ A_l L_lm Y_lm(n) over the normals a camera sees of a sphere (z ≥ 0);
* relative RMSE = RMS|E_est − E_true| / RMS|E_true| (RGB), absolute and after the best single
  scale factor on E_est (scale-free);
* direction error = angle between the estimated and true luminance L1 vectors, counted only
  where the truth is directional (|L1| / L00 ≥ 0.5).

Writes bench/out/lighting/{results.json, spheres.png} and docs/lighting-eval.md (table + picture).
Run: ``.venv/bin/python bench/bench_lighting.py [--baseline]``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from relight_core import envmap, lighting

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "backgrounds"
OUT = ROOT / "bench" / "out" / "lighting"
DOC = ROOT / "docs" / "lighting-eval.md"
DOC_PICTURE = ROOT / "docs" / "lighting-eval.jpg"
DIRECTIONAL = 0.5  # |L1|/L00 of the truth above which the direction error counts
SPHERE = 96


def srgb8_to_linear(image: np.ndarray) -> np.ndarray:
    x = image.astype(np.float32) / 255.0
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb8(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    y = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return (y * 255 + 0.5).astype(np.uint8)


def sphere_normals(size: int = SPHERE) -> tuple[np.ndarray, np.ndarray]:
    xs = (np.arange(size) + 0.5) / size * 2 - 1
    x, y = np.meshgrid(xs, -xs)
    inside = x**2 + y**2 < 1
    z = np.sqrt(np.clip(1 - x**2 - y**2, 0, 1))
    return np.stack([x, y, z], -1), inside


def scores(sh_est: np.ndarray, sh_true: np.ndarray) -> dict:
    normals, inside = sphere_normals()
    n = normals[inside]
    e_true = envmap.irradiance_sh(sh_true, n).astype(np.float64)
    e_est = envmap.irradiance_sh(sh_est, n).astype(np.float64)
    rms_true = math.sqrt(np.mean(np.sum(e_true**2, axis=1)))
    absolute = math.sqrt(np.mean(np.sum((e_est - e_true) ** 2, axis=1))) / rms_true
    scale = float(np.sum(e_est * e_true) / max(np.sum(e_est * e_est), 1e-20))
    scale_free = math.sqrt(np.mean(np.sum((scale * e_est - e_true) ** 2, axis=1))) / rms_true
    lum_true = sh_true @ envmap.LUMINANCE
    directional = float(np.linalg.norm(lum_true[1:4]) / max(lum_true[0], 1e-12))
    d_true, d_est = envmap.dominant_direction(sh_true), envmap.dominant_direction(sh_est)
    angle = math.degrees(math.acos(float(np.clip(d_true @ d_est, -1, 1))))
    return {"relative_rmse": absolute, "scale_free_rmse": scale_free, "best_scale": scale,
            "direction_error_deg": angle, "truth_directionality": directional,
            "directional": directional >= DIRECTIONAL}


def render_sphere(sh: np.ndarray, exposure: float = 1.0) -> np.ndarray:
    """Albedo-0.5 Lambertian sphere (as the gt_spheres), sRGB uint8."""
    normals, inside = sphere_normals()
    e = envmap.irradiance_sh(sh, normals.reshape(-1, 3)).reshape(SPHERE, SPHERE, 3)
    return linear_to_srgb8(np.clip(0.5 / math.pi * e * exposure, 0, None) * inside[..., None])


def load_case(meta_path: Path):
    meta = json.loads(meta_path.read_text())
    image = np.asarray(Image.open(meta_path.parent / meta["background"]).convert("RGB"))
    truth = np.array(meta["sh_radiance_camera_frame_rgb_exposed"], np.float64)
    return meta_path.stem, image, truth


def uniform_estimate(linear: np.ndarray) -> np.ndarray:
    """The simplest estimator: uniform light of the photo's mean linear colour."""
    sh = np.zeros((9, 3))
    sh[0] = linear.reshape(-1, 3).mean(axis=0) * math.sqrt(4 * math.pi)
    return sh


def picture_row(image: np.ndarray, truth_png: Path, sh_est: np.ndarray) -> np.ndarray:
    height = SPHERE
    width = round(image.shape[1] * height / image.shape[0])
    bg = np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))
    true_sphere = np.asarray(Image.open(truth_png).convert("RGB").resize((height, height),
                                                                        Image.BILINEAR))
    gap = np.full((height, 4, 3), 255, np.uint8)
    return np.concatenate([bg, gap, true_sphere, gap, render_sphere(sh_est)], axis=1)


def table(rows: list[dict], mean: dict) -> str:
    lines = ["| background | rel. RMSE | scale-free | direction error (°) | truth ‖L1‖/L00 | ms |",
             "|---|---|---|---|---|---|"]
    for r in rows + [mean]:
        direction = f"{r['direction_error_deg']:.0f}" + ("" if r["directional"] else " (n/a)")
        lines.append(f"| {r['name']} | {r['relative_rmse']:.2f} | {r['scale_free_rmse']:.2f} | "
                     f"{direction} | {r['truth_directionality']:.2f} | {r['ms']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", action="store_true", help="score the uniform estimator")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/")
    parser.add_argument("--data", type=Path, default=DATA,
                        help="folder of <name>.json + photo + gt_spheres/ (default: shared set); "
                        "another folder implies --no-doc")
    args = parser.parse_args(argv)
    data = args.data
    if data.resolve() != DATA.resolve():
        args.no_doc = True
    cases = sorted(data.glob("*.json"))
    if not cases:
        print(f"no backgrounds found under {data}", file=sys.stderr)
        return 1
    rows, picture, baseline = [], [], []
    for meta_path in cases:
        name, image, truth = load_case(meta_path)
        linear = srgb8_to_linear(image)
        start = time.perf_counter()
        sh_est = uniform_estimate(linear) if args.baseline else lighting.estimate_environment(
            linear).sh
        ms = (time.perf_counter() - start) * 1000
        row = {"name": name, "ms": ms, **scores(sh_est, truth)}
        baseline.append(scores(uniform_estimate(linear), truth))
        rows.append(row)
        picture.append(picture_row(image, data / "gt_spheres" / f"{name}_sphere.png", sh_est))
    directional = [r for r in rows if r["directional"]]
    mean = {"name": "**mean**", "ms": float(np.mean([r["ms"] for r in rows])),
            "relative_rmse": float(np.mean([r["relative_rmse"] for r in rows])),
            "scale_free_rmse": float(np.mean([r["scale_free_rmse"] for r in rows])),
            "direction_error_deg": float(np.mean([r["direction_error_deg"]
                                                  for r in directional])),
            "truth_directionality": float(np.mean([r["truth_directionality"] for r in rows])),
            "directional": True}
    base = {"name": "*baseline: uniform light, mean*", "ms": 0.0, "directional": True,
            "relative_rmse": float(np.mean([b["relative_rmse"] for b in baseline])),
            "scale_free_rmse": float(np.mean([b["scale_free_rmse"] for b in baseline])),
            "direction_error_deg": float(np.mean([b["direction_error_deg"] for b in baseline
                                                  if b["directional"]])),
            "truth_directionality": mean["truth_directionality"]}
    text = table(rows, mean) + "\n" + table([], base).splitlines()[-1]
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    label = "baseline" if args.baseline else "estimate"
    (OUT / f"results_{label}.json").write_text(json.dumps({"rows": rows, "mean": mean,
                                                           "baseline_mean": base}, indent=1))
    width = max(p.shape[1] for p in picture)
    padded = [np.pad(p, ((0, 4), (0, width - p.shape[1]), (0, 0)), constant_values=255)
              for p in picture]
    sheet = Image.fromarray(np.concatenate(padded, axis=0))
    sheet.save(OUT / f"spheres_{label}.png")
    if not args.baseline and not args.no_doc:
        sheet.save(DOC_PICTURE, quality=80)
        DOC.write_text(
            "# Lighting estimate: evaluation on the shared backgrounds\n\n"
            "Generated by `bench/bench_lighting.py` (do not edit by hand). Irradiance over the\n"
            "normals a camera sees (z ≥ 0), photo units; direction = angle between luminance L1\n"
            f"vectors, averaged where the truth is directional (|L1|/L00 ≥ {DIRECTIONAL}).\n"
            "Baseline (uniform light = mean linear colour) per the issue: mean relative RMSE 1.43\n"
            "absolute, 0.49 scale-free (measured here as in the last row; the sphere-image\n"
            "normals differ slightly from the issue's). Targets: ≤ 0.40 absolute, ≤ 0.20\n"
            "scale-free, ≤ 30° direction error.\n\n"
            f"{text}\n\n"
            "Each row: background | true sphere (albedo 0.5) | estimated sphere, same exposure.\n\n"
            "![spheres](lighting-eval.jpg)\n")
    print(f"wrote {OUT} ({label})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
