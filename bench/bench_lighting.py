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

A check against tuning to the 13 shared views: ``--render-views DIR`` renders 50 more views
(other yaws, pitches and fields of view, fixed seed) of the same shared panoramas with the
shared data's own tools (``../shared/data/tools/pano.py``), in the same format, and
``--data DIR`` scores them (about a minute to render, mostly decoding the 8k gain map).

``--hdr`` estimates from each view rendered again unclipped from its panorama, at the photo's
exposure (an HDR background: an EXR plate, a float layer), instead of from its 8-bit photo.
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


def load_panorama(source: str, cache: dict) -> np.ndarray:
    """A view's source panorama (relative to the shared data folder, or absolute), area-averaged
    to at most 2k wide as ``render_views`` renders from it; loaded once per run."""
    if source not in cache:
        tools = shared_tools()
        panorama = tools.load_pano(str(DATA.parent / source))
        factor = panorama.shape[1] // 2048
        if factor > 1:  # area-average an 8k panorama to 2k: views are 384 px wide
            h, w = (s - s % factor for s in panorama.shape[:2])
            panorama = panorama[:h, :w].reshape(h // factor, factor, w // factor, factor,
                                                3).mean(axis=(1, 3))
        cache[source] = panorama
    return cache[source]


def hdr_view(meta: dict, image_shape: tuple[int, ...], truth: np.ndarray,
             cache: dict) -> np.ndarray:
    """The case's view rendered again from its panorama, unclipped (an HDR photo: an EXR
    plate, a float layer), at the photo's exposure: the shared backgrounds record it; for views
    from ``render_views`` it is the truth's L00 over the panorama's own in that frame."""
    tools = shared_tools()
    panorama = load_panorama(meta["source_panorama"], cache)
    camera = meta["camera"]
    yaw, pitch = camera["yaw_deg"], camera["pitch_deg"]
    view = tools.render_perspective(panorama, yaw, pitch, camera["hfov_deg"],
                                    image_shape[1], image_shape[0], ss=2)
    exposure = meta.get("exposure")
    if exposure is None:
        sh = tools.pano_sh(panorama, tools.rot_cam_to_world(yaw, pitch).T)
        exposure = float(truth[0] @ envmap.LUMINANCE) / float(sh[0] @ envmap.LUMINANCE)
    return (view * exposure).astype(np.float32)


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
        # means are what the targets are read against: one more digit, so 0.401 is not 0.40
        digits = 3 if r["name"].startswith("**") else 2
        lines.append(f"| {r['name']} | {r['relative_rmse']:.{digits}f} | "
                     f"{r['scale_free_rmse']:.{digits}f} | {direction} | "
                     f"{r['truth_directionality']:.2f} | {r['ms']:.0f} |")
    return "\n".join(lines)


PANORAMAS = [("rooitou", "hdri/rooitou_park_1k.hdr"), ("kiara", "hdri/kiara_1_dawn_1k.hdr"),
             ("potsdamer", "hdri/potsdamer_platz_1k.hdr"),
             ("immenstadter", "hdri/immenstadter_horn_1k.hdr"),
             ("dikhololo", "hdri/dikhololo_night_1k.hdr"),
             ("stfagans", "hdri/st_fagans_interior_1k.hdr"),
             ("warehouse", "hdri/empty_warehouse_01_1k.hdr"),
             ("adams", "hdri/adams_place_bridge_1k.hdr"),
             ("spruit", "hdri/gainmap/spruit_sunrise_1k.hdr"),
             ("qwantani", "hdri/gainmap/qwantani_puresky_8k.gainmap")]


def panoramas_in(folder: Path) -> list[tuple[str, str]]:
    """(tag, path) of every equirectangular .hdr in ``folder`` (see bench/fetch_panoramas.py)."""
    return [(path.stem, str(path.resolve())) for path in sorted(folder.glob("*.hdr"))]


HIGHLIGHT_LEVEL = 0.85  # --exposure-percentile: where that percentile's luminance lands


def shared_tools():
    """The shared data's own panorama module (``../shared/data/tools/pano.py``: loading .hdr and
    gain-mapped panoramas, rendering views), imported once."""
    folder = str(DATA.parent / "tools")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    import pano

    return pano


