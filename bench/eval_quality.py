"""Quality evaluation of every pipeline stage against synthetic ground truth, with baselines.

    .venv/bin/python bench/eval_quality.py            # full run, CPU only, a few minutes
    .venv/bin/python bench/eval_quality.py --quick    # 1 subject × 2 sources (smoke test)

Writes bench/out/quality/ (every number, every picture at full size) and docs/quality/
(REPORT.md, report.json, small pictures). What each row measures is written in the report.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))

from relight_core.evaluation import baselines, metrics, synthetic  # noqa: E402

DOCS_DIR = REPO / "docs" / "quality"  # committed: REPORT.md, report.json, small pictures
OUT_DIR = REPO / "bench" / "out" / "quality"  # ignored: full-size pictures, per-case JSON
SIZE = 256
SUBSAMPLES = 2
COMPOSITE_RING_PX = 8  # composite errors count the subject plus this ring (halos live there)


@dataclass(frozen=True)
class SubjectSpec:
    shape: str
    texture: str  # portrait file whose detail textures the albedo
    hair_strands: int
    specular_weight: float
    seed: int


# k_s = 1 with the n = 32 lobe is what the shading stage renders for non-skin at shininess 1
# (amount 2·s × non-skin 0.5, lobe position 2·s → n = 32): the artist's slider set to match.
SUBJECTS = (
    SubjectSpec("sphere", "01_eileen_collins_nasa_studio_pd.png", 0, 1.0, 1),
    SubjectSpec("ellipsoid", "07_man_outdoor_open_shade_cc0.png", 160, 1.0, 2),
    SubjectSpec("head", "15_woman_glasses_wavy_hair_indoor_cc0.jpg", 320, 1.0, 3),
)
SHININESS = 1.0
# one source scene per kind: each subject is photographed there and relit onto every other scene
SOURCE_SCENES = ("rooitou_front_sun", "potsdamer_street", "spruit_side_sun", "warehouse",
                 "rooitou_into_sun")


# ------------------------------------------------------------------------------ helpers

def as_host_stores(linear: np.ndarray) -> np.ndarray:
    """What the pipeline receives from an 8-bit document: sRGB-encoded, clipped, quantised."""
    encoded = np.round(synthetic.srgb_encode(linear) * 255) / 255
    return synthetic.srgb_decode(encoded)


def display(linear: np.ndarray) -> np.ndarray:
    """Linear → sRGB-encoded [0, 1]: the space the image metrics compare in."""
    return synthetic.srgb_encode(linear)


def detector_mask(alpha_true: np.ndarray) -> np.ndarray:
    """Stand-in for the person segmenter: the solid part of the truth, blurred (no strands)."""
    solid = (alpha_true >= 0.5).astype(np.float32)
    return np.clip(cv2.GaussianBlur(solid, (0, 0), 2.0), 0, 1)


# ----------------------------------------------------------------------- pipeline stages

class Stages:
    """The pipeline's stage functions, called directly (the synthetic subjects are not people,
    so the person detector and face mesh are replaced: see ``detector_mask``; geometry gets no
    face landmarks). Missing modules make their rows 'n/a' instead of failing the run."""

    def __init__(self) -> None:
        self.missing: list[str] = []
        self.modules = {}
        for name in ("matting", "geometry", "albedo", "lighting", "shading", "composite"):
            try:
                self.modules[name] = __import__(f"relight_core.{name}", fromlist=[name])
            except Exception as error:  # noqa: BLE001 - any import failure is reported, not fatal
                self.missing.append(f"relight_core.{name}: {type(error).__name__}: {error}")

    @property
    def albedo_normal_smoothing(self) -> float:
        """pipeline.py's blur of the normals before de-lighting (fraction of the long side)."""
        try:
            from relight_core import pipeline
        except Exception:  # noqa: BLE001 - without pipeline.py, no smoothing
            return 0.0
        return float(getattr(pipeline, "ALBEDO_NORMAL_SMOOTHING", 0.0))

    def has(self, *names: str) -> bool:
        return all(name in self.modules for name in names)

    def matte(self, image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.modules["matting"].matte(image, mask)

    def geometry(self, alpha: np.ndarray):
        return self.modules["geometry"].person_geometry(alpha, [])

    def albedo(self, foreground: np.ndarray, normals: np.ndarray, alpha: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """→ (albedo, original grey shading), fitted on alpha > 0.95 as pipeline.py does
        when there is no face skin."""
        module = self.modules["albedo"]
        coefficients = module.fit_original_shading(foreground, normals, alpha > 0.95)
        smooth_px = self.albedo_normal_smoothing * max(alpha.shape)
        shading = module.original_shading(normals, coefficients, smooth_px)
        return module.albedo_from_shading(foreground, shading), shading

    def environment_estimated(self, background: np.ndarray):
        return self.modules["lighting"].estimate_environment(background)

    def environment_true(self, hdri_camera: np.ndarray):
        return self.modules["lighting"].environment_from_hdri(hdri_camera)

    def light_maps(self, environment):
        return self.modules["shading"].LightMaps.from_environment(environment)

    def shade(self, albedo: np.ndarray, normals: np.ndarray, height: np.ndarray, maps,
              shadows: bool = True, opaque: bool = True,
              alpha: np.ndarray | None = None) -> np.ndarray:
        """Surface.render + compose as pipeline.py calls them (no face: skin weight 0,
        strength 1, rotation 0, keep_original 0) → relit H×W×3 linear.

        ``shadows=False`` gives the stage a zero height field, which by its contract occludes
        nothing (cast shadows off, to compare with the reference's local shading);
        ``opaque=True`` sets the edge translucency (back-light rim) to 0, as the truth is an
        opaque Lambertian object; the pipeline row keeps the stage's own default.
        ``alpha`` given: the specular is modulated by ``specular_texture`` as pipeline.py does.
        """
        diffuse, specular = self.shade_components(normals, height, maps, shadows, opaque)
        if alpha is not None:
            no_skin = np.zeros(normals.shape[:2], np.float32)
            texture = self.modules["shading"].specular_texture(albedo, alpha, no_skin)
            specular = specular * texture[..., None]
        unused = np.ones(normals.shape[:2], np.float32)
        return self.modules["shading"].compose(albedo, albedo, diffuse, specular, unused, 0.0)[2]

    def shade_components(self, normals: np.ndarray, height: np.ndarray, maps,
                         shadows: bool = True, opaque: bool = True
                         ) -> tuple[np.ndarray, np.ndarray]:
        """→ (diffuse shading E/π, specular), each H×W×3 linear."""
        shading = self.modules["shading"]
        no_skin = np.zeros(normals.shape[:2], np.float32)
        relief = height if shadows else no_skin
        if opaque:
            surface = shading.Surface(normals, relief, no_skin, translucency=no_skin)
        else:
            surface = shading.Surface(normals, relief, no_skin)
        return surface.render(maps, 0.0, 1.0, SHININESS)

    def composite(self, relit: np.ndarray, alpha: np.ndarray, background: np.ndarray
                  ) -> np.ndarray:
        return self.modules["composite"].over(relit, alpha, background)


# ------------------------------------------------------------------------ the evaluation

def load_photo(name: str) -> np.ndarray:
    image = cv2.imread(str(DATA / "portraits" / name), cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"cannot read the shared portrait {name}; is ../shared/data there?")
    return synthetic.srgb_decode(image[..., ::-1].astype(np.float32) / 255)


def relit_scores(relit: np.ndarray, truth: np.ndarray, alpha_true: np.ndarray) -> dict:
    inside = alpha_true >= 0.5
    scores = metrics.image_errors(display(relit), display(truth), inside)
    scores["rel_linear"] = metrics.relative_error(relit, truth, alpha_true >= 0.999)
    # exposure bias: stops by which the relit subject is too bright (+) or too dark (−)
    gain = metrics.best_scale(relit, truth, inside)
    scores["bias_stops"] = -math.log2(gain) if gain > 0 else float("nan")
    return scores


def composite_scores(composite: np.ndarray, truth: np.ndarray, alpha_true: np.ndarray) -> dict:
    region = cv2.dilate((alpha_true > 0).astype(np.uint8),
                        np.ones((2 * COMPOSITE_RING_PX + 1,) * 2, np.uint8)) > 0
    return metrics.image_errors(display(composite), display(truth), region)


METHODS = {
    "truth_layers": "shading stage alone: true alpha, normals, albedo and the true HDR panorama "
                    "of scene B, cast shadows and edge translucency off (renderer ↔ evaluator "
                    "agreement)",
    "truth_layers_shadows": "as truth_layers with the true height field and the stage's cast "
                            "shadows on (the truth has no cast shadows: this row shows what "
                            "the shadow code costs on shapes that cast almost none)",
    "est_light": "lighting stage alone: true alpha, normals, albedo; light estimated from "
                 "background photo B; shadows off",
    "est_normals": "geometry stage alone: normals and height inflated from the true matte (no "
                   "face mesh); true albedo and light; shadows on",
    "est_albedo": "albedo stage alone: albedo from the true foreground and true normals; true "
                  "light; shadows off",
    "pipeline": "end to end: estimated matte, normals, height, albedo and light from photo B; "
                "shadows and the stage's default edge translucency on (shininess 1)",
    "paste": "baseline: pipeline's matte and foreground pasted unchanged",
    "reinhard": "baseline: pipeline's matte; foreground colour-transferred to the background "
                "(Reinhard 2001, lαβ)",
    "paste_true_cutout": "baseline with a perfect cut-out: true alpha and foreground of scene A",
}


@dataclass
class Prepared:
    """Everything the pipeline computes once per portrait (subject photographed in scene A)."""

    alpha: np.ndarray
    foreground: np.ndarray
    geometry: object
    albedo: np.ndarray
    original_shading: np.ndarray
    normals_true_matte: np.ndarray
    height_true_matte: np.ndarray
    albedo_true_inputs: np.ndarray
    seconds: float


def prepare(stages: Stages, subject: synthetic.Subject, rendering: synthetic.Rendering
            ) -> Prepared:
    start = time.perf_counter()
    image = as_host_stores(rendering.image)
    alpha, foreground = stages.matte(image, detector_mask(subject.alpha))
    geometry = stages.geometry(alpha)
    albedo, original_shading = stages.albedo(foreground, geometry.normals, alpha)
    true_matte_geometry = stages.geometry(subject.alpha)
    albedo_true_inputs = stages.albedo(rendering.foreground, subject.normals, subject.alpha)[0]
    return Prepared(alpha, foreground, geometry, albedo, original_shading,
                    true_matte_geometry.normals,
                    true_matte_geometry.height, albedo_true_inputs,
                    time.perf_counter() - start)


def stage_scores(subject: synthetic.Subject, rendering: synthetic.Rendering,
                 prepared: Prepared) -> dict:
    alpha_true = subject.alpha
    band = metrics.unknown_band(alpha_true)
    inside = alpha_true >= 0.5
    true_albedo_mask = alpha_true >= 0.999
    return {
        "matte_band": metrics.matte_errors(prepared.alpha, alpha_true, band),
        "matte_image": metrics.matte_errors(prepared.alpha, alpha_true),
        "matte_detector_mask_band": metrics.matte_errors(detector_mask(alpha_true), alpha_true,
                                                         band),
        "foreground_mae_band": metrics.mae(display(prepared.foreground),
                                           display(rendering.foreground),
                                           band & (alpha_true > 0.05)),
        "normals_deg": metrics.angular_error_deg(prepared.geometry.normals, subject.normals,
                                                 inside),
        "normals_true_matte_deg": metrics.angular_error_deg(prepared.normals_true_matte,
                                                            subject.normals, inside),
        "normals_flat_deg": metrics.angular_error_deg(np.dstack(
            [np.zeros_like(alpha_true)] * 2 + [np.ones_like(alpha_true)]), subject.normals,
            inside),
        "albedo_si_rel": metrics.scale_invariant_relative_error(
            prepared.albedo, subject.albedo, true_albedo_mask),
        "albedo_true_inputs_si_rel": metrics.scale_invariant_relative_error(
            prepared.albedo_true_inputs, subject.albedo, true_albedo_mask),
        "albedo_is_image_si_rel": metrics.scale_invariant_relative_error(
            rendering.foreground, subject.albedo, true_albedo_mask),
        "albedo_si_rel_per_channel": metrics.scale_invariant_relative_error(
            prepared.albedo, subject.albedo, true_albedo_mask, per_channel=True),
        "albedo_is_image_si_rel_per_channel": metrics.scale_invariant_relative_error(
            rendering.foreground, subject.albedo, true_albedo_mask, per_channel=True),
        "prepare_s": prepared.seconds,
    }


def relight_variants(stages: Stages, subject: synthetic.Subject, source: synthetic.Rendering,
                     target: synthetic.Rendering, prepared: Prepared, maps: dict
                     ) -> dict[str, tuple]:
    """method → (relit, composite) for one case, all linear H×W×3."""
    background = as_host_stores(target.background)
    variants: dict[str, tuple] = {}

    def shaded(name, albedo, normals, alpha, height, light, shadows, opaque=True,
               textured=False):
        relit = stages.shade(albedo, normals, height, maps[light], shadows, opaque,
                             alpha if textured else None)
        variants[name] = (relit, stages.composite(relit, alpha, background))

    if maps:
        truth = (subject.albedo, subject.normals, subject.alpha, subject.height)
        shaded("truth_layers", *truth, "true", False)
        shaded("truth_layers_shadows", *truth, "true", True)
        shaded("est_light", *truth, "estimated", False)
        shaded("est_normals", subject.albedo, prepared.normals_true_matte, subject.alpha,
               prepared.height_true_matte, "true", True)
        shaded("est_albedo", prepared.albedo_true_inputs, *truth[1:], "true", False)
        shaded("pipeline", prepared.albedo, prepared.geometry.normals, prepared.alpha,
               prepared.geometry.height, "estimated", True, opaque=False, textured=True)
    variants["paste"] = (prepared.foreground,
                         baselines.over(prepared.foreground, prepared.alpha, background))
    transferred = baselines.reinhard_transfer(prepared.foreground, prepared.alpha, background)
    variants["reinhard"] = (transferred, baselines.over(transferred, prepared.alpha, background))
    variants["paste_true_cutout"] = (source.foreground,
                                     baselines.over(source.foreground, subject.alpha, background))
    return variants


def shading_check(stages: Stages, subject: synthetic.Subject, light: synthetic.SceneLight,
                  maps) -> dict:
    """The shading stage on the true pixel layers vs the reference model, per component."""
    diffuse, specular = stages.shade_components(subject.normals, subject.height, maps,
                                                shadows=False, opaque=True)
    reference_diffuse, lobe = light.maps.shade(subject.normals)
    reference_diffuse = reference_diffuse * light.exposure
    reference_specular = (subject.specular_weight * synthetic.fresnel(subject.normals[..., 2:3])
                          * lobe * light.exposure)
    solid = subject.alpha >= 0.999
    relit = subject.albedo * diffuse + specular
    reference = subject.albedo * reference_diffuse + reference_specular
    return {"diffuse_rel": metrics.relative_error(diffuse, reference_diffuse, solid),
            "specular_rel": metrics.relative_error(specular, reference_specular, solid),
            "specular_share": float(reference_specular[solid].sum() / reference[solid].sum()),
            "relit_rel": metrics.relative_error(relit, reference, solid)}


def run(quick: bool) -> dict:
    stages = Stages()
    for problem in stages.missing:
        print("warning:", problem)
    if not stages.has("matting", "geometry", "albedo"):
        raise SystemExit("error: the matting, geometry and albedo stages are needed: "
                         + "; ".join(stages.missing))
    scenes = {scene.name: scene for scene in synthetic.SCENES}
    start = time.perf_counter()
    lights = {name: synthetic.prepare_scene(synthetic.load_hdri(DATA / scene.hdri), scene, SIZE)
              for name, scene in scenes.items()}
    timings = {"scene_light_maps_s": time.perf_counter() - start}
    specs = SUBJECTS[2:] if quick else SUBJECTS
    sources = SOURCE_SCENES[:2] if quick else SOURCE_SCENES
    start = time.perf_counter()
    subjects = {spec.shape: synthetic.make_subject(
        spec.shape, load_photo(spec.texture), SIZE, SUBSAMPLES, spec.hair_strands,
        spec.specular_weight, spec.seed) for spec in specs}
    renders = {(spec.shape, name): synthetic.render(subjects[spec.shape], lights[name])
               for spec in specs for name in scenes}
    timings["subjects_and_renders_s"] = time.perf_counter() - start
    environments: dict[str, dict] = {}
    checks: dict[tuple[str, str], dict] = {}
    stage_rows, case_rows, examples = [], [], {}
    relight_seconds = 0.0
    for spec in specs:
        subject = subjects[spec.shape]
        for source_name in sources:
            source = renders[(spec.shape, source_name)]
            prepared = prepare(stages, subject, source)
            stage_rows.append({"subject": spec.shape, "source": source_name,
                               "source_kind": scenes[source_name].kind,
                               **stage_scores(subject, source, prepared)})
            print(f"{spec.shape:9s} in {source_name:20s} prepared in {prepared.seconds:.1f} s")
            for target_name, scene in scenes.items():
                if target_name == source_name:
                    continue
                target = renders[(spec.shape, target_name)]
                if target_name not in environments and stages.has("lighting", "shading"):
                    # the panorama and the background are the same for every subject
                    environments[target_name] = {
                        "true": stages.light_maps(stages.environment_true(target.hdri_camera)),
                        "estimated": stages.light_maps(stages.environment_estimated(
                            as_host_stores(target.background)))}
                if (spec.shape, target_name) not in checks and target_name in environments:
                    checks[(spec.shape, target_name)] = {
                        "subject": spec.shape, "target": target_name, "target_kind": scene.kind,
                        **shading_check(stages, subject, lights[target_name],
                                        environments[target_name]["true"])}
                tick = time.perf_counter()
                variants = relight_variants(stages, subject, source, target, prepared,
                                            environments.get(target_name, {}))
                relight_seconds += time.perf_counter() - tick
                for method, (relit, composite) in variants.items():
                    row = {"subject": spec.shape, "source": source_name, "target": target_name,
                           "target_kind": scene.kind, "method": method,
                           "relit": relit_scores(relit, target.foreground, subject.alpha),
                           "composite": composite_scores(composite, target.image,
                                                         subject.alpha)}
                    if method == "truth_layers":
                        row["relit"]["rel_linear_pixel_reference"] = metrics.relative_error(
                            relit, synthetic.shade_pixels(subject, lights[target_name]),
                            subject.alpha >= 0.999)
                    case_rows.append(row)
                if spec.shape == "head" and scene.kind not in examples:
                    examples[scene.kind] = _example(subject, source, target, prepared, variants,
                                                    source_name, target_name)
    timings["relight_cases_s"] = relight_seconds
    return {"stage_rows": stage_rows, "case_rows": case_rows, "examples": examples,
            "shading_checks": list(checks.values()), "timings": timings,
            "subjects_used": [spec.shape for spec in specs], "sources_used": list(sources),
            "missing": stages.missing}


def _example(subject, source, target, prepared, variants, source_name, target_name) -> dict:
    return {"source": source_name, "target": target_name,
            "input": as_host_stores(source.image), "truth": target.image,
            "pipeline": variants.get("pipeline", (None, None))[1],
            "paste": variants["paste"][1], "reinhard": variants["reinhard"][1],
            "alpha": prepared.alpha, "normals": prepared.geometry.normals,
            "albedo": prepared.albedo, "alpha_true": subject.alpha,
            "normals_true": subject.normals}


# --------------------------------------------------------------------------- aggregation

KEYS = (("relit", "mae"), ("relit", "psnr"), ("relit", "ssim"), ("relit", "rel_linear"),
        ("relit", "bias_stops"),
        ("composite", "mae"), ("composite", "psnr"), ("composite", "ssim"))
PSNR_CAP = 99.0  # identical images (∞ dB) count as this when averaging


def _finite(value: float) -> float:
    return min(value, PSNR_CAP) if math.isfinite(value) or value > 0 else value


def summarise_cases(case_rows: list[dict]) -> dict:
    """method → kind ('all' too) → 'relit.mae' etc. → mean, plus case counts."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in case_rows:
        groups[(row["method"], row["target_kind"])].append(row)
        groups[(row["method"], "all")].append(row)
    summary: dict[str, dict] = defaultdict(dict)
    for (method, kind), rows in groups.items():
        entry = {f"{layer}.{key}": float(np.mean([_finite(r[layer][key]) for r in rows]))
                 for layer, key in KEYS}
        entry["relit.rel_linear_max"] = float(max(r["relit"]["rel_linear"] for r in rows))
        pixel_reference = [r["relit"].get("rel_linear_pixel_reference") for r in rows]
        if all(value is not None for value in pixel_reference):
            entry["relit.rel_pixel_reference"] = float(np.mean(pixel_reference))
            entry["relit.rel_pixel_reference_max"] = float(np.max(pixel_reference))
        entry["cases"] = len(rows)
        summary[method][kind] = entry
    return dict(summary)


def wins(case_rows: list[dict], method: str, baseline: str, layer: str) -> dict[str, float]:
    """Per kind: share of cases where ``method`` has a lower MAE than ``baseline``."""
    by_case: dict[tuple, dict[str, float]] = defaultdict(dict)
    kinds: dict[tuple, str] = {}
    for row in case_rows:
        key = (row["subject"], row["source"], row["target"])
        by_case[key][row["method"]] = row[layer]["mae"]
        kinds[key] = row["target_kind"]
    result: dict[str, list[bool]] = defaultdict(list)
    for key, maes in by_case.items():
        if method in maes and baseline in maes:
            result[kinds[key]].append(maes[method] < maes[baseline])
            result["all"].append(maes[method] < maes[baseline])
    return {kind: float(np.mean(flags)) for kind, flags in result.items()}


def summarise_stages(stage_rows: list[dict]) -> dict:
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in stage_rows:
        groups[row["source_kind"]].append(row)
        groups["all"].append(row)
    summary = {}
    for kind, rows in groups.items():
        entry = {}
        for key, value in rows[0].items():
            if isinstance(value, dict):
                for sub in value:
                    entry[f"{key}.{sub}"] = float(np.mean([r[key][sub] for r in rows]))
            elif isinstance(value, float):
                entry[key] = float(np.mean([r[key] for r in rows]))
        entry["portraits"] = len(rows)
        summary[kind] = entry
    return summary


# ------------------------------------------------------------------------------ pictures

def _tile(image: np.ndarray, size: int) -> np.ndarray:
    """Any layer → size×size uint8 RGB (linear colour is sRGB-encoded for viewing)."""
    if image is None:
        return np.full((size, size, 3), 40, np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
        encoded = np.clip(image, 0, 1)
    else:
        encoded = display(image)
    tile = (encoded * 255 + 0.5).astype(np.uint8)
    return cv2.resize(tile, (size, size), interpolation=cv2.INTER_AREA)


def _normals_view(normals: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return np.where(alpha[..., None] > 0, normals * 0.5 + 0.5, 0).astype(np.float32)


def _label(strip: np.ndarray, text: str, x: int, y: int = 16) -> None:
    cv2.putText(strip, text, (x + 4, y), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1,
                cv2.LINE_AA)


def examples_sheet(examples: dict, tile: int = 150) -> np.ndarray:
    """One row per scene kind: input, truth, pipeline, baselines and the pipeline's layers."""
    columns = ("input (scene A)", "truth (B)", "pipeline", "paste", "Reinhard", "est. alpha",
               "est. normals", "true normals", "est. albedo")
    rows = []
    header = np.zeros((24, tile * len(columns), 3), np.uint8)
    for i, name in enumerate(columns):
        _label(header, name, i * tile)
    rows.append(header)
    for kind in synthetic.SCENE_KINDS:
        if kind not in examples:
            continue
        ex = examples[kind]
        row = np.concatenate([
            _tile(ex["input"], tile), _tile(ex["truth"], tile), _tile(ex["pipeline"], tile),
            _tile(ex["paste"], tile), _tile(ex["reinhard"], tile), _tile(ex["alpha"], tile),
            _tile(_normals_view(ex["normals"], ex["alpha"]) ** 2.2, tile),
            _tile(_normals_view(ex["normals_true"], ex["alpha_true"]) ** 2.2, tile),
            _tile(ex["albedo"], tile)], axis=1)
        _label(row, f"{kind}: {ex['source']} -> {ex['target']}", 0, tile - 6)
        rows.append(row)
    return np.concatenate(rows, axis=0)


def save_rgb(path: Path, image: np.ndarray, jpeg_quality: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if jpeg_quality else \
        [cv2.IMWRITE_PNG_COMPRESSION, 9]
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1]), params):
        raise SystemExit(f"cannot write {path}")



