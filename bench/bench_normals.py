"""Smoothness of the hair and body normals on the shared portraits (there is no true shape).

For each portrait in ``../shared/data/portraits`` the pipeline makes its matte and face meshes
once; the geometry is then built as shipped and with one of its outline rules switched off.
Each column is the mean angle (degrees) between the normals off the face and the same normals
blurred at 3 % of the face width: fine-scale variation, such as bands down the side of loose
hair or a ridge down the crown. Lower is smoother; it is not an error against a truth (the
synthetic subjects of ``bench/eval_quality.py`` measure that).

    .venv/bin/python bench/bench_normals.py [--json bench/results/normals.json]

Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))

from relight_core import geometry, io, pipeline  # noqa: E402

BLUR_PER_FACE_WIDTH = 0.03
# (column, geometry constant, value that switches the rule off)
VARIANTS = (("as shipped", None, None),
            ("notches kept", "ENVELOPE_SIGMA", 0.0),
            ("touching = cut", "FRAME_CUT_RUN", 0.0),
            ("depth ≤ distance", "DEPTH_OVERSHOOT", 1.0))


def fine_variation_deg(normals: np.ndarray, where: np.ndarray, sigma: float) -> float:
    """Mean angle between unit normals (H, W, 3) and their σ-blurred selves over ``where``."""
    blurred = geometry.normalize(
        np.dstack([cv2.GaussianBlur(normals[..., i], (0, 0), sigma) for i in range(3)]))
    cosine = np.clip(np.einsum("hwc,hwc->hw", normals, blurred), -1.0, 1.0)
    return float(np.degrees(np.arccos(cosine))[where].mean())


def geometry_variants(alpha: np.ndarray, landmarks: list[np.ndarray], variants: tuple
                      ) -> Iterator[tuple[str, geometry.Geometry]]:
    """(column, geometry) for each (column, geometry constant, value that switches its rule
    off) of ``variants``; the constant is restored after each build."""
    for column, name, off in variants:
        saved = getattr(geometry, name) if name else None
        if name:
            setattr(geometry, name, off)
        try:
            built = geometry.person_geometry(alpha, landmarks)
        finally:
            if name:
                setattr(geometry, name, saved)
        yield column, built


def shared_portraits() -> Iterator[tuple[str, np.ndarray, list[np.ndarray]]]:
    """(name, matte at the working size, face meshes) of each shared portrait, as the pipeline
    makes them."""
    for path in sorted((DATA / "portraits").glob("[0-9]*.*")):
        relighter = pipeline.Relighter(io.read_image(path)[..., :3])
        relighter.prepare()
        # the matte at the size the pipeline built its geometry from
        alpha = io.resize_linear(relighter.alpha, *relighter.work_shape[::-1])
        yield path.stem, alpha, relighter.landmarks


def measure(alpha: np.ndarray, landmarks: list[np.ndarray]) -> dict[str, float]:
    widths = [float(np.ptp(mesh[:, 0])) for mesh in landmarks]
    # without a face the inflation assumes a head 0.1 of the long side deep (0.6 face widths)
    face_width = max(widths) if widths else 0.1 * max(alpha.shape) / 0.6
    row = {}
    for column, built in geometry_variants(alpha, landmarks, VARIANTS):
        off_face = (alpha > 0.5) & (built.face_weight < 0.01)
        row[column] = fine_variation_deg(built.normals, off_face,
                                         BLUR_PER_FACE_WIDTH * face_width)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "normals.json")
    args = parser.parse_args(argv)
    rows = {name: measure(alpha, landmarks) for name, alpha, landmarks in shared_portraits()}
    columns = [column for column, _, _ in VARIANTS]
    mean = {column: float(np.mean([row[column] for row in rows.values()])) for column in columns}
    print(f"{'portrait':52s} " + " ".join(f"{column:>17s}" for column in columns))
    for name, row in {**rows, "mean": mean}.items():
        print(f"{name:52s} " + " ".join(f"{row[column]:17.2f}" for column in columns))
    write_results(args.json, {"unit": "degrees", "blur_per_face_width": BLUR_PER_FACE_WIDTH,
                              "portraits": rows, "mean": mean})
    return 0


def write_results(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