def render_views(out: Path, per_panorama: int = 5, seed: int = 7,
                 panoramas: list[tuple[str, str]] | None = None,
                 exposure_percentile: float | None = None,
                 exposure_stops: float = 0.0) -> None:
    """More ground-truth views of panoramas (exposure and SH as make_backgrounds).

    ``panoramas``: (tag, path) pairs, paths relative to the shared data folder or absolute;
    default: the shared panoramas. ``exposure_percentile``: expose each view so that this
    percentile of its luminance is 0.85 (make_backgrounds' rule for its studio view: a photo
    exposed for its highlights) instead of 0.18 / geometric mean; ``exposure_stops``: then
    expose this many stops brighter (negative: darker); the same seed gives the same views."""
    tools = shared_tools()

    (out / "gt_spheres").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    normals, inside = sphere_normals(128)
    for tag, source in panoramas or PANORAMAS:
        panorama = load_panorama(source, {})
        for k in range(per_panorama):
            yaw = k * 360 / per_panorama + 25 + rng.uniform(-10, 10)
            pitch = rng.uniform(5, 25) if tag == "qwantani" else rng.uniform(-2, 12)
            hfov = float(rng.choice([60, 75, 90]))
            name = f"x_{tag}_{k}"
            view = tools.render_perspective(panorama, yaw, pitch, hfov, 384, 288, ss=2)
            exposure = (tools.expose(view) if exposure_percentile is None
                        else tools.expose(view, HIGHLIGHT_LEVEL, exposure_percentile))
            exposure *= 2.0 ** exposure_stops
            Image.fromarray(tools.to_srgb8(view * exposure)).save(out / f"{name}.png")
            sh = tools.pano_sh(panorama, tools.rot_cam_to_world(yaw, pitch).T)
            e = tools.irradiance_from_sh(sh, normals.reshape(-1, 3)).reshape(128, 128, 3)
            sphere = np.clip(0.5 / math.pi * e * exposure, 0, None) * inside[..., None]
            Image.fromarray(tools.to_srgb8(sphere)).save(out / "gt_spheres" / f"{name}_sphere.png")
            (out / f"{name}.json").write_text(json.dumps({
                "background": f"{name}.png", "source_panorama": source,
                "camera": {"yaw_deg": yaw, "pitch_deg": pitch, "hfov_deg": hfov},
                "render_seed": seed, "exposure_percentile": exposure_percentile,
                "exposure_stops": exposure_stops,
                "sh_radiance_camera_frame_rgb_exposed": (sh * exposure).tolist()}))
    print(f"rendered {per_panorama * len(panoramas or PANORAMAS)} views into {out} (seed {seed})")