# ------------------------------------------------------------------------ real portraits

CONTACT_PORTRAITS = ("05_woman_long_wavy_hair_window_light_cc0.png",
                     "07_man_outdoor_open_shade_cc0.png",
                     "10_woman_windblown_flyaway_hair_cc0.jpg")
CONTACT_BACKGROUNDS = ("rooitou_park_away_from_sun.png", "potsdamer_platz.png",
                       "spruit_sunrise_pylons.jpg", "st_fagans_hall.png",
                       "rooitou_park_towards_sun.png")
CONTACT_LONG_SIDE = 384  # the pipeline runs on portraits this size: the sheet shows thumbnails
CONTACT_TILE_HEIGHT = 150


def _cover(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale and centre-crop ``image`` to exactly width×height (aspect kept)."""
    scale = max(width / image.shape[1], height / image.shape[0])
    resized = cv2.resize(image, (max(width, round(image.shape[1] * scale)),
                                 max(height, round(image.shape[0] * scale))),
                         interpolation=cv2.INTER_AREA)
    top = (resized.shape[0] - height) // 2
    left = (resized.shape[1] - width) // 2
    return resized[top:top + height, left:left + width]


def _read_linear(path: Path, long_side: int | None = None) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"cannot read {path}")
    if long_side and max(image.shape[:2]) > long_side:
        scale = long_side / max(image.shape[:2])
        image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
    return synthetic.srgb_decode(image[..., ::-1].astype(np.float32) / 255)


def contact_sheet() -> tuple[np.ndarray | None, list[str]]:
    """Real portraits × shared backgrounds: pipeline composite next to a plain paste.

    Runs the whole pipeline (person detector and face mesh included) through
    ``relight_core.pipeline.Relighter``. Returns (sheet or None, problems).
    """
    try:
        from relight_core.pipeline import Relighter, Settings
    except Exception as error:  # noqa: BLE001 - reported in the report, the run goes on
        return None, [f"relight_core.pipeline: {type(error).__name__}: {error}"]
    problems: list[str] = []
    rows = []
    for name in CONTACT_PORTRAITS:
        portrait = _read_linear(DATA / "portraits" / name, CONTACT_LONG_SIDE)
        height, width = portrait.shape[:2]
        tile_w = round(width * CONTACT_TILE_HEIGHT / height)
        try:
            relighter = Relighter(portrait, Settings())
            relighter.prepare()
        except Exception as error:  # noqa: BLE001
            problems.append(f"{name}: prepare failed: {type(error).__name__}: {error}")
            continue
        tiles = [_thumb(portrait, tile_w), np.zeros((CONTACT_TILE_HEIGHT, 6, 3), np.uint8)]
        for background_name in CONTACT_BACKGROUNDS:
            background = _cover(_read_linear(DATA / "backgrounds" / background_name),
                                width, height)
            try:
                layers = relighter.relight(background_linear=background)
            except Exception as error:  # noqa: BLE001
                problems.append(f"{name} on {background_name}: {type(error).__name__}: {error}")
                continue
            alpha = layers.alpha[..., None]
            paste = layers.foreground * alpha + background * (1 - alpha)
            tiles += [_thumb(layers.composite, tile_w), _thumb(paste, tile_w),
                      np.zeros((CONTACT_TILE_HEIGHT, 6, 3), np.uint8)]
        rows.append(np.concatenate(tiles, axis=1))
    if not rows:
        return None, problems
    width = max(row.shape[1] for row in rows)
    rows = [np.pad(row, ((0, 4), (0, width - row.shape[1]), (0, 0))) for row in rows]
    header = np.zeros((22, width, 3), np.uint8)
    _label(header, "portrait | then per background: relit composite, plain paste  "
           "(" + ", ".join(b.split(".")[0] for b in CONTACT_BACKGROUNDS) + ")", 0, 15)
    return np.concatenate([header, *rows], axis=0), problems


def _thumb(linear: np.ndarray, width: int) -> np.ndarray:
    tile = (display(linear) * 255 + 0.5).astype(np.uint8)
    return cv2.resize(tile, (width, CONTACT_TILE_HEIGHT), interpolation=cv2.INTER_AREA)


def save_png_small(path: Path, image: np.ndarray, budget_bytes: int = 1_000_000) -> None:
    """Full-colour PNG, or a 256-colour palette PNG when that would exceed the byte budget."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(image)
    picture.save(path, optimize=True)
    if path.stat().st_size > budget_bytes:
        picture.quantize(256, dither=Image.Dither.FLOYDSTEINBERG).save(path, optimize=True)

# -------------------------------------------------------------------------------- report

def _fmt(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}f}"


