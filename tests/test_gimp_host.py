"""The GIMP plug-in in a REAL GIMP 3, headless (gimp-console-3 + python-fu-eval).

One GIMP start runs every case (tests/gimp/driver.py); the checks below read what the driver
wrote. GIMP comes from the system (Debian 13) or from the trixie root that .ci/setup_gimp.sh
builds on Debian 12 (then it runs through tests/gimp/run_in_root.sh, as root). Without GIMP these
tests skip, unless RELIGHT_REQUIRE_HOSTS=1, which makes a missing GIMP a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hostinstall import install_with_installer

import relight_core

pytestmark = pytest.mark.gimp

REPO = Path(__file__).resolve().parents[1]
DATA = (REPO.parent / "shared" / "data").resolve()  # the GIMP root binds the real path
DRIVER = REPO / "tests" / "gimp" / "driver.py"
RUN_IN_ROOT = REPO / "tests" / "gimp" / "run_in_root.sh"
DEFAULT_ROOT = "/var/cache/relight-ci/trixie-root"
PORTRAIT = DATA / "portraits" / "05_woman_long_wavy_hair_window_light_cc0.png"
NIGHT = DATA / "backgrounds" / "dikhololo_night.png"  # dark: the person must get darker
DAWN_HDRI = DATA / "hdri" / "kiara_1_dawn_1k.hdr"  # bright: shading goes well above 1
PAD = (20, 10)  # canvas padding: the layers sit at non-zero offsets
SELECTED_PART = (0.45, 0.0, 1.0, 1.0)  # the portrait's right part (x0, y0, x1, y1 fractions)
GIMP_TIMEOUT = 420
# GIMP 3.x's console binary by major version: gimp-console-3.0 in GIMP 3.0, -3.2 in 3.2, and
# gimp-console-3 in both (plain gimp-console may be GIMP 2.10 on older systems)
GIMP_CONSOLE = "gimp-console-3"


def gimp_location() -> tuple[str, str | None]:
    """("host", None) or ("root", ROOT); skips (or fails when required) without GIMP 3."""
    if shutil.which(GIMP_CONSOLE):
        return "host", None
    root = os.environ.get("RELIGHT_GIMP_ROOT", DEFAULT_ROOT)
    reason = None
    if not Path(root, ".relight-gimp-ready").is_file():
        reason = f"GIMP 3 is not installed and there is no GIMP root at {root}"
    elif os.geteuid() != 0:
        reason = f"the GIMP root at {root} needs root (chroot) to run"
    if reason is None:
        return "root", root
    reason += "; run .ci/setup_gimp.sh first"
    if os.environ.get("RELIGHT_REQUIRE_HOSTS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def install_plugin(profile: Path, config_path: Path, python: str, models_dir: Path) -> None:
    """Put the plug-in into a GIMP profile and write the worker config with the real installer
    (`installer/install.py --no-detect --skip-models --python PY --gimp PROFILE --config FILE`)."""
    output = install_with_installer(config_path.parent / "installer-state", models_dir,
                                    "--python", python, "--gimp", str(profile),
                                    "--config", str(config_path))
    plugin = profile / "plug-ins" / "relight" / "relight.py"
    assert plugin.is_file() and os.access(plugin, os.X_OK), output
    assert (plugin.parent / "relight_client.py").is_file(), output
    assert json.loads(config_path.read_text())["python"] == python


def job_cases(python: str, models_dir: Path) -> list[dict]:
    good = {"edge-refine": True}
    return [
        {"name": "u8", "background": str(NIGHT), "background_canvas": True,
         "arguments": {**good, "output-normals": True}},
        {"name": "u16", "precision": "U16_NON_LINEAR", "background": str(NIGHT),
         "native_format": "R'G'B'A u16", "background_fit": False, "arguments": good},
        {"name": "float", "precision": "FLOAT_LINEAR", "hdri": str(DAWN_HDRI),
         "arguments": good},
        {"name": "u8_hdri", "hdri": str(DAWN_HDRI), "arguments": good},
        {"name": "u8_selection", "background": str(NIGHT), "select": SELECTED_PART,
         "arguments": good},
        {"name": "selection_misses", "kind": "selection_misses"},
        {"name": "u8_layer_mask", "background": str(NIGHT), "layer_mask": SELECTED_PART,
         "arguments": good},
        {"name": "empty", "kind": "empty"},
        {"name": "greyscale", "kind": "greyscale"},
        {"name": "no_person", "kind": "no_person"},
        {"name": "too_large", "kind": "too_large"},
        {"name": "no_background", "kind": "no_background"},
        {"name": "clear_background", "kind": "clear_background"},
        {"name": "face_down", "kind": "face_down"},
        {"name": "worker_missing", "kind": "plain",
         "config": {"python": "/nonexistent/relight-venv/bin/python",
                    "models_dir": str(models_dir)}},
    ]


def unique_roots(paths: list[Path]) -> list[str]:
    """Paths to bind into the root, without ones already inside another."""
    resolved = sorted({str(p.resolve()) for p in paths if p.exists()})
    kept: list[str] = []
    for path in resolved:
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return kept


@pytest.fixture(scope="module")
def gimp_run(tmp_path_factory):
    where, root = gimp_location()
    from relight_core.models.testing import ensure_test_models

    models_dir = ensure_test_models()
    work = tmp_path_factory.mktemp("gimp")
    profile, home, out = work / "profile", work / "home", work / "out"
    for folder in (home, out):
        folder.mkdir()
    python = str(Path(sys.prefix) / "bin" / "python")
    config_path = work / "config.json"
    install_plugin(profile, config_path, python, models_dir)
    job = {"out": str(out), "portrait": str(PORTRAIT), "background": str(NIGHT),
           "long_side": 400, "pad": list(PAD), "config": str(config_path),
           "cases": job_cases(python, models_dir)}
    job_path = work / "job.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    env = {"HOME": str(home), "GIMP3_DIRECTORY": str(profile), "RELIGHT_CONFIG": str(config_path),
           "RELIGHT_GIMP_JOB": str(job_path), "OMP_NUM_THREADS": "2", "LC_ALL": "C.UTF-8"}
    gimp = ["timeout", "-k", "10", str(GIMP_TIMEOUT), GIMP_CONSOLE, "-i", "-n", "-c",
            "--batch-interpreter=python-fu-eval", "-b", f"exec(open('{DRIVER}').read())",
            "--quit"]
    if where == "host":
        command = gimp
        run_env = {"PATH": os.environ["PATH"], **env}
    else:
        package_root = Path(relight_core.__file__).resolve().parents[1]
        # The venv read-write: numba keeps its compiled kernels beside pymatting's sources
        # (read-only, it would recompile them for ~2 minutes on every run).
        writable = unique_roots([work, REPO, package_root, Path(sys.prefix)])
        read_only = [p for p in unique_roots([Path(sys.base_prefix), models_dir, DATA])
                     if p not in writable]
        command = [str(RUN_IN_ROOT), root]
        for path in writable:
            command += ["--bind", path]
        for path in read_only:
            command += ["--bind-ro", path]
        for name, value in env.items():
            command += ["--env", f"{name}={value}"]
        command += ["--", *gimp]
        run_env = None
    done = subprocess.run(command, env=run_env, capture_output=True, text=True,
                          timeout=GIMP_TIMEOUT + 60)
    log = f"exit {done.returncode}\n--- stdout\n{done.stdout[-4000:]}\n--- stderr\n" \
          f"{done.stderr[-6000:]}"
    (work / "gimp.log").write_text(log)
    results_path = out / "results.json"
    assert done.returncode == 0 and results_path.is_file(), log
    results = json.loads(results_path.read_text())["cases"]
    return {"results": results, "log": log, "profile": profile,
            "output": done.stdout + done.stderr}


def case(gimp_run, name: str) -> dict:
    result = gimp_run["results"][name]
    assert result["status"] != "driver-error", result["message"]
    return result


def successful(gimp_run, name: str) -> dict:
    result = case(gimp_run, name)
    assert result["status"] == "success", f"{result['message']}\n{gimp_run['log']}"
    return result


def load(dump: dict) -> np.ndarray:
    channels = 1 if dump["format"].startswith("Y") else 4
    dtype = {"float": np.float32, "u16": np.uint16, "u8": np.uint8}[dump["format"].split()[-1]]
    return np.fromfile(dump["path"], dtype).reshape(dump["height"], dump["width"], channels)


def tree_names(nodes: list[dict]) -> list:
    return [(n["name"], tree_names(n["children"])) if n["group"] else n["name"] for n in nodes]


def relight_group(result: dict) -> dict:
    return next(node for node in result["tree"] if node["name"] == "Relight")


def all_layers(nodes: list[dict]):
    for node in nodes:
        yield node
        yield from all_layers(node.get("children", []))


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3] @ np.array([0.2126, 0.7152, 0.0722], np.float32)


# --------------------------------------------------------------------------- good cases


def test_layer_stack_names_modes_sizes_offsets(gimp_run):
    result = successful(gimp_run, "u8")
    assert tree_names(result["tree"]) == [
        ("Relight", ["Normals", "Relit",
                     ("Relit as layers", ["Specular", "Shading", "Albedo"]), "Composite"]),
        "Portrait", "Background",
    ]
    group = relight_group(result)
    layers = {node["name"]: node for node in all_layers(group["children"])}
    portrait = result["portrait"]
    assert portrait["offsets"] == list(PAD)
    for name in ("Normals", "Relit", "Specular", "Shading", "Albedo", "Composite"):
        assert layers[name]["size"] == portrait["size"], name
        assert layers[name]["offsets"] == portrait["offsets"], name
        assert layers[name]["bpp"] == 4, name  # 8-bit image: 8-bit RGBA layers
    assert layers["Shading"]["mode"] == "multiply" and layers["Specular"]["mode"] == "addition"
    assert layers["Shading"]["blend_space"] == "rgb-linear"
    assert layers["Relit"]["mask"] and layers["Relit as layers"]["mask"]
    assert not layers["Normals"]["visible"] and not layers["Relit as layers"]["visible"]
    assert layers["Relit"]["visible"] and layers["Composite"]["visible"]


def test_user_layers_are_untouched(gimp_run):
    for name in ("u8", "u16", "float", "u8_hdri"):
        result = successful(gimp_run, name)
        assert result["originals_after"] == result["before"], name


def background_under_portrait(result: dict) -> np.ndarray:
    """The background layer's pixels that lie under the portrait layer."""
    (px, py), (bx, by) = result["portrait"]["offsets"], result["background"]["offsets"]
    width, height = result["portrait"]["size"]
    background = load(result["dumps"]["background"])
    assert background.shape[:2] != (height, width)  # the case makes it bigger than the portrait
    return background[py - by:py - by + height, px - bx:px - bx + width]


