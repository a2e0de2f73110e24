"""Cast shadows on the shared portraits: where they fall that the normals say is lit.

Shading uses the normals; shadows are cast by the height field. Where the two disagree, a
point that faces the light lies in the shadow of its own slope (a grey band under a chin). For
each portrait in ``../shared/data/portraits`` the pipeline makes its matte and face meshes once;
the geometry is built as shipped and with one of its rules switched off, and two lights are
cast on it (a sun's size, 1°):

* *near camera*: lights 15° off the view axis, at 8 azimuths around it. The camera sees almost
  no shadow of a light beside it; the column is the share of the face's pixels (the mesh and
  its feathered border) that face the light (n·l ≥ 0.3) yet lie in shadow (visibility < 0.5),
  for the worst of the 8 lights. Lower is better.
* *side key*: lights 50° off the view axis to the left, right and above. The column is the
  share of the face's skin in shadow: the nose on the cheek, the eye sockets, the chin on the
  neck should stay (there is no true value; a rule that removes them shows here).

    .venv/bin/python bench/bench_shadows.py [--json bench/results/shadows.json]

Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_normals import geometry_variants, shared_portraits, write_results  # noqa: E402

from relight_core import geometry  # noqa: E402
from relight_core.shading import key_visibility  # noqa: E402

# (column, geometry constant, value that switches the rule off)
VARIANTS = (("as shipped", None, None),
            ("height as built", "SLOPE_LENGTH_FRACTION", 0.0))
SUN_SIZE_DEG = 1.0
FACING = 0.3


def light(off_axis_deg: float, azimuth_deg: float) -> np.ndarray:
    """Unit direction (camera frame) ``off_axis_deg`` from the view axis, turned ``azimuth_deg``
    about it (0 = up in the image, 90 = right)."""
    off, azimuth = math.radians(off_axis_deg), math.radians(azimuth_deg)
    return np.array([math.sin(off) * math.sin(azimuth), math.sin(off) * math.cos(azimuth),
                     math.cos(off)])


NEAR_CAMERA = [light(15.0, azimuth) for azimuth in range(0, 360, 45)]
SIDE_KEYS = [light(50.0, azimuth) for azimuth in (-90.0, 0.0, 90.0)]


def shadow_shares(built: geometry.Geometry, alpha: np.ndarray) -> tuple[float, float]:
    """(share of the facing face in shadow under the worst near-camera light, share of skin in
    shadow under side keys)."""
    face = (alpha > 0.5) & (built.face_weight > 0)
    wrong = [0.0]
    for direction in NEAR_CAMERA:
        facing = face & (built.normals @ direction.astype(np.float32) >= FACING)
        shadowed = key_visibility(built.height, direction, SUN_SIZE_DEG) < 0.5
        wrong.append(float((facing & shadowed).sum()) / max(1, int(facing.sum())))
    skin = built.skin
    cast = [float((key_visibility(built.height, direction, SUN_SIZE_DEG)[skin] < 0.5).mean())
            if skin.any() else 0.0 for direction in SIDE_KEYS]
    return max(wrong), float(np.mean(cast))


def measure(alpha: np.ndarray, landmarks: list[np.ndarray]) -> dict[str, dict[str, float]]:
    row = {}
    for column, built in geometry_variants(alpha, landmarks, VARIANTS):
        near, side = shadow_shares(built, alpha)
        row[column] = {"near_camera": near, "side_key_skin": side}
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "shadows.json")
    args = parser.parse_args(argv)
    rows = {name: measure(alpha, landmarks) for name, alpha, landmarks in shared_portraits()}
    columns = [column for column, _, _ in VARIANTS]
    mean = {column: {key: float(np.mean([row[column][key] for row in rows.values()]))
                     for key in ("near_camera", "side_key_skin")} for column in columns}
    print("% of the face that faces a light 15° off the view axis yet lies in its shadow (worst "
          "of 8) | % of the skin in shadow of a key 50° off the axis (mean of 3)")
    print(f"{'portrait':52s} " + " ".join(f"{column:>19s}" for column in columns))
    for name, row in {**rows, "mean": mean}.items():
        cells = [f"{100 * row[c]['near_camera']:8.2f} | {100 * row[c]['side_key_skin']:6.2f}"
                 for c in columns]
        print(f"{name:52s} " + " ".join(f"{cell:>19s}" for cell in cells))
    write_results(args.json, {"unit": "share of pixels", "sun_size_deg": SUN_SIZE_DEG,
                              "portraits": rows, "mean": mean})
    return 0


if __name__ == "__main__":
    sys.exit(main())