def _method_table(summary: dict, layer: str, methods: list[str]) -> list[str]:
    kinds = [k for k in (*synthetic.SCENE_KINDS, "all") if k in summary.get("paste", {})]
    lines = [f"| method ({layer}: MAE ↓ / PSNR dB ↑ / SSIM ↑) | " + " | ".join(kinds) + " |",
             "|---|" + "---|" * len(kinds)]
    for method in methods:
        if method not in summary:
            lines.append(f"| {method} | " + " | ".join("n/a" for _ in kinds) + " |")
            continue
        cells = []
        for kind in kinds:
            entry = summary[method][kind]
            cells.append(f"{entry[f'{layer}.mae']:.4f} / {entry[f'{layer}.psnr']:.1f} / "
                         f"{entry[f'{layer}.ssim']:.3f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def _gain_lines(summary: dict, case_rows: list[dict]) -> list[str]:
    if "pipeline" not in summary:
        return ["The pipeline's shading stage was not available: no end-to-end comparison."]
    kinds = [k for k in (*synthetic.SCENE_KINDS, "all") if k in summary["pipeline"]]
    lines = ["| scene kind | cases | composite MAE pipeline | vs paste | vs Reinhard | "
             "pipeline wins (paste / Reinhard) | relit PSNR gain vs paste / Reinhard (dB) |",
             "|---|---|---|---|---|---|---|"]
    wins_paste = wins(case_rows, "pipeline", "paste", "composite")
    wins_reinhard = wins(case_rows, "pipeline", "reinhard", "composite")
    for kind in kinds:
        ours = summary["pipeline"][kind]
        paste, reinhard = summary["paste"][kind], summary["reinhard"][kind]

        def change(base: dict, ours: dict = ours) -> str:
            return f"{100 * (ours['composite.mae'] / base['composite.mae'] - 1):+.0f} %"

        lines.append(
            f"| {kind} | {ours['cases']} | {ours['composite.mae']:.4f} | {change(paste)} | "
            f"{change(reinhard)} | {100 * wins_paste[kind]:.0f} % / "
            f"{100 * wins_reinhard[kind]:.0f} % | "
            f"{ours['relit.psnr'] - paste['relit.psnr']:+.1f} / "
            f"{ours['relit.psnr'] - reinhard['relit.psnr']:+.1f} |")
    return lines


def _stage_lines(stages: dict) -> list[str]:
    kinds = [k for k in (*synthetic.SCENE_KINDS, "all") if k in stages]
    rows = (
        ("matte SAD/1000, unknown band (pipeline)", "matte_band.sad_k", 3),
        ("matte MSE, unknown band (pipeline)", "matte_band.mse", 4),
        ("matte gradient/1000, band (pipeline)", "matte_band.grad_k", 3),
        ("matte connectivity/1000, band (pipeline)", "matte_band.conn_k", 3),
        ("matte SAD/1000, whole image (pipeline)", "matte_image.sad_k", 3),
        ("matte SAD/1000, band: detector mask alone", "matte_detector_mask_band.sad_k", 3),
        ("matte MSE, band: detector mask alone", "matte_detector_mask_band.mse", 4),
        ("foreground MAE (sRGB) in the band, α*>0.05", "foreground_mae_band", 4),
        ("normals mean angle ° (pipeline matte)", "normals_deg", 1),
        ("normals mean angle ° (true matte)", "normals_true_matte_deg", 1),
        ("normals mean angle °: flat (0,0,1) reference", "normals_flat_deg", 1),
        ("albedo si-rel. error (pipeline)", "albedo_si_rel", 3),
        ("albedo si-rel. error (true F and normals)", "albedo_true_inputs_si_rel", 3),
        ("albedo si-rel. error: image itself as albedo", "albedo_is_image_si_rel", 3),
        ("albedo si-rel., one scale per channel (pipeline)", "albedo_si_rel_per_channel", 3),
        ("albedo si-rel., per channel: image as albedo", "albedo_is_image_si_rel_per_channel",
         3),
        ("prepare time s (matte+geometry+albedo)", "prepare_s", 2),
    )
    lines = ["| measure (source scene kind →) | " + " | ".join(kinds) + " |",
             "|---|" + "---|" * len(kinds)]
    for label, key, digits in rows:
        lines.append(f"| {label} | " + " | ".join(
            _fmt(stages[k].get(key, float("nan")), digits) for k in kinds) + " |")
    return lines


def _rounded(value, digits: int = 5):
    """Floats to ``digits`` significant digits, recursively (keeps report.json small)."""
    if isinstance(value, dict):
        return {key: _rounded(item, digits) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(item, digits) for item in value]
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if not math.isfinite(value) or value == 0 else float(f"{value:.{digits}g}")
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_report(result: dict, docs: Path, seconds: float, quick: bool) -> dict:
    summary = summarise_cases(result["case_rows"])
    stages = summarise_stages(result["stage_rows"])
    agreement = summary.get("truth_layers", {}).get("all")
    report = {
        "command": "python bench/eval_quality.py" + (" --quick" if quick else ""),
        "seconds": seconds, "timings": result["timings"], "machine": platform.processor() or
        platform.machine(), "image_size": SIZE, "subsamples": SUBSAMPLES,
        "methods": METHODS, "scenes": [vars(s) for s in synthetic.SCENES],
        "subjects": [vars(s) for s in SUBJECTS], "missing_modules": result["missing"],
        "summary": summary, "stages": stages, "case_rows": result["case_rows"],
        "stage_rows": result["stage_rows"], "shading_checks": result["shading_checks"],
        "agreement": None if agreement is None else {
            "mean_relative_error": agreement["relit.rel_pixel_reference"],
            "max_relative_error": agreement["relit.rel_pixel_reference_max"],
            "passes_2_percent": agreement["relit.rel_pixel_reference_max"] <= 0.02,
            "vs_supersampled_truth_mean": agreement["relit.rel_linear"],
            "vs_supersampled_truth_max": agreement["relit.rel_linear_max"]},
    }
    docs.mkdir(parents=True, exist_ok=True)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "report.json").write_text(json.dumps(_rounded(report), separators=(",", ":")))
    # the committed copy leaves out the per-case rows (hundreds of KB); the summaries it keeps
    # are every number the report prints
    compact = {key: value for key, value in report.items() if key != "case_rows"}
    (docs / "report.json").write_text(json.dumps(_rounded(compact), indent=1))
    lines = _report_markdown(report, summary, stages, result)
    (docs / "REPORT.md").write_text("\n".join(lines) + "\n")
    return report