def test_mask_is_the_matte_the_composite_used(gimp_run):
    result = successful(gimp_run, "u8")
    dumps = result["dumps"]
    mask = load(dumps["mask"])[..., 0]
    relit, composite = load(dumps["Relit"]), load(dumps["Composite"])
    background = background_under_portrait(result)  # what the user sees behind the person
    assert 0.1 < (mask > 0.5).mean() < 0.9  # a person, not everything or nothing
    assert (mask < 0.02).mean() > 0.05 and (mask > 0.98).mean() > 0.05
    expected = relit[..., :3] * mask[..., None] + background[..., :3] * (1 - mask[..., None])
    error = np.abs(composite[..., :3] - expected)
    assert error.mean() < 0.01 and np.percentile(error, 99) < 0.05


def test_albedo_shading_specular_add_up_to_relit(gimp_run):
    for name in ("u8", "u16", "float", "u8_hdri"):
        dumps = successful(gimp_run, name)["dumps"]
        inside = load(dumps["mask"])[..., 0] > 0.5
        stack = load(dumps["intrinsics_sum"])[..., :3][inside]
        relit = load(dumps["Relit"])[..., :3][inside]
        error = np.abs(np.clip(stack, 0, 1) - np.clip(relit, 0, 1))
        assert error.mean() < 0.01 and np.percentile(error, 99) < 0.04, name


