"""Helpers for tests that need the converted models and their TFLite originals.

`ensure_test_models()` returns a folder of valid models and points `$RELIGHT_MODELS_DIR` at it:
the folder already named there, else the default store, else a cached test store filled from the
pinned wheel (`$RELIGHT_MEDIAPIPE_WHEEL`, our wheel cache, or `pip download`).
`litert_runner()` is a `detect.ModelRunner` on the TFLite reference interpreter (ai-edge-litert),
used by the parity tests; `reference_tflite(name)` gives the original `.tflite` bytes.
"""

from __future__ import annotations

import os
import zipfile
from functools import cache
from pathlib import Path

import numpy as np
import platformdirs

from .catalog import MODELS
from .fetch import cached_wheel, collect_tflite
from .store import MODELS_DIR_ENV, all_valid, install, models_dir


@cache
def wheel_path() -> Path:
    """The pinned mediapipe wheel, downloaded once with pip when no copy is known."""
    known = cached_wheel()
    if known is not None:
        return known
    collect_tflite()  # downloads with pip and keeps the wheel in our cache
    known = cached_wheel()
    if known is None:
        raise RuntimeError("could not obtain the mediapipe 0.10.21 wheel")
    return known


def ensure_test_models() -> Path:
    if all_valid():
        os.environ[MODELS_DIR_ENV] = str(models_dir())
        return models_dir()
    os.environ[MODELS_DIR_ENV] = str(Path(platformdirs.user_cache_dir("relight")) / "test-models")
    install(wheel=wheel_path(), force=True)
    return models_dir()


@cache
def reference_tflite(name: str) -> bytes:
    with zipfile.ZipFile(wheel_path()) as archive:
        return archive.read(MODELS[name].wheel_path)


def wheel_member(path_in_wheel: str) -> bytes:
    with zipfile.ZipFile(wheel_path()) as archive:
        return archive.read(path_in_wheel)


@cache
def _interpreter(name: str):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=reference_tflite(name), num_threads=1)
    interpreter.allocate_tensors()
    return interpreter


def litert_runner():
    """TFLite reference backend with the same call shape as `detect.onnx_runner()`."""

    def run(model: str, tensor: np.ndarray) -> list[np.ndarray]:
        interpreter = _interpreter(model)
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensor)
        interpreter.invoke()
        # get_output_details lists the graph outputs in graph order, as onnxruntime does
        return [interpreter.get_tensor(d["index"]).copy() for d in interpreter.get_output_details()]

    return run