def _summary_lines(report: dict, summary: dict) -> list[str]:
    """A few sentences derived from the numbers (they change with the pipeline)."""
    lines = []
    agreement = report["agreement"]
    if agreement is not None:
        failing = [kind for kind in synthetic.SCENE_KINDS if kind in summary["truth_layers"]
                   and summary["truth_layers"][kind]["relit.rel_pixel_reference_max"] > 0.02]
        lines.append(
            f"- Shading stage on true inputs vs the reference renderer: mean "
            f"{100 * agreement['mean_relative_error']:.1f} %, worst "
            f"{100 * agreement['max_relative_error']:.1f} % — "
            + ("within 2 % everywhere." if not failing else
               f"over 2 % in {', '.join(failing)} scenes (breakdown below)."))
    if "pipeline" in summary:
        ours = summary["pipeline"]
        beaten = [kind for kind in (*synthetic.SCENE_KINDS, "all") if kind in ours
                  and ours[kind]["composite.mae"] < summary["paste"][kind]["composite.mae"]
                  and ours[kind]["composite.mae"] < summary["reinhard"][kind]["composite.mae"]
                  and ours[kind]["relit.mae"] < summary["paste"][kind]["relit.mae"]
                  and ours[kind]["relit.mae"] < summary["reinhard"][kind]["relit.mae"]]
        lost = [kind for kind in synthetic.SCENE_KINDS if kind in ours and kind not in beaten]
        lines.append(
            f"- End to end, composite MAE {ours['all']['composite.mae']:.4f} vs paste "
            f"{summary['paste']['all']['composite.mae']:.4f} and Reinhard "
            f"{summary['reinhard']['all']['composite.mae']:.4f}; the pipeline beats both "
            "baselines on relit and composite MAE in "
            + ("every scene kind." if not lost else
               f"{', '.join(k for k in beaten if k != 'all') or 'no'} scenes, not in "
               f"{', '.join(lost)}."))
        isolated = {name: summary[name]["all"]["relit.mae"]
                    for name in ("est_light", "est_normals", "est_albedo") if name in summary}
        if isolated:
            order = sorted(isolated, key=isolated.get, reverse=True)
            lines.append("- Stage by stage (relit MAE with only that stage estimated): "
                         + ", ".join(f"{name} {isolated[name]:.4f}" for name in order)
                         + f"; all together {ours['all']['relit.mae']:.4f}.")
    return lines