def test_composite_is_darker_than_a_plain_paste_on_a_night_background(gimp_run):
    result = successful(gimp_run, "u8")
    dumps = result["dumps"]
    mask = load(dumps["mask"])[..., 0]
    person = mask > 0.95
    portrait, composite = load(dumps["portrait"]), load(dumps["Composite"])
    background = background_under_portrait(result)
    plain_paste = portrait[..., :3] * mask[..., None] + background[..., :3] * (1 - mask[..., None])
    relit_light = luminance(composite)[person].mean()
    pasted_light = luminance(plain_paste)[person].mean()
    assert relit_light < 0.7 * pasted_light, (relit_light, pasted_light)


def test_16bit_image_gets_16bit_layers_with_more_than_256_levels(gimp_run):
    result = successful(gimp_run, "u16")
    layers = {node["name"]: node for node in all_layers(relight_group(result)["children"])}
    assert all(layers[name]["bpp"] == 8 for name in ("Relit", "Albedo", "Shading", "Composite"))
    relit = load(result["dumps"]["Relit native"])[..., :3]
    inside = load(result["dumps"]["mask"])[..., 0] > 0.5
    values = relit[inside]
    assert (values % 257 != 0).mean() > 0.5  # 8-bit data widened to 16 bits would be k × 257
    assert len(np.unique(values)) > 1000