def per_panorama_table(rows: list[dict], mean: dict) -> str:
    """Means per source panorama of views named ``x_<panorama>_<k>`` (``render_views``)."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["name"].removeprefix("x_").rsplit("_", 1)[0], []).append(row)
    means = [_mean_row(f"{tag} ({len(group)})", group) for tag, group in groups.items()]
    for row, group in zip(means, groups.values(), strict=True):
        row["directional"] = any(r["directional"] for r in group)
    return table(means, mean)


def _mean_row(name: str, rows: list[dict]) -> dict:
    directional = [r for r in rows if r["directional"]] or rows
    return {"name": name, "ms": float(np.mean([r.get("ms", 0.0) for r in rows])),
            "relative_rmse": float(np.mean([r["relative_rmse"] for r in rows])),
            "scale_free_rmse": float(np.mean([r["scale_free_rmse"] for r in rows])),
            "direction_error_deg": float(np.mean([r["direction_error_deg"]
                                                  for r in directional])),
            "truth_directionality": float(np.mean([r["truth_directionality"] for r in rows])),
            "directional": True}


def evaluate(data: Path, baseline_only: bool = False, hdr: bool = False):
    """Score every <name>.json in ``data``: (rows, mean row, baseline mean row, picture rows).
    ``hdr``: estimate from each view rendered again unclipped (``hdr_view``), not its 8-bit
    photo."""
    rows, picture, baseline, panoramas = [], [], [], {}
    for meta_path in sorted(data.glob("*.json")):
        name, image, truth = load_case(meta_path)
        linear = srgb8_to_linear(image)
        if hdr:
            linear = hdr_view(json.loads(meta_path.read_text()), image.shape, truth, panoramas)
        start = time.perf_counter()
        sh_est = uniform_estimate(linear) if baseline_only else lighting.estimate_environment(
            linear).sh
        ms = (time.perf_counter() - start) * 1000
        rows.append({"name": name, "ms": ms, **scores(sh_est, truth)})
        baseline.append(scores(uniform_estimate(linear), truth))
        picture.append(picture_row(image, data / "gt_spheres" / f"{name}_sphere.png", sh_est))
    if not rows:
        return [], None, None, []
    base = _mean_row("*baseline: uniform light, mean*", baseline)
    base["ms"] = 0.0
    return rows, _mean_row("**mean**", rows), base, picture


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", action="store_true", help="score the uniform estimator")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/")
    parser.add_argument("--data", type=Path, default=DATA,
                        help="folder of <name>.json + photo + gt_spheres/ (default: shared set); "
                        "another folder implies --no-doc")
    parser.add_argument("--render-views", type=Path, metavar="DIR",
                        help="render more views of the shared panoramas into DIR and exit")
    parser.add_argument("--seed", type=int, default=7, help="--render-views: random seed")
    parser.add_argument("--per-panorama", type=int, default=5,
                        help="--render-views: views of each of the 10 panoramas")
    parser.add_argument("--panoramas", type=Path, metavar="DIR",
                        help="--render-views: render from the .hdr panoramas in DIR instead of "
                        "the shared ones (bench/fetch_panoramas.py fetches 17 that were never "
                        "used in development)")
    parser.add_argument("--exposure-percentile", type=float, metavar="P",
                        help="--render-views: expose each view for its highlights (the P-th "
                        "percentile of luminance at 0.85) instead of 0.18 / geometric mean")
    parser.add_argument("--exposure-stops", type=float, default=0.0, metavar="S",
                        help="--render-views: then expose S stops brighter (negative: darker)")
    parser.add_argument("--hdr", action="store_true",
                        help="estimate from each view rendered again unclipped from its "
                        "panorama (an HDR photo) instead of its 8-bit photo; implies --no-doc")
    parser.add_argument("--views", type=Path, metavar="DIR", nargs="+", default=[],
                        help="also score the views rendered into each DIR; their means go in "
                        "the doc")
    args = parser.parse_args(argv)
    if args.render_views:
        panoramas = panoramas_in(args.panoramas) if args.panoramas else None
        if args.panoramas and not panoramas:
            print(f"no .hdr panoramas in {args.panoramas}", file=sys.stderr)
            return 1
        render_views(args.render_views, args.per_panorama, args.seed, panoramas,
                     args.exposure_percentile, args.exposure_stops)
        return 0
    data = args.data
    if data.resolve() != DATA.resolve() or args.hdr:
        args.no_doc = True
    rows, mean, base, picture = evaluate(data, args.baseline, args.hdr)
    if not rows:
        print(f"no backgrounds found under {data}", file=sys.stderr)
        return 1
    text = table(rows, mean) + "\n" + table([], base).splitlines()[-1]
    print(text)
    view_means, per_panorama = [], []
    for folder in args.views:
        view_rows, view_mean, view_base, _ = evaluate(folder, args.baseline, args.hdr)
        if not view_rows:
            print(f"no views found under {folder}", file=sys.stderr)
            return 1
        meta = json.loads(next(folder.glob("*.json")).read_text())
        seed = meta.get("render_seed", "?")
        # views of the shared panoramas name them relative to the shared data folder
        source = "shared" if meta["source_panorama"].startswith("hdri/") else "unseen"
        percentile = meta.get("exposure_percentile")
        exposed = f", exposed for highlights (p{percentile:g} at {HIGHLIGHT_LEVEL})" \
            if percentile else ""
        stops = meta.get("exposure_stops") or 0.0
        exposed += f", {stops:+g} stop{'s' if abs(stops) != 1 else ''}" if stops else ""
        view_mean["name"] = (f"**{len(view_rows)} views of the {source} panoramas, seed {seed}"
                             f"{exposed}**")
        view_base["name"] = f"*their baseline ({source}, seed {seed}{exposed}): uniform light*"
        view_means += [view_mean, view_base]
        if source == "unseen" and not percentile and not stops:
            per_panorama.append(per_panorama_table(view_rows, view_mean))
    views_text = ""
    if view_means:
        views_text = "\n".join(table(view_means, {**view_means[0], "name": ""})
                               .splitlines()[:2 + len(view_means)])
        views_text += "".join("\n\nPer unseen panorama (mean of its views):\n\n" + text
                              for text in per_panorama)
        print(views_text)
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
        views_section = (
            "\n\n## More views (a check against tuning to the 13)\n\n"
            "Views at other yaws, pitches (qwantani: 5–25° up, sky only) and fields of view\n"
            "(60/75/90°), rendered with the shared data's own tools:\n"
            "`bench/bench_lighting.py --render-views DIR [--seed N] [--per-panorama K]\n"
            "[--panoramas DIR] [--exposure-percentile P | --exposure-stops S]`, then\n"
            "`--views DIR [DIR ...]`.\n\n"
            "* **shared panoramas**: seed 7 (5 per panorama) is the set development looked at;\n"
            "  seed 99 (8 per panorama) was rendered after the estimator's rules were chosen,\n"
            "  but its worst views were looked at for the last four (a sun past the frame's\n"
            "  corner; a sun placed at its white core, not at its glare's centre; grass lit by\n"
            "  a sun a few degrees up counts as sunlit; a photo mostly of sky is sunlit only\n"
            "  if the ground it shows is). Seed 31 (8 per panorama) was rendered after all of\n"
            "  them and never looked at view by view: only its means were read, for these\n"
            "  rules and for two candidates it rejected (a photo of the sky alone taking its\n"
            "  hidden sun's strength from the sky: seed 99 0.250 → 0.248 scale-free, but\n"
            "  seed 31 0.495 → 0.713 absolute; gains on the unseen sides: flat). Some of its\n"
            "  views were looked at later (a sun in view missed: its glare at 0.495, just under\n"
            "  the 0.5 that marks a sun; its hidden suns), and nothing was changed for them, so\n"
            "  it is no longer held out. Seed 53 (8 per panorama,\n"
            "  and 4 per unseen panorama) was rendered after the last rule (clipped pixels\n"
            "  below the horizon are lit surfaces) and only its means were read: that rule\n"
            "  left the shared panoramas' views flat (0.493 / 0.283 → 0.491 / 0.283) and took\n"
            "  the unseen ones 0.962 / 0.419 → 0.955 / 0.412. Seed 71 (8 per panorama, and 4\n"
            "  per unseen panorama) was rendered after that, and the estimator has not changed\n"
            "  since: only its means were read.\n"
            "* **unseen panoramas**: 17 HDR panoramas of other scenes, fetched by\n"
            "  `bench/fetch_panoramas.py` from the `bpy` 4.2.0 and `open3d` 0.18.0 wheels\n"
            "  (4 views each). No parameter was tuned on them. They came after all rules but\n"
            "  five: the symmetric unseen half and the fringe hue of clipped glows were checked\n"
            "  on them as well as on the shared panoramas before they were kept; the clear\n"
            "  sky's cap on a hidden sun and the low sun clipped in red alone came from looking\n"
            "  at two of their views (pale sand under a flat blue sky; a hazy sunset over the\n"
            "  sea). Each of those two changes that one of the 211 metered views only; the\n"
            "  second's tests that such a sun stands above the horizon under a bright sky were\n"
            "  added when it took lamp-lit patches of a night view for a sun (on the ground;\n"
            "  a stop brighter, a wall under the night sky). The fifth came from their views\n"
            "  whose estimate had light from below (a sunlit patch of floor, a white bed, a\n"
            "  lit backdrop): clipped pixels below the horizon are not boosted as sources;\n"
            "  it was kept because no other set got worse (unseen 0.408 → 0.402, seed 31\n"
            "  0.273 → 0.272 scale-free). Among them is light no photo shows: a photo\n"
            "  studio's softboxes behind the camera, street lamps overhead, a sun behind the\n"
            "  camera in a narrow street, a covered courtyard looking out into the sun.\n"
            "* **exposed for highlights**: the same views (same seeds) exposed as the shared\n"
            "  data's studio view is (`--exposure-percentile 99`: the 99th percentile of\n"
            "  luminance at 0.85, as a photographer protecting a sky or a backdrop would), a\n"
            "  check that the estimate does not lean on the photo being metered to mid-grey.\n"
            "* **+1 stop**: the same views exposed a stop brighter than metered\n"
            "  (`--exposure-stops 1`), as a phone brightening a backlit subject would: a low\n"
            "  sun's glare spreads and more of the sky clips.\n\n"
            f"{views_text}\n") if views_text else "\n"
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
            "![spheres](lighting-eval.jpg)\n" + views_section)
    print(f"wrote {OUT} ({label})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
