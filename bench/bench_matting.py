"""Closed-form alpha on the shared matting composites, clean and saved as JPEG.

Each composite of ``../shared/data/matting`` (true alpha and trimap known) is solved with its
own trimap as a PNG and after a JPEG round trip (Pillow, quality 95 / 90 / 75, 4:2:0 chroma
as cameras and the web save it), with the solve colours as shipped
(``matting._solve_colours``: chroma smoothed where JPEG's blocks show) and raw. Columns:

* ``error``: mean |alpha − truth| over the trimap's unknown band;
* ``grid``: alpha's steps on its worst 8-px grid line over its steps elsewhere
  (``matting._grid_step_ratio``; 1 = no trace of the blocks).

    .venv/bin/python bench/bench_matting.py [--json bench/results/matting.json]

Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import io as byte_io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "matting"
sys.path.insert(0, str(REPO))

from relight_core import io, matting  # noqa: E402

QUALITIES = (None, 95, 90, 75)  # None: the PNG as it is


def composites() -> list[tuple[str, Path, Path, Path]]:
    """(name, image, trimap, true alpha) of every shared composite."""
    lemur = DATA / "pymatting_lemur"
    found = [("lemur", lemur / "lemur.png", lemur / "lemur_trimap.png",
              lemur / "lemur_alpha.png")]
    for image in sorted((DATA / "synthetic_lemur").glob("*_image.png")):
        stem = image.name[: -len("_image.png")]
        found.append((stem, image, image.with_name(f"{stem}_trimap.png"),
                      image.with_name(f"{stem}_alpha.png")))
    return found


def _data(path: Path) -> np.ndarray:
    """8-bit alpha or trimap file → (H, W) float32 in [0, 1] (data: no sRGB decoding)."""
    return np.asarray(Image.open(path).convert("L"), np.float32) / 255.0


def snapped_trimap(path: Path) -> np.ndarray:
    """8-bit trimap file → (H, W) float64 in {0, 0.5, 1}: anti-aliased grey levels are unknown."""
    levels = _data(path)
    return np.select([levels > 0.9, levels < 0.1], [1.0, 0.0], 0.5)


def jpeg_round_trip(path: Path, quality: int | None) -> np.ndarray:
    """The image at ``path`` (saved as JPEG at ``quality`` first, unless None) → linear."""
    image = Image.open(path).convert("RGB")
    if quality is not None:
        buffer = byte_io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        image = Image.open(buffer)
    return io.decode_srgb(np.asarray(image))


def measure(image_linear: np.ndarray, trimap: np.ndarray, truth: np.ndarray) -> dict:
    unknown = (trimap > 0.01) & (trimap < 0.99)
    row = {}
    for column, colours in (("shipped", matting._solve_colours(image_linear, image_linear)),
                            ("raw", matting.linear_to_srgb(image_linear))):
        alpha = matting.closed_form_alpha(colours, trimap)
        row[f"error {column}"] = float(np.abs(alpha - truth)[unknown].mean())
        row[f"grid {column}"] = matting._grid_step_ratio(alpha)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "matting.json")
    args = parser.parse_args(argv)
    rows: dict[str, dict] = {}
    for name, image_path, trimap_path, alpha_path in composites():
        trimap = snapped_trimap(trimap_path)
        truth = _data(alpha_path)
        for quality in QUALITIES:
            image = jpeg_round_trip(image_path, quality)
            key = f"{name} {'png' if quality is None else f'q{quality}'}"
            rows[key] = measure(image, trimap, truth)
            rows[key]["chroma blocking"] = matting.chroma_blocking(matting.linear_to_srgb(image))
    columns = ["chroma blocking", "error shipped", "error raw", "grid shipped", "grid raw"]
    means = {}
    for quality in QUALITIES:
        tag = "png" if quality is None else f"q{quality}"
        chosen = [row for key, row in rows.items() if key.endswith(f" {tag}")]
        means[f"mean {tag}"] = {column: float(np.mean([row[column] for row in chosen]))
                                for column in columns}
    print(f"{'composite':42s} " + " ".join(f"{column:>15s}" for column in columns))
    for key, row in {**rows, **means}.items():
        print(f"{key:42s} " + " ".join(f"{row[column]:15.4f}" for column in columns))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"composites": rows, "means": means}, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
