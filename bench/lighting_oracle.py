"""Where the lighting estimate's error comes from: parts of it replaced by the truth's.

For every background (``<name>.json`` + photo, as ``bench_lighting.py`` reads them) the estimate's
SH is scored (scale-free relative RMSE of irradiance, as in ``bench_lighting.scores``) as it is
and with one part at a time taken from the true SH:

* *L1 direction*: the estimate's first band turned (one rotation for all channels) so its
  luminance vector points where the truth's does;
* *colour*: every band's RGB rescaled so L00 has the truth's chromaticity;
* *L1 direction and strength*: as above, then the band scaled to the truth's |L1| / L00;
* *... and the L2 band*: the second band too, scaled to the estimate's L00;
* *luminance only*: both reduced to luminance (what the error is without colour).

A part whose replacement lowers the error a lot is where the estimate is weak; one that does
not is not worth improving. With ``--regions``, a second table replaces *where* in the scene
the estimate's panorama is wrong instead: one region of the sphere at a time (the frame; the
rest of the front hemisphere above, then below the horizon; the back hemisphere's upper, then
lower half) is taken from the true panorama that each view's JSON names, turned into the
camera's frame and scaled to the truth's exposure. Run:
``.venv/bin/python bench/lighting_oracle.py [--regions] [DIR ...]`` (default: the shared
backgrounds). Prints the tables and writes ``bench/out/lighting/oracle.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np

from relight_core import envmap, lighting

ROOT = Path(__file__).resolve().parents[1]
_SPEC = importlib.util.spec_from_file_location("bench_lighting", ROOT / "bench" /
                                               "bench_lighting.py")
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)

L1 = [3, 1, 2]  # SH rows of the first band in x, y, z order (Y11 ∝ x, Y1-1 ∝ y, Y10 ∝ z)


def _l1_vector(sh: np.ndarray) -> np.ndarray:
    """(3, 3): the first band, rows x, y, z, columns RGB."""
    return sh[L1]


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation (3×3) taking direction ``a`` to direction ``b``."""
    a, b = a / max(np.linalg.norm(a), 1e-12), b / max(np.linalg.norm(b), 1e-12)
    axis, cos = np.cross(a, b), float(a @ b)
    if cos < -1 + 1e-9:  # opposite: half a turn about any axis normal to a
        normal = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        normal /= np.linalg.norm(normal)
        return 2 * np.outer(normal, normal) - np.eye(3)
    skew = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + skew + skew @ skew / (1 + cos)


def true_direction(est: np.ndarray, truth: np.ndarray) -> np.ndarray:
    out = est.copy()
    turn = _rotation_between(_l1_vector(est) @ envmap.LUMINANCE,
                             _l1_vector(truth) @ envmap.LUMINANCE)
    out[L1] = turn @ _l1_vector(est)
    return out


def true_colour(est: np.ndarray, truth: np.ndarray) -> np.ndarray:
    chroma = lambda sh: sh[0] / max(float(sh[0] @ envmap.LUMINANCE), 1e-12)  # noqa: E731
    return est * (chroma(truth) / np.maximum(chroma(est), 1e-12))


def _directionality(sh: np.ndarray) -> float:
    lum = sh @ envmap.LUMINANCE
    return float(np.linalg.norm(lum[L1]) / max(lum[0], 1e-12))


def true_strength(est: np.ndarray, truth: np.ndarray) -> np.ndarray:
    out = est.copy()
    out[L1] *= _directionality(truth) / max(_directionality(est), 1e-12)
    return out


def true_second_band(est: np.ndarray, truth: np.ndarray) -> np.ndarray:
    out = est.copy()
    level = float(est[0] @ envmap.LUMINANCE) / max(float(truth[0] @ envmap.LUMINANCE), 1e-12)
    out[4:9] = truth[4:9] * level
    return out


def luminance_only(sh: np.ndarray) -> np.ndarray:
    return np.repeat((sh @ envmap.LUMINANCE)[:, None], 3, axis=1)


VARIANTS = {
    "estimate": lambda e, t: (e, t),
    "L1 direction": lambda e, t: (true_direction(e, t), t),
    "colour": lambda e, t: (true_colour(e, t), t),
    "L1 direction and strength": lambda e, t: (true_strength(true_direction(e, t), t), t),
    "... and the L2 band": lambda e, t: (
        true_second_band(true_strength(true_direction(e, t), t), t), t),
    "luminance only": lambda e, t: (luminance_only(e), luminance_only(t)),
}


def oracle_means(folder: Path) -> dict:
    """Mean scale-free error of each variant over the backgrounds in ``folder``."""
    errors: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for meta_path in sorted(folder.glob("*.json")):
        _, image, truth = bench.load_case(meta_path)
        estimate = np.asarray(lighting.estimate_environment(
            bench.srgb8_to_linear(image)).sh, np.float64)
        for name, variant in VARIANTS.items():
            est, true = variant(estimate, truth)
            errors[name].append(bench.scores(est, true)["scale_free_rmse"])
    return {"views": len(errors["estimate"]),
            **{name: float(np.mean(values)) for name, values in errors.items() if values}}