def test_float_image_keeps_shading_above_one(gimp_run):
    result = successful(gimp_run, "float")
    layers = {node["name"]: node for node in all_layers(relight_group(result)["children"])}
    assert "Shading over 1" not in layers  # a float layer holds shading > 1 itself
    assert all(layers[name]["bpp"] == 16 for name in ("Relit", "Albedo", "Shading", "Composite"))
    shading = load(result["dumps"]["Shading"])[..., :3]
    assert shading.max() > 1.0


def test_integer_image_splits_shading_above_one_into_its_own_layer(gimp_run):
    result = successful(gimp_run, "u8_hdri")
    names = tree_names(relight_group(result)["children"])
    assert ("Relit as layers", ["Specular", "Shading over 1", "Shading", "Albedo"]) in names
    dumps = result["dumps"]
    inside = load(dumps["mask"])[..., 0] > 0.5
    # clipped at 1 (read back through the image's colour profile, hence the tolerance) ...
    assert 0.98 < load(dumps["Shading"])[..., :3][inside].max() < 1.02
    assert load(dumps["Shading over 1"])[..., :3][inside].max() > 0.05  # ... the rest is here


def test_background_of_another_size_covers_the_portrait(gimp_run):
    dumps = successful(gimp_run, "u16")["dumps"]
    composite = load(dumps["Composite"])
    assert composite.shape[:2] == load(dumps["portrait"]).shape[:2]
    assert composite[..., 3].min() == 1.0  # opaque everywhere: no hole where bg was missing
    assert composite[..., :3].reshape(-1, 3).std(axis=0).min() > 0


def test_a_selection_keeps_the_cut_out_inside_it(gimp_run):
    """Select the right part of the portrait: the matte is empty left of it, and right of it
    (away from its edge) it is the matte the whole layer gets."""
    limited = load(successful(gimp_run, "u8_selection")["dumps"]["mask"])[..., 0]
    whole = load(successful(gimp_run, "u8")["dumps"]["mask"])[..., 0]
    edge = round(SELECTED_PART[0] * limited.shape[1])
    assert limited[:, :edge - 1].max() == 0.0 and whole[:, :edge - 1].mean() > 0.3
    assert limited[:, edge + 1:].mean() > 0.3
    difference = np.abs(limited[:, edge + 8:] - whole[:, edge + 8:])
    assert difference.mean() < 0.01, difference.mean()


def test_a_layer_mask_on_the_portrait_is_its_matte(gimp_run):
    """A layer mask hides part of the portrait: the result's matte is that mask, as it would
    be for a layer whose hidden part was erased."""
    matte = load(successful(gimp_run, "u8_layer_mask")["dumps"]["mask"])[..., 0]
    edge = round(SELECTED_PART[0] * matte.shape[1])
    assert matte[:, :edge - 1].max() == 0.0
    assert matte[:, edge + 1:].min() > 0.99  # the mask said opaque: no matting over it


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("name, words", [
    ("empty", ["transparent"]),
    ("greyscale", ["RGB"]),
    ("no_person", ["No person"]),
    ("too_large", ["megapixels", "100"]),
    ("no_background", ["background"]),
    ("clear_background", ["background", "fully transparent"]),
    ("selection_misses", ["selection", "Select"]),
    ("worker_missing", ["install"]),
])
def test_bad_input_is_a_clear_error_and_changes_nothing(gimp_run, name, words):
    result = case(gimp_run, name)
    assert result["status"] == "execution-error", result
    message = result["message"]
    assert message and "Traceback" not in message and "\n" not in message.strip()
    for word in words:
        assert word in message, message
    assert result["after"] == result["before"]


def test_plugin_file_is_executable_in_the_profile(gimp_run):
    plugin = gimp_run["profile"] / "plug-ins" / "relight" / "relight.py"
    assert plugin.stat().st_mode & stat.S_IXUSR
    assert (plugin.parent / "relight_client.py").is_file()


def test_a_portrait_without_a_findable_face_is_relit_and_the_user_told_why(gimp_run):
    """Upside down, the person is found but no face: the run succeeds (normals from the
    silhouette) and the worker's note reaches GIMP's messages (Gimp.message)."""
    result = case(gimp_run, "face_down")
    assert result["status"] == "success", f"{result['message']}\n{gimp_run['log']}"
    assert "Relight: no face found" in gimp_run["output"], gimp_run["log"]