def _report_markdown(report: dict, summary: dict, stages: dict, result: dict) -> list[str]:
    methods = list(METHODS)
    agreement = report["agreement"]
    lines = [
        "# Relight quality report (synthetic ground truth)",
        "",
        f"Made by `{report['command']}` in {report['seconds']:.0f} s, CPU only "
        f"({report['machine']}); the numbers are in `report.json` next to this file (the "
        "per-case rows in `bench/out/quality/report.json` after a run).",
        "",
        *_summary_lines(report, summary),
        "",
        "## How the truth is made",
        "",
        f"{len(result['subjects_used'])} subject(s) ({', '.join(result['subjects_used'])}; "
        f"{SIZE}×{SIZE} px, "
        f"{SUBSAMPLES}×{SUBSAMPLES} sub-samples per pixel) with exact alpha, camera-space normals "
        "and albedo (crops of the shared portraits as texture; thin anti-aliased hair strands on "
        "the ellipsoid and the head) are rendered with an independent reference renderer "
        "(`relight_core/evaluation/synthetic.py`: direct integration of the panorama, no "
        "spherical harmonics, no `envmap`): Lambertian `albedo·E(n)/π` plus a normalised "
        "Phong lobe (n = 32) at the mirror direction weighted by k_s·F(n·v) (Schlick Fresnel, "
        "F0 = 0.04, F90 = 0.35; k_s = 1, which the shading stage renders at shininess 1); no "
        "cast shadows (local shading). Each is "
        "composited over a pinhole view (60° FOV) of the same panorama, exposed by the "
        "pano.py rule (0.18 / geometric mean). A *case* is a subject photographed in scene A "
        "(the input, quantised to 8-bit sRGB like a document) relit onto the background of "
        "scene B; the truth is the same subject rendered in scene B.",
        "",
        "The synthetic subjects are not people, so the person detector and face mesh are "
        "bypassed: matting gets a stand-in detector mask (the truth's solid part, α* ≥ 0.5, "
        "blurred by σ = 2 px: no hair strands), geometry gets no face landmarks (pure "
        "silhouette inflation). Every other stage is the pipeline's own function.",
        "",
        "### Scenes (shared panoramas, classified by hand)",
        "",
        "| scene | panorama | camera yaw/pitch | kind | why |",
        "|---|---|---|---|---|",
    ]
    for scene in synthetic.SCENES:
        lines.append(f"| {scene.name} | `{scene.hdri}` | {scene.yaw_deg:g}° / "
                     f"{scene.pitch_deg:g}° | {scene.kind} | {scene.reason} |")
    lines += ["", "`dikhololo_night` is left out (a starry night sky is too dark to relight to).",
              f"Source scenes (A): {', '.join(result['sources_used'])}; every other scene is a "
              "target (B).",
              "", "### What each row measures", ""]
    lines += [f"- **{name}**: {text}" for name, text in METHODS.items()]
    lines += ["",
              "Rows other than `pipeline` render an opaque surface (the stage's back-light edge "
              "translucency off), like the truth. Relit errors are computed inside the true "
              "matte (α* ≥ 0.5) on sRGB-encoded values "
              "clipped to [0, 1] (what the artist sees); `rel_linear` is Σ|relit − truth| / "
              "Σ|truth| on linear values inside α* ≥ 0.999. Composite errors cover the subject "
              f"plus a {COMPOSITE_RING_PX}-px ring around it (where halos show); the rest of the "
              "image is the background itself for every method.", ""]
    lines += ["## Result: shading stage with true inputs (renderer ↔ evaluator)", ""]
    if agreement is None:
        lines.append("Not measured: the pipeline's shading stage was not importable.")
    else:
        verdict = "PASS" if agreement["passes_2_percent"] else "FAIL"
        lines += [
            "The shading stage (`Surface.render` + `compose`, cast shadows off) is given the "
            "true pixel layers and the true panorama of scene B and compared with the reference "
            "model evaluated on the same pixel layers (`synthetic.shade_pixels`), inside "
            "α* ≥ 0.999, as Σ|relit − reference| / Σ|reference| in linear light: mean "
            f"{100 * agreement['mean_relative_error']:.2f} %, worst case "
            f"{100 * agreement['max_relative_error']:.2f} % → **{verdict}** (target ≤ 2 % in "
            "every case). Second line: against the super-sampled truth, which also counts "
            "pixels whose sub-samples straddle a crease (no per-pixel renderer resolves those).",
            ""]
        per_kind = {k: summary["truth_layers"][k] for k in (*synthetic.SCENE_KINDS, "all")
                    if k in summary["truth_layers"]}
        lines.append("| relative error (mean / worst) | " + " | ".join(per_kind) + " |")
        lines.append("|---|" + "---|" * len(per_kind))
        lines.append("| vs reference on the same pixel layers | " + " | ".join(
            f"{100 * v['relit.rel_pixel_reference']:.2f} % / "
            f"{100 * v['relit.rel_pixel_reference_max']:.2f} %" for v in per_kind.values()) + " |")
        lines.append("| vs super-sampled truth | " + " | ".join(
            f"{100 * v['relit.rel_linear']:.2f} % / {100 * v['relit.rel_linear_max']:.2f} %"
            for v in per_kind.values()) + " |")
        lines += ["", "Where the error comes from (same comparison, per light component, per "
                  "target scene; the mean over subjects):", "",
                  "| target scene | kind | diffuse rel. error | specular rel. error | "
                  "specular share of the light | relit rel. error |", "|---|---|---|---|---|---|"]
        grouped: dict[str, list[dict]] = defaultdict(list)
        for check in result["shading_checks"]:
            grouped[check["target"]].append(check)
        for target, checks in grouped.items():
            def mean(key: str, checks: list[dict] = checks) -> float:
                return float(np.mean([c[key] for c in checks]))
            lines.append(f"| {target} | {checks[0]['target_kind']} | "
                         f"{100 * mean('diffuse_rel'):.2f} % | {100 * mean('specular_rel'):.2f} %"
                         f" | {100 * mean('specular_share'):.0f} % | "
                         f"{100 * mean('relit_rel'):.2f} % |")
    lines += ["", "## Result: end to end against the baselines (per target scene kind)", ""]
    lines += _gain_lines(summary, result["case_rows"])
    lines += ["", "Negative percentages: the pipeline's composite error is that much lower.", "",
              "## Relit subject (inside the true matte)", ""]
    lines += _method_table(summary, "relit", methods)
    lines += ["", "Exposure bias of the relit subject (stops; + too bright, − too dark; the "
              "log₂ of the best single gain that matches the truth):", ""]
    kinds = [k for k in (*synthetic.SCENE_KINDS, "all") if k in summary.get("paste", {})]
    lines += ["| method | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    for method in methods:
        if method in summary:
            lines.append(f"| {method} | " + " | ".join(
                f"{summary[method][k]['relit.bias_stops']:+.2f}" for k in kinds) + " |")
    lines += ["", "## Composite (subject + ring)", ""]
    lines += _method_table(summary, "composite", methods)
    lines += ["", "## Per stage (averaged over the portraits photographed in each source kind)",
              ""]
    lines += _stage_lines(stages)
    lines += ["", "Matting errors follow Rhemann et al. 2009 (SAD, MSE, gradient with σ = 1.4 "
              "Gaussian-derivative filters, connectivity with step 0.1, θ = 0.15) over the "
              "unknown band (5 px around every fractional or edge pixel of α*). Albedo errors are "
              "scale-invariant (best global scale, then RMS error / RMS truth) inside α* ≥ "
              "0.999.", "", "## Pictures", "",
              "![synthetic examples](synthetic_examples.jpg)", "",
              "Rows: one case per target kind (the head subject). Columns: input, truth, "
              "pipeline composite, plain paste, Reinhard transfer, the pipeline's alpha, normals "
              "(estimated and true) and albedo.", ""]
    if result.get("contact_sheet"):
        lines += ["![real portraits](contact_sheet.png)", "",
                  "Real portraits: each portrait over several shared backgrounds, the pipeline's "
                  "composite next to a plain paste of its own cut-out.", ""]
    if result["missing"]:
        lines += ["## Stages that could not be loaded", ""]
        lines += [f"- {m}" for m in result["missing"]]
    timings = report["timings"]
    lines += ["", "## Time", "", " · ".join(f"{k} {v:.1f}" for k, v in timings.items()), ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one subject, two source scenes")
    parser.add_argument("--no-contact-sheet", action="store_true",
                        help="skip the real-portrait contact sheet")
    args = parser.parse_args(argv)
    if not (DATA / "hdri").is_dir():
        print(f"error: shared data not found at {DATA}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    result = run(args.quick)
    if not args.no_contact_sheet:
        tick = time.perf_counter()
        sheet, problems = contact_sheet()
        result["missing"] += problems
        if sheet is not None:
            save_png_small(DOCS_DIR / "contact_sheet.png", sheet)
            save_rgb(OUT_DIR / "contact_sheet.png", sheet)
            result["contact_sheet"] = True
        result["timings"]["contact_sheet_s"] = time.perf_counter() - tick
    sheet = examples_sheet(result["examples"])
    save_rgb(OUT_DIR / "synthetic_examples.png", sheet)
    save_rgb(DOCS_DIR / "synthetic_examples.jpg", sheet, jpeg_quality=85)
    seconds = time.perf_counter() - start
    report = write_report(result, DOCS_DIR, seconds, args.quick)
    (OUT_DIR / "REPORT.md").write_text((DOCS_DIR / "REPORT.md").read_text())
    print((DOCS_DIR / "REPORT.md").read_text())
    agreement = report["agreement"]
    print(f"total {seconds:.0f} s; agreement: {agreement}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
