"""`relight` command: all layer files on a real portrait; bad input → exit 2 and one line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from relight_core import cli

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PORTRAIT = DATA / "portraits" / "05_woman_long_wavy_hair_window_light_cc0.png"
BACKGROUND = DATA / "backgrounds" / "kiara_dawn.png"
HDRI = DATA / "hdri" / "kiara_1_dawn_1k.hdr"
EXPECTED_FILES = {
    "alpha.png", "foreground.png", "normals.png", "albedo.png", "shading.png", "specular.png",
    "relit.png", "composite.png", "result.json", "alpha.tif", "foreground.tif", "normals.tif",
    "albedo.tif", "shading.tif", "specular.tif", "relit.tif", "composite.tif",
}


@pytest.fixture(scope="module")
def small_portrait(tmp_path_factory):
    path = tmp_path_factory.mktemp("in") / "portrait.png"
    image = Image.open(PORTRAIT)
    image.thumbnail((384, 384))
    image.save(path)
    return path


def test_run_writes_every_layer(small_portrait, tmp_path, capsys):
    outdir = tmp_path / "out"
    code = cli.main(["run", str(small_portrait), str(BACKGROUND), "-o", str(outdir),
                     "--max-size", "384", "--rotate", "30", "--json"])
    assert code == 0
    assert EXPECTED_FILES <= {p.name for p in outdir.iterdir()}
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((outdir / "result.json").read_text())
    assert printed == saved
    assert saved["faces"] == 1 and saved["sizes"]["output"] == list(Image.open(small_portrait).size)
    for stage in ("detect", "matting", "geometry", "albedo", "lighting", "shading", "composite"):
        assert saved["timings_s"][stage] >= 0
    assert len(saved["light"]["sh"]) == 9 and len(saved["light"]["dominant_direction"]) == 3
    assert Image.open(outdir / "relit.png").mode == "RGBA"
    assert Image.open(outdir / "composite.png").mode == "RGB"


def test_light_command(capsys, tmp_path):
    pano = tmp_path / "env.hdr"
    assert cli.main(["light", str(BACKGROUND), "--json", "--save-panorama", str(pano)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["source"] == "estimated" and pano.stat().st_size > 1000
    # a 16-bit photo whose colour profile cannot be applied: the light, and a warning naming it
    import numpy as np
    import tifffile
    from icc_profiles import ADOBE_RGB_D50, matrix_profile

    deep = tmp_path / "deep.tif"
    eight_bit = np.asarray(Image.open(BACKGROUND).convert("RGB"), np.uint16)
    tifffile.imwrite(deep, eight_bit * 257, photometric="rgb",
                     iccprofile=matrix_profile(ADOBE_RGB_D50, 2.2))
    assert cli.main(["light", str(deep), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["source"] == "estimated"
    assert "deep.tif: its embedded colour profile" in captured.err
    assert cli.main(["light", str(HDRI)]) == 0
    assert "dominant light direction" in capsys.readouterr().out


def test_an_hdr_background_photo_is_estimated_not_refused(capsys, tmp_path, small_portrait):
    """An EXR or Radiance .hdr background that is no 2:1 panorama is a photo (an HDR plate):
    its light is estimated, in its own units, and `run` takes it as the background."""
    import cv2
    import numpy as np

    from relight_core import io

    linear = io.read_image(BACKGROUND)[..., :3]
    io.write_exr_linear(tmp_path / "plate.exr", linear * 5.0)  # peak 5: unclipped, HDR
    cv2.imwrite(str(tmp_path / "plate.hdr"), np.ascontiguousarray(linear[..., ::-1] * 5.0))
    assert cli.main(["light", str(BACKGROUND), "--json"]) == 0
    recorded = np.array(json.loads(capsys.readouterr().out)["sh_radiance_camera_frame_rgb"])
    for plate in ("plate.exr", "plate.hdr"):
        assert cli.main(["light", str(tmp_path / plate), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["source"] == "estimated"
        assert any(note.startswith("HDR photo") for note in report["notes"])
        luminance = np.array([0.2126, 0.7152, 0.0722])
        level = np.array(report["sh_radiance_camera_frame_rgb"])[0] @ luminance
        assert 4.0 < level / (recorded[0] @ luminance) < 6.0  # 5×, in the plate's units
    out = tmp_path / "out"
    assert cli.main(["run", str(small_portrait), str(tmp_path / "plate.hdr"), "-o", str(out),
                     "-q"]) == 0
    assert (out / "composite.tif").exists()


def test_light_of_a_partly_transparent_background_comes_from_its_visible_part(capsys,
                                                                               tmp_path):
    import numpy as np

    rgba = np.asarray(Image.open(BACKGROUND).convert("RGBA")).copy()
    rgba[: rgba.shape[0] // 2] = 0  # the sky cut away: transparent, stored black
    Image.fromarray(rgba).save(tmp_path / "cut.png")
    assert cli.main(["light", str(tmp_path / "cut.png"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert any("transparent" in note for note in report["notes"])
    assert report["dominant_light"]["direction"][1] > 0.3  # from above, not from the black


def test_doctor_and_models_are_wired(capsys):
    code = cli.main(["doctor"])
    out = capsys.readouterr().out
    assert "import numpy" in out and "pymatting" in out and "models" in out
    assert code in (0, 1)
    assert cli.main(["models", "list"]) == 0


def _bad_inputs(tmp_path: Path, portrait: Path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    one = tmp_path / "one.png"
    Image.new("RGB", (1, 1)).save(one)
    wide = tmp_path / "wide.png"
    Image.new("RGB", (300, 200)).save(wide)
    landscape = DATA / "backgrounds" / "empty_warehouse.png"
    missing = tmp_path / "missing.png"
    blank = tmp_path / "blank_selection.png"
    Image.new("L", Image.open(portrait).size).save(blank)
    clear = tmp_path / "clear_background.png"
    Image.new("RGBA", (300, 200), (90, 120, 200, 0)).save(clear)
    return {
        "transparent background": ([str(portrait), str(clear)], clear.name),
        "missing": ([str(missing), str(BACKGROUND)], missing.name),
        "folder": ([str(tmp_path), str(BACKGROUND)], tmp_path.name),
        "not an image": ([str(portrait), str(text)], text.name),
        "empty file": ([str(empty), str(BACKGROUND)], empty.name),
        "1x1": ([str(portrait), str(one)], one.name),
        "too big": ([str(portrait), str(BACKGROUND), "--max-megapixels", "0.05"], portrait.name),
        "pano not 2:1": ([str(portrait), str(BACKGROUND), "--hdri", str(wide)], wide.name),
        "no person": ([str(landscape), str(BACKGROUND)], landscape.name),
        "selection of another size": ([str(portrait), str(BACKGROUND), "--selection", str(wide)],
                                      wide.name),
        "nothing selected": ([str(portrait), str(BACKGROUND), "--selection", str(blank)],
                             blank.name),
    }


def test_bad_input_exit_2_with_one_line(small_portrait, tmp_path, capsys):
    for case, (args, named) in _bad_inputs(tmp_path, small_portrait).items():
        code = cli.main(["run", *args, "-o", str(tmp_path / "out"), "--max-size", "256"])
        err = capsys.readouterr().err.strip()
        assert code == 2, case
        assert len(err.splitlines()) == 1 and named in err, (case, err)
        assert "Traceback" not in err


def test_bad_input_from_a_real_process(tmp_path):
    missing = tmp_path / "nope.jpg"
    done = subprocess.run([sys.executable, "-m", "relight_core.cli", "run", str(missing),
                           str(BACKGROUND), "-o", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: {missing}: no such file"]
