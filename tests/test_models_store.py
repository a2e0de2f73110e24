"""Model store: install sources, manifest, sha256 verification on load, the `models` command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from relight_core import detect
from relight_core.models import (
    MODELS,
    ModelError,
    clear_sessions,
    get_session,
    install,
    model_statuses,
    verified_model_path,
)
from relight_core.models.catalog import CONVERTER_VERSION, WHEEL_SHA256
from relight_core.models.cli import main as models_main
from relight_core.models.fetch import sha256_file
from relight_core.models.testing import ensure_test_models, reference_tflite, wheel_path

REPAIR = "relight models install --force"


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return ensure_test_models()


@pytest.fixture
def store_copy(models_dir, tmp_path, monkeypatch) -> Path:
    """A private copy of the installed store that a test may damage."""
    copy = tmp_path / "models"
    shutil.copytree(models_dir, copy)
    monkeypatch.setenv("RELIGHT_MODELS_DIR", str(copy))
    clear_sessions()
    yield copy
    clear_sessions()


def test_installed_store_verifies(store_copy):
    assert all(row.status == "ok" for row in model_statuses())
    manifest = json.loads((store_copy / "manifest.json").read_text())
    assert manifest["converter_version"] == CONVERTER_VERSION
    for name in MODELS:
        entry = manifest["models"][name]
        assert sha256_file(store_copy / entry["file"]) == entry["sha256"]
        assert verified_model_path(name) == store_copy / entry["file"]


def test_tampered_model_is_refused(store_copy):
    path = store_copy / "face_landmark.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="damaged") as error:
        get_session("face_landmark", 1)
    assert REPAIR in str(error.value)
    image = np.zeros((64, 64, 3), np.uint8)
    face = detect.Face((10.0, 10.0, 40.0, 40.0), 0.9, np.full((6, 2), 25.0, np.float32))
    with pytest.raises(ModelError):
        detect.face_landmarks(image, face)


def test_truncated_model_is_refused(store_copy):
    path = store_copy / "selfie_segmentation.onnx"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ModelError, match="damaged"):
        detect.person_mask(np.zeros((32, 32, 3), np.uint8))


def test_missing_model_gives_instruction(store_copy):
    (store_copy / "pose_landmark_full.onnx").unlink()
    with pytest.raises(ModelError, match="missing") as error:
        verified_model_path("pose_landmark_full")
    assert REPAIR in str(error.value)


def test_empty_store_gives_instruction(tmp_path, monkeypatch):
    monkeypatch.setenv("RELIGHT_MODELS_DIR", str(tmp_path / "nothing"))
    clear_sessions()
    with pytest.raises(ModelError, match="not installed") as error:
        detect.detect_faces(np.zeros((32, 32, 3), np.uint8))
    assert REPAIR in str(error.value)


def test_models_from_another_converter_version_are_refused(store_copy):
    manifest_path = store_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["converter_version"] = "0.0.1"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="converter"):
        verified_model_path("face_landmark")


def test_cli_verify_and_list(store_copy, capsys):
    assert models_main(["models", "verify"]) == 0
    assert models_main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    for name in MODELS:
        assert name in listing
    (store_copy / "face_detection_short_range.onnx").write_bytes(b"junk")
    assert models_main(["models", "verify"]) == 1
    captured = capsys.readouterr()
    assert "face_detection_short_range" in captured.err and REPAIR in captured.err
    assert models_main(["models", "list"]) == 0
    assert "BAD" in capsys.readouterr().out


def test_install_offline_from_folder_of_tflite_files(tmp_path, monkeypatch):
    source = tmp_path / "tflite"
    source.mkdir()
    for name, spec in MODELS.items():
        (source / Path(spec.wheel_path).name).write_bytes(reference_tflite(name))
    target = tmp_path / "store"
    monkeypatch.setenv("RELIGHT_MODELS_DIR", str(target))
    clear_sessions()
    assert install(folder=source) == target
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["source"]["kind"] == "folder"
    assert all(row.status == "ok" for row in model_statuses())
    # the installed selfie model really runs
    assert detect.person_mask(np.full((40, 30, 3), 128, np.uint8)).shape == (40, 30)
    clear_sessions()


def test_install_from_wheel_records_its_sha256(tmp_path, monkeypatch):
    monkeypatch.setenv("RELIGHT_MODELS_DIR", str(tmp_path / "store"))
    assert models_main(["models", "install", "--wheel", str(wheel_path())]) == 0
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert manifest["source"] == {
        "kind": "wheel",
        "path": str(wheel_path()),
        "sha256": WHEEL_SHA256,
    }
    assert models_main(["models", "verify"]) == 0


def test_wrong_tflite_in_folder_is_refused(tmp_path, monkeypatch):
    source = tmp_path / "tflite"
    source.mkdir()
    for name, spec in MODELS.items():
        data = reference_tflite(name)
        if name == "face_landmark":
            data = data[:-1] + bytes([data[-1] ^ 1])
        (source / Path(spec.wheel_path).name).write_bytes(data)
    monkeypatch.setenv("RELIGHT_MODELS_DIR", str(tmp_path / "store"))
    with pytest.raises(ModelError, match="pinned sha256"):
        install(folder=source)
    assert not (tmp_path / "store" / "manifest.json").exists()


def test_cli_install_bad_wheel_is_one_line(tmp_path, monkeypatch, capsys):
    junk = tmp_path / "mediapipe.whl"
    junk.write_bytes(b"not a zip")
    monkeypatch.setenv("RELIGHT_MODELS_DIR", str(tmp_path / "store"))
    assert models_main(["models", "install", "--wheel", str(junk)]) == 1
    error_lines = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(error_lines) == 1 and "not a readable wheel" in error_lines[0]


def test_sessions_are_cached_per_thread_count(models_dir, monkeypatch):
    monkeypatch.setenv("RELIGHT_MODELS_DIR", str(models_dir))
    assert get_session("face_landmark", 1) is get_session("face_landmark", 1)
    assert get_session("face_landmark", 2) is not get_session("face_landmark", 1)
    monkeypatch.setenv("RELIGHT_THREADS", "1")
    assert get_session("face_landmark") is get_session("face_landmark", 1)


def test_module_command_keeps_stdout_for_results(store_copy):
    """`python -m relight_core.models verify`: result on stdout, nothing else there."""
    result = subprocess.run(
        [sys.executable, "-m", "relight_core.models", "verify"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and result.stdout.strip() == "all models verified"
    (store_copy / "face_landmark.onnx").unlink()
    result = subprocess.run(
        [sys.executable, "-m", "relight_core.models", "verify"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and REPAIR in result.stderr
