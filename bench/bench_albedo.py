"""How much of the original light is left in the albedo of real faces (there is no true albedo).

A face's reflectance is close to mirror-symmetric; the light on it in a portrait seldom is (a
window or a sun from one side). For each portrait in ``../shared/data/portraits`` the pipeline
prepares the albedo as shipped; at mirrored points of the face mesh (the point beside the left
eye and the one beside the right eye, and so on), on skin, the difference of log luminance,
averaged over a patch of 4 % of the face width, is taken. Each column is its median over the
face's mirrored pairs, in natural-log units (0.69 = one side twice as bright as the other):

* ``photo``: the matted foreground, the original light included;
* ``albedo``: the albedo as shipped (the fitted original light divided out whole);
* ``partial``: the fitted light divided out only partly, its variation raised to the power 0.6
  (the pipeline's rule until the fourteenth session), for comparison;
* ``grey light``: the albedo divided by the grey shading alone, without the light's change of
  colour across the face (``albedo.light_tint``; the pipeline's rule until the twentieth
  session).

The same is taken of the log chromaticity (|Δ log r/g| + |Δ log b/g|): the light's colour
seldom is the same on both sides of a face (a warm window, a cool fill), its reflectance is.

Lower is more even. The measure shares the albedo stage's own assumption (uniform skin), so it
is a check of how much of the fitted light reaches the albedo and of where the fit misses
(cast shadows, dappled light), not an error against a truth: the synthetic subjects of
``bench/eval_quality.py`` measure that. A face that is itself lit evenly sits at the measure's
floor (its mesh's fit, hair across one cheek): about 0.1–0.2.

The mirrored pairs are the face-mesh topology's: the landmark pairs that mirror each other
across the face's midline (3D, through the outer eye corners' axis) in the most frontal face
among the portraits, used for every face.

    .venv/bin/python bench/bench_albedo.py [--json bench/results/albedo.json]

Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))

from relight_core import albedo, io, pipeline  # noqa: E402

# MediaPipe face-mesh landmarks on the midline (nose ridge, forehead, lips, chin) and the outer
# eye corners (right, left)
MIDLINE = (1, 4, 5, 6, 168, 197, 195, 9, 151, 10, 152, 175, 199, 200, 18, 17, 0, 13, 14, 2,
           164, 94)
EYE_CORNERS = (33, 263)
PAIR_TOLERANCE = 0.03  # × face width: how close a mirrored landmark must land on its partner
PATCH_PER_FACE_WIDTH = 0.02  # half the patch side
PARTIAL_EXPONENT = 0.6


def mirror_pairs(mesh: np.ndarray) -> list[tuple[int, int]]:
    """(468, 3) face mesh → index pairs (i < j) that mirror each other across its midline."""
    points = mesh.astype(np.float64)
    axis = points[EYE_CORNERS[1]] - points[EYE_CORNERS[0]]
    axis /= np.linalg.norm(axis)
    centre = points[list(MIDLINE)].mean(axis=0)
    mirrored = points - 2.0 * ((points - centre) @ axis)[:, None] * axis
    distance = np.linalg.norm(mirrored[:, None] - points[None], axis=2)
    partner = distance.argmin(axis=1)
    index = np.arange(len(points))
    mutual = (partner[partner] == index) & (
        distance[index, partner] < PAIR_TOLERANCE * np.ptp(points[:, 0]))
    return [(int(i), int(partner[i])) for i in index if mutual[i] and partner[i] > i]


def log_features(rgb: np.ndarray, chroma: bool) -> np.ndarray:
    """(H, W, 3) linear → log luminance (H, W, 1), or log chromaticity (log r/g, log b/g)."""
    logs = np.log(np.maximum(rgb, 1e-4))
    if chroma:
        return np.stack([logs[..., 0] - logs[..., 1], logs[..., 2] - logs[..., 1]], axis=-1)
    return np.log(np.maximum(albedo.luminance(rgb), 1e-4))[..., None]


def asymmetry(rgb: np.ndarray, mesh: np.ndarray, skin: np.ndarray,
              pairs: list[tuple[int, int]], chroma: bool = False) -> tuple[float, int]:
    """Median |log L(p) − log L(mirror p)| over the pairs on skin (or the summed |Δ| of the log
    chromaticity) → (median, pairs used)."""
    height, width = skin.shape
    side = 2 * max(2, round(PATCH_PER_FACE_WIDTH * np.ptp(mesh[:, 0]))) + 1
    features = cv2.blur(log_features(rgb, chroma), (side, side)).reshape(height, width, -1)
    on_skin = cv2.blur(skin.astype(np.float32), (side, side)) >= 0.99
    points = np.round(mesh[:, :2]).astype(int)
    differences = []
    for i, j in pairs:
        (xi, yi), (xj, yj) = points[i], points[j]
        if not (0 <= xi < width and 0 <= yi < height and 0 <= xj < width and 0 <= yj < height):
            continue
        if on_skin[yi, xi] and on_skin[yj, xj]:
            differences.append(float(np.abs(features[yi, xi] - features[yj, xj]).sum()))
    return (float(np.median(differences)) if differences else float("nan")), len(differences)


def prepared(path: Path) -> dict | None:
    """The pipeline's face mesh, skin, foreground and albedos of one portrait, at working size."""
    relighter = pipeline.Relighter(io.read_image(path))
    relighter.prepare()
    if not relighter.landmarks:
        return None
    height, width = relighter.work_shape
    foreground = cv2.resize(relighter.foreground, (width, height), interpolation=cv2.INTER_AREA)
    shading = relighter.original_shading_work
    reference = albedo.shading_reference(relighter.light_fit)
    partial_shading = reference * (shading / reference) ** PARTIAL_EXPONENT
    return {
        "mesh": relighter.landmarks[0], "skin": relighter.geometry.skin,
        "photo": foreground,
        "albedo": cv2.resize(relighter.albedo, (width, height), interpolation=cv2.INTER_AREA),
        "partial": albedo.albedo_from_shading(foreground, partial_shading.astype(np.float32)),
        "grey light": albedo.albedo_from_shading(foreground, shading),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "albedo.json")
    args = parser.parse_args(argv)
    portraits = sorted((DATA / "portraits").glob("[0-9]*.*"))
    faces = {path.name: prepared(path) for path in portraits}
    faces = {name: face for name, face in faces.items() if face is not None}
    pairs = max((mirror_pairs(face["mesh"]) for face in faces.values()), key=len)
    columns = ("photo", "albedo", "partial", "grey light")
    rows = []
    for name, face in faces.items():
        row = {"portrait": name}
        for column in columns:
            row[column], row["pairs"] = asymmetry(face[column], face["mesh"], face["skin"],
                                                  pairs)
            row[f"{column} chroma"], _ = asymmetry(face[column], face["mesh"], face["skin"],
                                                   pairs, chroma=True)
        rows.append(row)
    keys = [*columns, *(f"{column} chroma" for column in columns if column != "partial")]
    means = {key: float(np.nanmean([row[key] for row in rows])) for key in keys}
    print("median |Δ log| at mirrored points of the face; luminance, then chromaticity")
    print(f"{'portrait':40s} {'pairs':>5s} " + " ".join(f"{key[:10]:>10s}" for key in keys))
    for row in rows:
        print(f"{row['portrait'][:40]:40s} {row['pairs']:5d} "
              + " ".join(f"{row[key]:10.3f}" for key in keys))
    print(f"{'mean':40s} {'':5s} " + " ".join(f"{means[key]:10.3f}" for key in keys))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"mirror_pairs": len(pairs), "rows": rows, "mean": means},
                                    indent=1) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
