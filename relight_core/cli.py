"""`relight run | light | models | doctor` — the command line.

Exit codes: 0 ok; 2 bad input (one line on stderr naming the file and the problem); 1 anything
else (models missing, internal error: one line, the traceback only with RELIGHT_DEBUG=1).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

PNG_LAYERS = ("foreground", "albedo", "shading", "specular", "composite")
TIFF_LAYERS = ("alpha", "foreground", "normals", "albedo", "shading", "specular", "relit",
               "composite")


class _Failure(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# ---------------------------------------------------------------- run

def _progress_bar(enabled: bool):
    from tqdm import tqdm

    # interactive use only: a bar in a log file or a pipe is noise
    enabled = enabled and sys.stderr.isatty()
    bar = tqdm(total=100, desc="relight", unit="%", file=sys.stderr, disable=not enabled,
               leave=False, bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}")
    state = {"done": 0}

    def progress(stage: str, fraction: float) -> None:
        target = int(round(fraction * 100))
        bar.set_postfix_str(stage)
        if target > state["done"]:
            bar.update(target - state["done"])
            state["done"] = target

    return bar, progress


def _encoded_normals(normals):
    """Normals (H, W, 3) in [-1, 1] → [0, 1], with one temporary."""
    encoded = normals * 0.5
    encoded += 0.5
    return encoded


def _tiff_data(layers, name: str):
    """The array a layer's TIFF holds: the layer; relit with the matte as its alpha."""
    if name != "relit":
        return getattr(layers, name)
    import numpy as np

    return np.concatenate([layers.relit, layers.alpha[..., None]], axis=2)