REGIONS = ("the frame", "front, above the horizon", "front, below the horizon",
           "behind, above the horizon", "behind, below the horizon")


def region_masks(directions: np.ndarray, hfov_deg: float, aspect: float) -> dict:
    """Boolean masks (h, w) that partition the camera-frame ``directions`` (h, w, 3): the
    pinhole frame (horizontal field of view ``hfov_deg``, height / width ``aspect``), the rest
    of the front hemisphere (z < 0) above / below the horizon, the back hemisphere above /
    below."""
    x, y, z = directions[..., 0], directions[..., 1], directions[..., 2]
    front, up = z < 0, y > 0
    half_width = math.tan(math.radians(hfov_deg) / 2)
    depth = np.where(front, -z, 1.0)
    frame = front & (np.abs(x) < half_width * depth) & (np.abs(y) < half_width * aspect * depth)
    return dict(zip(REGIONS, (frame, front & up & ~frame, front & ~up & ~frame,
                              ~front & up, ~front & ~up), strict=True))


@lru_cache(maxsize=4)
def _world_panorama(path: str, height: int) -> np.ndarray:
    panorama = bench.shared_tools().load_pano(path).astype(np.float32)
    return envmap.downsample_pano(panorama, height)


def true_camera_panorama(meta: dict, truth: np.ndarray, height: int) -> np.ndarray | None:
    """The view's true panorama (h×2h×3) in its camera frame, scaled so that its L00 is the
    truth's (the photo's exposure); None when the JSON names no panorama."""
    source = meta.get("gt_lighting_panorama") or meta.get("source_panorama")
    camera = meta.get("camera", {})
    if not source or "yaw_deg" not in camera:
        return None
    path = Path(source) if Path(source).is_absolute() else bench.DATA.parent / source
    to_world = np.asarray(bench.shared_tools().rot_cam_to_world(camera["yaw_deg"],
                                                                 camera["pitch_deg"]))
    directions = envmap.direction_grid(height)
    panorama = envmap.sample_pano(_world_panorama(str(path), height), directions @ to_world.T)
    level = float(envmap.project_sh(panorama)[0] @ envmap.LUMINANCE)
    return panorama * (float(truth[0] @ envmap.LUMINANCE) / max(level, 1e-12))


def replaced_regions(estimate: np.ndarray, truth_panorama: np.ndarray, truth: np.ndarray,
                     masks: dict) -> dict:
    """Scale-free error of the estimate's panorama with each region taken from the truth's."""
    out = {"estimate": bench.scores(envmap.project_sh(estimate), truth)["scale_free_rmse"]}
    for name, mask in masks.items():
        mixed = np.where(mask[..., None], truth_panorama, estimate).astype(np.float32)
        out[name] = bench.scores(envmap.project_sh(mixed), truth)["scale_free_rmse"]
    return out


def region_means(folder: Path) -> dict:
    """Mean of ``replaced_regions`` over the views in ``folder`` whose panorama is at hand."""
    height = lighting.PANO_HEIGHT
    rows = []
    for meta_path in sorted(folder.glob("*.json")):
        meta = json.loads(meta_path.read_text())
        _, image, truth = bench.load_case(meta_path)
        truth_panorama = true_camera_panorama(meta, truth, height)
        if truth_panorama is None:
            continue
        estimate = lighting.estimate_environment(bench.srgb8_to_linear(image)).pano
        masks = region_masks(envmap.direction_grid(height), meta["camera"]["hfov_deg"],
                             image.shape[0] / image.shape[1])
        rows.append(replaced_regions(estimate, truth_panorama, truth, masks))
    return {"views": len(rows),
            **({name: float(np.mean([row[name] for row in rows])) for name in rows[0]}
               if rows else {})}


def _table(title: str, results: dict, names) -> None:
    print(f"| {title} | " + " | ".join(f"{Path(f).name} ({m['views']})"
                                       for f, m in results.items()) + " |")
    print("|---|" + "---|" * len(results))
    for name in names:
        print(f"| {name} | " + " | ".join(f"{m[name]:.3f}" if name in m else "n/a"
                                          for m in results.values()) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="*", default=[bench.DATA],
                        help="folders of <name>.json + photo (default: the shared backgrounds)")
    parser.add_argument("--regions", action="store_true",
                        help="also replace regions of the panorama by the true panorama's")
    args = parser.parse_args(argv)
    results, regions = {}, {}
    for folder in args.folders:
        means = oracle_means(folder)
        if not means["views"]:
            print(f"no backgrounds found under {folder}", file=sys.stderr)
            return 1
        results[str(folder)] = means
        if args.regions:
            regions[str(folder)] = region_means(folder)
    _table("replaced by the truth (scale-free relative RMSE)", results, VARIANTS)
    if regions:
        print()
        _table("region of the panorama replaced by the truth's", regions,
               ("estimate", *REGIONS))
    bench.OUT.mkdir(parents=True, exist_ok=True)
    (bench.OUT / "oracle.json").write_text(json.dumps(
        {"parts": results, **({"regions": regions} if regions else {})}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
