"""Framing: a person small in a large picture gets the matte they get when they fill it.

    .venv/bin/python bench/bench_framing.py [--json PATH] [--frames 2 3]

Each shared portrait's own matte and foreground, as the pipeline makes them at the portrait's
framing, are the exact truth of a new picture: the person composited in linear light at the
bottom centre of a frame 2× and 3× the portrait's size (the person keeps its pixels), over a
shared background photo scaled to cover it. The pipeline mattes that picture twice: as shipped
(the person's box is cut out first, ``pipeline.person_box``) and with the whole frame
(``CROP_MAX_SHARE = 0``). Per picture:

* *see-through*: mean 1 − α over the truth's opaque core (α ≥ 0.99), in %: a face or a shirt
  the new background shows through;
* *edge*: mean |α − α_true| over the truth's soft edge (0.02 < α < 0.98, widened by 3 px);
* *frame*: mean |α − α_true| over the whole frame × 1000 (stray mattes away from the person
  count here);
* seconds to prepare (detection, matting, geometry, albedo).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_normals import DATA, write_results  # noqa: E402

from relight_core import io, pipeline  # noqa: E402

BACKGROUNDS = ("potsdamer_platz.png", "st_fagans_hall.png", "rooitou_park_away_from_sun.png")
VARIANTS = {"person's box": pipeline.CROP_MAX_SHARE, "whole frame": 0.0}


def prepared(image: np.ndarray, crop_max_share: float) -> tuple[np.ndarray, np.ndarray, float]:
    """(alpha in the frame, foreground in the person's box, seconds) as the pipeline makes
    them with this crop rule."""
    shipped = pipeline.CROP_MAX_SHARE
    pipeline.CROP_MAX_SHARE = crop_max_share
    try:
        relighter = pipeline.Relighter(image)
        start = time.perf_counter()
        relighter.prepare()
        seconds = time.perf_counter() - start
    finally:
        pipeline.CROP_MAX_SHARE = shipped
    return relighter.framed_alpha(), relighter.foreground, seconds


def small_in_frame(alpha: np.ndarray, foreground: np.ndarray, background: np.ndarray,
                   frame: float) -> tuple[np.ndarray, np.ndarray]:
    """(picture (H', W', 3) linear, its alpha (H', W')): the person at the bottom centre of a
    frame ``frame`` × the portrait's size, over ``background`` scaled to cover it."""
    height, width = alpha.shape
    out_h, out_w = round(frame * height), round(frame * width)
    scale = max(out_h / background.shape[0], out_w / background.shape[1])
    cover = cv2.resize(background, (max(out_w, round(background.shape[1] * scale)),
                                    max(out_h, round(background.shape[0] * scale))),
                       interpolation=cv2.INTER_CUBIC)[:out_h, :out_w]
    truth = np.zeros((out_h, out_w), np.float32)
    top, left = out_h - height, (out_w - width) // 2
    truth[top:, left:left + width] = alpha
    person = np.zeros((out_h, out_w, 3), np.float32)
    person[top:, left:left + width] = foreground
    picture = person * truth[..., None] + np.clip(cover, 0, None) * (1 - truth[..., None])
    return picture.astype(np.float32), truth


def measure(alpha: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    core = truth >= 0.99
    soft = (truth > 0.02) & (truth < 0.98)
    edge = cv2.dilate(soft.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    error = np.abs(alpha - truth)
    return {"see_through_pct": float(100 * (1 - alpha[core]).mean()),
            "edge_mae": float(error[edge].mean()), "frame_mae_x1000": float(1000 * error.mean())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "framing.json")
    parser.add_argument("--frames", type=float, nargs="+", default=[2.0, 3.0])
    args = parser.parse_args(argv)
    backgrounds = [io.read_image(DATA / "backgrounds" / name)[..., :3] for name in BACKGROUNDS]
    rows: dict[str, dict] = {}
    portraits = sorted((DATA / "portraits").glob("[0-9]*.*"))
    for index, path in enumerate(portraits):
        portrait = io.read_image(path)[..., :3]
        truth_alpha, foreground, _ = prepared(portrait, pipeline.CROP_MAX_SHARE)
        for frame in args.frames:
            picture, truth = small_in_frame(truth_alpha, foreground,
                                            backgrounds[index % len(backgrounds)], frame)
            row = {}
            for variant, share in VARIANTS.items():
                alpha, _, seconds = prepared(picture, share)
                row[variant] = {**measure(alpha, truth), "seconds": seconds}
            rows[f"{path.stem} ×{frame:g}"] = row
            print(f"{path.stem} ×{frame:g}: " + "; ".join(
                f"{v}: {r['see_through_pct']:.2f} % / {r['edge_mae']:.3f} / "
                f"{r['frame_mae_x1000']:.2f} / {r['seconds']:.1f} s" for v, r in row.items()),
                flush=True)
    keys = ("see_through_pct", "edge_mae", "frame_mae_x1000", "seconds")
    means = {f"mean ×{frame:g}": {variant: {key: float(np.mean([
        row[variant][key] for name, row in rows.items() if name.endswith(f" ×{frame:g}")]))
        for key in keys} for variant in VARIANTS} for frame in args.frames}
    print("\nsee-through % of the opaque core | edge MAE | frame MAE ×1000 | prepare s")
    print(f"{'picture':58s} " + " ".join(f"{variant:>34s}" for variant in VARIANTS))
    for name, row in {**rows, **means}.items():
        cells = [f"{r['see_through_pct']:6.2f} | {r['edge_mae']:.3f} | "
                 f"{r['frame_mae_x1000']:6.2f} | {r['seconds']:5.1f}"
                 for r in (row[variant] for variant in VARIANTS)]
        print(f"{name:58s} " + " ".join(f"{cell:>34s}" for cell in cells))
    write_results(args.json, {"backgrounds": list(BACKGROUNDS), "frames": args.frames,
                              "pictures": rows, "means": means})
    return 0


if __name__ == "__main__":
    sys.exit(main())