def write_layers(outdir: Path, layers) -> list[str]:
    """Write every layer as 8-bit sRGB PNG + float32 linear TIFF; returns the file names.

    The files are encoded on a few threads: zlib and PNG encoding release the GIL, and written
    one after another they took more than half of a run (1 MP: 3.0 of 5.4 s). Each thread
    makes its file's derived arrays itself, so only that many are held at once."""
    from concurrent.futures import ThreadPoolExecutor

    from . import io
    from .pipeline import LARGE_IMAGE_PIXELS

    outdir.mkdir(parents=True, exist_ok=True)
    writes = {
        "alpha.png": lambda path: io.write_png_data8(path, layers.alpha),
        "normals.png": lambda path: io.write_png_data8(path, _encoded_normals(layers.normals)),
        "relit.png": lambda path: io.write_png_srgb8(path, layers.relit, alpha=layers.alpha),
    }
    for name in PNG_LAYERS:
        writes[f"{name}.png"] = lambda path, name=name: io.write_png_srgb8(
            path, getattr(layers, name))
    for name in TIFF_LAYERS:
        writes[f"{name}.tif"] = lambda path, name=name: io.write_tiff_linear(
            path, _tiff_data(layers, name))
    large = layers.alpha.size >= LARGE_IMAGE_PIXELS  # each thread holds a few copies of a layer
    threads = min(2 if large else 4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for done in [pool.submit(write, outdir / name) for name, write in writes.items()]:
            done.result()  # a failed write raises here
    return sorted(writes)


def _settings(args):
    """The run's pipeline settings from its arguments, each range checked."""
    from .pipeline import Settings

    _check_range("--strength", args.strength, 0.0, 100.0)
    _check_range("--shininess", args.shininess, 0.0, 1.0)
    _check_range("--keep-original", args.keep_original, 0.0, 1.0)
    _check_range("--max-size", args.max_size, 64, 8192)
    return Settings(rotate_deg=args.rotate, strength=args.strength, shininess=args.shininess,
                    keep_original=args.keep_original, max_size=args.max_size,
                    edge_refine=not args.no_edge_refine, max_megapixels=args.max_megapixels)


def _read_inputs(args) -> dict:
    """Portrait, background, panorama and selection read from their files (linear light),
    with what reading them noted (a colour profile, an orientation)."""
    from . import io

    notes: list[str] = []
    limit = args.max_megapixels
    return {
        "portrait": io.read_image(args.portrait, limit, notes),
        "background": io.read_image(args.background, limit, notes),
        "hdri": io.read_panorama(args.hdri, limit) if args.hdri else None,
        "selection": io.read_mask(args.selection, limit) if args.selection else None,
        "notes": notes,
    }


def _relit(args, inputs: dict, settings):
    """Prepare and relight, with a progress bar → (relighter, layers); a pipeline error
    becomes a one-line failure naming the file."""
    from .pipeline import Relighter, RelightError

    bar, progress = _progress_bar(not args.json and not args.quiet)
    try:
        relighter = Relighter(inputs["portrait"], settings, progress=progress,
                              selection=inputs["selection"])
        return relighter, relighter.relight(inputs["background"], hdri=inputs["hdri"])
    except RelightError as error:
        raise _Failure(2 if error.code in ("bad_input", "no_person") else 1,
                       _name_file(error.message, args)) from None
    finally:
        bar.close()


def _sizes(inputs: dict, relighter, layers) -> dict:
    """Widths and heights of the inputs, the output and the working size; the person's box."""
    def size(array) -> list[int]:
        return [array.shape[1], array.shape[0]]

    box = relighter.box
    return {"portrait": size(inputs["portrait"]), "background": size(inputs["background"]),
            "output": size(layers.alpha), "working": relighter.work_shape[::-1],
            # x0, y0, x1, y1 of the person's box the stages worked on (None: the whole)
            "person_box": None if box is None else [box[1], box[0], box[3], box[2]]}


def _run(args) -> int:
    started = time.perf_counter()
    settings = _settings(args)
    read_start = time.perf_counter()
    inputs = _read_inputs(args)
    read_seconds = time.perf_counter() - read_start
    relighter, layers = _relit(args, inputs, settings)

    write_start = time.perf_counter()
    outdir = Path(args.outdir)
    files = write_layers(outdir, layers)
    timings = {"read": round(read_seconds, 4), **layers.timings,
               "write": round(time.perf_counter() - write_start, 4)}
    timings["total"] = round(time.perf_counter() - started, 4)
    result = {
        "portrait": str(args.portrait), "background": str(args.background),
        "hdri": str(args.hdri) if args.hdri else None,
        "selection": str(args.selection) if args.selection else None,
        "sizes": _sizes(inputs, relighter, layers),
        "faces": layers.faces,
        "settings": vars(settings),
        "timings_s": timings,
        "light": layers.light,
        "warnings": inputs["notes"] + layers.warnings,
        "files": files + ["result.json"],
    }
    text = json.dumps(result, indent=1)
    (outdir / "result.json").write_text(text + "\n")
    if args.json:
        print(text)
    elif not args.quiet:
        print(f"wrote {len(files) + 1} files to {outdir} in {timings['total']:.1f} s "
              f"({layers.faces} face(s))")
        for warning in result["warnings"]:
            print(f"warning: {warning}", file=sys.stderr)
    return 0


def _name_file(message: str, args) -> str:
    """Pipeline errors say 'portrait: …' / 'background: …'; name the actual file instead."""
    for word, path in (("portrait", args.portrait), ("background", args.background),
                       ("panorama", args.hdri), ("selection", args.selection)):
        if path and message.startswith(word + ":"):
            return f"{path}:{message[len(word) + 1:]}"
    if message.startswith("no person"):
        return f"{args.portrait}: {message}"
    return message


def _check_range(flag: str, value: float, low: float, high: float) -> None:
    if not (low <= value <= high):
        raise _Failure(2, f"{flag} must be between {low:g} and {high:g}, got {value:g}")


# ---------------------------------------------------------------- light

def _light(args) -> int:
    from . import io, lighting

    path = Path(args.background)
    notes: list[str] = []
    image = io.read_image(path, args.max_megapixels, notes)
    pixels, height, width = image[..., :3], image.shape[0], image.shape[1]
    if path.suffix.lower() in (".exr", *io.RADIANCE_SUFFIXES) and width == 2 * height:
        env = lighting.environment_from_hdri(pixels)  # an HDR panorama: no estimate needed
    else:  # a photo, HDR ones (an EXR plate) and partly transparent ones included
        coverage = image[..., 3] if image.shape[2] == 4 else None
        env = lighting.estimate_environment(pixels, coverage=coverage)
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    report = lighting.environment_report(env)
    if args.save_panorama:
        _save_panorama(Path(args.save_panorama), env.pano)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        direction = [round(float(v), 3) for v in env.dominant_direction]
        colour = [round(float(v), 4) for v in env.dominant_colour]
        print(f"source: {env.source}")
        print(f"dominant light direction (x right, y up, z toward camera): {direction}")
        print(f"dominant light colour (linear RGB): {colour}")
        key = [round(float(v), 4) for v in env.key_irradiance]
        print(f"key light: direction {[round(float(v), 3) for v in env.key_direction]}, "
              f"irradiance {key}, size {env.key_size_deg:.1f}°")
        for note in env.notes:
            print(f"note: {note}")
        for advice in env.advice:
            print(f"warning: {advice}", file=sys.stderr)
        if args.save_panorama:
            print(f"panorama saved to {args.save_panorama}")
    return 0


def _save_panorama(path: Path, pano) -> None:
    from . import io

    suffix = path.suffix.lower()
    if suffix in (".hdr", ".exr"):
        import cv2

        if not cv2.imwrite(str(path), pano[..., ::-1].astype("float32")):
            raise _Failure(2, f"{path}: cannot write the panorama")
    elif suffix in (".tif", ".tiff"):
        io.write_tiff_linear(path, pano)
    elif suffix == ".png":
        io.write_png_srgb8(path, pano)
    else:
        raise _Failure(2, f"{path}: use .hdr, .exr, .tif or .png for --save-panorama")


# ---------------------------------------------------------------- doctor

def _doctor(args) -> int:
    problems = 0
    for module in ("numpy", "cv2", "PIL", "onnxruntime", "scipy", "tifffile", "platformdirs",
                   "tqdm"):
        try:
            imported = __import__(module)
            print(f"ok    import {module} {getattr(imported, '__version__', '')}")
        except Exception as error:  # noqa: BLE001 - the doctor reports every failure
            problems += 1
            print(f"FAIL  import {module}: {error}")
    from . import matting

    matting.configure_numba_cache()
    start = time.perf_counter()
    try:
        import pymatting

        seconds = time.perf_counter() - start
        cache = os.environ.get("NUMBA_CACHE_DIR") or "next to pymatting's sources"
        state = "warm" if seconds < 10 else "was cold (compiled now)"
        print(f"ok    import pymatting {pymatting.__version__} in {seconds:.1f} s; numba cache "
              f"{state}: {cache}")
    except Exception as error:  # noqa: BLE001
        problems += 1
        print(f"FAIL  import pymatting: {error}")
    try:
        from .models import model_statuses, models_dir

        rows = model_statuses()
        bad = [row for row in rows if row.status != "ok"]
        if bad:
            problems += 1
            print(f"FAIL  models in {models_dir()}: "
                  + ", ".join(f"{row.name} {row.status}" for row in bad)
                  + " — run `relight models install --force`")
        else:
            print(f"ok    {len(rows)} models verified in {models_dir()}")
    except Exception as error:  # noqa: BLE001
        problems += 1
        print(f"FAIL  models: {error}")
    print("all good" if not problems else f"{problems} problem(s)")
    return 0 if not problems else 1


# ---------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relight",
        description="Cut out a person, relight them to match a new background, composite.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    run = commands.add_parser("run", help="relight a portrait onto a background, write layers")
    run.add_argument("portrait", help="the photo of the person (PNG, JPEG, TIFF; 8/16-bit or "
                                      "float; a transparent one keeps its own matte)")
    run.add_argument("background", help="the new background photo; its light is estimated "
                                        "from it unless --hdri gives the light")
    run.add_argument("-o", "--outdir", required=True, help="folder for the layers (made if "
                                                           "missing)")
    run.add_argument("--hdri", help="light with this equirectangular panorama (.hdr/.exr)")
    run.add_argument("--selection", metavar="MASK",
                     help="a mask of the portrait's size (white = selected): the person lies "
                          "inside it, outside is background")
    run.add_argument("--rotate", type=float, default=0.0, help="turn the light (degrees)")
    run.add_argument("--strength", type=float, default=1.0, help="light strength (1 = as is)")
    run.add_argument("--shininess", type=float, default=0.3, help="specular amount, 0..1")
    run.add_argument("--keep-original", type=float, default=0.0,
                     help="how much of the original lighting to keep, 0..1")
    run.add_argument("--max-size", type=int, default=1024,
                     help="working resolution (long side) of the matte and normals")
    run.add_argument("--no-edge-refine", action="store_true",
                     help="skip closed-form matting (faster, rougher hair)")
    run.add_argument("--max-megapixels", type=float, default=100.0, help="input size limit")
    run.add_argument("--json", action="store_true", help="print result.json to stdout")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=_run)

    light = commands.add_parser("light", help="estimate the light of a background photo")
    light.add_argument("background", help="background photo (an .hdr/.exr one too), or an "
                       ".hdr/.exr equirectangular panorama (width = 2 × height)")
    light.add_argument("--json", action="store_true")
    light.add_argument("--save-panorama", metavar="PATH", help="write the environment (.hdr/.exr/"
                                                                ".tif/.png)")
    light.add_argument("--max-megapixels", type=float, default=100.0)
    light.set_defaults(func=_light)

    try:
        from .models.cli import register
    except ImportError:
        register = None
    if register is not None:
        register(commands)

    doctor = commands.add_parser("doctor", help="check imports, models and the numba cache")
    doctor.set_defaults(func=_doctor)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .io import RelightError

    try:
        return int(args.func(args) or 0)
    except _Failure as failure:
        print(f"error: {failure.message}", file=sys.stderr)
        return failure.code
    except RelightError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2 if error.code in ("bad_input", "no_person") else 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - one line for the user, traceback on request
        if os.environ.get("RELIGHT_DEBUG"):
            raise
        name = type(error).__name__
        if name == "ModelError":
            print(f"error: {error}", file=sys.stderr)
        else:
            print(f"error: internal error ({name}: {error}); rerun with RELIGHT_DEBUG=1 for "
                  "details", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
